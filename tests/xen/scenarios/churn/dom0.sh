#!/bin/sh
# Scenario churn, dom0 part: dom0 (CID 2) as a long-lived endpoint that hears from 320
# guest incarnations, forged as notices from domids that do not exist (creating 320
# guests would take hours under emulation; to the module a notice is how a new peer
# arrives). The slot table stays bounded (256): idle peers' slots are recycled, no
# notice is dropped, and the two real guests still connect afterwards.
. /yasmin/lib/case.sh
Y0=/local/domain/0/data/yasmin
pairs=/sys/kernel/debug/yasmin/pairs
check insmod insmod /yasmin/yasmin.ko
check area-ready retry 30 sh -c "dmesg | grep -q 'yasmin: XenStore area ready'"
header() { head -1 $pairs | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
# Pairs not idle (awk counts: coreutils' wc dies of SIGILL under this emulated CPU).
busy() { awk 'NR > 2 && $3 != "idle" { n++ } END { print n + 0 }' $pairs; }
none_busy() { [ "$(busy)" -eq 0 ]; }
d=1000
for batch in 1 2 3 4 5; do
    # One xenstore-write for the whole batch (path value path value ...).
    args=
    for _ in $(seq 64); do
        args="$args $Y0/notify/$d $((d + 7))"
        d=$((d + 1))
    done
    # shellcheck disable=SC2086
    xenstore-write $args
    # Each forged peer's handshake fails (it has no area) and its pair goes idle.
    retry 120 none_busy
    echo "# batch $batch: peers $(header peers) dropped_notices $(header dropped_notices) recycled_slots $(header recycled_slots) busy $(busy)"
done
check slot-table-bounded test "$(header peers)" -le 256
check no-notice-dropped test "$(header dropped_notices)" = 0
check idle-slots-recycled test "$(header recycled_slots)" -ge 64
yasmin-stream-check serve --listen vsock:6900 > /tmp/churn-serve.log 2>&1 &
pid=$!
sleep 1
xenstore-write "$SHARED_XS/churned" 1
xs_wait guests-done/guest1 300 && xs_wait guests-done/guest2 300
kill $pid 2>/dev/null; wait $pid 2>/dev/null
check real-guests-served sh -c "xenstore-exists $SHARED_XS/guests-done/guest1 && xenstore-exists $SHARED_XS/guests-done/guest2"
awk 'NR == 1 { print "# " $0 }' $pairs
# Both guests have unloaded: their pairs said goodbye, dom0's control pages are back.
check grants-back-to-baseline retry 20 stat_is grant_pages = 0
check rmmod retry 20 rmmod yasmin
