# Scenario migrate, guest 2: live-migrated by dom0 (`xl migrate` to the same host)
# while a transfer runs each way with guest 1. Afterwards: its own transfer ended with a
# reset, it has a new domid and its CID follows (ioctl, getsockname), its listener still
# serves, and new connections work both ways.
. /yasmin/lib/case.sh
. /yasmin/lib/transfers.sh
setup 7002 "vsock:$PEER_CID:7001" 3
# A preloaded TCP echo server (socat holds a TCP and a vsock listener), kept across the
# migration.
LD_PRELOAD=/yasmin/lib/libyasmin_preload.so socat TCP-LISTEN:7004,fork,reuseaddr EXEC:cat > /tmp/pserve.log 2>&1 &
psrv=$!
sleep 2
xs_signal migrate-me
back_as_new_domain migration
check suspend-reset-logged sh -c "dmesg | grep -q 'yasmin: suspending: [0-9]* connections reset'"
check restore-logged sh -c "dmesg | grep -q 'yasmin: restored: domid $new vsock CID $cid'"
transfer_reset out own-transfer
check migrated retry 300 yasmin-xs read "$SHARED_XS/migrated"
serve_again migrated-serving
check barrier-done barrier done 300
kill $srv $psrv; wait $srv $psrv
check no-connection-left-at-end retry 30 stat_is connections_live = 0
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
check barrier-guest2-unloaded barrier guest2-unloaded 300
