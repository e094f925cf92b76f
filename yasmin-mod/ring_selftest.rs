// SPDX-License-Identifier: GPL-2.0
//! Load-time self-test of the shared ring as compiled into the kernel: the same source
//! as the userspace crate (`ring/src/ring.rs`), exercised here with the kernel's compiler
//! flags, atomics and allocator before any peer depends on it. Refuses to load on failure.

use crate::record;
use crate::ring::RingError;
use crate::xen::rings::{LocalRing, LOCAL_RING_DATA as DATA};
use kernel::prelude::*;

const TOTAL: usize = 256 * 1024;
const CHUNK_MAX: usize = 1500;

/// Byte `i` of the test stream.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9)) as u8
}

/// Moves TOTAL bytes through a 4 KiB ring in uneven chunks (every wrap offset is hit),
/// checks order and content, the notify protocol, and that a corrupted peer index is
/// reported as `Corrupt` instead of being trusted.
pub(crate) fn run() -> Result {
    let mut r = LocalRing::new()?;
    let fail = |what: &str| {
        pr_err!("ring self-test failed: {}\n", what);
        EIO
    };
    // An empty ring: the consumer arms its wake bit, the next write must ask for a signal.
    if r.cons.arm_readable().map_err(|_| EIO)? != 0 {
        return Err(fail("empty ring reports data"));
    }
    let mut buf = KVec::from_elem(0u8, CHUNK_MAX, GFP_KERNEL)?;
    let (mut written, mut read, mut chunk, mut notified) = (0usize, 0usize, 1usize, false);
    while read < TOTAL {
        chunk = (chunk * 7 + 13) % CHUNK_MAX + 1;
        let want = chunk.min(TOTAL - written);
        for (k, b) in buf[..want].iter_mut().enumerate() {
            *b = pattern(written + k);
        }
        // A wrapped write is copied in two segments inside the ring.
        let t = r
            .prod
            .write_slice(&buf[..want])
            .map_err(|_| fail("write"))?;
        notified |= t.notify;
        written += t.bytes;
        let ask = chunk / 2 + 1;
        let t = r
            .cons
            .read_slice(&mut buf[..ask])
            .map_err(|_| fail("read"))?;
        let bad = buf[..t.bytes]
            .iter()
            .enumerate()
            .any(|(k, &b)| b != pattern(read + k));
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
    r.force_prod_index((read + DATA + 1) as u32);
    if r.cons.readable() != Err(RingError::Corrupt) {
        return Err(fail("corrupt producer index accepted"));
    }
    records()
}

/// SOCK_SEQPACKET records (`ring/src/record.rs`) through a fresh ring: sizes up to the
/// largest record, across the wrap, each read back whole with its length and EOR bit,
/// and a record that does not fit yet refused without publishing anything.
fn records() -> Result {
    let mut r = LocalRing::new()?;
    let fail = |what: &str| {
        pr_err!("ring self-test failed: records: {}\n", what);
        EIO
    };
    let max = record::max_len(DATA);
    let mut buf = KVec::from_elem(0u8, DATA, GFP_KERNEL)?;
    let mut out = KVec::from_elem(0u8, DATA, GFP_KERNEL)?;
    for (i, &len) in [1usize, 3, 1000, max, 17, max / 2, max / 2, 4]
        .iter()
        .enumerate()
    {
        for (k, b) in buf[..len].iter_mut().enumerate() {
            *b = pattern(i * 7 + k);
        }
        let sent = record::send_slice(&mut r.prod, &buf[..len], i % 2 == 1);
        if !matches!(sent, Ok(record::Sent::Written(_))) {
            return Err(fail("send"));
        }
        if len > max / 2
            && !matches!(
                record::send(&mut r.prod, max, false, |_, n| n),
                Ok(record::Sent::NoRoom { .. })
            )
        {
            return Err(fail("a record larger than the free space was not refused"));
        }
        let rec = record::recv_slice(&mut r.cons, &mut out);
        let ok = matches!(rec, Ok(Some(g)) if g.head.len == len && g.head.eor == (i % 2 == 1) && g.copied == len);
        if !ok || out[..len] != buf[..len] {
            return Err(fail("record content, length or EOR"));
        }
    }
    if !matches!(
        record::send(&mut r.prod, max + 1, false, |_, n| n),
        Ok(record::Sent::BadLength)
    ) {
        return Err(fail("an oversized record was not refused"));
    }
    Ok(())
}
