#!/bin/sh
# Scenario adversary, dom0 part: the honest third party (CID 2) that the victim keeps
# talking to while guest 2 attacks it.
. /yasmin/lib/case.sh
check insmod insmod /yasmin/yasmin.ko
check area-ready retry 30 sh -c "dmesg | grep -q 'yasmin: XenStore area ready'"
yasmin-stream-check serve --listen vsock:6300 > /tmp/adv-serve.log 2>&1 &
pid=$!
sleep 1
xenstore-write "$SHARED_XS/dom0-listening" 1
xs_wait victim-finished 900
kill $pid 2>/dev/null; wait $pid 2>/dev/null
check victim-finished xenstore-exists "$SHARED_XS/victim-finished"
check rmmod retry 20 rmmod yasmin
