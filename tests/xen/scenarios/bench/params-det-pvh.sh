# A PVH pair, short (issue 16; BENCH_GUESTS=pvh,pvh BENCH_PARAMS=this file bench/run):
# params-det.sh's sizes, YASMIN and TCP over netfront only, one round, in host time.
# (Under BENCH_DETERMINISTIC a PVH guest's kernel crashed in its entry code in both runs
# tried, README "Known limits".) bench/run copies this file alone into the guests, so
# the values are repeated here rather than sourced.
BENCH_ROUNDS=1 BENCH_TRANSPORTS="Y T" BENCH_DURATION=2 BENCH_WARMUP=0.5
BENCH_STREAM_SIZES=64,64K BENCH_LATENCY_SIZES=1
BENCH_RING_SIZES="" BENCH_RING_MSG_SIZES=64K BENCH_CONNECTIONS=""
