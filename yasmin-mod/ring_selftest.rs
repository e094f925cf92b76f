// SPDX-License-Identifier: GPL-2.0
//! Load-time self-test of the shared ring as compiled into the kernel: the same source
//! as the userspace crate (`ring/src/ring.rs`), exercised here with the kernel's compiler
//! flags, atomics and allocator before any peer depends on it. Refuses to load on failure.

use crate::ring::{Consumer, Producer, Region, RingError, HEADER_SIZE, OFF_PROD};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;

const DATA: usize = 4096;
const TOTAL: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Area([u8; HEADER_SIZE + DATA]);

/// Byte `i` of the test stream.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9)) as u8
}

/// Moves TOTAL bytes through a 4 KiB ring in uneven chunks (every wrap offset is hit),
/// checks order and content, the notify protocol, and that a corrupted peer index is
/// reported as `Corrupt` instead of being trusted.
pub(crate) fn run() -> Result {
    let mut area = KBox::<Area>::new_uninit(GFP_KERNEL)?;
    let base = area.as_mut_ptr().cast::<u8>();
    // SAFETY: `base` points to the `size_of::<Area>()` bytes owned by `area`.
    unsafe { core::ptr::write_bytes(base, 0, core::mem::size_of::<Area>()) };
    // SAFETY: the area lives until the end of this function, outlasting the endpoints, and
    // no Rust reference to it is used while they exist.
    let region = unsafe { Region::new(base, HEADER_SIZE + DATA) }.map_err(|_| EINVAL)?;
    region.init();
    let mut p = Producer::new(region);
    let mut c = Consumer::new(region);

    let fail = |what: &str| {
        pr_err!("ring self-test failed: {}\n", what);
        EIO
    };
    // An empty ring: the consumer arms its wake bit, the next write must ask for a signal.
    if c.arm_readable().map_err(|_| EIO)? != 0 {
        return Err(fail("empty ring reports data"));
    }
    let (mut written, mut read, mut chunk, mut notified) = (0usize, 0usize, 1usize, false);
    while read < TOTAL {
        chunk = (chunk * 7 + 13) % 1500 + 1;
        let want = chunk.min(TOTAL - written);
        // Stream position of the next byte: a wrapped copy comes in two segments.
        let mut pos = written;
        let t = p
            .write(want, |dst, n| {
                for k in 0..n {
                    // SAFETY: the ring hands out `dst` valid for `n` byte writes.
                    unsafe { dst.add(k).write(pattern(pos + k)) };
                }
                pos += n;
                n
            })
            .map_err(|_| fail("write"))?;
        notified |= t.notify;
        written += t.bytes;
        let mut bad = false;
        let mut pos = read;
        let t = c
            .read(chunk / 2 + 1, |src, n| {
                for k in 0..n {
                    // SAFETY: the ring hands out `src` valid for `n` byte reads.
                    bad |= unsafe { src.add(k).read() } != pattern(pos + k);
                }
                pos += n;
                n
            })
            .map_err(|_| fail("read"))?;
        read += t.bytes;
        if bad || read > written || written - read > DATA {
            return Err(fail("stream content or accounting"));
        }
        if t.bytes == 0 && written == TOTAL && read < TOTAL {
            return Err(fail("stalled"));
        }
    }
    if !notified {
        return Err(fail("armed consumer never asked to be signalled"));
    }
    // A hostile peer index: more data than the ring holds.
    // SAFETY: OFF_PROD is an aligned u32 inside the header page of `area`.
    let prod = unsafe { AtomicU32::from_ptr(base.add(OFF_PROD).cast::<u32>()) };
    prod.store((read + DATA + 1) as u32, Ordering::Release);
    if c.readable() != Err(RingError::Corrupt) {
        return Err(fail("corrupt producer index accepted"));
    }
    drop(area);
    Ok(())
}
