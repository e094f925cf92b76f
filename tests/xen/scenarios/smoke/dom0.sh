#!/bin/sh
# Scenario smoke, dom0 part: dom0 is a vsock endpoint too, with CID 2 (the vsock host).
. /yasmin/lib/case.sh
check insmod insmod /yasmin/yasmin.ko
check cid-mapping sh -c "dmesg | grep -q 'yasmin: loaded: domid 0 vsock CID 2 '"
check rmmod rmmod yasmin
