# Scenario control, guest 3 (spawned by dom0.sh): a third party forging entries for the
# pair guest1-guest2. It may write only its own area; what it writes there must be ignored.
. /yasmin/lib/case.sh
xs=yasmin-xs
Y=/local/domain/$SELF_DOMID/data/yasmin
d1=$PEER_DOMID
P1=/local/domain/$d1/data/yasmin
check area-prepared sh -c "$xs wait $Y/gen --timeout 30 >/dev/null"
# Forgeries only once guest 1 offers its channel to guest 2 (what they must not touch).
check guest1-channel-up xs_wait up-guest1 300
gen=$($xs read $Y/gen)
check forge-offer-in-guest1-area-refused sh -c "! $xs write $P1/offer/$SELF_DOMID '1 1 0 8 9' 2>/dev/null"
check forge-notify-for-guest1-refused sh -c "! $xs write $P1/notify/$SELF_DOMID '$gen' 2>/dev/null"
check forge-gone-for-guest1-refused sh -c "! $xs write $P1/gone/$SELF_DOMID 1 2>/dev/null"
check guest1-offers-unreadable sh -c "! $xs ls $P1/offer 2>/dev/null"
# In its own area: a request claiming another incarnation's generation (dom0 vouches for
# ours), then garbage, then an offer although the lower domid offers: all ignored.
check forged-generation-request sh -c "$xs write $Y/req/$d1 '1 $((gen + 7)) 0'"
sleep 2
check malformed-request sh -c "$xs write $Y/req/$d1 'not a request'"
sleep 2
check offer-from-higher-domid sh -c "$xs write $Y/offer/$d1 '1 $gen 0 8 9'"
sleep 2
check watcher-made-request-peer-readable retry 20 sh -c "$xs get-perms $Y/req/$d1 | tr '\n' ' ' | grep -qx 'n$SELF_DOMID r$d1 '"
xs_signal forged-done
