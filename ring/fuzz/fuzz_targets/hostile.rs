// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: the hostile-peer engine of `tests/common/hostile.rs` (ring operations
//! interleaved with arbitrary header overwrites, also racing inside copy callbacks), driven
//! by libFuzzer input. Any panic is a bug: an out-of-range segment, an over-report, or a
//! poisoned endpoint that recovered. Run: `cargo +nightly fuzz run hostile` in `ring/`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::hostile::run(data);
});
