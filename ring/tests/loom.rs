// SPDX-License-Identifier: GPL-2.0
//! Model checking of the producer/consumer and notify-bit protocol with loom.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ring --release --test loom` (see
//! `run-checks.sh`). Under `cfg(loom)` the ring's header words are loom atomics (through the
//! `sync` shim in `ring.rs`), and the data area is shadowed by `loom::cell::UnsafeCell`s: the
//! copy callbacks translate a ring pointer into cell indices and move the bytes through the
//! cells, so loom reports any read of a data byte that is not ordered after its write (torn
//! or stale data) as a causality violation. Event channels are a pending flag plus a condvar;
//! a lost wakeup leaves both threads blocked, which loom reports as a deadlock.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use ring::{Consumer, LoomHeader, Producer, Region};

/// Xen event channel stand-in: a pending bit and a wait queue.
struct Event {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    fn new() -> Self {
        Event {
            pending: Mutex::new(false),
            cv: Condvar::new(),
        }
    }
    fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn wait(&self) {
        let mut p = self.pending.lock().unwrap();
        while !*p {
            p = self.cv.wait(p).unwrap();
        }
        *p = false;
    }
}

struct Shared {
    hdr: LoomHeader,
    /// Backing memory the ring computes pointers into; never dereferenced.
    raw: Box<[u8]>,
    /// The bytes themselves, with loom's access tracking.
    cells: Vec<UnsafeCell<u8>>,
    to_cons: Event,
    to_prod: Event,
}

// SAFETY: `raw` is never dereferenced (only used for address arithmetic); everything else is
// loom-tracked and itself Send + Sync.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn new(size: usize) -> Arc<Self> {
        Arc::new(Shared {
            hdr: LoomHeader::new(),
            raw: vec![0u8; size].into_boxed_slice(),
            cells: (0..size).map(|_| UnsafeCell::new(0)).collect(),
            to_cons: Event::new(),
            to_prod: Event::new(),
        })
    }
    fn region(&self) -> Region {
        let hdr = &self.hdr as *const LoomHeader as *mut u8;
        let data = self.raw.as_ptr() as *mut u8;
        // SAFETY: under loom the header pointer is a `LoomHeader` that lives as long as the
        // `Arc<Shared>` every thread holds; `data` is only used for address arithmetic.
        unsafe { Region::from_parts(hdr, data, self.raw.len()) }.unwrap()
    }
    fn index(&self, p: *const u8, n: usize) -> usize {
        let i = p as usize - self.raw.as_ptr() as usize;
        assert!(i + n <= self.raw.len(), "segment outside the data area");
        i
    }
}

/// Producer thread body: sends `msg` in chunks of at most `chunk`, sleeping when full, then
/// closes if asked to.
fn produce(s: &Shared, msg: &[u8], chunk: usize, close: bool) {
    let mut p = Producer::new(s.region());
    let mut sent = 0;
    while sent < msg.len() {
        let len = chunk.min(msg.len() - sent);
        let mut pos = sent;
        let t = p
            .write(len, |dst, n| {
                let i = s.index(dst, n);
                for k in 0..n {
                    s.cells[i + k].with_mut(|c| {
                        // SAFETY: loom checks this access against concurrent ones.
                        unsafe { *c = msg[pos + k] }
                    });
                }
                pos += n;
                n
            })
            .unwrap();
        if t.notify {
            s.to_cons.signal();
        }
        sent += t.bytes;
        if t.bytes == 0 && p.arm_writable().unwrap() == 0 && !p.consumer_closed() {
            s.to_prod.wait();
        }
    }
    if close && p.close().notify {
        s.to_cons.signal();
    }
}

/// Consumer thread body: reads in chunks of at most `chunk` until `want` bytes arrived (or
/// end of stream if `want` is None), sleeping when empty. Returns the bytes.
fn consume(s: &Shared, chunk: usize, want: Option<usize>) -> Vec<u8> {
    let mut c = Consumer::new(s.region());
    let mut out = Vec::new();
    loop {
        if Some(out.len()) == want {
            return out;
        }
        let t = c
            .read(chunk, |src, n| {
                let i = s.index(src, n);
                for k in 0..n {
                    // SAFETY: loom checks this access against concurrent ones.
                    out.push(s.cells[i + k].with(|c| unsafe { *c }));
                }
                n
            })
            .unwrap();
        if t.notify {
            s.to_prod.signal();
        }
        if t.bytes > 0 {
            continue;
        }
        // Empty: arm, re-check data, then end of stream, and only then sleep.
        if c.arm_readable().unwrap() > 0 {
            continue;
        }
        if c.producer_closed() {
            if c.at_eof().unwrap() {
                return out;
            }
            continue;
        }
        s.to_cons.wait();
    }
}

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// Both notify bits: a 2-byte ring carrying 4 bytes forces the producer to wait for space
/// and the consumer to wait for data. No lost wakeup (deadlock), no stale byte.
#[test]
fn transfer_with_wakeups() {
    model(|| {
        let s = Shared::new(2);
        let msg = [1u8, 2, 3, 4];
        let s2 = s.clone();
        let prod = thread::spawn(move || produce(&s2, &msg, 2, false));
        let got = consume(&s, 1, Some(4));
        prod.join().unwrap();
        assert_eq!(got, msg);
    });
}

/// Wrap-around with two-segment copies: 3 bytes per write into a 4-byte ring.
#[test]
fn wrapping_segments() {
    model(|| {
        let s = Shared::new(4);
        let msg = [9u8, 8, 7, 6, 5];
        let s2 = s.clone();
        let prod = thread::spawn(move || produce(&s2, &msg, 3, false));
        let got = consume(&s, 3, Some(5));
        prod.join().unwrap();
        assert_eq!(got, msg);
    });
}

/// End of stream: the consumer waits for data or close; the close must wake it and every
/// byte written before the close must be delivered.
#[test]
fn close_wakes_consumer() {
    model(|| {
        let s = Shared::new(2);
        let s2 = s.clone();
        let prod = thread::spawn(move || produce(&s2, &[42], 1, true));
        let got = consume(&s, 2, None);
        prod.join().unwrap();
        assert_eq!(got, [42]);
    });
}
