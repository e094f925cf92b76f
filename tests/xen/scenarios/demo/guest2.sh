# Scenario demo, guest 2: serves yasmin-stream-check over YASMIN (vsock) and over TCP
# (netfront) at the same time.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-stream-check serve --listen vsock:7000 --connections 1 > /tmp/vsock.log 2>&1 &
yasmin-stream-check serve --listen "tcp:$SELF_IP:7000" --connections 1 > /tmp/tcp.log 2>&1 &
check barrier-serving barrier serving 120
check barrier-done barrier done 600
wait
check module-unloaded retry 10 rmmod yasmin
