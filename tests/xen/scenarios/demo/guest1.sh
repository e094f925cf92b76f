# Scenario demo, guest 1: moves the same 64 MiB each way (both directions at once, every
# byte checked) to guest 2 over YASMIN and over TCP through netfront, one after the other in
# this boot, and prints the two rates. The CPU is emulated (TCG): only the ratio means
# something.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-serving barrier serving 120
sleep 1
bytes=67108864
rate() { awk -v b=$bytes -v s="$(sed -n 's/^client_seconds=//p' "$1")" 'BEGIN { printf "%.1f", 2 * b / s / 1e6 }'; }
check yasmin-vsock-64MiB-each-way timeout 600 yasmin-stream-check duplex --connect "vsock:$PEER_CID:7000" --bytes $bytes > /tmp/vsock.log
check netfront-tcp-64MiB-each-way timeout 600 yasmin-stream-check duplex --connect "tcp:$PEER_IP:7000" --bytes $bytes > /tmp/tcp.log
y=$(rate /tmp/vsock.log) n=$(rate /tmp/tcp.log)
echo "YASMIN-INFO demo: guest $SELF_DOMID <-> guest $PEER_DOMID, 64 MiB each way at once: YASMIN vsock $y MB/s, TCP over netfront $n MB/s: $(awk -v y="$y" -v n="$n" 'BEGIN { printf "%.1fx", y / n }') (emulated CPU: compare the ratio, not the numbers)"
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
check barrier-done barrier done 120
check module-unloaded retry 10 rmmod yasmin
