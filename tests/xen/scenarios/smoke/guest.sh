# Scenario smoke: the Rust-enabled kernel boots, yasmin.ko loads with the documented
# CID, its parameters are visible, the guests reach each other over netfront, and the
# module unloads. Runs in both guests.
. /yasmin/lib/case.sh

check rust-kernel sh -c 'uname -r | grep -q "^6\.12" && zcat /proc/config.gz | grep -qx CONFIG_RUST=y'

# A bad parameter is refused with a clear error and leaves nothing loaded.
mark_kernel_log
check rejects-bad-ring-pages sh -c '! insmod /yasmin/yasmin.ko ring_pages=3 2>/dev/null && ! grep -q "^yasmin " /proc/modules'
check bad-param-logged sh -c 'dmesg | grep -q "ring_pages=3 invalid"'
check rejects-bad-max-setups sh -c '! insmod /yasmin/yasmin.ko max_setups=0 2>/dev/null && ! grep -q "^yasmin " /proc/modules && dmesg | grep -q "max_setups=0 invalid"'

mark_kernel_log
check insmod insmod /yasmin/yasmin.ko
kernel_log_since_mark | grep yasmin
check cid-mapping sh -c "dmesg | grep -q 'yasmin: loaded: domid $SELF_DOMID vsock CID $SELF_CID '"
check ring-selftest sh -c 'dmesg | grep -q "ring self-test ok"'
check param-ring-pages sh -c 'test "$(cat /sys/module/yasmin/parameters/ring_pages)" = 128'

check ping-peer retry 60 ping -c 1 -W 2 "$PEER_IP"
# Keep both guests up until each has pinged the other.
check barrier-pinged barrier pinged 120

check rmmod rmmod yasmin
check unload-logged sh -c "dmesg | grep -q 'yasmin: unloaded (CID $SELF_CID)'"
check module-gone sh -c '! grep -q "^yasmin " /proc/modules'

# The Debian programs later scenarios use run in the busybox guest.
check guest-programs sh -c 'socat -V >/dev/null && iperf3 -v >/dev/null && ncat --version >/dev/null 2>&1 && curl --version >/dev/null'
