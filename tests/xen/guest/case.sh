# Helpers for test-bed scenario scripts (sourced in guests; sh/busybox compatible).
# Every case prints one machine-readable line the runner turns into TAP:
#   YASMIN-CASE ok NAME | YASMIN-CASE not ok NAME

case_ok() { echo "YASMIN-CASE ok $1"; }
case_fail() { echo "YASMIN-CASE not ok $1${2:+ # $2}"; }
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
