# Scenario vsock-conformance, guest 2: the server side of Linux's own vsock_test and
# vsock_diag_test (tools/testing/vsock of the 6.12 source), control connection over netfront.
. /yasmin/lib/case.sh
. /yasmin/lib/vsock_test.sh
vsock_server 1
