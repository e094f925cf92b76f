# Scenario tools, guest 2: receives guest 1's file with socat, sends one with ncat.
. /yasmin/lib/case.sh
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120
timeout 120 socat -u "VSOCK-LISTEN:5000" CREATE:/tmp/recv.bin &
socat_pid=$!
sleep 1
check barrier-socat-listening barrier socat-listening 120
wait $socat_pid
check socat-vsock-listen-receive test $? = 0
check socat-file-intact test "$(sha256sum /tmp/recv.bin | cut -d' ' -f1)" = "$(yasmin-xs read "$SHARED_XS/sum1")"
check barrier-socat-done barrier socat-done 120

dd if=/dev/urandom of=/tmp/send.bin bs=1024 count=3000 2>/dev/null
yasmin-xs write "$SHARED_XS/sum2" "$(sha256sum /tmp/send.bin | cut -d' ' -f1)"
check barrier-ncat-listening barrier ncat-listening 120
check ncat-vsock-connect-send timeout 120 ncat --vsock --send-only "$PEER_CID" 5001 < /tmp/send.bin
check barrier-ncat-done barrier ncat-done 120
# Stay loaded while guest 1 probes a closed port here.
check barrier-probes-done barrier probes-done 300
check grants-back-to-baseline retry 10 stat_is grant_pages -le 1
cat /sys/kernel/debug/yasmin/stats | sed 's/^/# stats: /'
check module-unloaded retry 10 rmmod yasmin
# Stay up, without YASMIN, while guest 1 connects to us.
xs_signal guest2-unloaded
check peer-probed-unloaded xs_wait unloaded-probed 120
kernel_log_since_mark | grep yasmin | sed 's/^/# /'
