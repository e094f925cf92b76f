# Scenario burst, guest 1: connects in bursts, all at the same instant, to guest 2, whose
# module sets the incoming connections up several at once (off its control work item).
# Checked: every connection of a burst is accepted once and carries its own stream
# (each does a digest round trip), and bursts whose connects give up while guest 2 is
# still setting them up (a 1 ms connect timeout) leave nothing behind on either side.
# Connect times are printed, not checked: a benchmark's business (connect-burst example).
. /yasmin/lib/case.sh
check module-loaded insmod /yasmin/yasmin.ko
check barrier-serving barrier serving 120
check pair-up pair_up "$PEER_DOMID" 60
baseline_take
# burst NAME ARGS...: one burst (yasmin-stream-check burst), its summary as comments.
burst() {
    name=$1; shift
    timeout 300 yasmin-stream-check burst "$@" > /tmp/burst.log 2>&1
    case_result $? "$name"
    tr '\n' ' ' < /tmp/burst.log | sed "s/^/# $name: /"; echo
}
# Correctness, not speed: a generous connect timeout (the default 2 s is what the
# benchmark times against).
burst burst-64-all-served --connect "vsock:$PEER_CID:6800" --conns 64 --connect-timeout-ms 60000
burst burst-96-small-rings-all-served --connect "vsock:$PEER_CID:6801" --conns 96 --connect-timeout-ms 60000 --buffer-size 4096
# Connects that give up at once: most are withdrawn while guest 2 sets them up (or
# before). Whatever each got, nothing may stay behind.
for r in 1 2 3; do
    timeout 120 yasmin-stream-check burst --connect "vsock:$PEER_CID:6800" --conns 48 --connect-timeout-ms 1 > /tmp/cancel.log 2>&1
    tr '\n' ' ' < /tmp/cancel.log | sed "s/^/# cancelled burst $r: /"; echo
done
check cancelled-bursts-left-nothing retry 30 stat_is connections_live = 0
burst burst-after-cancelled-all-served --connect "vsock:$PEER_CID:6800" --conns 32 --connect-timeout-ms 60000
check barrier-bursts-done barrier bursts-done 300
baseline_check 30
check module-unloaded retry 10 rmmod yasmin
