# Scenario burst, guest 2: serves the bursts (128-page and 1-page rings); afterwards
# every connection is gone and every resource is back to where it was.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-stream-check serve --listen vsock:6800 > /tmp/serve.log 2>&1 &
pids=$!
yasmin-stream-check serve --listen vsock:6801 --buffer-size 4096 > /tmp/serve1.log 2>&1 &
pids="$pids $!"
sleep 1
check barrier-serving barrier serving 120
retry 60 pair_state_is "$PEER_DOMID" connected
baseline_take
check barrier-bursts-done barrier bursts-done 900
check connections-back-to-zero retry 30 stat_is connections_live = 0
baseline_check 30
sort /tmp/serve.log /tmp/serve1.log | uniq -c | sort -rn | head -8 | sed 's/^/# server: /'
kill $pids 2>/dev/null
check module-unloaded retry 10 rmmod yasmin
