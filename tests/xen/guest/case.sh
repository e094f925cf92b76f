# Helpers for test-bed scenario scripts (sourced in guests; sh/busybox compatible).
# Every case prints one machine-readable line the runner turns into TAP:
#   YASMIN-CASE ok NAME | YASMIN-CASE not ok NAME

# Each line ends with the seconds since the previous case (the TAP comment), so a slow
# case is found by name when the suite's time has to be cut. Shell builtins only: a
# process start costs 0.2-0.5 s in a test-kernel PV guest under the emulated CPU.
_case_cs() { # centiseconds of uptime into _case_now (/proc/uptime has two decimals)
    read -r _case_up _case_idle < /proc/uptime
    _case_now=$(( ${_case_up%.*} * 100 + 1${_case_up#*.} - 100 ))
}
_case_cs; _case_t0=$_case_now
_case_lap() {
    _case_cs
    _case_d=$(( _case_now - _case_t0 )); _case_t0=$_case_now
    _case_dt="$(( _case_d / 100 )).$(( _case_d % 100 / 10 ))s"
}
case_ok() { _case_lap; echo "YASMIN-CASE ok $1 # $_case_dt"; }
case_fail() { _case_lap; echo "YASMIN-CASE not ok $1 # ${2:+$2; }$_case_dt"; }
case_result() { if [ "$1" = 0 ]; then case_ok "$2"; else case_fail "$2" "exit status $1"; fi; }

# check NAME CMD...: runs CMD, one case named NAME from its exit status.
check() {
    name=$1; shift
    "$@"
    case_result $? "$name"
}

# retry SECONDS CMD...: runs CMD once a second until it succeeds or time runs out.
retry() {
    t=$1; shift
    while :; do
        "$@" && return 0
        t=$((t - 1)); [ "$t" -gt 0 ] || return 1
        sleep 1
    done
}

# barrier NAME [SECONDS]: waits until both guests of the scenario reached NAME,
# through a XenStore directory dom0 made readable and writable by both of them.
barrier() {
    /yasmin/bin/yasmin-xs write "$SHARED_XS/$1/$YASMIN_ROLE" 1 || return 1
    other=guest1; [ "$YASMIN_ROLE" = guest1 ] && other=guest2
    /yasmin/bin/yasmin-xs wait "$SHARED_XS/$1/$other" --timeout "${2:-120}" >/dev/null
}

# kernel_log_since_mark: dmesg lines since the last `mark_kernel_log`.
mark_kernel_log() { dmesg | wc -l > /tmp/.dmesg-mark; }
kernel_log_since_mark() { dmesg | tail -n +$(( $(cat /tmp/.dmesg-mark 2>/dev/null || echo 0) + 1 )); }

# pair_field PEER COLUMN: one column of the module's debugfs pair table for PEER
# (columns: peer role state peer_gen gref evtchn ups downs resets msgs_in msgs_out bad_msgs).
pair_field() {
    awk -v p="$1" -v c="$2" 'NR > 2 && $1 == p {
        split("peer role state peer_gen gref evtchn ups downs resets msgs_in msgs_out bad_msgs", h, " ")
        for (i in h) if (h[i] == c) print $i
    }' /sys/kernel/debug/yasmin/pairs 2>/dev/null
}
# pair_state_is PEER STATE: true if the pair with PEER is in STATE.
pair_state_is() { [ "$(pair_field "$1" state)" = "$2" ]; }
# pair_connect PEER: ask the module for the control channel to PEER.
pair_connect() { echo "$1" > /sys/kernel/debug/yasmin/connect; }
# xs_signal NAME / xs_wait NAME [SECONDS]: one-shot flags in the scenario's shared directory.
xs_signal() { /yasmin/bin/yasmin-xs write "$SHARED_XS/$1" 1; }
xs_wait() { /yasmin/bin/yasmin-xs wait "$SHARED_XS/$1" --timeout "${2:-120}" >/dev/null; }
# stat NAME: one global counter of the module (debugfs `stats`, "name value" lines).
# (A builtin loop, not awk: see the process-start cost above.)
stat() {
    while read -r _stat_k _stat_v; do
        [ "$_stat_k" = "$1" ] && { echo "$_stat_v"; return 0; }
    done < /sys/kernel/debug/yasmin/stats
}
# stat_is NAME OP VALUE: test(1) on a counter, e.g. `retry 10 stat_is grant_pages = 0`.
stat_is() { [ "$(stat "$1")" "$2" "$3" ]; }
# irqs: event-channel interrupts bound under the module's name, from the kernel's own
# table (/proc/interrupts), not from the module's counters; irqs_are N: exactly N.
irqs() { awk '$NF == "yasmin" { n++ } END { print n + 0 }' /proc/interrupts; }
irqs_are() { [ "$(irqs)" = "$1" ]; }
# baseline_take: remembers the module's granted pages, mapped pages and event channels,
# and the kernel's count of its interrupts; baseline_zero: a baseline of nothing at all.
baseline_take() {
    base_grants=$(stat grant_pages) base_mapped=$(stat mapped_pages)
    base_evtchns=$(stat event_channels) base_irqs=$(irqs)
}
baseline_zero() { base_grants=0 base_mapped=0 base_evtchns=0 base_irqs=0; }
# baseline_check SECONDS: the back-to-baseline cases, each retried up to SECONDS.
baseline_check() {
    check grants-back-to-baseline retry "$1" stat_is grant_pages = "$base_grants"
    check mapped-back-to-baseline retry "$1" stat_is mapped_pages = "$base_mapped"
    check evtchns-back-to-baseline retry "$1" stat_is event_channels = "$base_evtchns"
    check irqs-back-to-baseline retry "$1" irqs_are "$base_irqs"
    # Frames kept for the next map go back to the balloon once maps stop for a sweep.
    check map-frames-given-back retry "$1" stat_is map_frame_cache = 0
}
# pair_up PEER [SECONDS]: asks for the control channel to PEER until it is up (the peer
# may load YASMIN after us: until it does, the watcher refuses and the pair goes idle).
pair_up() {
    t=${2:-60}
    while :; do
        pair_state_is "$1" connected && return 0
        case "$(pair_field "$1" state)" in ""|idle) pair_connect "$1" 2>/dev/null ;; esac
        t=$((t - 1)); [ "$t" -gt 0 ] || return 1
        sleep 1
    done
}
