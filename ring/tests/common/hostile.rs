// SPDX-License-Identifier: GPL-2.0
//! Hostile-peer engine shared by `tests/hostile.rs` and the cargo-fuzz target: decodes a
//! byte string into ring operations interleaved with arbitrary overwrites of the header
//! words (also from inside copy callbacks, i.e. racing with the operation), and asserts
//! that every access stays inside the data area, no query reports more than the ring holds,
//! and corruption, once reported, stays reported. Panics (assertion failures) are bugs.

use super::HeapRing;
use ring::*;
use std::cell::Cell;
use std::sync::atomic::Ordering;

/// Every header word a peer may scribble on.
pub const WORDS: [usize; 6] = [
    OFF_PROD,
    OFF_PROD_FLAGS,
    OFF_WANT_SPACE,
    OFF_CONS,
    OFF_CONS_FLAGS,
    OFF_WANT_DATA,
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn byte(&mut self) -> u8 {
        self.u8().unwrap_or(0)
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn len(&mut self, size: usize) -> usize {
        // Mostly small, sometimes up to twice the ring, sometimes huge.
        match self.byte() % 8 {
            0 => usize::MAX,
            1 => size * 2,
            2 => size,
            _ => self.u32() as usize % (size * 2 + 1),
        }
    }
}

/// A peer's overwrite: which word and what value, chosen to hit edges (a valid-looking
/// index near the current one, exactly size away, one past) as well as random garbage.
fn corruption(inp: &mut Input<'_>, mem: &HeapRing) -> (usize, u32) {
    let off = WORDS[inp.byte() as usize % WORDS.len()];
    let size = mem.size() as u32;
    let cur = mem.word(off).load(Ordering::Relaxed);
    let v = match inp.byte() % 8 {
        0 => inp.u32(),
        1 => cur.wrapping_add(size),
        2 => cur.wrapping_add(size).wrapping_add(1),
        3 => cur.wrapping_sub(size),
        4 => cur.wrapping_sub(1),
        5 => cur.wrapping_add(inp.byte() as u32),
        6 => 0x8000_0000,
        _ => u32::MAX,
    };
    (off, v)
}

struct Sticky {
    corrupt: bool,
}

impl Sticky {
    /// Checks a result: `Corrupt` stays `Corrupt`, and no other error ever appears.
    fn check<T>(&mut self, r: Result<T, RingError>) -> Option<T> {
        match r {
            Ok(v) => {
                assert!(
                    !self.corrupt,
                    "endpoint recovered after reporting corruption"
                );
                Some(v)
            }
            Err(RingError::Corrupt) => {
                self.corrupt = true;
                None
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
}

/// Runs one hostile scenario described by `data`.
pub fn run(data: &[u8]) {
    let mut inp = Input(data);
    let size = 1usize << (inp.byte() % 13);
    let mem = HeapRing::new(size);
    let region = mem.region();
    let lo = mem.data_ptr() as usize;
    let hi = lo + size;
    let mut p = Producer::new(region);
    let mut c = Consumer::new(region);
    let (mut ps, mut cs) = (Sticky { corrupt: false }, Sticky { corrupt: false });
    let mut scratch = vec![0u8; size * 2 + 1];
    let mut steps = 0;

    while let Some(op) = inp.u8() {
        steps += 1;
        if steps > 10_000 {
            break;
        }
        // A racing overwrite to perform from inside the next copy callback, if any.
        let racing = if op & 0x80 != 0 && inp.byte() & 3 == 0 {
            Some(corruption(&mut inp, &mem))
        } else {
            None
        };
        let racing = Cell::new(racing);
        let (calls, total) = (Cell::new(0usize), Cell::new(0usize));
        // Validates one callback segment and maybe fires the racing overwrite.
        let seg = |ptr: usize, n: usize, asked: usize| {
            assert!(
                ptr >= lo && ptr <= hi && n <= hi - ptr,
                "segment {ptr:#x}+{n} outside data area {lo:#x}..{hi:#x}"
            );
            calls.set(calls.get() + 1);
            total.set(total.get() + n);
            assert!(calls.get() <= 2, "more than two segments");
            assert!(
                total.get() <= asked && total.get() <= size,
                "segments exceed request"
            );
            if let Some((off, v)) = racing.take() {
                mem.word(off).store(v, Ordering::Relaxed);
            }
        };
        match op & 0x7f {
            0..=15 => {
                let (off, v) = corruption(&mut inp, &mem);
                mem.word(off).store(v, Ordering::Relaxed);
            }
            16..=39 => {
                let len = inp.len(size);
                let short = inp.byte();
                let r = p.write(len, |dst, n| {
                    seg(dst as usize, n, len);
                    // SAFETY: `seg` checked that dst..dst+n lies inside the data area.
                    unsafe { std::ptr::write_bytes(dst, 0x5a, n) };
                    if short < 16 {
                        n / 2
                    } else {
                        n
                    }
                });
                if let Some(t) = ps.check(r) {
                    assert!(t.bytes <= len.min(size) && t.bytes == total.get().min(t.bytes));
                }
            }
            40..=63 => {
                let len = inp.len(size);
                let short = inp.byte();
                let r = c.read(len, |src, n| {
                    seg(src as usize, n, len);
                    // SAFETY: `seg` checked that src..src+n lies inside the data area, and
                    // scratch holds 2 * size + 1 >= n bytes.
                    unsafe { std::ptr::copy_nonoverlapping(src, scratch.as_mut_ptr(), n) };
                    if short < 16 {
                        n / 3
                    } else {
                        n
                    }
                });
                if let Some(t) = cs.check(r) {
                    assert!(t.bytes <= len.min(size));
                }
            }
            64..=79 => {
                let off = inp.len(size);
                let len = inp.len(size);
                let r = c.peek(off, len, |src, n| {
                    seg(src as usize, n, len);
                    n
                });
                if let Some(n) = cs.check(r) {
                    assert!(n <= len.min(size) && n <= size.saturating_sub(off));
                }
            }
            80..=87 => {
                let len = inp.len(size);
                if let Some(t) = cs.check(c.skip(len)) {
                    assert!(t.bytes <= len.min(size));
                }
            }
            88..=95 => {
                let len = inp.byte() as usize % (size + 1);
                let r = c.read_slice(&mut scratch[..len]);
                if let Some(t) = cs.check(r) {
                    assert!(t.bytes <= len);
                }
                let r = p.write_slice(&scratch[..len]);
                if let Some(t) = ps.check(r) {
                    assert!(t.bytes <= len);
                }
            }
            96..=103 => {
                if let Some(n) = cs.check(c.arm_readable()) {
                    assert!(n <= size);
                }
                if let Some(n) = ps.check(p.arm_writable()) {
                    assert!(n <= size);
                }
            }
            104..=111 => {
                let _ = c.producer_closed();
                let _ = p.consumer_closed();
                let _ = cs.check(c.at_eof());
            }
            112..=115 => {
                let _ = p.close();
            }
            116..=119 => {
                let _ = c.close();
            }
            _ => {
                // Reconnect: fresh header and endpoints, so one corruption does not end
                // the scenario.
                region.init();
                p = Producer::new(region);
                c = Consumer::new(region);
                ps.corrupt = false;
                cs.corrupt = false;
            }
        }
        // Queries: never more than the ring holds.
        if let Some(n) = cs.check(c.readable()) {
            assert!(n <= size);
        }
        if let Some(n) = ps.check(p.writable()) {
            assert!(n <= size);
        }
        if let Some(n) = ps.check(p.unsent()) {
            assert!(n <= size);
        }
        assert_eq!(p.is_corrupt(), ps.corrupt);
        assert_eq!(c.is_corrupt(), cs.corrupt);
    }
}
