# Scenario lifecycle, guest 2: saved with `xl save` and restored by dom0 while a
# transfer runs each way with guest 1. After the restore: its own transfer ended with
# ECONNRESET, it has a new domid and its CID follows (ioctl, getsockname), its listener
# still serves, and new connections work both ways. Then a checkpoint (`xl save -c`):
# the same domain resumes (a cancelled suspend), with the same reset and recovery.
. /yasmin/lib/case.sh
. /yasmin/lib/transfers.sh
setup 7002 "vsock:$PEER_CID:7001" 3
# A preloaded TCP echo server (socat: a dynamic program, as the library needs; it holds a
# TCP and a vsock listener), kept across the save.
LD_PRELOAD=/yasmin/lib/libyasmin_preload.so socat TCP-LISTEN:7004,fork,reuseaddr EXEC:cat > /tmp/pserve.log 2>&1 &
psrv=$!
sleep 2
# dom0 saves and restores this domain now; this script is frozen meanwhile.
xs_signal save-me
back_as_new_domain restore
exists() { yasmin-xs read "$SHARED_XS/$1" > /dev/null 2>&1; }
check restored retry 900 exists restored
check new-domid test "$new" != "$SELF_DOMID"
check suspend-reset-logged sh -c "dmesg | grep -q 'yasmin: suspending: [0-9]* connections reset'"
check restore-logged sh -c "dmesg | grep -q 'yasmin: restored: domid $new vsock CID $cid'"
transfer_reset out own-transfer
serve_again restored-serving
# A checkpoint (`xl save -c`): a cancelled suspend for us, the same domain afterwards.
transfer_start k "vsock:$PEER_CID:7001" 8
transfers_up checkpoint
sleep 2
xs_signal checkpoint-me
check checkpointed retry 900 exists checkpointed
check checkpoint-same-domid test "$(yasmin-xs domid)" = "$new"
check cancelled-suspend-logged sh -c "dmesg | grep -q 'yasmin: suspend cancelled: domid $new vsock CID $cid'"
transfer_reset k own-transfer-across-checkpoint
check checkpoint-local-cid-ioctl sh -c "yasmin-stream-check local-cid | grep -qx ioctl_cid=$cid"
check barrier-checkpoint-serving barrier checkpoint-serving 300
check after-checkpoint-connection-to-guest1 yasmin-stream-check duplex --connect "vsock:$PEER_CID:7001" --bytes 16777216 --seed 9

# Guest 1's transfer across the watcher restart, then a reload: a new pair through the
# restarted watcher.
check guest1-transfer-done xs_wait transfer-done 600
check no-connection-left retry 30 stat_is connections_live = 0
kill $srv $psrv; wait $srv $psrv
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
check module-reloaded insmod /yasmin/yasmin.ko
serve_start 7002
sleep 1
xs_signal reloaded
# Wedged towards guest 1 (test hook): its channel with us is no longer read or answered.
check guest1-asks-wedge xs_wait wedge-me 300
check wedge-hook sh -c "echo 'wedge $PEER_DOMID' > /sys/kernel/debug/yasmin/adversary"
xs_signal wedged
check guest1-checked-wedge xs_wait wedge-checked 300
check barrier-done barrier done 300
kill $srv; wait $srv
check no-connection-left-at-end retry 30 stat_is connections_live = 0
check module-unloaded-at-end retry 10 rmmod yasmin
check no-irqs-at-end irqs_are 0
