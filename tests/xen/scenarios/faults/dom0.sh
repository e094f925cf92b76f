#!/bin/bash
# Scenario faults, dom0 part: destroys guest 2 while guest 1 transfers, and times guest
# 1's reaction from Xen's release of the domain: the module resets the pair's sockets and
# withdraws its offer in the same step (PROTOCOL.md), so the offer's removal times it.
. /yasmin/lib/case.sh
. /yasmin/lib/guests.sh
d1=$GUEST1_DOMID d2=$GUEST2_DOMID
Y1=/local/domain/$d1/data/yasmin
xs_wait transfer-running 600 || { case_fail transfer-started; exit 0; }
destroy_and_time "$SCENARIO-guest2" "$Y1/offer/$d2" sockets-reset-within-2s-of-peer-death
