#!/bin/sh
# Scenario lifecycle, dom0 part: saves guest 2 with `xl save` while connections run both
# ways, lets guest 1 check what the save left behind, restores it (a new domain: a new
# domid and CID), and hands the guests the new domid.
. /yasmin/lib/case.sh
. /yasmin/lib/guests.sh
g2=$SCENARIO-guest2
img=/tmp/$SCENARIO-guest2.save
check guest2-asks-for-save xs_wait save-me 600
# Guest 1 checks that the old incarnation's connections were reset and everything they
# held was released, before the new one exists.
checked_saved() { check guest1-checked-saved xs_wait checked-saved 300; }
BEFORE_RESTORE=checked_saved save_and_restore "$g2"

# A checkpoint (`xl save -c`): the guest is suspended, saved, and resumes as the same
# domain, i.e. a cancelled suspend on the guest's side. (Live migration of PV guests,
# `xl migrate`, cannot run in this bed: this Xen lacks the shadow paging PV log-dirty mode
# needs, "Failed to enable logdirty: 95", before the guest is even asked to suspend. On
# the guest's side a migration is a restore, tried above; PVH guests: scenario migrate.)
check guest2-asks-for-checkpoint xs_wait checkpoint-me 600
t0=$(date +%s%N)
check xl-save-checkpoint xl save -c "$g2" "$img"
echo "# xl save -c took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
rm -f "$img"
check checkpoint-same-domid test "$(xl domid "$g2")" = "$new"
xenstore-write "$SHARED_XS/checkpointed" 1

# Watcher restart (a crash, an upgrade): established connections keep moving, and a new
# pair (guest 2 reloads YASMIN) is set up through the new watcher.
check guest1-asks-watcher-restart xs_wait restart-watcher 600
pkill -x yasmin-watch
check watcher-stopped retry 10 sh -c '! pgrep -x yasmin-watch > /dev/null'
sleep 3
setsid nice -n -10 yasmin-watch --foreground --rescan 5 < /dev/null > /dev/null 2>> /results/yasmin-watch.log &
check watcher-running retry 10 pgrep -x yasmin-watch
xenstore-write "$SHARED_XS/watcher-restarted" 1

# A domain that went through `xl save -c` powers off but is not always destroyed by its
# toolstack monitor: once both guests printed YASMIN-DONE, whatever is left of the
# scenario's domains is shown and destroyed, so the scenario ends. Both reach their last
# barrier first (waited for by watch, not by polling); YASMIN-DONE follows within seconds.
xs_wait done/guest1 900 && xs_wait done/guest2 300
c=/var/log/xen/console
for _ in $(seq 120); do
    grep -aq '^YASMIN-DONE' "$c/guest-$SCENARIO-guest1.log" 2>/dev/null \
        && grep -aq '^YASMIN-DONE' "$c/guest-$g2.log" 2>/dev/null && break
    sleep 1
done
sleep 10
left=$(xl list 2>/dev/null | awk -v p="$SCENARIO-" 'NR > 1 && index($1, p) == 1 { print $1 " " $5 }')
[ -z "$left" ] || echo "# left after the guests finished (name, state): $left"
for d in $(echo "$left" | awk '{ print $1 }'); do xl destroy "$d"; done

