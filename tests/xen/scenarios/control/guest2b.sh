# Scenario control, guest 2b (spawned by dom0.sh after guest 2 was destroyed): a
# restarted peer, a new domain, gets a fresh channel to guest 1.
. /yasmin/lib/case.sh
d1=$PEER_DOMID
check module-loaded insmod /yasmin/yasmin.ko
check area-ready retry 30 grep -q "generation [1-9]" /sys/kernel/debug/yasmin/pairs
check connect-requested pair_connect "$d1"
check channel-up retry 30 pair_state_is "$d1" connected
xs_signal up-guest2b
check restart-checked xs_wait checked-restart 120
check module-unloaded rmmod yasmin
xs_signal unloaded-guest2b
