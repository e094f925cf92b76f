# The matrix of the deterministic-mode reproducibility runs (issue 17;
# BENCH_DETERMINISTIC=1 BENCH_PARAMS=this file bench/run, once per boot): the headline
# sizes in 3 interleaved rounds. Under -icount the bed runs at about half the speed of
# wall time, so the matrix is kept small.
BENCH_ROUNDS=3
BENCH_DURATION=2
BENCH_WARMUP=0.5
BENCH_STREAM_SIZES=64,64K
BENCH_LATENCY_SIZES=1
BENCH_RING_SIZES=""
BENCH_RING_MSG_SIZES=64K
BENCH_CONNECTIONS=""
