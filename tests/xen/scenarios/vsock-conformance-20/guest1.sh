# Scenario vsock-conformance-20 (not part of `make test`: about 15 minutes): vsock_test
# run in full 20 times in a row between the same two guests, then vsock_diag_test, the
# 20 shutdown rounds of `vsock-conformance`, and 20 rounds of test 6 (msg bounds, with
# 1 MiB rings). Guest 1: the client side.
. /yasmin/lib/case.sh
. /yasmin/lib/vsock_test.sh
vsock_client 20
