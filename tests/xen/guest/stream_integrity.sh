# Stream integrity (scenarios stream-integrity and stream-integrity-full): one duplex
# transfer each way at once over one connection (random write and read sizes, every byte
# checked, SHA-256 compared with the server's), concurrent connections with random sizes,
# connect/transfer/close cycles; grant and mapping counters back at their baseline.
# Sizes: `si_client full`: 512 MiB each way, 64 connections of up to 4 MiB, 1,000 cycles;
# the default (in `make test`, whose time is bounded by CI): 64 MiB each way (some 64
# wraps of the default 1 MiB ring, with random write and read sizes), 32 connections of up
# to 1 MiB, 150 cycles; `reduced` (the runner's marker for SCENARIO@TYPES runs, e.g. the
# PVH group): 32 MiB, 16 connections, 100 cycles. The ring's own wrap and index logic is
# also checked exhaustively in userspace (ring/: proptest, loom, fuzz).

si_client() { # [full]
    if [ "${1:-}" = full ]; then
        bytes=536870912 label=512MiB conns=64 cycles=1000 max=4194304
    elif [ -f reduced ]; then
        bytes=33554432 label=32MiB conns=16 cycles=100 max=1048576
    else
        bytes=67108864 label=64MiB conns=32 cycles=150 max=1048576
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
    timeout 900 yasmin-stream-check multi --connect "$t" --conns "$conns" --max-bytes "$max" --seed 12 > /tmp/multi.log 2>&1
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
}

# The server (yasmin-stream-check serve) for every connection the client makes; publishes
# its own SHA-256 of the duplex transfer.
si_server() {
    check module-loaded insmod /yasmin/yasmin.ko
    yasmin-stream-check serve --listen vsock:6000 > /tmp/serve.log 2>&1 &
    srv=$!
    check barrier-serving barrier serving 120
    check barrier-warm barrier warm 120
    baseline_take
    # The duplex run's sums, for the client to compare with its own.
    retry 900 grep -q '^server_received_sha256=' /tmp/serve.log
    yasmin-xs write "$SHARED_XS/server-received" "$(sed -n 's/^server_received_sha256=//p' /tmp/serve.log)"
    yasmin-xs write "$SHARED_XS/server-sent" "$(sed -n 's/^server_sent_sha256=//p' /tmp/serve.log)"
    check barrier-client-done barrier client-done 3000
    kill $srv 2>/dev/null
    check server-no-errors sh -c "! grep -q 'failed' /tmp/serve.log"
    grep -v '^listening' /tmp/serve.log | sed 's/^/# /' | head -20
    baseline_check 20
    sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
    check barrier-checked barrier checked 120
    check module-unloaded retry 10 rmmod yasmin
    check no-irqs-after-unload irqs_are 0
}
