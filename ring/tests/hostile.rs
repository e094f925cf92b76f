// SPDX-License-Identifier: GPL-2.0
//! Hostile-peer tests: random overwrites of the header at random points (between and during
//! operations, and from a racing thread) never cause an access outside the data area, a
//! report of more than the ring holds, a panic or a hang. Also run under Miri (see
//! `run-checks.sh`), where out-of-bounds or invalid accesses would be reported as UB.
#![cfg(not(loom))]

mod common;

use common::{hostile, HeapRing, Rng};
use ring::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn iters(default: usize, miri: usize) -> usize {
    std::env::var("HOSTILE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { miri } else { default })
}

#[test]
fn random_corruption_fuzz_style() {
    let mut rng = Rng::new(0xbad_c0de);
    for _ in 0..iters(20_000, 150) {
        let len = rng.below(if cfg!(miri) { 200 } else { 2000 });
        let input: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        hostile::run(&input);
    }
}

/// Specific attacks with known outcomes.
#[test]
fn targeted_attacks() {
    let mem = HeapRing::new(64);
    let r = mem.region();
    let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
    assert_eq!(p.write_slice(&[1; 10]).unwrap().bytes, 10);
    // Consumer index ahead of the producer: corrupt for the producer.
    mem.word(OFF_CONS).store(11, Ordering::Relaxed);
    assert_eq!(p.writable(), Err(RingError::Corrupt));
    // Sticky even after the peer "repairs" it.
    mem.word(OFF_CONS).store(0, Ordering::Relaxed);
    assert_eq!(p.writable(), Err(RingError::Corrupt));
    assert_eq!(p.write_slice(&[1]), Err(RingError::Corrupt));
    assert_eq!(p.arm_writable(), Err(RingError::Corrupt));
    // The consumer never trusts its own index in shared memory: overwriting it changes nothing.
    mem.word(OFF_CONS).store(0xdead_beef, Ordering::Relaxed);
    assert_eq!(c.readable().unwrap(), 10);
    // Producer index more than `size` ahead of the consumer: corrupt for the consumer.
    mem.word(OFF_PROD).store(65, Ordering::Relaxed);
    assert_eq!(c.readable(), Err(RingError::Corrupt));
    assert_eq!(c.read_slice(&mut [0; 4]), Err(RingError::Corrupt));
    assert_eq!(c.peek_slice(0, &mut [0; 4]), Err(RingError::Corrupt));

    // Exactly full (prod - cons == size) is legal, one more is not.
    let mem = HeapRing::new(64);
    let r = mem.region();
    let mut c = Consumer::new(r);
    mem.word(OFF_PROD).store(64, Ordering::Relaxed);
    assert_eq!(c.readable().unwrap(), 64);
    // Producer moving backwards below our consumer index wraps to a huge count: corrupt.
    assert_eq!(c.skip(10).unwrap().bytes, 10);
    mem.word(OFF_PROD).store(9, Ordering::Relaxed);
    assert_eq!(c.readable(), Err(RingError::Corrupt));
    // Garbage in the "wake me" words: any non-zero value is "set", cleared once.
    let mem = HeapRing::new(64);
    let r = mem.region();
    let mut p = Producer::new(r);
    mem.word(OFF_WANT_DATA)
        .store(0xffff_ffff, Ordering::Relaxed);
    assert!(p.write_slice(&[1]).unwrap().notify);
    assert!(!p.write_slice(&[1]).unwrap().notify);
}

/// A peer thread scribbles over every header word as fast as it can while this side runs
/// reads and writes with bounds-checking callbacks.
#[test]
fn racing_peer_thread() {
    let size = 4096;
    let mem = Arc::new(HeapRing::new(size));
    let r = mem.region();
    let lo = mem.data_ptr() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (mem, stop) = (mem.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(7);
            let offs = hostile::WORDS;
            while !stop.load(Ordering::Relaxed) {
                let off = offs[rng.below(offs.len())];
                let cur = mem.word(off).load(Ordering::Relaxed);
                let v = match rng.below(3) {
                    0 => rng.next_u64() as u32,
                    1 => cur.wrapping_add(rng.below(2 * size) as u32),
                    _ => cur.wrapping_sub(rng.below(2 * size) as u32),
                };
                mem.word(off).store(v, Ordering::Relaxed);
            }
        })
    };
    let check = |ptr: usize, n: usize| assert!(ptr >= lo && ptr + n <= lo + size);
    let mut rng = Rng::new(8);
    let mut corrupt = 0;
    for round in 0..iters(2000, 10) {
        // Fresh endpoints every few rounds so that poisoning does not end the test early.
        let mut p = Producer::new(r);
        let mut c = Consumer::new(r);
        for _ in 0..(round % 50) {
            let len = rng.below(3 * size);
            let w = p.write(len, |d, n| {
                check(d as usize, n);
                n
            });
            let rd = c.read(len, |s, n| {
                check(s as usize, n);
                n
            });
            let pk = c.peek(rng.below(size), len, |s, n| {
                check(s as usize, n);
                n
            });
            for n in [
                w.map(|t| t.bytes),
                rd.map(|t| t.bytes),
                pk,
                c.readable(),
                p.writable(),
                p.unsent(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(n <= size);
            }
            if p.is_corrupt() || c.is_corrupt() {
                corrupt += 1;
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    // Under Miri the few rounds may all run before the attacker thread is scheduled.
    assert!(
        cfg!(miri) || corrupt > 0,
        "the attacker never managed to corrupt anything: test is not testing"
    );
}
