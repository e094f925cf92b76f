#!/usr/bin/env bash
# Extra checks for the ring crate, beyond `cargo test` (called by tools/test-all):
#   1. loom model checking of the producer/consumer + notify-bit protocol (tests/loom.rs);
#   2. Miri (undefined behaviour, out-of-bounds, data races) on the hostile-peer and model
#      tests, if a nightly toolchain with the miri and rust-src components is available;
#      otherwise the hostile-peer test under valgrind memcheck, if valgrind is installed.
# Environment: LOOM_MAX_PREEMPTIONS (default 4), RING_MIRI=0 to skip Miri,
# RING_FUZZ_SECS=N to also run the cargo-fuzz target for N seconds (needs cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
RING=ring

step() { echo "== ring-checks: $*"; }

step "loom (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-4})"
t0=$(date +%s)
LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-4} RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p ring --release --test loom
echo "loom: $(( $(date +%s) - t0 ))s"

miri_ok=0
if [ "${RING_MIRI:-1}" != 0 ]; then
    if ! cargo +nightly miri --version >/dev/null 2>&1; then
        # Bounded: on a machine without access to the toolchain server this must not hang.
        timeout 120 rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
    fi
    if cargo +nightly miri --version >/dev/null 2>&1 && cargo +nightly miri setup >/dev/null 2>&1; then
        miri_ok=1
    fi
fi
if [ "$miri_ok" = 1 ]; then
    step "miri (hostile-peer and model tests)"
    t0=$(date +%s)
    MIRIFLAGS="-Zmiri-env-forward=PROPTEST_CASES -Zmiri-env-forward=HOSTILE_ITERS" PROPTEST_CASES=${PROPTEST_CASES:-16} \
        cargo +nightly miri test -p ring --test hostile --test model
    echo "miri: $(( $(date +%s) - t0 ))s"
elif command -v valgrind >/dev/null 2>&1; then
    step "Miri unavailable: hostile-peer test under valgrind memcheck instead"
    cargo test -p ring --test hostile --no-run
    bin=$(ls -t target/debug/deps/hostile-* | grep -v '\.d$' | head -1)
    HOSTILE_ITERS=2000 valgrind --error-exitcode=99 --quiet "$bin" --test-threads=1
else
    step "SKIP: neither Miri nor valgrind available"
fi

if [ -n "${RING_FUZZ_SECS:-}" ]; then
    for target in hostile record; do
        step "cargo-fuzz $target target for ${RING_FUZZ_SECS}s"
        (cd "$RING/fuzz" && cargo +nightly fuzz run "$target" -- -max_total_time="$RING_FUZZ_SECS" -max_len=4096)
    done
fi
echo "ring-checks: all passed"
