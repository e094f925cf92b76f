# The matrix of the three-boot reproducibility runs (issue 17; BENCH_PARAMS=this file
# bench/run, once per boot): the headline sizes in 5 interleaved rounds.
BENCH_ROUNDS=5
BENCH_DURATION=2
BENCH_WARMUP=0.5
BENCH_STREAM_SIZES=1,64,1K,64K,1M
BENCH_LATENCY_SIZES=1,64K
BENCH_RING_SIZES="16K 2M"
BENCH_RING_MSG_SIZES=64K
BENCH_CONNECTIONS="2"
