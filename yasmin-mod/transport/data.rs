// SPDX-License-Identifier: GPL-2.0
//! The data path of a connected socket: send and receive through its rings, and what
//! af_vsock asks before it sleeps or polls. Every function runs with the socket locked;
//! a ring the peer corrupted ends the connection ([`super::connect::corrupted`]).

use super::connect::{corrupted, corrupted_atomic};
use crate::bindings;
use crate::record::{self, Sent};
use crate::ring::Transfer;
use crate::socket::{Locked, MsgIter, SockState};
use crate::stats;
use crate::xen::rings::TxRing;
use core::sync::atomic::AtomicU64;
use kernel::ffi::c_int;
use kernel::prelude::*;

fn not_connected() -> isize {
    -(bindings::ENOTCONN as isize)
}

/// After a transfer of `t.bytes`: signal the peer if it asked, count the bytes.
fn account(st: &SockState, t: &Transfer, global: &AtomicU64, peer: &AtomicU64) {
    if t.notify {
        st.notify();
    }
    stats::add(global, t.bytes as u64);
    stats::add(peer, t.bytes as u64);
}

/// `send()`: copies what fits of the user's buffer into our ring. `EPIPE` once the
/// peer has shut down reading (its ring flag, seen at once), `EFAULT` if nothing could be
/// copied from the user's buffer although there was room: af_vsock's send loop would
/// otherwise call again, forever, with the socket locked.
pub(super) fn enqueue(sk: &mut Locked<'_>, msg: &mut MsgIter<'_>, len: usize) -> isize {
    let Some(st) = sk.state().filter(|s| s.tx.is_some()) else {
        return not_connected();
    };
    if st.tx.as_ref().is_some_and(|tx| tx.prod.consumer_closed()) {
        sk.peer_done_reading();
        return EPIPE.to_errno() as isize;
    }
    let r = st.tx.as_mut().map(|tx| tx.prod.write(len, msg.from_user()));
    let Some(Ok(t)) = r else {
        return corrupted(sk) as isize;
    };
    account(st, &t, &stats::BYTES_SENT, &st.stats().bytes_sent);
    let room = |tx: &mut TxRing| matches!(tx.prod.writable(), Ok(n) if n > 0);
    if t.bytes == 0 && len > 0 && st.tx.as_mut().is_some_and(room) {
        return EFAULT.to_errno() as isize;
    }
    #[cfg(yasmin_test)]
    crate::test_hooks::after_write(sk);
    t.bytes as isize
}

/// `recv()`: copies from the peer's ring into the user's buffer (`MSG_PEEK`: without
/// consuming). A fault in the user's buffer with data waiting is `EFAULT`, not EOF.
pub(super) fn dequeue(
    sk: &mut Locked<'_>,
    msg: &mut MsgIter<'_>,
    len: usize,
    flags: c_int,
) -> isize {
    let peek = flags as u32 & bindings::MSG_PEEK != 0;
    let Some(rx) = sk.state().and_then(|s| s.rx.as_mut()) else {
        return not_connected();
    };
    let r = if peek {
        let n = rx.cons.peek(0, len, msg.to_user());
        n.map(|bytes| Transfer {
            bytes,
            notify: false,
        })
    } else {
        rx.cons.read(len, msg.to_user())
    };
    let Ok(t) = r else {
        return corrupted(sk) as isize;
    };
    // Nothing copied although data waits: the user's buffer faulted (a zero here would
    // read as EOF).
    let faulted = t.bytes == 0 && len > 0 && matches!(rx.cons.readable(), Ok(n) if n > 0);
    if let Some(st) = sk.state().filter(|_| !peek) {
        account(st, &t, &stats::BYTES_RECEIVED, &st.stats().bytes_received);
    }
    if faulted {
        return EFAULT.to_errno() as isize;
    }
    t.bytes as isize
}

/// Bytes readable now; 0 at EOF, which also marks the peer's SHUT_WR. af_vsock calls this
/// after `prepare_to_wait` (the task no longer running): nothing here may sleep.
pub(super) fn has_data(sk: &mut Locked<'_>) -> i64 {
    let Some(rx) = sk.state().and_then(|s| s.rx.as_mut()) else {
        return 0;
    };
    // The closed flag first, then the index (the ring's `at_eof` order): a close seen
    // here covers the producer's final index. The other way round, data published
    // between the two loads would be taken for EOF and lost to the reader.
    match (rx.cons.producer_closed(), rx.cons.readable()) {
        (true, Ok(0)) => {
            sk.peer_done_writing();
            0
        }
        (_, Ok(n)) => n as i64,
        (_, Err(_)) => {
            // 0 with `sk_err` set: af_vsock's wait loop returns the error.
            corrupted_atomic(sk);
            0
        }
    }
}

/// Bytes writable now (SEQPACKET: 0 while a waiting record does not fit yet).
pub(super) fn has_space(sk: &mut Locked<'_>) -> i64 {
    let Some(st) = sk.state().filter(|s| s.tx.is_some()) else {
        return 0;
    };
    let need = st.record_need;
    let Some(tx) = st.tx.as_mut() else { return 0 };
    if tx.prod.consumer_closed() {
        // The peer shut down reading: af_vsock's send loop sees it and fails with EPIPE.
        sk.peer_done_reading();
        return 0;
    }
    match tx.prod.writable() {
        Ok(n) if n < need => 0,
        Ok(n) => n as i64,
        Err(_) => corrupted(sk) as i64,
    }
}

/// A `sendmsg()` begins: no record of an earlier one (interrupted) is waiting any more.
pub(super) fn send_init(sk: &mut Locked<'_>) {
    if let Some(st) = sk.state() {
        st.record_need = 0;
    }
}

/// The receive high-water mark af_vsock checks a read's low-water mark against
/// (`ENOMEM` at or above it): our buffer size, the bound SO_RCVLOWAT is checked against
/// too, as with virtio. The ring we read from is the peer's and may be smaller;
/// `poll_in` never waits for more than it holds.
pub(super) fn rcvhiwat(sk: &mut Locked<'_>) -> u64 {
    sk.buffer_size()
}

pub(super) fn is_active(sk: &mut Locked<'_>) -> bool {
    sk.state().is_some_and(|s| s.rx.is_some() && s.tx.is_some())
}

/// poll() for reading: ready with `target` bytes (SEQPACKET: a whole record), or at EOF.
pub(super) fn poll_in(sk: &mut Locked<'_>, target: usize) -> core::result::Result<bool, c_int> {
    if sk.is_seqpacket() {
        return match seq_has_data(sk) {
            // `seq_has_data` armed the ring when it found no record; EOF and errors are
            // seen by af_vsock's poll through the shutdown bits and `sk_err`.
            n if n > 0 => Ok(true),
            _ => Ok(sk.peer_shutdown_mask() & bindings::SEND_SHUTDOWN != 0),
        };
    }
    let Some(rx) = sk.state().and_then(|s| s.rx.as_mut()) else {
        return Ok(false);
    };
    // A low-water mark above the peer's ring (SO_RCVLOWAT may be up to our buffer size)
    // could never be met: a full ring is ready.
    let target = target.clamp(1, rx.cons.capacity().max(1));
    // Flag before index, as in `has_data`.
    let closed = rx.cons.producer_closed();
    let now = match rx.cons.readable() {
        Ok(n) if n >= target => n,
        // Ask to be signalled, then look again (no lost wakeup).
        Ok(_) => rx.cons.arm_readable().unwrap_or(0),
        Err(_) => return Err(corrupted(sk)),
    };
    if closed && now == 0 {
        sk.peer_done_writing();
    }
    Ok(now >= target || closed)
}

/// poll() for writing: ready with any space (SEQPACKET, after a send found no room for
/// its record: with room for that record, or a non-blocking sender would poll and fail
/// with EAGAIN in a loop).
pub(super) fn poll_out(sk: &mut Locked<'_>) -> core::result::Result<bool, c_int> {
    let Some(st) = sk.state().filter(|s| s.tx.is_some()) else {
        return Ok(false);
    };
    let need = st.record_need.max(1);
    let Some(tx) = st.tx.as_mut() else {
        return Ok(false);
    };
    if tx.prod.consumer_closed() {
        // Writable, in that a send returns at once (EPIPE).
        sk.peer_done_reading();
        return Ok(true);
    }
    let now = match tx.prod.writable() {
        Ok(n) if n >= need => n,
        Ok(_) => tx.prod.arm_writable().unwrap_or(0),
        Err(_) => return Err(corrupted(sk)),
    };
    Ok(now >= need)
}

/// A reader is about to sleep (already on the wait queue): arm the ring, and if data
/// arrived between its check and our arming, wake it instead.
pub(super) fn recv_pre_block(sk: &mut Locked<'_>) {
    crate::profiled_count!(RECV_BLOCK);
    if let Some(rx) = sk.state().and_then(|s| s.rx.as_mut()) {
        if matches!(rx.cons.arm_readable(), Ok(n) if n > 0) {
            sk.sock().wake();
        }
    }
}

/// A writer is about to sleep: as [`recv_pre_block`], for space (SEQPACKET: for the
/// space its record needs; the reader signals each time it frees some).
pub(super) fn send_pre_block(sk: &mut Locked<'_>) {
    crate::profiled_count!(SEND_BLOCK);
    let Some(st) = sk.state() else { return };
    let need = st.record_need.max(1);
    if let Some(tx) = st.tx.as_mut() {
        if matches!(tx.prod.arm_writable(), Ok(n) if n >= need) {
            sk.sock().wake();
        }
    }
}

/// SIOCOUTQ: bytes written and not yet read by the peer.
pub(super) fn unsent(sk: &mut Locked<'_>) -> isize {
    // Bytes the peer will never read (it released its socket, or shut down reading) are
    // not waiting to be sent: SIOCOUTQ reads 0 and SO_LINGER does not wait for them, as
    // with virtio once the peer is gone.
    if sk.peer_shutdown_mask() & bindings::RCV_SHUTDOWN != 0 {
        return 0;
    }
    let Some(st) = sk.state() else { return 0 };
    if st.peer_closed {
        return 0;
    }
    match st.tx.as_mut() {
        Some(tx) if tx.prod.consumer_closed() => 0,
        Some(tx) => tx
            .prod
            .unsent()
            .map_or(EPIPE.to_errno() as isize, |n| n as isize),
        None => 0,
    }
}

// ---- SOCK_SEQPACKET: whole records (`ring/src/record.rs`) over the same rings ----------

/// `seqpacket_enqueue`: the whole message as one record, or nothing. `EMSGSIZE` for a
/// message larger than the ring can ever hold (its size less the 4-byte header), as
/// virtio refuses one larger than the peer's buffer. Without room for it yet, 0: the
/// record's need is kept, so `has_space` reads 0 and af_vsock's send loop sleeps until
/// the reader has freed enough.
pub(super) fn seq_enqueue(sk: &mut Locked<'_>, msg: &mut MsgIter<'_>, len: usize) -> isize {
    let Some(st) = sk.state().filter(|s| s.tx.is_some()) else {
        return not_connected();
    };
    if st.tx.as_ref().is_some_and(|tx| tx.prod.consumer_closed()) {
        sk.peer_done_reading();
        return EPIPE.to_errno() as isize;
    }
    let eor = msg.eor();
    let r = st
        .tx
        .as_mut()
        .map(|tx| record::send(&mut tx.prod, len, eor, msg.from_user()));
    match r {
        Some(Ok(Sent::Written(t))) => {
            st.record_need = 0;
            account(st, &t, &stats::BYTES_SENT, &st.stats().bytes_sent);
            len as isize
        }
        Some(Ok(Sent::NoRoom { need })) => {
            st.record_need = need;
            0
        }
        Some(Ok(Sent::Fault)) => EFAULT.to_errno() as isize,
        Some(Ok(Sent::BadLength)) => -(bindings::EMSGSIZE as isize),
        _ => corrupted(sk) as isize,
    }
}

/// `seqpacket_dequeue`: the first whole record, up to the room in the user's buffer; the
/// rest of a longer record is dropped (af_vsock reports `MSG_TRUNC`). Returns the record's
/// length (0: none yet), with `MSG_EOR` set if the sender set it. `MSG_PEEK` leaves the
/// record in the ring. A fault in the user's buffer is `EFAULT`, and the record is
/// consumed, as virtio drops the rest of a record whose copy failed.
pub(super) fn seq_dequeue(sk: &mut Locked<'_>, msg: &mut MsgIter<'_>, flags: c_int) -> isize {
    let peek = flags as u32 & bindings::MSG_PEEK != 0;
    let max = msg.data_left();
    let Some(st) = sk.state().filter(|s| s.rx.is_some()) else {
        return not_connected();
    };
    let Some(rx) = st.rx.as_mut() else {
        return not_connected();
    };
    let r = if peek {
        record::peek(&mut rx.cons, max, msg.to_user())
            .map(|o| o.map(|(head, copied)| (head, copied, Transfer::default())))
    } else {
        record::recv(&mut rx.cons, max, msg.to_user())
            .map(|o| o.map(|got| (got.head, got.copied, got.transfer)))
    };
    let (head, copied, t) = match r {
        Ok(Some(got)) => got,
        Ok(None) => return 0,
        Err(_) => return corrupted(sk) as isize,
    };
    if !peek {
        account(st, &t, &stats::BYTES_RECEIVED, &st.stats().bytes_received);
    }
    if copied < max.min(head.len) {
        return EFAULT.to_errno() as isize;
    }
    if head.eor {
        msg.set_eor();
    }
    head.len as isize
}

/// `seqpacket_has_data`: whether a whole record is readable (1) or not (0). af_vsock's
/// record wait loop calls this after `prepare_to_wait` and has no `recv_pre_block` for
/// SEQPACKET, so without a record this arms the ring here (nothing may sleep) and looks
/// again. The peer's close with no whole record left is its SHUT_WR (EOF).
pub(super) fn seq_has_data(sk: &mut Locked<'_>) -> i64 {
    let Some(rx) = sk.state().and_then(|s| s.rx.as_mut()) else {
        return 0;
    };
    // Closed flag before the record check, as in `has_data`.
    let closed = rx.cons.producer_closed();
    let mut found = record::head(&mut rx.cons);
    if matches!(found, Ok(None)) && !closed {
        // Ask to be signalled, then look again (no lost wakeup).
        found = rx
            .cons
            .arm_readable()
            .and_then(|_| record::head(&mut rx.cons));
    }
    match found {
        Ok(Some(_)) => 1,
        Ok(None) => {
            if closed {
                sk.peer_done_writing();
            }
            0
        }
        Err(_) => {
            corrupted_atomic(sk);
            0
        }
    }
}
