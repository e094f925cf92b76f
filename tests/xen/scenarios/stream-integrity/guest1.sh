# Scenario stream-integrity, guest 1: 512 MiB each way at once over one connection (random
# write and read sizes, every byte checked, SHA-256 compared with the server's; some 1,000
# wraps of the default ring), 64 concurrent connections with random sizes, 1,000
# connect/transfer/close cycles; grant and mapping counters back at their baseline
# afterwards. A `reduced` file (the runner writes one for SCENARIO@TYPES runs, e.g. the
# PVH group) scales it to 128 MiB, 16 connections and 200 cycles.
. /yasmin/lib/case.sh
if [ -f reduced ]; then
    bytes=134217728 label=128MiB conns=16 cycles=200
else
    bytes=536870912 label=512MiB conns=64 cycles=1000
fi
check module-loaded insmod /yasmin/yasmin.ko
check barrier-serving barrier serving 120
t=vsock:$PEER_CID:6000
# Warm-up: brings the pair's control channel up, so the baseline counts its page.
check warm-up-connection yasmin-stream-check cycles --connect "$t" --count 1 --bytes 1
sleep 1
check barrier-warm barrier warm 120
baseline_take
timeout 1200 yasmin-stream-check duplex --connect "$t" --bytes "$bytes" --seed 11 > /tmp/duplex.log 2>&1
check "duplex-$label-each-way" test $? = 0
sed 's/^/# /' /tmp/duplex.log
v() { sed -n "s/^$1=//p" /tmp/duplex.log; }
check duplex-sha256-guest1-to-guest2 test "$(v client_sent_sha256)" = "$(yasmin-xs wait "$SHARED_XS/server-received" --timeout 120)"
check duplex-sha256-guest2-to-guest1 test "$(v client_received_sha256)" = "$(yasmin-xs wait "$SHARED_XS/server-sent" --timeout 120)"
timeout 900 yasmin-stream-check multi --connect "$t" --conns "$conns" --max-bytes 4194304 --seed 12 > /tmp/multi.log 2>&1
check "$conns-concurrent-connections-checksums-equal" test $? = 0
sed 's/^/# /' /tmp/multi.log
timeout 1500 yasmin-stream-check cycles --connect "$t" --count "$cycles" --bytes 4096 --seed 13 > /tmp/cycles.log 2>&1
check "$cycles-connect-transfer-close-cycles" test $? = 0
sed 's/^/# /' /tmp/cycles.log | tail -5
check barrier-client-done barrier client-done 120
baseline_check 20
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
check barrier-checked barrier checked 120
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
