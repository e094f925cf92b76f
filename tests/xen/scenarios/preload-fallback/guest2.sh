# Scenario preload-fallback, guest 2: the servers, and the guest that changes under the
# preloaded client in guest 1: it unloads YASMIN and loads it again, then dom0 saves and
# restores it (a restart as a new domain, with a new domid). Its servers run throughout:
# a plain TCP server (not preloaded: nothing listens on its vsock port) and a preloaded
# one (a TCP and a vsock listener on the same port).
. /yasmin/lib/case.sh
. /yasmin/scenarios/preload-fallback/lib.sh
check module-loaded insmod /yasmin/yasmin.ko
yasmin-stream-check serve --listen tcp:0.0.0.0:7101 --connections 1000000 > /tmp/plain.log 2>&1 &
plain=$!
LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 $DYN serve --listen tcp:0.0.0.0:7102 --connections 1000000 > /tmp/dual.log 2>&1 &
dual=$!
# An inetd-style server: the preloaded socat execs a program with the connection as its
# standard input and output; that program reports the peer it sees (see guest 1).
LD_PRELOAD=$PRELOAD YASMIN_PRELOAD_LOG=1 socat TCP-LISTEN:7103,reuseaddr,fork EXEC:"$DYN peer-name",nofork > /tmp/exec.log 2>&1 &
execsrv=$!
# Up to 30 s for the servers to start: a dynamically linked, preloaded program takes
# seconds to start in a slow hour (one run's line came later than a fixed 2 s wait).
check preloaded-server-listens-on-both retry 30 grep -q 'listen 0.0.0.0:7102 -> tcp + vsock port 7102' /tmp/dual.log
check barrier-serving barrier serving 120

# YASMIN goes away under the running client (between its connections: a live one holds
# the module), and comes back; the preloaded server's listeners stay.
check guest1-asks-unload xs_wait unload-me 300
check module-unloaded-mid-run retry 60 rmmod yasmin
xs_signal unloaded
check guest1-asks-reload xs_wait reload-me 300
check module-reloaded insmod /yasmin/yasmin.ko
xs_signal reloaded

# A restart as a new domain: dom0 saves and restores this guest.
check guest1-asks-restart xs_wait restart-me 300
xs_signal save-me
changed() { [ "$(yasmin-xs domid)" != "$SELF_DOMID" ]; }
for _ in $(seq 9000); do changed && break; sleep 0.1; done
check restarted-as-new-domain changed
echo "# domid $SELF_DOMID -> $(yasmin-xs domid)"
check barrier-done barrier done 600
sed 's/^/# preloaded server: /' /tmp/dual.log | grep -v '^# preloaded server: yasmin-preload: accept' | head -10
check preloaded-server-accepted-vsock grep -q 'accept vsock' /tmp/dual.log
sed 's/^/# inetd-style: /' /tmp/exec.log | grep -v 'listen\|map from' | head -4
check exec-adopted-connection grep -q 'inherited connection on fd 0: vsock CID' /tmp/exec.log
kill $plain $dual $execsrv; wait $plain $dual $execsrv 2>/dev/null
check no-connection-left retry 30 stat_is connections_live = 0
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
