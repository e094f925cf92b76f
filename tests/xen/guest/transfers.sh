# Transfer helpers for scenarios that end connections under load (lifecycle, migrate);
# scenario scripts source /yasmin/lib/transfers.sh.

# serve_start PORT: a yasmin-stream-check server in the background, its pid in $srv.
serve_start() { yasmin-stream-check serve --listen "vsock:$1" > "/tmp/serve-$1.log" 2>&1 & srv=$!; }

# transfer_start NAME TARGET SEED: a 4 GiB duplex transfer in the background, which runs
# until something ends it; its output in /tmp/NAME.log, its exit status in /tmp/NAME.rc.
transfer_start() {
    rm -f "/tmp/$1.rc"
    ( yasmin-stream-check duplex --connect "$2" --bytes 4294967296 --seed "$3" > "/tmp/$1.log" 2>&1
      echo $? > "/tmp/$1.rc" ) &
}

# transfers_up PHASE: both guests started theirs, so each guest has two connections.
transfers_up() {
    check "$1-connected" barrier "$1-connected" 120
    check "$1-transfers-running" retry 30 stat_is connections_live -ge 2
}

# transfer_reset NAME CASE: transfer NAME ended (within a minute) with a connection reset.
transfer_reset() {
    check "$2-ended" retry 60 test -f "/tmp/$1.rc"
    sed "s/^/# $1: /" "/tmp/$1.log" | tail -3
    check "$2-reset" grep -qi "reset" "/tmp/$1.log"
}

# setup PORT TARGET SEED: loads YASMIN, serves on PORT, and once both guests serve,
# starts transfer `out` to TARGET and waits until both guests' transfers run.
setup() {
    check module-loaded insmod /yasmin/yasmin.ko
    serve_start "$1"
    check barrier-serving barrier serving 120
    transfer_start out "$2" "$3"
    transfers_up save
}

# back_as_new_domain WHAT: in the guest that comes back as a new domain (restore,
# migration): waits for the new domid, then times the module's resume to the first new
# connection to the peer (which knows nothing of our new domid yet; its server on 7001),
# in kernel-log time. Sets $new (domid) and $cid.
back_as_new_domain() {
    changed() { [ "$(yasmin-xs domid)" != "$SELF_DOMID" ]; }
    for _ in $(seq 9000); do changed && break; sleep 0.1; done
    check resumed-as-new-domain changed
    check "first-connection-after-$1" retry 60 yasmin-stream-check latency --connect "vsock:$PEER_CID:7001" --count 1 --max-ms 30000
    echo "yasmin-test: first connection after $1 ok" > /dev/kmsg
    stamp() { dmesg | sed -n "s/^\[ *\([0-9]*\)\.\([0-9]\{3\}\).*$1.*/\1\2/p" | tail -1; }
    echo "# module resumed to first new connection: $(( $(stamp "first connection after $1") - $(stamp 'yasmin: restored:') )) ms"
    new=$(yasmin-xs domid)
    cid=$((new + 2))
    echo "# domid $SELF_DOMID -> $new"
}

# peer_moved BARRIER: in the guest that stays, once dom0 published the peer's new domid:
# sets $new, $old_cid and $new_cid; once the peer serves again (BARRIER), its listener
# from before (port 7002) serves the new CID, and its getsockname server (7003) is reached.
peer_moved() {
    new=$(yasmin-xs read "$SHARED_XS/new-domid")
    old_cid=$PEER_CID new_cid=$((new + 2))
    echo "# guest 2: domid $PEER_DOMID -> $new, CID $old_cid -> $new_cid"
    check "barrier-$1" barrier "$1" 300
    check new-cid-connect-for-getsockname yasmin-stream-check local-cid --connect "vsock:$new_cid:7003"
    check new-cid-kept-listener yasmin-stream-check duplex --connect "vsock:$new_cid:7002" --bytes 16777216 --seed 2
}

# serve_again BARRIER: in the guest that came back as a new domain (after
# back_as_new_domain): the CID as applications see it (the ioctl, and the local address of
# the connection the peer opens to our port 7003, see peer_moved), and a new connection
# to the peer, once both reach BARRIER.
serve_again() {
    yasmin-stream-check local-cid --listen vsock:7003 > /tmp/cid.log 2>&1 &
    cidpid=$!
    check "barrier-$1" barrier "$1" 300
    check new-connection-to-guest1 yasmin-stream-check duplex --connect "vsock:$PEER_CID:7001" --bytes 16777216 --seed 4
    wait $cidpid
    sed 's/^/# /' /tmp/cid.log
    check local-cid-ioctl grep -qx "ioctl_cid=$cid" /tmp/cid.log
    check local-cid-getsockname grep -qx "getsockname_cid=$cid" /tmp/cid.log
}
