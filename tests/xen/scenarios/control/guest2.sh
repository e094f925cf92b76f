# Scenario control, guest 2 (the higher domid: it requests, maps the offer, says HELLO),
# then reloads its module; dom0.sh destroys it afterwards.
. /yasmin/lib/case.sh
Y=/local/domain/$SELF_DOMID/data/yasmin
d1=$PEER_DOMID
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko
check area-ready retry 30 grep -q "generation [1-9]" /sys/kernel/debug/yasmin/pairs
check barrier-loaded barrier loaded 120
check connect-requested pair_connect "$d1"
check channel-up retry 30 pair_state_is "$d1" connected
check role-acceptor test "$(pair_field "$d1" role)" = acceptor
check request-withdrawn-when-up sh -c "! yasmin-xs read $Y/req/$d1 2>/dev/null"
check hello-exchanged test "$(pair_field "$d1" msgs_in)" -ge 1
check self-as-peer-refused eval '! pair_connect $SELF_DOMID 2>/dev/null' 

check forgeries-checked xs_wait checked-forgeries 480
check channel-survived-forgeries pair_state_is "$d1" connected

# Module reload: GOODBYE on unload, a new request and a new channel after.
check module-unloaded rmmod yasmin
check module-reloaded insmod /yasmin/yasmin.ko
check area-ready-again retry 30 grep -q "generation [1-9]" /sys/kernel/debug/yasmin/pairs
check reconnect-requested pair_connect "$d1"
check channel-up-after-reload retry 30 pair_state_is "$d1" connected
xs_signal reloaded-guest2
kernel_log_since_mark | grep yasmin | sed 's/^/# /'
sleep 300   # dom0.sh destroys this guest
