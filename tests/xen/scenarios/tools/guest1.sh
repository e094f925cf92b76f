# Scenario tools, guest 1: socat and ncat move files over YASMIN vsock (guest 1 sends
# with socat, receives with ncat); stats show the bytes went through YASMIN and every
# grant is returned afterwards.
. /yasmin/lib/case.sh
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120
stat() { awk -v k="$1" '$1 == k { print $2 }' /sys/kernel/debug/yasmin/stats; }
dd if=/dev/urandom of=/tmp/send.bin bs=1024 count=4096 2>/dev/null
sum=$(sha256sum /tmp/send.bin | cut -d' ' -f1)
yasmin-xs write "$SHARED_XS/sum1" "$sum"
check barrier-socat-listening barrier socat-listening 120
check socat-vsock-connect-send timeout 120 socat -u FILE:/tmp/send.bin "VSOCK-CONNECT:$PEER_CID:5000"
check bytes-went-over-yasmin test "$(stat bytes_sent)" -ge 4194304
check barrier-socat-done barrier socat-done 120

# Other direction, ncat: we listen, guest 2 connects.
timeout 120 ncat --vsock --recv-only -l 5001 > /tmp/recv.bin &
ncat_pid=$!
sleep 1
check barrier-ncat-listening barrier ncat-listening 120
wait $ncat_pid
check ncat-vsock-listen-receive test $? = 0
check ncat-file-intact test "$(sha256sum /tmp/recv.bin | cut -d' ' -f1)" = "$(yasmin-xs read "$SHARED_XS/sum2")"
check barrier-ncat-done barrier ncat-done 120
# No domain 198 (CID 200): the watcher says so at once, connect fails with EHOSTUNREACH.
check connect-to-absent-domain-unreachable sh -c "timeout 10 socat -u /dev/null VSOCK-CONNECT:200:5000 2>&1 | grep -q 'No route to host'"
# Nobody listens on this port of guest 2: ECONNRESET, as other vsock transports report.
check connect-to-closed-port-reset sh -c "timeout 10 socat -u /dev/null VSOCK-CONNECT:$PEER_CID:5999 2>&1 | grep -q 'Connection reset by peer'"
sleep 1
check grants-back-to-baseline retry 10 sh -c "[ \$(awk '\$1==\"grant_pages\"{print \$2}' /sys/kernel/debug/yasmin/stats) -le 1 ]"
check mapped-back-to-baseline retry 10 sh -c "[ \$(awk '\$1==\"mapped_pages\"{print \$2}' /sys/kernel/debug/yasmin/stats) = 0 ]"
cat /sys/kernel/debug/yasmin/stats | sed 's/^/# stats: /'
check module-unloaded retry 10 rmmod yasmin
kernel_log_since_mark | grep yasmin | sed 's/^/# /'
