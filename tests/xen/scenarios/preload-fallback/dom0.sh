#!/bin/sh
# Scenario preload-fallback, dom0 part: restarts guest 2 as a new domain (`xl save`, then
# `xl restore`: a new domid, so a new CID) when it asks, and tells guest 1 when the
# watcher's IPv4 map has followed.
. /yasmin/lib/case.sh
g2=$SCENARIO-guest2
img=/tmp/$SCENARIO-guest2.save
ip2=$(xenstore-read "/local/domain/$GUEST2_DOMID/yasmin-test/self-ip")
ipnode=/local/domain/0/data/yasmin-watch/ipmap/$(echo "$ip2" | tr . -)
wait_node() { for _ in $(seq "$2"); do xenstore-exists "$SHARED_XS/$1" && return 0; sleep 1; done; return 1; }
check guest2-asks-for-save wait_node save-me 900
check xl-save xl save "$g2" "$img"
xenstore-write "$SHARED_XS/saved" 1
check xl-restore xl restore "$img"
rm -f "$img"
new=$(xl domid "$g2")
check restored-has-new-domid test -n "$new" -a "$new" != "$GUEST2_DOMID"
xenstore-chmod -r "$SHARED_XS" n0 "b$GUEST1_DOMID" "b$new"
xenstore-write "$SHARED_XS/new-domid" "$new"
xenstore-write "$SHARED_XS/restored" 1
check ipmap-follows-new-domid retry 60 sh -c "[ \"\$(xenstore-read $ipnode 2>/dev/null)\" = $new ]"
xenstore-write "$SHARED_XS/ipmap-updated" 1
