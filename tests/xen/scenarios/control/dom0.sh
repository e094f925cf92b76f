#!/bin/bash
# Scenario control, dom0 part: spawns the forging third guest, destroys guest 2 and times
# how fast guest 1's module reacts (it consumes gone/<d2> and withdraws offer/<d2>),
# checks the dead guest's XenStore area is cleaned, then starts a restarted guest 2.
. /yasmin/lib/case.sh
. /yasmin/lib/guests.sh
export PATH=$PATH:/yasmin/bin
d1=$GUEST1_DOMID d2=$GUEST2_DOMID
ip1=$(xenstore-read "/local/domain/$d1/yasmin-test/self-ip")
Y1=/local/domain/$d1/data/yasmin
wait_key() { for _ in $(seq $((${2:-120} * 10))); do xenstore-exists "$SHARED_XS/$1" && return 0; sleep 0.1; done; return 1; }

check guest1-up wait_key up-guest1 180 || exit 0
d3=$(guest_spawn "$SCENARIO" guest3 "$d1" "$ip1") && xenstore-write "$SHARED_XS/guest3-domid" "$d3"
case_result $? spawn-forger
check guest1-ready-for-destroy wait_key ready-for-destroy 400 || exit 0

# The clock starts when Xen releases the domain (@releaseDomain; `xl destroy` spends
# seconds under TCG tearing devices down before that). Guest 1's module shows it noticed
# by withdrawing its offer/<d2> (PROTOCOL.md: the survivor resets the pair and removes
# its own node); the watcher removes Y(d2).
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
rm -f /tmp/control-released
( xenstore-watch -n 2 @releaseDomain >/dev/null && date +%s%N > /tmp/control-released ) &
sleep 0.5   # the watch is registered (it fires once at once)
t0=$(date +%s%N)
xl destroy "$SCENARIO-guest2"
destroyed=$(ms) withdrawn= cleaned=
while [ "$(ms)" -lt 8000 ] && { [ -z "$withdrawn" ] || [ -z "$cleaned" ]; }; do
    [ -n "$withdrawn" ] || xenstore-exists "$Y1/offer/$d2" || withdrawn=$(ms)
    [ -n "$cleaned" ] || xenstore-exists "/local/domain/$d2/data/yasmin" || cleaned=$(ms)
    sleep 0.05
done
released=$(( ($(cat /tmp/control-released 2>/dev/null || echo 0) - t0) / 1000000 ))
reaction=$(( ${withdrawn:-999999} - released ))
info="domain released at ${released} ms, xl destroy returned at ${destroyed} ms, offer withdrawn at ${withdrawn:-?} ms (${reaction} ms after the release), area removed at ${cleaned:-?} ms"
echo "YASMIN-INFO $info"
if [ -n "$withdrawn" ] && [ "$released" -gt 0 ] && [ "$reaction" -le 2000 ]; then
    case_ok "guest1-noticed-death-within-2s # $info"
else
    case_fail guest1-noticed-death-within-2s "$info"
fi
sleep 1
check dead-guest-area-removed sh -c "! xenstore-exists /local/domain/$d2/data/yasmin"
check dead-guest-record-removed sh -c "! xenstore-exists /local/domain/0/data/yasmin-watch/dom/$d2"
check survivor-notify-cleaned sh -c "! xenstore-exists $Y1/notify/$d2"
check survivor-gone-notice-consumed sh -c "! xenstore-exists $Y1/gone/$d2"
xenstore-write "$SHARED_XS/destroyed-guest2" 1

d2b=$(guest_spawn "$SCENARIO" guest2b "$d1" "$ip1") && xenstore-write "$SHARED_XS/guest2b-domid" "$d2b"
case_result $? spawn-restarted-guest2
