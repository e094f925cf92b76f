# A PVH pair against a PV pair in deterministic mode (issue 16; BENCH_GUESTS=pvh,pvh
# BENCH_DETERMINISTIC=1 BENCH_PARAMS=this file bench/run): YASMIN and TCP over netfront
# only, one round. libvchan is left out: a PVH guest on the bed's shadow paging crashed
# in the kernel's entry code (a page fault recursing on the entry trampoline, no YASMIN
# frame) during its run on 2026-12-08.
BENCH_ROUNDS=1
BENCH_TRANSPORTS="Y T"
BENCH_DURATION=2
BENCH_WARMUP=0.5
BENCH_STREAM_SIZES=64,64K
BENCH_LATENCY_SIZES=1
BENCH_RING_SIZES=""
BENCH_RING_MSG_SIZES=64K
BENCH_CONNECTIONS=""
