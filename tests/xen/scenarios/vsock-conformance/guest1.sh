# Scenario vsock-conformance, guest 1: the client side of vsock_test and vsock_diag_test.
# A case per passed test; a failing test stops vsock_test, so "client-exit" names the run.
. /yasmin/lib/case.sh
. /yasmin/lib/vsock_test.sh
vsock_client 1
