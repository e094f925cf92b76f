// SPDX-License-Identifier: GPL-2.0
//! Fuzz target: SOCK_SEQPACKET records (`record.rs`) read from a ring a hostile producer
//! filled with arbitrary bytes. The first input byte picks the ring size, the next ones
//! the receive buffer sizes; the rest is the ring's content, fed as space frees. Any
//! panic is a bug, and so is a record that claims more than the ring can hold or a
//! poisoned consumer that recovers. Run: `cargo +nightly fuzz run record` in `ring/`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use ring::record;
use ring::{Consumer, Producer, RingError};

fuzz_target!(|data: &[u8]| {
    let Some((&size_log2, rest)) = data.split_first() else { return };
    let size = 1usize << (3 + size_log2 % 8);
    let (maxes, bytes) = rest.split_at(rest.len().min(16));
    let mem = common::HeapRing::new(size);
    let r = mem.region();
    let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
    let mut fed = 0;
    let mut poisoned = false;
    let mut out = vec![0u8; size];
    for round in 0..64 {
        if fed < bytes.len() {
            fed += p.write_slice(&bytes[fed..]).unwrap().bytes;
        }
        let max = maxes.get(round % maxes.len().max(1)).map_or(size, |&m| m as usize * size / 255);
        match record::recv_slice(&mut c, &mut out[..max.min(size)]) {
            Err(RingError::Corrupt) => poisoned = true,
            Err(e) => panic!("unexpected {e:?}"),
            Ok(got) => {
                assert!(!poisoned, "a poisoned consumer recovered");
                if let Some(g) = got {
                    assert!(g.head.len >= 1 && g.head.len <= record::max_len(size));
                    assert_eq!(g.copied, max.min(size).min(g.head.len));
                }
            }
        }
    }
});
