# Benchmark, guest 1: the client. Every transport is measured with the same program
# (yasmin-bench) in this one boot, one run after the other; the records are printed as
# `YASMIN-BENCH <json>` lines for bench/run to collect. The CPU is emulated: only ratios
# between transports of this boot mean anything.
. /yasmin/lib/case.sh
. "$YASMIN_SCENARIO_DIR/params.sh"
check module-loaded insmod /yasmin/yasmin.ko
# Local references: AF_UNIX and vsock loopback inside this guest.
yasmin-bench server --listen unix:/tmp/bench.sock > /tmp/srv-unix.log 2>&1 &
pids="$pids $!"
yasmin-bench server --listen vsock:any:7003 > /tmp/srv-loop.log 2>&1 &
pids="$pids $!"
check pair-up pair_up "$PEER_DOMID" 120
check barrier-serving barrier serving 120
out=/tmp/bench.json
: > $out
DEFAULT_RING=524288   # ring_pages=128 (the module default)
common="--duration $BENCH_DURATION --warmup $BENCH_WARMUP --json $out"
# bench NAME ARGS...: one client run; a failed run is a failed case, the others go on.
bench() {
    name=$1; shift
    echo "YASMIN-INFO bench: $name"
    run_bench "$name" client "$@"
}
# run_bench NAME SUBCOMMAND ARGS...: one yasmin-bench run (its records go to $out).
run_bench() {
    name=$1; shift
    timeout 900 yasmin-bench "$@" $common > /dev/null 2>/tmp/err
    case_result $? "$name"
    sed 's/^/# /' /tmp/err | tail -3
}
Y="--connect vsock:$PEER_CID:7000 --transport-label yasmin --ring-size $DEFAULT_RING"
T="--connect tcp:$PEER_IP:7001 --transport-label tcp-netfront"
U="--connect unix:/tmp/bench.sock --transport-label unix"
L="--connect vsock:1:7003 --transport-label vsock-loopback"
# libvchan directly (yasmin-bench links libxenvchan): guest 2 serves one vchan per run
# under this XenStore base, 64 KiB rings each way (libvchan's own sizes; see bench/README).
V="--connect vchan:$PEER_DOMID:/local/domain/$PEER_DOMID/data/ybv --transport-label vchan"

# Stream and latency in interleaved rounds: every transport once per round, round after
# round (A B C .. A B C ..), so that a slow minute of the host touches every transport
# alike; report.rs takes each ratio within a round and gives the median and range.
run_bench memcpy-reference memcpy --msg-sizes $BENCH_STREAM_SIZES
for r in $(seq "${BENCH_ROUNDS:-1}"); do
    # The system-call floor: write(2) of each size to /dev/null (ratios.md compares the
    # sends with it: what no change inside a transport can beat).
    run_bench "floor-r$r" memcpy --msg-sizes $BENCH_STREAM_SIZES --sink /dev/null \
        --transport-label write-devnull --round "$r"
    for t in ${BENCH_TRANSPORTS:-Y T U L V}; do
        eval a=\$$t
        bench "stream-$t-r$r" $a --kind stream --direction send --msg-sizes $BENCH_STREAM_SIZES --round "$r"
    done
    for t in ${BENCH_TRANSPORTS:-Y T U L V}; do
        eval a=\$$t
        bench "latency-$t-r$r" $a --kind latency --msg-sizes $BENCH_LATENCY_SIZES --round "$r"
    done
done
for t in Y T; do
    eval a=\$$t
    bench "duplex-$t" $a --kind stream --direction duplex --msg-sizes 64K
done
for r in $BENCH_RING_SIZES; do
    bench "ring-$r" --connect "vsock:$PEER_CID:7000" --transport-label yasmin --buffer-size $r \
        --ring-size "$(echo $r | sed 's/K$/*1024/; s/M$/*1048576/' | awk -F'*' '{ print $1 * ($2 ? $2 : 1) }')" \
        --kind stream --direction send --msg-sizes $BENCH_RING_MSG_SIZES
done
for n in $BENCH_CONNECTIONS; do
    for t in Y T; do
        eval a=\$$t
        bench "connections-$n-$t" $a --kind stream --direction send --msg-sizes 64K --connections $n
    done
done
# Where the time goes: one more 64 KiB run with the module's per-stage profile on, in
# both guests (guest 1 sends, guest 2 receives). Profiling costs two clock reads per
# stage, so this run is labelled apart and kept out of the ratios.
xs_signal profile-start
check profile-armed-in-peer xs_wait profile-armed 60
echo 1 > /sys/kernel/debug/yasmin/profile
bench profiled-run --connect "vsock:$PEER_CID:7000" --transport-label yasmin-profiled --ring-size $DEFAULT_RING \
    --kind stream --direction send --msg-sizes 64K
echo 0 > /sys/kernel/debug/yasmin/profile
xs_signal profile-done
sed 's/^/# profile-sender: /' /sys/kernel/debug/yasmin/profile
sed 's/^/# stats: /' /sys/kernel/debug/yasmin/stats
sed 's/^/YASMIN-BENCH /' $out
check barrier-done barrier done 120
kill $pids 2>/dev/null
sleep 1
check module-unloaded retry 20 rmmod yasmin
