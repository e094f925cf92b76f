# Helpers for both lifecycle guests (sourced from the scenario folder).

# serve_start PORT: a yasmin-stream-check server in the background, its pid in $srv.
serve_start() { yasmin-stream-check serve --listen "vsock:$1" > "/tmp/serve-$1.log" 2>&1 & srv=$!; }

# transfer_start NAME TARGET SEED: a 4 GiB duplex transfer in the background, which runs
# until something ends it; its output in /tmp/NAME.log, its exit status in /tmp/NAME.rc.
transfer_start() {
    rm -f "/tmp/$1.rc"
    ( yasmin-stream-check duplex --connect "$2" --bytes 4294967296 --seed "$3" > "/tmp/$1.log" 2>&1
      echo $? > "/tmp/$1.rc" ) &
}

# transfers_up PHASE: both guests started theirs, so each guest has two connections.
transfers_up() {
    check "$1-connected" barrier "$1-connected" 120
    check "$1-transfers-running" retry 30 stat_is connections_live -ge 2
}

# transfer_reset NAME CASE: transfer NAME ended (within a minute) with a connection reset.
transfer_reset() {
    check "$2-ended" retry 60 test -f "/tmp/$1.rc"
    sed "s/^/# $1: /" "/tmp/$1.log" | tail -3
    check "$2-reset" grep -qi "reset" "/tmp/$1.log"
}

# setup PORT TARGET SEED: loads YASMIN, serves on PORT, and once both guests serve,
# starts transfer `out` to TARGET and waits until both guests' transfers run.
setup() {
    check module-loaded insmod /yasmin/yasmin.ko
    serve_start "$1"
    check barrier-serving barrier serving 120
    transfer_start out "$2" "$3"
    transfers_up save
}
