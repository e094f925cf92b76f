# Scenario vsock-conformance, guest 2: the server side of Linux's own vsock_test and
# vsock_diag_test (tools/testing/vsock of the 6.12 source), control connection over netfront.
. /yasmin/lib/case.sh
. ./lib.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-loaded barrier loaded 120
( sleep 1; barrier server-up 120 ) &
# shellcheck disable=SC2046
timeout 600 vsock_test --mode=server --control-port=1234 --peer-cid="$PEER_CID" $(skip_opts) > /tmp/vt.log 2>&1
rc=$?
sed 's/^/# server: /' /tmp/vt.log
check vsock_test-server-exit test "$rc" = 0
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
check barrier-done barrier done 120
check module-unloaded retry 10 rmmod yasmin
