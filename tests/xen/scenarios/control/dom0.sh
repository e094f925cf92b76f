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

# The forger boots alongside guests 1 and 2 (a boot takes minutes in the machine's slow
# hours); its script waits for guest 1's channel before it forges.
d3=$(guest_spawn "$SCENARIO" guest3 "$d1" "$ip1") && xenstore-write "$SHARED_XS/guest3-domid" "$d3"
case_result $? spawn-forger
check guest1-up xs_wait up-guest1 180 || exit 0
check guest1-ready-for-destroy xs_wait ready-for-destroy 400 || exit 0

# Guest 1's module withdrawing its offer/<d2> shows it noticed (PROTOCOL.md: the survivor
# resets the pair and removes its own node); the watcher removes Y(d2) (checked below).
destroy_and_time "$SCENARIO-guest2" "$Y1/offer/$d2" guest1-noticed-death-within-2s
sleep 1
check dead-guest-area-removed sh -c "! xenstore-exists /local/domain/$d2/data/yasmin"
check dead-guest-record-removed sh -c "! xenstore-exists /local/domain/0/data/yasmin-watch/dom/$d2"
check survivor-notify-cleaned sh -c "! xenstore-exists $Y1/notify/$d2"
check survivor-gone-notice-consumed sh -c "! xenstore-exists $Y1/gone/$d2"
xenstore-write "$SHARED_XS/destroyed-guest2" 1

d2b=$(guest_spawn "$SCENARIO" guest2b "$d1" "$ip1") && xenstore-write "$SHARED_XS/guest2b-domid" "$d2b"
case_result $? spawn-restarted-guest2
