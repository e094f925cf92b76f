// SPDX-License-Identifier: GPL-2.0
//! SOCK_SEQPACKET records over the byte ring.
//!
//! Compiled twice, like `ring.rs`: into the kernel module (`#[path =
//! "../ring/src/record.rs"] mod record;`) and into the userspace `ring` crate (tests,
//! fuzzing). `core` only, no `unsafe` beyond the copy of the header bytes into ring memory.
//!
//! # Format (the protocol)
//!
//! On a SEQPACKET connection each direction's ring carries whole records, back to back:
//!
//! | offset | size  | field    | meaning |
//! |--------|-------|----------|---------|
//! | 0      | 4     | `header` | little-endian `u32`: bits 0-30 the payload length `len`, bit 31 [`FLAG_EOR`] (the sender's `MSG_EOR`) |
//! | 4      | `len` | payload  | the message |
//!
//! `len` is `1..=max_len(size)`: a record never needs more than the whole ring, so the
//! consumer can always see it complete. A producer publishes a record's header and payload
//! with one index update ([`Producer::write_exact`]): a consumer sees whole records or
//! nothing, and a sender whose user buffer faults publishes nothing.
//!
//! # Hostile peer
//!
//! The header is copied out of shared memory once and validated before use; a length of 0
//! or above [`max_len`] poisons the consumer ([`RingError::Corrupt`]: the transport resets
//! the connection). The payload is never interpreted. The consumer consumes exactly
//! `HEADER + len` from the header it validated, whatever the peer rewrites meanwhile: a
//! peer that does so can garble its own later records (caught as corrupt, or delivered as
//! garbage), never reach outside the ring.

use crate::ring::{Consumer, Producer, RingError, Transfer};

/// Bytes of a record header.
pub const HEADER: usize = 4;
/// Header bit: the record ends with `MSG_EOR`.
pub const FLAG_EOR: u32 = 1 << 31;

/// Largest payload of one record in a ring of `capacity` bytes.
pub const fn max_len(capacity: usize) -> usize {
    let max = capacity.saturating_sub(HEADER);
    // The length field has 31 bits (rings are at most 2^31 bytes, so this never binds).
    if max > (FLAG_EOR - 1) as usize {
        (FLAG_EOR - 1) as usize
    } else {
        max
    }
}

/// A record's header, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length (`1..=max_len`).
    pub len: usize,
    /// The sender set `MSG_EOR`.
    pub eor: bool,
}

/// What [`send`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The whole record is in the ring; signal the peer if `notify`.
    Written(Transfer),
    /// Not enough free space now: `need` bytes (header included) must be free.
    NoRoom {
        /// Free bytes the record needs.
        need: usize,
    },
    /// The payload copy came up short (a faulting user buffer): nothing was published.
    Fault,
    /// `len` is 0 or above [`max_len`] of this ring: no such record can be sent.
    BadLength,
}

/// Sends one record of `len` payload bytes, copied by `copy_in` (same contract as
/// [`Producer::write`]), all or nothing.
pub fn send<F>(
    prod: &mut Producer,
    len: usize,
    eor: bool,
    mut copy_in: F,
) -> Result<Sent, RingError>
where
    F: FnMut(*mut u8, usize) -> usize,
{
    if len == 0 || len > max_len(prod.capacity()) {
        return Ok(Sent::BadLength);
    }
    let need = HEADER + len;
    // `len <= max_len < 2^31`: the length bits never reach the flag.
    let word = len as u32 | if eor { FLAG_EOR } else { 0 };
    let header = word.to_le_bytes();
    let mut pos = 0usize; // record bytes handed to the ring so far
    let mut fault = false;
    let written = prod.write_exact(need, |dst, n| {
        let mut done = 0;
        if pos < HEADER {
            let k = (HEADER - pos).min(n);
            // SAFETY: `header[pos..pos + k]` is in bounds (`pos + k <= HEADER`), and `dst`
            // is valid for writes of `n >= k` bytes (contract of `write_exact`); ring
            // memory cannot overlap a local array.
            unsafe { core::ptr::copy_nonoverlapping(header.as_ptr().add(pos), dst, k) };
            pos += k;
            done = k;
        }
        if done < n {
            let c = copy_in(dst.wrapping_add(done), n - done).min(n - done);
            fault |= c < n - done;
            pos += c;
            done += c;
        }
        done
    })?;
    Ok(match written {
        Some(t) => Sent::Written(t),
        None if fault => Sent::Fault,
        None => Sent::NoRoom { need },
    })
}

/// The first record's header, once the whole record is readable (`None` before, also on
/// an empty ring). A header no well-behaved producer writes poisons `cons`.
pub fn head(cons: &mut Consumer) -> Result<Option<Head>, RingError> {
    let avail = cons.readable()?;
    if avail < HEADER {
        return Ok(None);
    }
    let mut b = [0u8; HEADER];
    if cons.peek_slice(0, &mut b)? != HEADER {
        return Ok(None);
    }
    let word = u32::from_le_bytes(b);
    let len = (word & !FLAG_EOR) as usize;
    if len == 0 || len > max_len(cons.capacity()) {
        cons.poison();
        return Err(RingError::Corrupt);
    }
    if avail < HEADER + len {
        return Ok(None);
    }
    Ok(Some(Head {
        len,
        eor: word & FLAG_EOR != 0,
    }))
}

/// What [`recv`] took from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The record's header (its whole length, also when only part was copied).
    pub head: Head,
    /// Payload bytes `copy_out` took: `min(max, head.len)` unless it faulted.
    pub copied: usize,
    /// The consumption (signal the peer if `notify`).
    pub transfer: Transfer,
}

/// Takes the first whole record: copies up to `max` payload bytes with `copy_out` (same
/// contract as [`Consumer::read`]) and consumes the whole record, also the part that did
/// not fit (`MSG_TRUNC`) or that a faulting copy left behind. `None`: no whole record yet.
pub fn recv<F>(cons: &mut Consumer, max: usize, copy_out: F) -> Result<Option<Received>, RingError>
where
    F: FnMut(*const u8, usize) -> usize,
{
    let Some(head) = head(cons)? else {
        return Ok(None);
    };
    let copied = cons.peek(HEADER, max.min(head.len), copy_out)?;
    let transfer = cons.skip(HEADER + head.len)?;
    if transfer.bytes != HEADER + head.len {
        // The producer index moved backwards under us: the record is no longer there.
        cons.poison();
        return Err(RingError::Corrupt);
    }
    Ok(Some(Received {
        head,
        copied,
        transfer,
    }))
}

/// Like [`recv`] without consuming (`MSG_PEEK`): the header and the payload bytes copied.
pub fn peek<F>(
    cons: &mut Consumer,
    max: usize,
    copy_out: F,
) -> Result<Option<(Head, usize)>, RingError>
where
    F: FnMut(*const u8, usize) -> usize,
{
    let Some(head) = head(cons)? else {
        return Ok(None);
    };
    let copied = cons.peek(HEADER, max.min(head.len), copy_out)?;
    Ok(Some((head, copied)))
}

/// [`send`] from a slice.
pub fn send_slice(prod: &mut Producer, src: &[u8], eor: bool) -> Result<Sent, RingError> {
    let mut pos = 0usize;
    send(prod, src.len(), eor, |dst, n| {
        let rest = src.get(pos..).unwrap_or(&[]);
        let n = n.min(rest.len());
        // SAFETY: `rest` holds at least `n` bytes; `dst` is valid for `n` bytes of writes
        // (contract of `send`) and is ring memory, which cannot overlap a `&[u8]`.
        unsafe { core::ptr::copy_nonoverlapping(rest.as_ptr(), dst, n) };
        pos += n;
        n
    })
}

/// [`recv`] into a slice (up to its length).
pub fn recv_slice(cons: &mut Consumer, dst: &mut [u8]) -> Result<Option<Received>, RingError> {
    let mut pos = 0usize;
    recv(cons, dst.len(), |src, n| {
        let rest = dst.get_mut(pos..).unwrap_or(&mut []);
        let n = n.min(rest.len());
        // SAFETY: `src` is valid for reads of `n` bytes (contract of `recv`); `rest` has
        // room for `n` and is ours alone.
        unsafe { core::ptr::copy_nonoverlapping(src, rest.as_mut_ptr(), n) };
        pos += n;
        n
    })
}
