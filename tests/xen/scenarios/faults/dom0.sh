#!/bin/bash
# Scenario faults, dom0 part: destroys guest 2 while guest 1 transfers, and times guest
# 1's reaction from Xen's release of the domain: the module resets the pair's sockets and
# withdraws its offer in the same step (PROTOCOL.md), so the offer's removal times it.
. /yasmin/lib/case.sh
d1=$GUEST1_DOMID d2=$GUEST2_DOMID
Y1=/local/domain/$d1/data/yasmin
for _ in $(seq 6000); do xenstore-exists "$SHARED_XS/transfer-running" && break; sleep 0.1; done
xenstore-exists "$SHARED_XS/transfer-running" || { case_fail transfer-started; exit 0; }
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
rm -f /tmp/faults-released
( xenstore-watch -n 2 @releaseDomain >/dev/null && date +%s%N > /tmp/faults-released ) &
sleep 0.5
t0=$(date +%s%N)
xl destroy "$SCENARIO-guest2"
withdrawn=
while [ "$(ms)" -lt 8000 ] && [ -z "$withdrawn" ]; do
    xenstore-exists "$Y1/offer/$d2" || withdrawn=$(ms)
    sleep 0.05
done
released=$(( ($(cat /tmp/faults-released 2>/dev/null || echo 0) - t0) / 1000000 ))
reaction=$(( ${withdrawn:-999999} - released ))
info="domain released at ${released} ms, sockets reset and offer withdrawn at ${withdrawn:-?} ms (${reaction} ms after the release)"
echo "YASMIN-INFO $info"
if [ -n "$withdrawn" ] && [ "$released" -gt 0 ] && [ "$reaction" -le 2000 ]; then
    case_ok "sockets-reset-within-2s-of-peer-death # $info"
else
    case_fail sockets-reset-within-2s-of-peer-death "$info"
fi
