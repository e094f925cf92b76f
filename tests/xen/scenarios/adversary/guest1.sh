# Scenario adversary, guest 1: the victim. Guest 2 loads the test build's hostile-peer
# hooks (debugfs `adversary`) and attacks over a real pair channel; dom0 is an honest
# third party. Through every attack: the victim's unrelated connect/close to dom0 takes
# under 1 s (3x its time without a flood on a slower kernel), grants and mappings stay under the limits, an abusive pair is reset, and an
# honest transfer to dom0 keeps moving and ends intact.
. /yasmin/lib/case.sh
mark_kernel_log
a=$PEER_DOMID
# Small rings and limits so that each limit is reached quickly (see yasmin-mod/README.md).
check module-loaded insmod /yasmin/yasmin.ko ring_pages=32 max_ring_pages=64 max_conns_per_peer=8 linger_ms=3000 bad_msg_budget=32
sed 's/^/# /' /sys/kernel/debug/yasmin/stats | grep limit_
serve() { yasmin-stream-check serve --listen vsock:6400 > /tmp/serve.log 2>&1 & echo $! > /tmp/serve.pid; }
serve
exists() { yasmin-xs read "$SHARED_XS/$1" > /dev/null 2>&1; }
run_bg() { rbn=$1; shift; rm -f "/tmp/$rbn.rc"; ( "$@" > "/tmp/$rbn.log" 2>&1; echo $? > "/tmp/$rbn.rc" ) & }
done_rc() { retry "$2" test -f "/tmp/$1.rc" && cat "/tmp/$1.rc"; }
bad_msgs_above() { [ "$(pair_field "$a" bad_msgs)" -gt "$1" ]; }
under_limits() {
    stat_is grant_pages -le "$(stat limit_granted_pages)" && stat_is mapped_pages -le "$(stat limit_mapped_pages)"
}
check dom0-listening xs_wait dom0-listening 180
check honest-first-connection yasmin-stream-check latency --connect vsock:2:6300 --count 2 --max-ms 30000
# Honest transfers run back to back through every attack.
honest_loop() {
    k=0
    while [ ! -e /tmp/stop-honest ]; do
        timeout 120 yasmin-stream-check duplex --connect vsock:2:6300 --bytes 16777216 --seed "$k" > /tmp/honest-last.log 2>&1 || { echo "transfer $k failed:"; cat /tmp/honest-last.log; return 1; }
        k=$((k + 1)); echo "$k" > /tmp/honest.count
    done
}
run_bg honest honest_loop
# The bound for connect/close during a flood: 1 s, or 3x the maximum without a flood on
# a kernel slow enough (the debug test kernel under TCG) that those probes take over
# 333 ms. The probes without a flood run in the same conditions as the flooded ones: the
# honest transfers running, and guest 2 keeping its vCPUs busy (on the emulated machine
# the domains share two host CPUs, so any busy attacker takes CPU time from the victim;
# the flood must cost no more than that).
xs_signal spin-ready
check attacker-spinning xs_wait spinning 120
sleep 1
yasmin-stream-check latency --connect vsock:2:6300 --count 5 --max-ms 30000 > /tmp/lat-quiet.log 2>&1
xs_signal spin-measured
sed 's/^/# quiet: /' /tmp/lat-quiet.log
quiet=$(sed -n 's/^max_ms=\([0-9]*\).*/\1/p' /tmp/lat-quiet.log)
bound=$((3 * ${quiet:-1000})); [ "$bound" -ge 1000 ] || bound=1000
echo "# connect/close bound during floods: $bound ms"
xs_signal victim-ready

# Floods: guest 2 keeps flooding until we have measured.
for attack in junk ping connect accept; do
    resets0=$(stat misbehaviour_resets)
    xs_signal "$attack-ready"
    check "$attack-flood-started" xs_wait "$attack-flooding" 120
    sleep 1
    yasmin-stream-check latency --connect vsock:2:6300 --count 5 --max-ms "$bound" > "/tmp/lat-$attack.log" 2>&1
    case_result $? "$attack-flood-connect-close-within-bound"
    sed "s/^/# $attack: /" "/tmp/lat-$attack.log"
    check "$attack-flood-under-limits" under_limits
    xs_signal "$attack-measured"
    check "$attack-flood-ended" xs_wait "$attack-done" 120
    case $attack in
        connect)
            # Valid CONNECTs are not misbehaviour: each gets a RESET (unusable ring),
            # and none stays: what is left is the honest transfer (and at most one
            # latency probe) to dom0, each mapping dom0's 65-page ring.
            check connect-flood-no-connection-left retry 10 stat_is connections_live -le 2
            check connect-flood-nothing-left-mapped retry 10 stat_is mapped_pages -le 130 ;;
        *)
            check "$attack-flood-pair-reset" stat_is misbehaviour_resets -gt "$resets0" ;;
    esac
    echo "# $attack: pair with $a: bad_msgs $(pair_field "$a" bad_msgs) resets $(pair_field "$a" resets)"
done
check misbehaviour-logged sh -c "dmesg | grep -q 'invalid or abusive messages'"

# victim_responsive NAME: connect/close to dom0 within the flood bound after a single
# abuse. One abuse is one message, so its cost is over before this runs: a slow probe here
# is the machine (the emulated CPUs are shared with every domain, and their speed moves
# by the minute), not the abuse, and up to three probes are taken; a victim the abuse
# wedged fails all three. Every probe's times go to the log.
victim_responsive() {
    for vr_try in 1 2 3; do
        yasmin-stream-check latency --connect vsock:2:6300 --count 2 --max-ms "$bound" > /tmp/vr.log 2>&1
        vr_rc=$?
        sed "s/^/# $1 probe $vr_try: /" /tmp/vr.log | grep -E 'max_ms|rror'
        [ "$vr_rc" = 0 ] && return 0
    done
    return 1
}

# Single abuses (a token of another domain, a ring beyond the maximum our HELLO
# announced, a reused token, a second ACCEPT): each is refused or ignored, counted
# against the peer's budget, and leaves nothing behind. Guest 2 serves on 6500 for the duplicate ACCEPT.
check attacker-serving xs_wait attacker-serving 120
for attack in foreign bigring reuse dupaccept; do
    bad0=$(pair_field "$a" bad_msgs)
    if [ $attack = dupaccept ]; then
        run_bg dup yasmin-stream-check duplex --connect "vsock:$PEER_CID:6500" --bytes 67108864 --seed 42
        sleep 2
    fi
    xs_signal "$attack-go"
    check "$attack-sent" xs_wait "$attack-sent" 120
    case $attack in
        dupaccept) break ;; # counted once the ACCEPT is applied; checked below
        *) check "$attack-counted-as-misbehaviour" retry 10 bad_msgs_above "$bad0" ;;
    esac
    check "$attack-victim-responsive" victim_responsive "$attack"
    xs_signal "$attack-checked"
done
# The duplicate ACCEPT was counted and did not disturb the connection it named. The
# victim is probed once that 64 MiB duplex transfer is over: beside it, a connect/close
# competes with one more transfer than the bound was measured with.
check dupaccept-counted-as-misbehaviour retry 10 bad_msgs_above "$bad0"
check dupaccept-transfer-intact test "$(done_rc dup 300)" = 0
sed 's/^/# dup: /' /tmp/dup.log
check dupaccept-victim-responsive victim_responsive dupaccept
xs_signal dupaccept-checked
# A fresh server: connections the abuses left half-open go (their rings linger, then go).
kill "$(cat /tmp/serve.pid)"; sleep 1; serve
sleep 5

# Hold: guest 2 opens connections until our per-peer limit, then drops its sockets but
# keeps our rings mapped and never CLOSEs. We close ours: after linger_ms the rings are
# revoked, the pages it still maps are withheld (counted, never
# reused) and count against its connection allowance.
revoked0=$(stat linger_revoked)
xs_signal hold-go
check hold-filled xs_wait hold-filled 180
# Our server's connections wait for requests that never come: we close them (a new
# server), CLOSE goes out, our rings linger for a CLOSE that never comes back.
kill "$(cat /tmp/serve.pid)"; sleep 1; serve
check hold-rings-revoked retry 20 stat_is linger_revoked -ge $((revoked0 + 8))
check hold-pages-withheld stat_is withheld_pages -gt 0
sed 's/^/# hold: /' /sys/kernel/debug/yasmin/stats | grep -E 'grant_pages|withheld|revoked|limit_refusals'
check hold-revocation-logged sh -c "dmesg | grep -q 'did not release within'"
check hold-victim-responsive victim_responsive hold
xs_signal hold-revoked
check hold-released xs_wait hold-released 120
check withheld-pages-freed-once-released retry 15 stat_is withheld_pages = 0

touch /tmp/stop-honest
rc=$(done_rc honest 180)
echo "# honest: loop exit status '$rc'"
check honest-transfers-intact test "$rc" = 0
sed 's/^/# honest: /' /tmp/honest.log /tmp/honest-last.log
check honest-transfers-kept-moving test "$(cat /tmp/honest.count)" -ge 4
echo "# honest: $(cat /tmp/honest.count) transfers of 16 MiB each way during the attacks"
xs_signal victim-finished
kill "$(cat /tmp/serve.pid)" 2>/dev/null
check sockets-back-to-baseline retry 10 stat_is sockets = 0
baseline_zero
baseline_check 20
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
kernel_log_since_mark | grep yasmin | tail -40 | sed 's/^/# /'
