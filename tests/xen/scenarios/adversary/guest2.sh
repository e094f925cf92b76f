# Scenario adversary, guest 2: the attacker. The test build's debugfs `adversary` sends
# what a malicious module could over a real pair channel (yasmin-mod/plane/adversary.rs).
. /yasmin/lib/case.sh
v=$PEER_DOMID
adv=/sys/kernel/debug/yasmin/adversary
check module-loaded insmod /yasmin/yasmin.ko
check hooks-present test -e $adv
exists() { yasmin-xs read "$SHARED_XS/$1" > /dev/null 2>&1; }
# Busy, not attacking: the victim's probes without a flood see the same CPU contention.
check victim-spin-ready xs_wait spin-ready 300
spin() { while [ ! -e /tmp/stop-spin ]; do :; done; }
spin & spin1=$!; spin & spin2=$!
xs_signal spinning
check victim-spin-measured xs_wait spin-measured 120
touch /tmp/stop-spin; wait $spin1 $spin2
check victim-ready xs_wait victim-ready 300
# flood NAME CMD: CMD written again and again (re-opening the channel the victim resets)
# until the victim has measured, at most 120 s.
flood() {
    fl=$1; cmd=$2; sent=0
    xs_wait "$fl-ready" 300 || return 1
    pair_up "$v" 60 || return 1
    xs_signal "$fl-flooding"
    end=$(( $(date +%s) + 120 ))
    while ! exists "$fl-measured" && [ "$(date +%s)" -lt "$end" ]; do
        if echo "$cmd" > $adv 2>/dev/null; then sent=$((sent + 1)); else pair_connect "$v" 2>/dev/null; sleep 0.2; fi
    done
    echo "# $fl: $sent writes of '$cmd'"
    xs_signal "$fl-done"
    exists "$fl-measured"
}
check junk-flood flood junk "junk $v 40"
check ping-flood flood ping "ping $v 40"
check connect-flood flood connect "connect $v 40 6400"
check accept-flood flood accept "accept $v 40"

yasmin-stream-check serve --listen vsock:6500 > /tmp/serve.log 2>&1 &
xs_signal attacker-serving
for attack in foreign bigring reuse dupaccept; do
    check "$attack-go" xs_wait "$attack-go" 120
    pair_up "$v" 60
    case $attack in
        foreign) cmd="foreign $v 6400" ;;
        bigring) cmd="bigring $v 6400" ;;
        reuse)
            # A live connection whose token the CONNECT reuses.
            yasmin-stream-check duplex --connect "vsock:$PEER_CID:6400" --bytes 33554432 --seed 41 > /tmp/reuse.log 2>&1 &
            reuse_pid=$!
            sleep 2; cmd="reuse $v 6400" ;;
        dupaccept) cmd="dupaccept $v" ;;
    esac
    check "$attack-attack-sent" sh -c "echo '$cmd' > $adv"
    xs_signal "$attack-sent"
    check "$attack-checked" xs_wait "$attack-checked" 420
done
wait "$reuse_pid"

# Hold: connections up to the victim's per-peer limit (8), released without CLOSE while
# we keep its rings mapped.
check hold-go xs_wait hold-go 300
pair_up "$v" 60
echo "hold 1" > $adv
yasmin-stream-check fill --no-check --connect "vsock:$PEER_CID:6400" --max 64 > /tmp/fill.log 2>&1
sed 's/^/# fill: /' /tmp/fill.log
check hold-opened-up-to-victim-limit grep -qx 'opened=8' /tmp/fill.log
check hold-refused-past-limit grep -q '^first_errno=111 ' /tmp/fill.log
xs_signal hold-filled
check hold-revoked xs_wait hold-revoked 180
# What we withhold counts against us: no new connection fits.
yasmin-stream-check fill --connect "vsock:$PEER_CID:6400" --max 4 > /tmp/fill2.log 2>&1
sed 's/^/# fill while withholding: /' /tmp/fill2.log
check withheld-pages-count-against-peer grep -qx 'opened=0' /tmp/fill2.log
echo "hold 0" > $adv
xs_signal hold-released
check victim-finished xs_wait victim-finished 900
check module-unloaded retry 10 rmmod yasmin
check no-irqs-after-unload irqs_are 0
