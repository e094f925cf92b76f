# Scenario vsock-conformance-20, guest 2: the server side (see guest1.sh).
. /yasmin/lib/case.sh
. /yasmin/lib/vsock_test.sh
vsock_server 20
