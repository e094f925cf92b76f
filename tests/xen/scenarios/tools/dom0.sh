#!/bin/sh
# Scenario tools, dom0 part: dom0 as a vsock endpoint. It loads yasmin.ko (CID 2, the
# vsock host) and receives guest 1's file with socat over YASMIN.
. /yasmin/lib/case.sh
check insmod insmod /yasmin/yasmin.ko
check area-ready retry 30 sh -c "dmesg | grep -q 'yasmin: XenStore area ready'"
rm -f /tmp/dom0-recv.bin
# Guest 1 connects late in its script: 200 s were not enough in the slowest hour (2026-12-07).
timeout 600 socat -u VSOCK-LISTEN:5100 CREATE:/tmp/dom0-recv.bin &
pid=$!
sleep 1
xenstore-write "$SHARED_XS/dom0-listening" 1
wait $pid
check socat-listen-receive test $? = 0
xs_wait sent-to-dom0 20
check file-from-guest-intact test "$(sha256sum < /tmp/dom0-recv.bin | cut -d' ' -f1)" = "$(xenstore-read "$SHARED_XS/sum1")"
awk '{ print "# stats: " $0 }' /sys/kernel/debug/yasmin/stats 2>/dev/null
check bytes-received-over-yasmin stat_is bytes_received -ge 4194304
check rmmod retry 20 rmmod yasmin
dmesg | grep yasmin | tail -20 | sed 's/^/# /'
