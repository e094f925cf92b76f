# Scenario migrate, guest 1 (PV): the peer that stays. A transfer in each direction runs
# with guest 2 (PVH) when dom0 live-migrates it: both end at once with a reset (no hang).
# Then guest 2 has a new domid and CID: its listener (kept across the migration) and new
# connections both ways work, the old CID is refused, and once guest 2 unloads YASMIN
# nothing of it is left here.
. /yasmin/lib/case.sh
. /yasmin/lib/transfers.sh
setup 7001 "vsock:$PEER_CID:7002" 1
check guest2-migrated xs_wait migrated 900
transfer_reset out transfer-to-guest2
peer_moved migrated-serving
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
