# Scenario preload-fallback, guest 1: a preloaded client (the dynamic stream checker, an
# unmodified TCP program to the library) against guest 2's servers: a plain TCP server,
# then guest 2 without YASMIN (unloaded while the client runs, then loaded again), then
# guest 2 restarted as a new domain. Every connection must deliver every byte (a digest
# per connection), as TCP would; which path each took is read from the kernel (the
# socket's real family, past the library) and from YASMIN's and netfront's byte counters.
. /yasmin/lib/case.sh
. /yasmin/scenarios/preload-fallback/lib.sh
pre() { LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 "$@"; }
# ok_after MARK PATH N: at least N intact connections over PATH in /tmp/loop.out after line MARK.
ok_after() { [ "$(tail -n +"$1" /tmp/loop.out | grep -c "path=$2 .*ok=1")" -ge "$3" ]; }
mark() { echo $(( $(wc -l < /tmp/loop.out) + 1 )); }
# loop_start TTL: the long-running client, one connection every 300 ms to the preloaded
# server, until /tmp/loop.stop exists; loop_stop CASE: stops it, all must be intact.
loop_start() {
    rm -f /tmp/loop.stop /tmp/loop.out
    YASMIN_PRELOAD_FALLBACK_TTL_MS=$1 pre $DYN cycles --connect "tcp:$PEER_IP:7102" --count 1000000 \
        --bytes 65536 --interval-ms 300 --stop-file /tmp/loop.stop --paths > /tmp/loop.out 2> /tmp/loop.err &
    loop=$!
}
loop_stop() {
    touch /tmp/loop.stop
    wait $loop
    check "$1-every-connection-intact" test $? = 0
    echo "# $1: $(value cycles /tmp/loop.out) connections, $(value via_vsock /tmp/loop.out) over vsock, $(value via_tcp /tmp/loop.out) over TCP"
}
check module-loaded insmod /yasmin/yasmin.ko
check ipmap-has-peer retry 30 yasmin-xs read "/local/domain/0/data/yasmin-watch/ipmap/$(echo "$PEER_IP" | tr . -)"
check barrier-serving barrier serving 120

# 0. The very first connection to the peer pays for setting up the pair's channel: it
# must not fail where TCP would not (over vsock within the connect budget, else TCP).
pre $DYN cycles --connect "tcp:$PEER_IP:7102" --count 1 --bytes 65536 --paths > /tmp/first.out 2> /tmp/first.err
check first-connection-intact test $? = 0
echo "YASMIN-INFO preload-fallback: first connection to the peer: $(sed -n 's/^cycle=0 //p' /tmp/first.out)"
grep '^yasmin-preload: connect' /tmp/first.err | sed 's/^/# first: /'
check pair-up pair_up "$PEER_DOMID" 120

# A connection handed to a program the preloaded server execs (inetd-style): over vsock,
# and the exec'd program, whose library adopts the connection, still sees a TCP peer:
# our address.
pre timeout 60 socat -t 30 - "TCP:$PEER_IP:7103" < /dev/null > /tmp/exec.out 2> /tmp/exec.err
check exec-server-answered test $? = 0
echo "# inetd-style server says: $(cat /tmp/exec.out)"
check exec-server-on-vsock grep -q "real=vsock" /tmp/exec.out
check exec-server-sees-tcp-peer grep -q "^peer=inet:$SELF_IP:" /tmp/exec.out

# 1. A plain TCP server (not preloaded): the vsock attempt is refused (ECONNRESET, as
# virtio-vsock answers a connect to a port nobody listens on), the connection goes over
# TCP, and the next ones go straight to TCP (remembered).
y0=$(yasmin_bytes) n0=$(netfront_bytes)
pre $DYN cycles --connect "tcp:$PEER_IP:7101" --count 5 --bytes 65536 --paths > /tmp/plain.out 2> /tmp/plain.err
check plain-server-every-connection-intact test $? = 0
y1=$(yasmin_bytes) n1=$(netfront_bytes)
grep '^yasmin-preload: connect' /tmp/plain.err | head -2 | sed 's/^/# plain server: /'
check plain-server-vsock-refused grep -Eq "vsock CID $PEER_CID port 7101 failed \((ECONNRESET|ECONNREFUSED), .*tcp instead" /tmp/plain.err
check plain-server-all-over-tcp test "$(value via_tcp /tmp/plain.out)" = 5
check plain-server-remembered test "$(grep -c 'port 7101 failed with ECONNRE' /tmp/plain.err)" = 4
check plain-server-no-yasmin-bytes test $((y1 - y0)) -lt 65536
check plain-server-netfront-bytes test $((n1 - n0)) -ge $((5 * 65536))
# What the fallback costs a connect: no memory, so each one pays the refused attempt.
YASMIN_PRELOAD_FALLBACK_TTL_MS=0 pre $DYN cycles --connect "tcp:$PEER_IP:7101" --count 20 --bytes 1 > /tmp/fb.out 2>/dev/null
check fallback-latency-run test $? = 0
$DYN cycles --connect "tcp:$PEER_IP:7101" --count 20 --bytes 1 > /tmp/tcp.out
check plain-latency-run test $? = 0
echo "YASMIN-INFO preload-fallback: connect() to a TCP-only server: $(value connect_ms_mean /tmp/fb.out) ms through a refused vsock attempt, $(value connect_ms_mean /tmp/tcp.out) ms plain TCP (mean of 20)"

# 2 and 3. YASMIN goes away in guest 2 while the client runs, and comes back.
loop_start 3000
check midrun-over-vsock retry 120 ok_after 1 vsock 3
xs_signal unload-me
check guest2-unloaded xs_wait unloaded 300
m=$(mark) y0=$(yasmin_bytes) n0=$(netfront_bytes)
check midrun-over-tcp-without-yasmin retry 120 ok_after "$m" tcp 3
# A peer without YASMIN, met by a new process (nothing remembered): TCP at once.
pre $DYN cycles --connect "tcp:$PEER_IP:7102" --count 3 --bytes 65536 --paths > /tmp/none.out 2> /tmp/none.err
check no-yasmin-peer-every-connection-intact test $? = 0
grep '^yasmin-preload: connect' /tmp/none.err | head -1 | sed 's/^/# peer without YASMIN: /'
check no-yasmin-peer-all-over-tcp test "$(value via_tcp /tmp/none.out)" = 3
check no-yasmin-peer-vsock-failed grep -q "vsock CID $PEER_CID port 7102 failed (.*tcp instead" /tmp/none.err
YASMIN_PRELOAD_FALLBACK_TTL_MS=0 pre $DYN cycles --connect "tcp:$PEER_IP:7102" --count 20 --bytes 1 > /tmp/fb2.out 2>/dev/null
check fallback-latency-no-yasmin-run test $? = 0
$DYN cycles --connect "tcp:$PEER_IP:7102" --count 20 --bytes 1 > /tmp/tcp2.out
echo "YASMIN-INFO preload-fallback: connect() to a peer without YASMIN: $(value connect_ms_mean /tmp/fb2.out) ms through a failed vsock attempt, $(value connect_ms_mean /tmp/tcp2.out) ms plain TCP (mean of 20)"
y1=$(yasmin_bytes) n1=$(netfront_bytes)
check no-yasmin-no-yasmin-bytes test $((y1 - y0)) -lt 65536
check no-yasmin-netfront-bytes test $((n1 - n0)) -ge $((6 * 65536))
xs_signal reload-me
check guest2-reloaded xs_wait reloaded 300
m=$(mark)
check midrun-back-over-vsock retry 180 ok_after "$m" vsock 2
loop_stop midrun

# 4. Guest 2 restarts as a new domain (saved and restored by dom0: a new domid). While
# the map still names the old domid, connects must not go there (TCP instead); once it
# names the new one, they go over vsock to the new CID.
xs_signal restart-me
check guest2-saved xs_wait saved 600
check guest2-restored xs_wait restored 600
loop_start 1000
new_cid=$(( $(yasmin-xs read "$SHARED_XS/new-domid") + 2 ))
echo "# guest 2: CID $PEER_CID -> $new_cid"
check ipmap-updated xs_wait ipmap-updated 120
m=$(mark)
check restarted-peer-over-vsock retry 180 ok_after "$m" vsock 2
loop_stop restart
grep '^yasmin-preload: connect' /tmp/loop.err | head -3 | sed 's/^/# after the restart: /'
check restart-old-cid-never-connected sh -c "! grep -q 'vsock CID $PEER_CID port 7102 (' /tmp/loop.err"
check restart-new-cid-connected grep -q "vsock CID $new_cid port 7102 (" /tmp/loop.err
check barrier-done barrier done 600
check no-connection-left retry 30 stat_is connections_live = 0
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
