# Scenario vsock-conformance, guest 1: the client side of vsock_test and vsock_diag_test.
# A case per passed test; a failing test stops vsock_test, so "client-exit" names the run.
. /yasmin/lib/case.sh
. ./lib.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120
check barrier-server-up barrier server-up 120
sleep 1
# shellcheck disable=SC2046
timeout 600 vsock_test --mode=client --control-host="$PEER_IP" --control-port=1234 --peer-cid="$PEER_CID" $(skip_opts) > /tmp/vt.log 2>&1
rc=$?
to_cases vsock_test < /tmp/vt.log
check vsock_test-client-exit test "$rc" = 0
grep -v '^#' skip | sed 's/^/# skipped: /'
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
    for try in 1 2 3 4 5 6 7 8 9 10; do # until the server's control port is up
        # shellcheck disable=SC2046
        timeout 120 vsock_test --mode=client --control-host="$PEER_IP" --control-port=1236 --peer-cid="$PEER_CID" $(only_shutdown_opts) > /tmp/vs.log 2>&1
        rc=$?
        grep -q 'Control socket connected' /tmp/vs.log && break
        sleep 1
    done
    if [ "$rc" = 0 ]; then pass=$((pass + 1)); else sed "s/^/# shutdown round $i: /" /tmp/vs.log; fi
done
check "shutdown-tests-$SHUTDOWN_ROUNDS-rounds-in-a-row" test "$pass" = "$SHUTDOWN_ROUNDS"
check barrier-done barrier done 120
check module-unloaded retry 10 rmmod yasmin
