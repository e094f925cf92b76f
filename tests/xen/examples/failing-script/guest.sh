# A deliberately failing custom workload: the runner must report "not ok" for it.
echo "guest $YASMIN_ROLE (CID $SELF_CID) failing on purpose"
exit 3
