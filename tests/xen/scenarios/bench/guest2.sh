# Benchmark, guest 2: the servers. yasmin-bench over YASMIN (vsock), over TCP through
# netfront, and behind a libvchan bridge (Xen's vchan-socket-proxy, server side, in front
# of a Unix socket).
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-bench server --listen vsock:any:7000 > /tmp/srv-vsock.log 2>&1 &
pids="$pids $!"
yasmin-bench server --listen "tcp:$SELF_IP:7001" > /tmp/srv-tcp.log 2>&1 &
pids="$pids $!"
yasmin-bench server --listen unix:/tmp/vchan-srv.sock > /tmp/srv-vchan.log 2>&1 &
pids="$pids $!"
sleep 1
/usr/lib/xen-4.17/bin/vchan-socket-proxy -m server "$PEER_DOMID" "/local/domain/$SELF_DOMID/data/yasmin-bench-vchan" /tmp/vchan-srv.sock > /tmp/vchan-proxy.log 2>&1 &
pids="$pids $!"
check barrier-serving barrier serving 120
# The profiled run (guest 1 says when): this side's stages are the receiver's.
( xs_wait profile-start 1700 && echo 1 > /sys/kernel/debug/yasmin/profile && xs_signal profile-armed \
  && xs_wait profile-done 600 && echo 0 > /sys/kernel/debug/yasmin/profile \
  && sed 's/^/# profile-receiver: /' /sys/kernel/debug/yasmin/profile ) &
check barrier-done barrier done 1700
sed 's/^/# vchan proxy: /' /tmp/vchan-proxy.log | tail -5
sed 's/^/# server: /' /tmp/srv-*.log | grep -i error | head -10
kill $pids 2>/dev/null
sleep 1
check module-unloaded retry 20 rmmod yasmin
