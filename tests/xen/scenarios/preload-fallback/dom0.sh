#!/bin/sh
# Scenario preload-fallback, dom0 part: restarts guest 2 as a new domain (`xl save`, then
# `xl restore`: a new domid, so a new CID) when it asks, and tells guest 1 when the
# watcher's IPv4 map has followed.
. /yasmin/lib/case.sh
. /yasmin/lib/guests.sh
check guest2-asks-for-save xs_wait save-me 900
save_and_restore "$SCENARIO-guest2"
