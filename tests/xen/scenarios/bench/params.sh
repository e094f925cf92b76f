# Benchmark matrix (bench/run may replace this file; BENCH_QUICK=1 there gives a short one).
# Stream and latency runs repeat in BENCH_ROUNDS interleaved rounds (see guest1.sh).
BENCH_ROUNDS=5
BENCH_DURATION=2
BENCH_WARMUP=0.5
BENCH_STREAM_SIZES=1,64,1K,4K,64K,1M,4M
BENCH_LATENCY_SIZES=1,64,1K,64K
BENCH_RING_SIZES="4K 16K 64K 256K 1M 2M"
BENCH_RING_MSG_SIZES=4K,64K,1M
BENCH_CONNECTIONS="2 4"
