# Scenario migrate, guest 1: the peer that stays. A transfer in each direction runs with
# guest 2 when dom0 live-migrates it: both end at once with a reset (no hang). Then guest
# 2 has a new domid and CID: its listener (kept across the migration) and new connections
# both ways work, a preloaded TCP client to guest 2's unchanged IP lands on YASMIN at the
# new CID, the old CID is refused, and once guest 2 unloads YASMIN nothing of it is left
# here.
. /yasmin/lib/case.sh
. /yasmin/lib/transfers.sh
setup 7001 "vsock:$PEER_CID:7002" 1
check guest2-migrated xs_wait migrated 900
transfer_reset out transfer-to-guest2
peer_moved migrated-serving
# A TCP client under the preload library, to guest 2's IP (the same after the migration):
# the watcher's IPv4 map routes it to the new CID, over YASMIN, to guest 2's preloaded
# listener from before the migration.
check ipmap-updated xs_wait ipmap-updated 120
head -c 200000 /dev/urandom > /tmp/pre.in
LD_PRELOAD=/yasmin/lib/libyasmin_preload.so YASMIN_PRELOAD_LOG=1 timeout 100 socat -t 60 - "TCP:$PEER_IP:7004" < /tmp/pre.in > /tmp/pre.out 2> /tmp/pre.err
check preloaded-tcp-after-migration test $? = 0
sed 's/^/# preload: /' /tmp/pre.err | head -3
check preloaded-tcp-echo-intact cmp -s /tmp/pre.in /tmp/pre.out
check preloaded-tcp-went-to-new-cid grep -q "vsock CID $new_cid port" /tmp/pre.err
check old-cid-refused sh -c "! timeout 30 yasmin-stream-check latency --connect vsock:$old_cid:7002 --count 1 --max-ms 30000"
check barrier-done barrier done 300
check no-connection-left-at-end retry 30 stat_is connections_live = 0
# Guest 2 unloads YASMIN: its channel with us goes, and with it every page and port.
check barrier-guest2-unloaded barrier guest2-unloaded 300
baseline_zero
baseline_check 30
kill $srv; wait $srv
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
