# Scenario watcher: the control-domain watcher (yasmin-watch, running in dom0) against a
# real xenstored: each guest's YASMIN area is prepared and owned by the guest alone, a
# guest cannot forge entries in another's area, the IPv4 map lists the peer, an offer
# (lower domid) / request (higher domid) is relayed as a notify to the peer, the peer can
# read the offer and nobody else's, and the death of guest 2 reaches guest 1 as gone/<d>.
. /yasmin/lib/case.sh
xs=yasmin-xs
Y=/local/domain/$SELF_DOMID/data/yasmin
PY=/local/domain/$PEER_DOMID/data/yasmin

check area-prepared sh -c "$xs wait $Y/gen --timeout 30 >/dev/null"
gen=$($xs read $Y/gen)
check area-owned-by-self sh -c "$xs get-perms $Y | grep -qx 'n$SELF_DOMID'"
check peer-area-unreadable sh -c "! $xs read $PY/gen 2>/dev/null"
check forge-in-peer-area-refused sh -c "! $xs write $PY/offer/$SELF_DOMID '1 1 0 8 9' 2>/dev/null"
check forge-notify-for-peer-refused sh -c "! $xs write $PY/notify/$SELF_DOMID 1 2>/dev/null"
# Map nodes are named a-b-c-d: xenstored allows no dots in paths (PROTOCOL.md).
check ipmap-lists-peer sh -c "test \"\$($xs wait /local/domain/0/data/yasmin-watch/ipmap/$(echo "$PEER_IP" | tr . -) --timeout 30)\" = $PEER_DOMID"

# Rendezvous: the lower domid offers, the higher one requests (PROTOCOL.md 1.3).
if [ "$SELF_DOMID" -lt "$PEER_DOMID" ]; then
    node=$Y/offer/$PEER_DOMID value="1 $gen 0 8 9"
else
    node=$Y/req/$PEER_DOMID value="1 $gen 0"
fi
# The peer has not said `up` yet (no module): not relayed, we hear "gone 0" at once.
check publish-before-peer-up sh -c "$xs write $node '$value'"
check refused-while-peer-not-up sh -c "test \"\$($xs wait $Y/gone/$PEER_DOMID --timeout 30)\" = 0"
$xs rm "$Y/gone/$PEER_DOMID"
check barrier-refused barrier refused 120
# Now both play a loaded module: `up` holds our generation, and the publication is relayed.
check up-written $xs write "$Y/up" "$gen"
check barrier-up barrier up 120
check publish sh -c "$xs write $node '$value' && $xs set-perms $node n$SELF_DOMID r$PEER_DOMID"
check notify-relayed sh -c "$xs wait $Y/notify/$PEER_DOMID --timeout 30 >/dev/null"
if [ "$SELF_DOMID" -gt "$PEER_DOMID" ]; then
    check peer-offer-readable sh -c "$xs read $PY/offer/$SELF_DOMID | grep -q '^1 '"
fi
check barrier-contact barrier contact 120

if [ "$YASMIN_ROLE" = guest1 ]; then
    # dom0.sh destroys guest 2 now; the watcher must tell us.
    check peer-death-relayed sh -c "$xs wait $Y/gone/$PEER_DOMID --timeout 30 >/dev/null"
else
    sleep 120   # destroyed by dom0.sh before this ends
fi
