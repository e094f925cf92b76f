# Scenario stream-integrity, guest 2: the server (yasmin-stream-check serve) for every
# connection guest 1 makes; publishes its own SHA-256 of the duplex transfer.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-stream-check serve --listen vsock:6000 > /tmp/serve.log 2>&1 &
srv=$!
check barrier-serving barrier serving 120
check barrier-warm barrier warm 120
baseline_take
# The duplex run's sums, for guest 1 to compare with its own.
retry 900 grep -q '^server_received_sha256=' /tmp/serve.log
yasmin-xs write "$SHARED_XS/server-received" "$(sed -n 's/^server_received_sha256=//p' /tmp/serve.log)"
yasmin-xs write "$SHARED_XS/server-sent" "$(sed -n 's/^server_sent_sha256=//p' /tmp/serve.log)"
check barrier-client-done barrier client-done 3000
kill $srv 2>/dev/null
check server-no-errors sh -c "! grep -q 'failed' /tmp/serve.log"
grep -v '^listening' /tmp/serve.log | sed 's/^/# /' | head -20
baseline_check 20
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
check barrier-checked barrier checked 120
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
