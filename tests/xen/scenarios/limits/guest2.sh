# Scenario limits, guest 2: the other side (default limits, 32-page rings).
. /yasmin/lib/case.sh
mark_kernel_log
check module-loaded insmod /yasmin/yasmin.ko ring_pages=32
yasmin-stream-check serve --listen vsock:6700 > /tmp/serve.log 2>&1 &
yasmin-stream-check serve --listen "tcp:$SELF_IP:6701" > /tmp/serve-tcp.log 2>&1 &
check barrier-serving barrier serving 120
retry 60 pair_state_is "$PEER_DOMID" connected
baseline_take
check barrier-grant-limit-done barrier grant-limit-done 180

# (2) Guest 1's grant limit as acceptor: its listener has vsock's default buffer size
# (256 KiB), so each accepted socket's ring is 64 pages + directory: the control page and
# 3 of them fit in 200 pages, the 4th is refused (RESET "limit" -> ECONNREFUSED, 111).
yasmin-stream-check fill --connect "vsock:$PEER_CID:6600" --max 64 --hold-secs 2 > /tmp/fill2.log 2>&1
case_result $? peer-at-limit-open-connections-work
sed 's/^/# fill: /' /tmp/fill2.log
check peer-at-limit-three-connections grep -qx 'opened=3' /tmp/fill2.log
check peer-at-limit-econnrefused grep -q '^first_errno=111 ' /tmp/fill2.log
check barrier-peer-limit-done barrier peer-limit-done 120

check barrier-after-limits barrier after-limits 180
baseline_check 20
check barrier-done barrier done 120
pkill yasmin-stream-check
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
