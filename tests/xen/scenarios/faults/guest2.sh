# Scenario faults, guest 2: serves on four ports; checks that guest 1's given-up connects
# left nothing here; corrupts the ring header of the port-6201
# connection through the test hook; refuses nothing else; is destroyed by dom0.sh.
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-stream-check serve --listen vsock:6200 > /tmp/s6200.log 2>&1 &
yasmin-stream-check serve --listen vsock:6201 > /tmp/s6201.log 2>&1 &
# For guest 1's bad-buffer calls (the stream it gets back is not checked).
yasmin-stream-check serve --listen vsock:6202 > /tmp/s6202.log 2>&1 &
# For guest 1's retried connects.
yasmin-stream-check serve --listen vsock:6203 > /tmp/s6203.log 2>&1 &
check barrier-serving barrier serving 120
# The children made for the CONNECTs guest 1 gave up on are gone with them.
check barrier-retries-done barrier retries-done 300
check connect-retry-no-connection-left retry 10 stat_is connections_live = 0
check connect-retry-no-socket-left retry 10 stat_is sockets = 0
sed 's/^/# 6203: /' /tmp/s6203.log | sort | uniq -c | head -5
check barrier-transfers-running barrier transfers-running 300
# A hostile peer: the next write on our port-6201 socket scribbles its shared header.
check arm-ring-corruption sh -c "echo 6201 > /sys/kernel/debug/yasmin/scribble_tx_port"
check barrier-corruption-checked barrier corruption-checked 600
sed 's/^/# 6201: /' /tmp/s6201.log | head -5
sed 's/^/# 6200: /' /tmp/s6200.log | head -5
# Guest 1 reset the connection (RESET on the control channel): here it ends as a
# virtio-vsock connection ends on RST, what guest 1 wrote readable, then EOF and EPIPE.
check victim-connection-ended-here retry 30 sh -c "grep -Eq 'os error (32|104)|short stream' /tmp/s6201.log"
dmesg | grep yasmin | tail -5 | sed 's/^/# /'
# Guest 1's SO_LINGER cases sent to our port 6202 and closed before we read: every byte
# still arrived (our late reads).
check barrier-linger-done barrier linger-done 600
check linger-late-reads-intact retry 10 sh -c "[ \$(grep -c 'intact=true' /tmp/s6202.log) -ge 2 ]"
grep 'late read' /tmp/s6202.log | sed 's/^/# 6202: /'
sleep 600   # dom0.sh destroys this guest during the last transfer
