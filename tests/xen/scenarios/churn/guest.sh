# Scenario churn, guests: after dom0 has heard from 320 forged incarnations, both real
# guests still reach it (CID 2) over YASMIN.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
check dom0-churned xs_wait churned 600
check connect-to-dom0-after-churn timeout 120 yasmin-stream-check duplex --connect vsock:2:6900 --bytes 4194304 --seed "$SELF_DOMID"
check grants-back-to-baseline retry 20 stat_is grant_pages = 0
check module-unloaded retry 10 rmmod yasmin
yasmin-xs write "$SHARED_XS/guests-done/$YASMIN_ROLE" 1
