#!/bin/sh
# Scenario preload, dom0 part: a plain TCP service on the bridge address (not in the
# IPv4 map), for a preloaded guest client that must still reach it over TCP.
. /yasmin/lib/case.sh
timeout 300 socat TCP-LISTEN:5400,bind=198.18.0.1,fork,reuseaddr SYSTEM:'read l; echo "dom0 says $l"' &
pid=$!
sleep 1
xenstore-write "$SHARED_XS/dom0-serving" 1
xs_wait clients-done 300
kill $pid 2>/dev/null
case_ok served
