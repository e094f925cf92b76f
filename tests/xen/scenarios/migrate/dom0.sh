#!/bin/sh
# Scenario migrate, dom0 part: live-migrates guest 2 to this same host with `xl migrate`
# while connections run both ways, and hands the guests the new domid. Local migration:
# an empty ssh command makes xl run the receiver (`xl migrate-receive`) as a local
# command. (PV guests need Xen's shadow paging for log-dirty mode: tools/build-xen.)
. /yasmin/lib/case.sh
g2=$SCENARIO-guest2
ip2=$(xenstore-read "/local/domain/$GUEST2_DOMID/yasmin-test/self-ip")
ipnode=/local/domain/0/data/yasmin-watch/ipmap/$(echo "$ip2" | tr . -)
check guest2-asks-for-migration xs_wait migrate-me 600
# The new domain may read and write the shared directory as soon as it runs: the
# migrated guest's script goes on where it stopped.
t0=$(date +%s%N)
check xl-migrate xl migrate -s "" "$g2" "xl migrate-receive"
echo "# xl migrate took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
new=$(xl domid "$g2")
check migrated-has-new-domid test -n "$new" -a "$new" != "$GUEST2_DOMID"
check old-domain-gone sh -c "! xl domname $GUEST2_DOMID >/dev/null 2>&1"
xenstore-chmod -r "$SHARED_XS" n0 "b$GUEST1_DOMID" "b$new"
xenstore-write "$SHARED_XS/new-domid" "$new"
xenstore-write "$SHARED_XS/migrated" 1
check ipmap-follows-new-domid retry 60 sh -c "[ \"\$(xenstore-read $ipnode 2>/dev/null)\" = $new ]"
echo "# ipmap $ip2 -> $(xenstore-read "$ipnode" 2>/dev/null)"
xenstore-write "$SHARED_XS/ipmap-updated" 1
