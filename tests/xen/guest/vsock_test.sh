# Linux's own vsock_test and vsock_diag_test (tools/testing/vsock of the 6.12 source)
# between the two guests, control connections over netfront: the scenarios
# vsock-conformance (one full run) and vsock-conformance-20 (20 full runs in a row).
# Client in guest 1 (vsock_client ROUNDS), server in guest 2 (vsock_server ROUNDS).

# vsock_test cases not run, with the reason (ID, then why). Everything else must pass.
VSOCK_TEST_SKIP='
6 SOCK_SEQPACKET msg bounds: runs on its own phase afterwards, with 1 MiB rings (below)
18 MSG_ZEROCOPY: not supported (see the README: the copy into the ring is the isolation boundary)
19 MSG_ZEROCOPY + SOCK_SEQPACKET: not supported
20 MSG_ZEROCOPY: not supported'
# Test 6 ("SOCK_SEQPACKET msg bounds") sends about 790 KB of records before its receiver
# reads any, counting on a buffer of 2 MiB both sides set after connect(). virtio grows
# its credit then; a YASMIN ring's size is fixed at connect (README, "Known limits"), so
# the sender's ring must hold it all: guest 1 reloads YASMIN with 1 MiB rings for it.
# (Not for the whole run: test 4's 100 connections at once would pass the default grant
# limit with rings that large, and fail with ENOBUFS, as they should.)
MSG_BOUNDS_PARAMS="ring_pages=256"
reload_for_msg_bounds() { retry 10 rmmod yasmin && insmod /yasmin/yasmin.ko $MSG_BOUNDS_PARAMS; }
skip_opts() { echo "$VSOCK_TEST_SKIP" | awk 'NF { printf "--skip=%s ", $1 }'; }
to_cases() { # PREFIX: reads vsock_test output, prints YASMIN-CASE lines and the raw output
    awk -v p="$1" '
        { print "# " $0 }
        match($0, /^[0-9]+ - .*\.\.\.ok$/) {
            name = $0; sub(/\.\.\.ok$/, "", name); gsub(/[^A-Za-z0-9_+()-]+/, "-", name)
            print "YASMIN-CASE ok " p "/" name
        }'
}
# only_opts ID...: every vsock_test ID skipped but these.
only_opts() {
    i=0
    while [ $i -le 25 ]; do
        case " $* " in *" $i "*) ;; *) printf -- '--skip=%s ' $i ;; esac
        i=$((i + 1))
    done
}
# Only the shutdown tests (16 SHUT_WR, 17 SHUT_RD).
only_shutdown_opts() { only_opts 16 17; }
# Rounds of the shutdown tests (the SHUT_RD race of issue #14): 20 in
# vsock-conformance-20, 6 in `make test`, whose time CI bounds.
shutdown_rounds() { if [ "$1" -ge 20 ]; then SHUTDOWN_ROUNDS=20; else SHUTDOWN_ROUNDS=6; fi; }

# client_run SECONDS PORT LOG OPTS...: one vsock_test client run against the server's
# control PORT, retried until that port is up (a round's server listens once the last
# one ended); output in LOG, status in $rc.
client_run() {
    t=$1 port=$2 out=$3; shift 3
    for try in 1 2 3 4 5 6 7 8 9 10; do
        timeout "$t" vsock_test --mode=client --control-host="$PEER_IP" --control-port="$port" --peer-cid="$PEER_CID" "$@" > "$out" 2>&1
        rc=$?
        grep -q 'Control socket connected' "$out" && break
        sleep 1
    done
}

# vsock_client ROUNDS: guest 1's side (ROUNDS full runs, then the diag test, the
# shutdown rounds, and ROUNDS runs of test 6).
vsock_client() {
    shutdown_rounds "$1"
    check module-loaded insmod /yasmin/yasmin.ko
    check barrier-loaded barrier loaded 120
    check barrier-server-up barrier server-up 120
    sleep 1
    r=0 ok=0
    while [ $r -lt "$1" ]; do
        r=$((r + 1))
        # shellcheck disable=SC2046
        client_run 600 1234 /tmp/vt.log $(skip_opts)
        if [ "$1" = 1 ]; then
            to_cases vsock_test < /tmp/vt.log
            check vsock_test-client-exit test "$rc" = 0
        else
            echo "# round $r: exit $rc, $(grep -c '\.\.\.ok$' /tmp/vt.log) tests ok"
            if [ "$rc" = 0 ]; then ok=$((ok + 1)); else sed "s/^/# round $r: /" /tmp/vt.log | grep -v '\.\.\.ok$'; fi
        fi
    done
    [ "$1" = 1 ] || check "vsock_test-$1-full-runs-in-a-row" test "$ok" = "$1"
    echo "$VSOCK_TEST_SKIP" | awk 'NF' | sed 's/^/# skipped: /'
    check barrier-diag barrier diag 120
    check barrier-diag-server-up barrier diag-server-up 120
    sleep 1
    timeout 300 vsock_diag_test --mode=client --control-host="$PEER_IP" --control-port=1235 --peer-cid="$PEER_CID" > /tmp/vd.log 2>&1
    rc=$?
    to_cases vsock_diag_test < /tmp/vd.log
    check vsock_diag_test-client-exit test "$rc" = 0
    # The peer's shutdown must reach the sender at once (it did not always: SHUT_RD travelled
    # on the control channel and lost the race against vsock_test's own TCP notification).
    check barrier-shutdown-rounds barrier shutdown-rounds 120
    pass=0 i=0
    while [ $i -lt $SHUTDOWN_ROUNDS ]; do
        i=$((i + 1))
        # shellcheck disable=SC2046
        client_run 120 1236 /tmp/vs.log $(only_shutdown_opts)
        if [ "$rc" = 0 ]; then pass=$((pass + 1)); else sed "s/^/# shutdown round $i: /" /tmp/vs.log; fi
    done
    check "shutdown-tests-$SHUTDOWN_ROUNDS-rounds-in-a-row" test "$pass" = "$SHUTDOWN_ROUNDS"
    # Test 6 on its own, once per round, with 1 MiB rings here (the sending side).
    check barrier-msg-bounds barrier msg-bounds 120
    check module-reloaded-with-1MiB-rings reload_for_msg_bounds
    check barrier-msg-bounds-server-up barrier msg-bounds-server-up 120
    sleep 1
    pass=0 i=0
    while [ $i -lt "$1" ]; do
        i=$((i + 1))
        # shellcheck disable=SC2046
        client_run 300 1237 /tmp/vb.log $(only_opts 6)
        if [ "$rc" = 0 ]; then pass=$((pass + 1)); else sed "s/^/# msg-bounds round $i: /" /tmp/vb.log; fi
    done
    [ "$1" != 1 ] || to_cases vsock_test < /tmp/vb.log
    check "seqpacket-msg-bounds-$1-runs" test "$pass" = "$1"
    check barrier-done barrier done 120
    check module-unloaded retry 10 rmmod yasmin
}

# vsock_server ROUNDS: guest 2's side.
vsock_server() {
    shutdown_rounds "$1"
    check module-loaded insmod /yasmin/yasmin.ko
    check barrier-loaded barrier loaded 120
    ( sleep 1; barrier server-up 120 ) &
    r=0 fails=0
    while [ $r -lt "$1" ]; do
        r=$((r + 1))
        # shellcheck disable=SC2046
        timeout 600 vsock_test --mode=server --control-port=1234 --peer-cid="$PEER_CID" $(skip_opts) > /tmp/vt.log 2>&1
        rc=$?
        if [ "$1" = 1 ] || [ "$rc" != 0 ]; then sed "s/^/# server round $r: /" /tmp/vt.log; fi
        [ "$rc" = 0 ] || fails=$((fails + 1))
    done
    check "vsock_test-server-$1-runs" test "$fails" = 0
    check barrier-diag barrier diag 120
    ( sleep 1; barrier diag-server-up 120 ) &
    timeout 300 vsock_diag_test --mode=server --control-port=1235 --peer-cid="$PEER_CID" > /tmp/vd.log 2>&1
    rc=$?
    sed 's/^/# server: /' /tmp/vd.log
    check vsock_diag_test-server-exit test "$rc" = 0
    check barrier-shutdown-rounds barrier shutdown-rounds 120
    fails=0 i=0
    while [ $i -lt $SHUTDOWN_ROUNDS ]; do
        i=$((i + 1))
        # shellcheck disable=SC2046
        timeout 120 vsock_test --mode=server --control-port=1236 --peer-cid="$PEER_CID" $(only_shutdown_opts) > /tmp/vs.log 2>&1 \
            || { fails=$((fails + 1)); sed "s/^/# server round $i: /" /tmp/vs.log; }
    done
    check "shutdown-server-$SHUTDOWN_ROUNDS-rounds-in-a-row" test "$fails" = 0
    check barrier-msg-bounds barrier msg-bounds 120
    ( sleep 1; barrier msg-bounds-server-up 120 ) &
    fails=0 i=0
    while [ $i -lt "$1" ]; do
        i=$((i + 1))
        # shellcheck disable=SC2046
        timeout 300 vsock_test --mode=server --control-port=1237 --peer-cid="$PEER_CID" $(only_opts 6) > /tmp/vb.log 2>&1 \
            || { fails=$((fails + 1)); sed "s/^/# msg-bounds server round $i: /" /tmp/vb.log; }
    done
    check "seqpacket-msg-bounds-server-$1-runs" test "$fails" = 0
    check barrier-done barrier done 120
    check module-unloaded retry 10 rmmod yasmin
}
