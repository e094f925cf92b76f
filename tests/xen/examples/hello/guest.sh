# Example custom workload, run in both guests by `tests/xen/run custom tests/xen/examples/hello`.
# The runner sets SELF_CID PEER_CID SELF_DOMID PEER_DOMID SELF_IP PEER_IP; case.sh has helpers.
. /yasmin/lib/case.sh
echo "I am $YASMIN_ROLE: CID $SELF_CID (domid $SELF_DOMID, $SELF_IP); peer CID $PEER_CID (domid $PEER_DOMID, $PEER_IP)"
insmod /yasmin/yasmin.ko && dmesg | grep 'yasmin:'
retry 30 ping -c 3 "$PEER_IP" || exit 1
barrier hello-done 60   # stay up until the peer has pinged us too
