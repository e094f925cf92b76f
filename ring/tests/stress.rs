// SPDX-License-Identifier: GPL-2.0
//! Two-thread stress test over one shared buffer: a producer and a consumer thread move
//! 1 GiB (release builds; 256 MiB in debug builds, override with `RING_STRESS_MIB`) through a
//! 256 KiB ring in random-sized chunks, with random short copies, sleeping through the
//! notify protocol when the ring is empty/full. The consumer checks every byte against the
//! source pattern and both sides compare stream checksums. A lost wakeup shows up as a
//! waiter that times out although its condition holds, and fails the test.
#![cfg(not(loom))]

mod common;

use common::{Checksum, HeapRing, Rng};
use ring::{Consumer, Producer};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A Xen event channel stand-in: a pending bit plus a wait queue.
#[derive(Default)]
struct Event {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Waits for a signal; returns false on timeout.
    fn wait(&self, timeout: Duration) -> bool {
        let mut p = self.pending.lock().unwrap();
        let deadline = Instant::now() + timeout;
        while !*p {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            p = self.cv.wait_timeout(p, deadline - now).unwrap().0;
        }
        *p = false;
        true
    }
}

const RING: usize = 256 << 10;
const PATTERN: usize = (1 << 20) + 7; // not a multiple of the ring size
const WAIT: Duration = Duration::from_secs(10);

fn total_bytes() -> u64 {
    let mib = std::env::var("RING_STRESS_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 256 } else { 1024 });
    mib << 20
}

#[test]
fn two_threads_move_data_with_checksum() {
    let total = total_bytes();
    let mut rng = Rng::new(42);
    let pattern: Arc<Vec<u8>> = Arc::new((0..PATTERN).map(|_| rng.next_u64() as u8).collect());
    let mem = Arc::new(HeapRing::new(RING));
    let region = mem.region();
    let to_cons = Arc::new(Event::default());
    let to_prod = Arc::new(Event::default());
    let t0 = Instant::now();

    let producer = {
        let (pattern, to_cons, to_prod, _mem) = (
            pattern.clone(),
            to_cons.clone(),
            to_prod.clone(),
            mem.clone(),
        );
        std::thread::spawn(move || {
            let mut p = Producer::new(region);
            let mut rng = Rng::new(1);
            let mut sum = Checksum::default();
            let (mut sent, mut sleeps) = (0u64, 0u64);
            while sent < total {
                let cap = if rng.below(4) == 0 { 256 } else { 128 << 10 };
                let want = (1 + rng.below(cap)) as u64;
                let want = want.min(total - sent) as usize;
                // Occasionally pretend the source faulted part-way (short copy).
                let budget = if rng.below(16) == 0 {
                    rng.below(want + 1)
                } else {
                    want
                };
                let mut left = budget;
                let mut pos = (sent % PATTERN as u64) as usize;
                let t = p
                    .write(want, |dst, n| {
                        let mut k = n.min(left);
                        left -= k;
                        let mut d = dst;
                        let got = k;
                        while k > 0 {
                            let c = k.min(PATTERN - pos);
                            // SAFETY: dst is valid for n >= got bytes; pattern has c bytes at pos.
                            unsafe { std::ptr::copy_nonoverlapping(pattern[pos..].as_ptr(), d, c) };
                            sum.update(&pattern[pos..pos + c]);
                            d = d.wrapping_add(c);
                            pos = (pos + c) % PATTERN;
                            k -= c;
                        }
                        got
                    })
                    .expect("producer: ring corrupt");
                assert!(t.bytes <= budget);
                if t.notify {
                    to_cons.signal();
                }
                sent += t.bytes as u64;
                if t.bytes == 0 && budget > 0 {
                    // Full: ask for space, re-check, sleep only if still full.
                    if p.arm_writable().unwrap() == 0 {
                        sleeps += 1;
                        if !to_prod.wait(WAIT) {
                            assert_eq!(
                                p.writable().unwrap(),
                                0,
                                "lost wakeup: space freed but producer not signalled"
                            );
                            panic!("consumer stalled");
                        }
                    }
                }
            }
            if p.close().notify {
                to_cons.signal();
            }
            (sum.finish(), sleeps)
        })
    };

    let consumer = {
        let (pattern, to_cons, to_prod, _mem) = (
            pattern.clone(),
            to_cons.clone(),
            to_prod.clone(),
            mem.clone(),
        );
        std::thread::spawn(move || {
            let mut c = Consumer::new(region);
            let mut rng = Rng::new(2);
            let mut sum = Checksum::default();
            let (mut got, mut sleeps, mut peeks) = (0u64, 0u64, 0u64);
            let mut buf = vec![0u8; 128 << 10];
            loop {
                let cap = if rng.below(4) == 0 { 256 } else { buf.len() };
                let want = 1 + rng.below(cap);
                if rng.below(64) == 0 {
                    // MSG_PEEK at an offset must see the same bytes without consuming.
                    let off = rng.below(64);
                    let n = c.peek_slice(off, &mut buf[..want]).unwrap();
                    let start = ((got + off as u64) % PATTERN as u64) as usize;
                    for (i, b) in buf[..n].iter().enumerate() {
                        assert_eq!(*b, pattern[(start + i) % PATTERN], "peek mismatch");
                    }
                    peeks += 1;
                }
                let budget = if rng.below(16) == 0 {
                    rng.below(want + 1)
                } else {
                    want
                };
                let t = c
                    .read_slice(&mut buf[..budget])
                    .expect("consumer: ring corrupt");
                if t.notify {
                    to_prod.signal();
                }
                if t.bytes > 0 {
                    let data = &buf[..t.bytes];
                    let mut pos = (got % PATTERN as u64) as usize;
                    let mut rest = data;
                    while !rest.is_empty() {
                        let c = rest.len().min(PATTERN - pos);
                        assert!(
                            rest[..c] == pattern[pos..pos + c],
                            "data mismatch at stream offset {got}"
                        );
                        rest = &rest[c..];
                        pos = (pos + c) % PATTERN;
                    }
                    sum.update(data);
                    got += t.bytes as u64;
                    continue;
                }
                if budget == 0 {
                    continue;
                }
                // Empty: ask for data, re-check, then check for end of stream, then sleep.
                if c.arm_readable().unwrap() > 0 {
                    continue;
                }
                if c.producer_closed() {
                    if c.at_eof().unwrap() {
                        break;
                    }
                    continue;
                }
                sleeps += 1;
                if !to_cons.wait(WAIT) {
                    assert_eq!(
                        c.readable().unwrap(),
                        0,
                        "lost wakeup: data arrived but consumer not signalled"
                    );
                    panic!("producer stalled");
                }
            }
            (sum.finish(), got, sleeps, peeks)
        })
    };

    let (psum, psleeps) = producer.join().expect("producer thread");
    let (csum, got, csleeps, peeks) = consumer.join().expect("consumer thread");
    let dt = t0.elapsed();
    eprintln!(
        "stress: {} MiB in {:.2?} ({:.2} GiB/s), producer slept {psleeps}x, consumer slept {csleeps}x, {peeks} peeks",
        got >> 20,
        dt,
        got as f64 / dt.as_secs_f64() / (1u64 << 30) as f64
    );
    assert_eq!(got, total);
    assert_eq!(psum, csum, "checksum mismatch");
    assert_eq!(psum.1, total);
}
