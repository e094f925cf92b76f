// SPDX-License-Identifier: GPL-2.0
//! A connection's life outside the data path: connect, the peer's CONNECT arriving at a
//! listener, ACCEPT / RESET / SHUTDOWN / CLOSE from the peer, shutdown and release.
//! Messages go out through the control plane (`crate::plane`); messages in come back
//! from it as [`SockEvent`]s, applied here with the plane unlocked.

use super::{local_cid, ours, ring_pages_for, ring_pages_ok, sock_event};
use crate::bindings;
use crate::control::paths;
use crate::control::wire::{self, ConnId, Msg, RingRef, PAGE_SIZE};
use crate::limits;
use crate::plane::{self, SetupEnd, SockEvent};
use crate::socket::{Locked, Sock};
use crate::stats;
use crate::xen::rings::{RxRing, TxRing};
use crate::xen::EventChannel;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::ARef;

/// The connection id as this side sends it.
fn conn_id((src_port, dst_port): (u32, u32), token: u64) -> ConnId {
    ConnId {
        src_port,
        dst_port,
        token,
    }
}

/// The socket's (local, remote) ports, read before its state is borrowed.
fn ports(sk: &Locked<'_>) -> (u32, u32) {
    (sk.local_port(), sk.remote_port())
}

/// Ends `sk`'s connection with the peer for good: RESET with `reason`, and out of the
/// plane's table (its reference dropped once the plane is unlocked). The socket itself
/// is left as it is: the caller resets it or releases its rings. (A CONNECT the peer has
/// not answered yet leaves its ring and event channel to the plane, kept until the
/// answer: the socket has none left.)
fn abort(sk: &mut Locked<'_>, reason: u32) {
    let ports = ports(sk);
    let Some(st) = sk.state() else { return };
    if !st.registered {
        return;
    }
    st.registered = false;
    let id = conn_id(ports, st.token);
    let peer = st.peer;
    let (tx, evt) = (&mut st.tx, &mut st.evt);
    let held = plane::with(|p| p.reset_sock(peer, id, reason, tx, evt)).flatten();
    drop(held); // the table's reference; af_vsock (or the event) holds another
}

/// The peer broke the ring protocol (an impossible index in shared memory): log it, reset
/// the connection on both sides, and return `-ECONNRESET` for the caller.
pub(super) fn corrupted(sk: &mut Locked<'_>) -> c_int {
    log_corrupted(sk);
    abort(sk, wire::RESET_PROTOCOL);
    sk.reset(bindings::ECONNRESET);
    -(bindings::ECONNRESET as c_int)
}

/// [`corrupted`] where nothing may sleep: the socket fails now; the RESET to the peer and
/// the release of the rings wait for [`release`].
pub(super) fn corrupted_atomic(sk: &mut Locked<'_>) {
    log_corrupted(sk);
    sk.fail(bindings::ECONNRESET);
}

fn log_corrupted(sk: &mut Locked<'_>) {
    let ports = ports(sk);
    if let Some(st) = sk.state().filter(|s| s.registered && !s.broken) {
        pr_warn!(
            "domain {}: connection (port {} -> {}) reset: the peer corrupted the shared ring\n",
            st.peer,
            ports.0,
            ports.1
        );
    }
}

/// Our ring size for a socket of `buf` bytes with `peer`: within the largest ring the
/// peer maps, once its HELLO has told us (a first connect that waits for the channel
/// uses our own choice; a peer with a smaller maximum refuses it with ECONNRESET).
fn ring_pages_within(peer: u16, buf: u64) -> u16 {
    let theirs = plane::with(|p| p.peer_max_ring(peer)).flatten();
    let pages = ring_pages_for(buf);
    match theirs {
        // Powers of two, so the smaller is one too.
        Some(max) if max >= 1 => pages.min(max),
        _ => pages,
    }
}

/// `connect()` gave up (af_vsock's `cancel_pkt`: a timeout, a signal, or the timer of a
/// non-blocking connect): this attempt ends now, not when an answer comes. A CONNECT
/// still waiting for the pair channel is dropped unsent, one already sent is RESET (the
/// listener drops its child; a late ACCEPT finds nothing and is answered with RESET), and
/// the rings go, so a retry on this socket starts clean and nothing of this attempt (its
/// answer, its reset, its table reference) can reach the next one.
pub(super) fn cancel(sk: &mut Locked<'_>) {
    let broken = sk.state().is_some_and(|s| s.broken);
    abort(
        sk,
        if broken {
            wire::RESET_PROTOCOL
        } else {
            wire::RESET_CANCELLED
        },
    );
    if let Some(st) = sk.state() {
        st.release_rings();
        st.peer_closed = false;
        st.broken = false;
    }
}

/// `connect()`: our ring and event channel, then CONNECT (once the pair channel is up).
/// A retry on the same socket first ends what is left of the attempt before.
pub(super) fn connect(sk: &mut Locked<'_>) -> c_int {
    if sk
        .state()
        .is_some_and(|s| s.registered || s.tx.is_some() || s.rx.is_some() || s.broken)
    {
        cancel(sk);
    }
    sk.clear_peer_shutdown();
    let (cid, buf, seqpacket) = (sk.remote_cid(), sk.buffer_size(), sk.is_seqpacket());
    let peer = match paths::cid_to_domid(cid) {
        Some(p) if cid != local_cid() => p,
        _ => return -(bindings::ENETUNREACH as c_int),
    };
    let token = plane::next_token();
    let id = conn_id(ports(sk), token);
    let me = ARef::from(sk.sock());
    let pages = ring_pages_within(peer, buf);
    // SO_VM_SOCKETS_BUFFER_SIZE reads the ring size in use from now on.
    sk.set_buffer_size(pages as u64 * PAGE_SIZE as u64);
    let Some(st) = sk.state() else {
        return EINVAL.to_errno();
    };
    st.set_peer(peer, token);
    let tx = match crate::profiled!(RING_NEW, TxRing::new(peer, pages)) {
        Ok(t) => t,
        Err(e) => return e.to_errno(),
    };
    let evt = match crate::profiled!(
        EVTCHN_BIND,
        EventChannel::alloc_unbound(peer, sock_event, me.cookie())
    ) {
        Ok(e) => e,
        Err(e) => return e.to_errno(),
    };
    let msg = Msg::Connect {
        id,
        ring: RingRef {
            dir_gref: tx.dir_gref(),
            pages: tx.pages(),
        },
        evtchn: evt.port(),
        seqpacket,
    };
    st.tx = Some(tx);
    st.evt = Some(evt);
    // The table keeps a reference (`me`) until the connection is forgotten.
    match plane::with(|p| p.connect_sock(peer, token, me, msg)) {
        Some(Ok(())) => {
            st.registered = true;
            stats::add(&stats::CONNECTIONS, 1);
            stats::add(&st.stats().connections, 1);
            0
        }
        r => {
            st.release_rings();
            r.and_then(|r| r.err()).unwrap_or(ENODEV).to_errno()
        }
    }
}

/// `shutdown()`: SHUT_WR closes our ring (the peer reads EOF after draining it), SHUT_RD
/// marks the peer's ring reader-closed (its sends fail with EPIPE) at once; the peer also
/// hears both bits by message.
pub(super) fn shutdown(sk: &mut Locked<'_>, mode: u32) {
    let mode = mode & bindings::SHUTDOWN_MASK;
    let ports = ports(sk);
    let Some(st) = sk.state().filter(|s| !s.broken) else {
        return; // failed: the peer hears RESET at release, nothing before
    };
    // Both directions' flags live in the shared rings: the peer sees them at once.
    let mut notify = false;
    if mode & bindings::SEND_SHUTDOWN != 0 {
        notify |= st.tx.as_mut().is_some_and(|tx| tx.prod.close().notify);
    }
    if mode & bindings::RCV_SHUTDOWN != 0 {
        notify |= st.rx.as_mut().is_some_and(|rx| rx.cons.close().notify);
    }
    if notify {
        st.notify();
    }
    if st.registered && mode != 0 {
        let id = conn_id(ports, st.token);
        let peer = st.peer;
        plane::with(|p| p.send_sock(peer, Msg::Shutdown { id, mode }));
    }
}

/// The socket is released: close both rings, unbind, and CLOSE; our sending ring stays
/// readable (lingering in the plane) until the peer has released its side too.
pub(super) fn release(sk: &mut Locked<'_>) {
    #[cfg(yasmin_test)]
    if crate::test_hooks::holding() && sk.state().is_some_and(|s| s.registered) {
        hold(sk);
        return;
    }
    linger(sk);
    if sk.state().is_some_and(|s| s.broken) {
        // Failed where nothing could sleep: RESET instead of CLOSE, and no lingering.
        abort(sk, wire::RESET_PROTOCOL);
        if let Some(st) = sk.state() {
            st.release_rings();
        }
    }
    let ports = ports(sk);
    if let Some(st) = sk.state() {
        // Mark both rings closed (EOF for the peer's reads, EPIPE for its writes).
        if let Some(tx) = st.tx.as_mut() {
            let _ = tx.prod.close();
        }
        if let Some(rx) = st.rx.as_mut() {
            let _ = rx.cons.close();
        }
        st.notify();
        // The interrupt names this socket: unbind (or park, below) before it can go
        // away; unmap the peer's ring (we read no more).
        let evt = st.evt.take();
        st.rx = None;
        let tx = st.tx.take();
        // Every connection not reset ends with a CLOSE from each side; the peer's CLOSE is
        // what lets a lingering ring go.
        if st.registered || st.peer_closed {
            let id = conn_id(ports, st.token);
            let peer = st.peer;
            // After the peer's CLOSE it reads no more: nothing to keep for it.
            let tx = tx.filter(|_| st.registered);
            st.registered = false;
            let held = plane::with(move |p| p.close_sock(peer, id, tx, evt)).flatten();
            drop(held); // the table's reference; af_vsock holds its own
        } else {
            drop(evt);
        }
    }
    sk.remove_from_tables();
}

/// SO_LINGER: close() waits, up to the linger time, until the peer has read what we
/// sent, or is gone or stopped reading, as virtio's close waits for its peer. (Without
/// it close() returns at once, and the unread bytes stay readable for the peer: our ring
/// lingers in the plane.) A signal ends the wait.
fn linger(sk: &mut Locked<'_>) {
    const STEP_MS: u32 = 20;
    let mut left = sk.linger_ms();
    while left > 0 && sk.state().is_some_and(|s| s.registered) && super::data::unsent(sk) > 0 {
        let step = left.min(STEP_MS);
        if !sk.sleep_unlocked(step) {
            return;
        }
        left -= step;
    }
}

/// Test build, `hold` on: the socket goes, but its rings stay (ours granted, the peer's
/// mapped) and the peer hears nothing, as from a peer that never releases.
#[cfg(yasmin_test)]
fn hold(sk: &mut Locked<'_>) {
    if let Some(st) = sk.state() {
        st.registered = false;
        st.evt = None;
        let (peer, token) = (st.peer, st.token);
        let (tx, rx) = (st.tx.take(), st.rx.take());
        let held = plane::with(move |p| {
            p.hoard(tx, rx);
            p.forget_sock(peer, token)
        })
        .flatten();
        drop(held);
    }
    sk.remove_from_tables();
}

/// Applies one socket event from the control plane (work item, plane unlocked).
pub(super) fn apply(ev: SockEvent) {
    match ev {
        SockEvent::Incoming { .. } => {
            if let Some(job) = IncomingSetup::of(&ev) {
                job.run();
            }
        }
        SockEvent::ForSock { sk, msg } => for_sock(&mut sk.lock(), msg),
        SockEvent::Withdrawn => {}
        SockEvent::PairDown { sk, errno } => {
            let mut l = sk.lock();
            if l.state().is_some_and(|s| s.registered) {
                l.reset(errno);
            }
        }
    }
}

/// ACCEPT, RESET, SHUTDOWN or CLOSE for a socket of ours.
fn for_sock(sk: &mut Locked<'_>, msg: Msg) {
    let Some(st) = sk.state() else { return };
    let token = match msg {
        Msg::Accept { id, .. } | Msg::Reset { id, .. } | Msg::Close { id } => id.token,
        Msg::Shutdown { id, .. } => id.token,
        _ => return,
    };
    if token != st.token {
        // For an earlier attempt of a connect retried on this socket (af_vsock keeps the
        // socket across a connect that timed out or was interrupted), queued before that
        // attempt was given up. It is over and must not touch this one: a stale RESET or
        // CLOSE would end the new connection, a stale ACCEPT would give it the wrong ring.
        // Its ring goes, and a late ACCEPT's child is reset (cancelled), as for any
        // message for a connection we no longer have.
        let peer = st.peer;
        plane::with(|p| p.stale_msg(peer, token, &msg));
        return;
    }
    if !st.registered {
        // Released or reset meanwhile. A CLOSE or RESET that raced with our release is
        // the peer's release: the ring we kept for it can go (the plane, which found the
        // connection still in its table, did not end it).
        if matches!(msg, Msg::Close { .. } | Msg::Reset { .. }) {
            let (peer, token) = (st.peer, st.token);
            plane::with(|p| p.peer_released(peer, token));
        }
        return;
    }
    match msg {
        Msg::Accept { id, ring } => accepted(sk, id, ring),
        Msg::Reset { .. } | Msg::Close { .. } => {
            let (peer, token) = (st.peer, st.token);
            let held = plane::with(|p| p.forget_sock(peer, token)).flatten();
            match msg {
                // The acceptor is at a limit: refused, not reset.
                Msg::Reset {
                    reason: wire::RESET_LIMIT,
                    ..
                } if sk.tcp_state() == bindings::TCP_SYN_SENT => sk.reset(bindings::ECONNREFUSED),
                // An established connection the peer resets ends as virtio-vsock ends one
                // on RST: what the peer wrote can still be read, then EOF; sends fail
                // with EPIPE. (A connect still under way fails with ECONNRESET.)
                Msg::Reset { .. } if sk.tcp_state() == bindings::TCP_ESTABLISHED => {
                    sk.peer_closed()
                }
                Msg::Reset { .. } => sk.reset(bindings::ECONNRESET),
                _ => sk.peer_closed(),
            }
            drop(held); // the table's reference; af_vsock and the event hold others
        }
        Msg::Shutdown { mode, .. } => sk.peer_shutdown(mode),
        _ => {}
    }
}

/// The peer's ACCEPT for our CONNECT: map its ring, and the connection is up.
fn accepted(sk: &mut Locked<'_>, id: ConnId, ring: RingRef) {
    let syn_sent = sk.tcp_state() == bindings::TCP_SYN_SENT;
    let Some(st) = sk.state() else { return };
    if st.rx.is_some() {
        // A duplicate: the connection is up with the first one's ring; the peer pays.
        let peer = st.peer;
        plane::with(|p| p.misbehaved(peer));
        return;
    }
    if !syn_sent {
        // Too late (connect timed out): refuse it, so the peer's accepted socket does not
        // wait for a connection nobody uses.
        abort(sk, wire::RESET_PROTOCOL);
        if let Some(st) = sk.state() {
            st.release_rings();
        }
        return;
    }
    let mapped = if ring_pages_ok(ring.pages) {
        crate::profiled!(RING_MAP, RxRing::map(st.peer, ring.dir_gref, ring.pages))
    } else {
        Err(EINVAL) // larger than our max_ring_pages
    };
    match mapped {
        Ok(rx) => {
            st.rx = Some(rx);
            sk.establish(id.src_port);
        }
        Err(e) if e == limits::enobufs() => {
            // At our own mapping limit: the connect fails with ENOBUFS.
            abort(sk, wire::RESET_LIMIT);
            sk.reset(bindings::ENOBUFS);
        }
        Err(e) => {
            pr_warn!(
                "domain {}: connection refused: its ring is unusable ({:?})\n",
                st.peer,
                e
            );
            abort(sk, wire::RESET_BAD_RING);
            sk.reset(bindings::ECONNRESET);
        }
    }
}

/// A CONNECT from a peer, to set up (off the control work item: see
/// `transport::yasmin_control_work`).
#[derive(Clone, Copy)]
pub(crate) struct IncomingSetup {
    peer: u16,
    id: ConnId,
    ring: RingRef,
    evtchn: u32,
    seqpacket: bool,
}

impl IncomingSetup {
    /// The set-up an event asks for, if it is an incoming connection.
    pub(crate) fn of(ev: &SockEvent) -> Option<Self> {
        match *ev {
            SockEvent::Incoming {
                peer,
                id,
                ring,
                evtchn,
                seqpacket,
            } => Some(IncomingSetup {
                peer,
                id,
                ring,
                evtchn,
                seqpacket,
            }),
            _ => None,
        }
    }

    pub(crate) fn run(&self) {
        crate::profiled!(
            ACCEPT_SETUP,
            incoming(self.peer, self.id, self.ring, self.evtchn, self.seqpacket)
        )
    }
}

/// A CONNECT from `peer`: find the listener, create the child socket, map the
/// connector's ring, set up ours, answer ACCEPT (or RESET with the reason). A listener of
/// the other socket type (STREAM for a SEQPACKET connect, or back) refuses it, as virtio
/// resets a packet of the wrong type: the connector sees ECONNRESET.
///
/// Several run at once (each on its own connection): the listener is locked only to
/// create the child and, once its rings are up, to queue it for accept(); the rings are
/// set up with only the child locked.
fn incoming(peer: u16, id: ConnId, ring: RingRef, evtchn: u32, seqpacket: bool) {
    let token = id.token;
    // Every CONNECT gets one answer, ACCEPT or RESET: until then the connector keeps the
    // ring and event channel it offered. One the peer withdrew meanwhile is answered
    // RESET (cancelled) now that this set-up holds nothing of it any more; one whose
    // channel went down (or the plane stops) is not answered at all.
    let refuse = |reason: u32| {
        plane::with(|p| {
            let reason = match p.setup_done(peer, token) {
                SetupEnd::Answer => reason,
                SetupEnd::Cancelled => wire::RESET_CANCELLED,
                SetupEnd::Silent => return,
            };
            p.send_sock(
                peer,
                Msg::Reset {
                    id: id.reversed(),
                    reason,
                },
            )
        })
    };
    if plane::with(|p| p.setup_end(peer, token)) != Some(SetupEnd::Answer) {
        refuse(wire::RESET_CANCELLED);
        return;
    }
    let Some(peer_cid) = paths::domid_to_cid(peer) else {
        refuse(wire::RESET_NO_LISTENER);
        return;
    };
    let Some(listener) = Sock::find_listener(local_cid(), id.dst_port)
        .filter(|l| l.lock().is_seqpacket() == seqpacket)
    else {
        refuse(wire::RESET_NO_LISTENER);
        return;
    };
    let child =
        listener
            .lock()
            .new_child(ours(), (local_cid(), id.dst_port), (peer_cid, id.src_port));
    let child = match child {
        Ok(c) => c,
        Err(reason) => {
            refuse(reason);
            return;
        }
    };
    let rings = child_rings(&mut child.lock(), peer, ring, evtchn, token);
    let answer = match rings {
        Ok(a) => a,
        Err(reason) => {
            // The child goes with what it had set up, then the peer hears of it.
            drop(child);
            refuse(reason);
            return;
        }
    };
    // On failure the child is gone (with its rings) when this returns.
    let queued = listener.lock().queue_child(child, |c| {
        crate::profiled!(CHILD_REGISTER, register_child(c, peer, token, answer))
    });
    if let Err(reason) = queued {
        refuse(reason);
    }
}

/// Maps the connector's ring, binds its port, allocates our ring; returns the ACCEPT.
fn child_rings(
    child: &mut Locked<'_>,
    peer: u16,
    ring: RingRef,
    evtchn: u32,
    token: u64,
) -> core::result::Result<Msg, u32> {
    let id = conn_id(ports(child), token);
    let pages = ring_pages_within(peer, child.buffer_size());
    child.set_buffer_size(pages as u64 * PAGE_SIZE as u64);
    let cookie = child.sock().cookie();
    let st = child.state().ok_or(wire::RESET_NO_MEMORY)?;
    st.set_peer(peer, token);
    stats::add(&st.stats().connections, 1);
    if !ring_pages_ok(ring.pages) {
        // Larger than the max_ring_pages our HELLO announced: a protocol violation.
        plane::with(|p| p.misbehaved(peer));
        return Err(wire::RESET_BAD_RING);
    }
    let limit_or = |other| {
        move |e: Error| {
            if e == limits::enobufs() {
                wire::RESET_LIMIT
            } else {
                other
            }
        }
    };
    st.rx = Some(
        crate::profiled!(RING_MAP, RxRing::map(peer, ring.dir_gref, ring.pages))
            .map_err(limit_or(wire::RESET_BAD_RING))?,
    );
    let tx = crate::profiled!(RING_NEW, TxRing::new(peer, pages))
        .map_err(limit_or(wire::RESET_NO_MEMORY))?;
    let answer = Msg::Accept {
        id,
        ring: RingRef {
            dir_gref: tx.dir_gref(),
            pages: tx.pages(),
        },
    };
    st.tx = Some(tx);
    st.evt = Some(
        crate::profiled!(
            EVTCHN_BIND,
            EventChannel::bind_interdomain(peer, evtchn, sock_event, cookie)
        )
        .map_err(|_| wire::RESET_BAD_RING)?,
    );
    Ok(answer)
}

/// The child is about to be queued for accept(): into the plane's table, and ACCEPT
/// goes out, unless the set-up was withdrawn meanwhile. `Err(reason)` for the RESET the
/// caller answers once the child is gone (the set-up is no longer tracked: a withdrawn
/// one's reason is "cancelled").
fn register_child(
    child: &mut Locked<'_>,
    peer: u16,
    token: u64,
    answer: Msg,
) -> core::result::Result<(), u32> {
    let me = ARef::from(child.sock());
    let r = plane::with(|p| match p.setup_done(peer, token) {
        SetupEnd::Answer => p
            .register_sock(peer, token, me, answer)
            .map_err(|_| wire::RESET_NO_MEMORY),
        SetupEnd::Cancelled | SetupEnd::Silent => Err(wire::RESET_CANCELLED),
    })
    .unwrap_or(Err(wire::RESET_CANCELLED));
    if r.is_ok() {
        if let Some(st) = child.state() {
            st.registered = true;
        }
        stats::add(&stats::CONNECTIONS, 1);
    }
    r
}
