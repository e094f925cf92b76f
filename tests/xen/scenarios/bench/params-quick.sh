# The short benchmark matrix (BENCH_QUICK=1 bench/run, and make test's check that the
# benchmark still runs): a few sizes, 1 s runs. Its figures mean nothing.
BENCH_ROUNDS=2
BENCH_DURATION=1
BENCH_WARMUP=0.3
BENCH_STREAM_SIZES=64,64K
BENCH_LATENCY_SIZES=1
BENCH_RING_SIZES="16K"
BENCH_RING_MSG_SIZES=64K
BENCH_CONNECTIONS="2"
