# Benchmark, guest 2: the servers. yasmin-bench over YASMIN (vsock), over TCP through
# netfront, and over libvchan (yasmin-bench's own libxenvchan server).
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-bench server --listen vsock:any:7000 > /tmp/srv-vsock.log 2>&1 &
pids="$pids $!"
yasmin-bench server --listen "tcp:$SELF_IP:7001" > /tmp/srv-tcp.log 2>&1 &
pids="$pids $!"
# libvchan: the server publishes each connection's ring under this base; guest 1 must be
# able to read it (children inherit the perms).
VB=/local/domain/$SELF_DOMID/data/ybv
check vchan-base-readable-by-peer sh -c "yasmin-xs write $VB '' && yasmin-xs set-perms $VB n$SELF_DOMID r$PEER_DOMID"
yasmin-bench server --listen "vchan:$PEER_DOMID:$VB" > /tmp/srv-vchan.log 2>&1 &
pids="$pids $!"
sleep 1
check barrier-serving barrier serving 120
# The profiled run (guest 1 says when): this side's stages are the receiver's.
( xs_wait profile-start 1700 && echo 1 > /sys/kernel/debug/yasmin/profile && xs_signal profile-armed \
  && xs_wait profile-done 600 && echo 0 > /sys/kernel/debug/yasmin/profile \
  && sed 's/^/# profile-receiver: /' /sys/kernel/debug/yasmin/profile ) &
check barrier-done barrier done 1700
sed 's/^/# server: /' /tmp/srv-*.log | grep -i error | head -10
kill $pids 2>/dev/null
sleep 1
check module-unloaded retry 20 rmmod yasmin
