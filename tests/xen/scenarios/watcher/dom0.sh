#!/bin/bash
# Scenario watcher, dom0 part: once both guests made contact, destroy guest 2 and check
# that within 2 s the watcher told guest 1 (gone/<d2>) and cleaned guest 2's records.
. /yasmin/lib/case.sh
d1=$GUEST1_DOMID d2=$GUEST2_DOMID
xs_wait contact/guest1 120 && xs_wait contact/guest2 120
sleep 1
xl destroy watcher-guest2
t0=$(date +%s%N)
noticed=
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ]; do
    xenstore-exists "/local/domain/$d1/data/yasmin/gone/$d2" && { noticed=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
    sleep 0.05
done
if [ -n "$noticed" ]; then case_ok "death-relayed-within-2s # ${noticed} ms"; else case_fail death-relayed-within-2s; fi
sleep 1
check dead-domain-record-removed sh -c "! xenstore-exists /local/domain/0/data/yasmin-watch/dom/$d2"
check dead-domain-notify-cleaned sh -c "! xenstore-exists /local/domain/$d1/data/yasmin/notify/$d2"
