# Scenario tools, guest 1: socat and ncat move files over YASMIN vsock (guest 1 sends
# with socat, receives with ncat); stats show the bytes went through YASMIN and every
# grant is returned afterwards.
. /yasmin/lib/case.sh
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120
dd if=/dev/urandom of=/tmp/send.bin bs=1024 count=4096 2>/dev/null
sum=$(sha256sum /tmp/send.bin | cut -d' ' -f1)
yasmin-xs write "$SHARED_XS/sum1" "$sum"
check barrier-socat-listening barrier socat-listening 120
check socat-vsock-connect-send timeout 120 socat -u FILE:/tmp/send.bin "VSOCK-CONNECT:$PEER_CID:5000"
check bytes-went-over-yasmin test "$(stat bytes_sent)" -ge 4194304
check per-peer-bytes-counted sh -c "[ \$(awk -v p=$PEER_DOMID '\$1 == p { print \$4 }' /sys/kernel/debug/yasmin/peers) -ge 4194304 ]"
sed 's/^/# peers: /' /sys/kernel/debug/yasmin/peers
check barrier-socat-done barrier socat-done 120

# Other direction, ncat: we listen, guest 2 connects.
# A listening ncat also reads stdin (to send to the client): give it one that never
# becomes readable or ends (a FIFO it holds open itself), not the console.
rm -f /tmp/ncat.rc /tmp/ncat.in && mkfifo /tmp/ncat.in
( timeout 120 ncat -v --vsock --recv-only -l 5001 <>/tmp/ncat.in > /tmp/recv.bin 2>/tmp/ncat.err; echo $? > /tmp/ncat.rc ) &
sleep 1
check barrier-ncat-listening barrier ncat-listening 120
retry 130 test -f /tmp/ncat.rc
check ncat-vsock-listen-receive test "$(cat /tmp/ncat.rc 2>/dev/null)" = 0
sed 's/^/# ncat: /' /tmp/ncat.err
check ncat-file-intact test "$(sha256sum /tmp/recv.bin | cut -d' ' -f1)" = "$(yasmin-xs read "$SHARED_XS/sum2")"
check barrier-ncat-done barrier ncat-done 120

# dom0 is the vsock host (CID 2): its module and a socat listener there (dom0.sh).
check dom0-listening xs_wait dom0-listening 120
# The pair's channel first: socat connects with vsock's default 2 s timeout, which the
# channel's set-up on a first connect can exceed on a slow emulated CPU (it did once,
# 2026-12-06, in an hour when every scenario ran at half speed).
check dom0-pair-up pair_up 0 120
check socat-to-dom0-host-cid timeout 120 socat -u FILE:/tmp/send.bin VSOCK-CONNECT:2:5100
xs_signal sent-to-dom0

# connect_error NAME CID PORT TEXT: a connect that must fail with the error TEXT.
connect_error() {
    timeout 20 socat -u /dev/null "VSOCK-CONNECT:$2:$3" > "/tmp/$1.err" 2>&1
    sed "s/^/# $1: /" "/tmp/$1.err"
    grep -q "$4" "/tmp/$1.err"
}
# No domain 198 (CID 200): the watcher says so at once, connect fails with EHOSTUNREACH.
check connect-to-absent-domain-unreachable connect_error absent 200 5000 'No route to host'
# Nobody listens on this port of guest 2: ECONNRESET, as other vsock transports report.
check connect-to-closed-port-reset connect_error closed "$PEER_CID" 5999 'Connection reset by peer'
check barrier-probes-done barrier probes-done 120
# Guest 2 still runs but has unloaded YASMIN: the watcher refuses to relay to it, connect
# fails at once with EHOSTUNREACH (not ETIMEDOUT after the 2 s connect timeout).
check peer-unloaded xs_wait guest2-unloaded 120
check connect-to-domain-without-yasmin-unreachable connect_error nomod "$PEER_CID" 5000 'No route to host'
xs_signal unloaded-probed
sleep 1
check grants-back-to-baseline retry 10 stat_is grant_pages -le 1
check mapped-back-to-baseline retry 10 stat_is mapped_pages = 0
cat /sys/kernel/debug/yasmin/stats | sed 's/^/# stats: /'
check module-unloaded retry 10 rmmod yasmin
kernel_log_since_mark | grep yasmin | sed 's/^/# /'
