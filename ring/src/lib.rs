// SPDX-License-Identifier: GPL-2.0
//! YASMIN's shared producer/consumer byte ring, as a userspace crate.
//!
//! The implementation lives in `ring.rs` (and the SEQPACKET record framing on top of it in
//! `record.rs`), which the kernel module also compiles directly
//! (`#[path = "../ring/src/ring.rs"] mod ring;`); this crate only re-exports it for tests,
//! fuzzing and benchmarks. See the `ring` module docs (or `README.md`) for the layout and
//! the protocol.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, rust_2018_idioms)]

/// SOCK_SEQPACKET records over the ring (`record.rs`, also compiled into the module).
pub mod record;
mod ring;

pub use crate::ring::*;
