// SPDX-License-Identifier: GPL-2.0
//! The connections riding on pair channels, the sending rings of released sockets that
//! the peer may still read ("lingering"), and the socket events the control plane hands
//! back to the transport.

use crate::bindings;
use crate::control::wire::{ConnId, Msg, RingRef};
use crate::socket::Sock;
use crate::xen::rings::TxRing;
use crate::xen::{EventChannel, ParkedChannel};
use kernel::prelude::*;
use kernel::types::ARef;

/// What the transport must do to a socket, from a message or a pair event. Produced
/// under the plane lock, applied by the transport after it is dropped (socket locks
/// come before the plane lock).
pub(crate) enum SockEvent {
    /// CONNECT for one of our listeners.
    Incoming {
        peer: u16,
        id: ConnId,
        ring: RingRef,
        evtchn: u32,
        /// SOCK_SEQPACKET (else SOCK_STREAM): the listener must be of that type.
        seqpacket: bool,
    },
    /// ACCEPT, RESET, SHUTDOWN or CLOSE for a connection in the table.
    ForSock { sk: ARef<Sock>, msg: Msg },
    /// The pair channel went down (peer death, reset, set-up failure): `errno` for the
    /// socket (ECONNRESET, EHOSTUNREACH).
    PairDown { sk: ARef<Sock>, errno: u32 },
    /// An `Incoming` the peer withdrew (RESET or CLOSE for its token) in the same run,
    /// before it was set up: nothing to do.
    Withdrawn,
}

/// A table whose removals leave holes that later insertions reuse (no `unsafe`, no
/// moves of other entries).
pub(super) struct Slab<T> {
    slots: KVec<Option<T>>,
}

impl<T> Slab<T> {
    pub(super) const fn new() -> Self {
        Slab { slots: KVec::new() }
    }

    pub(super) fn insert(&mut self, v: T) -> Result {
        if let Some(s) = self.slots.iter_mut().find(|s| s.is_none()) {
            *s = Some(v);
            return Ok(());
        }
        self.slots.push(Some(v), GFP_KERNEL)?;
        Ok(())
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    /// Removes and returns the first entry that `pred` selects.
    pub(super) fn take(&mut self, mut pred: impl FnMut(&T) -> bool) -> Option<T> {
        self.slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(&mut pred))
            .and_then(Option::take)
    }

    pub(super) fn len(&self) -> usize {
        self.iter().count()
    }

    pub(super) fn clear(&mut self) {
        self.slots = KVec::new();
    }
}

/// A socket riding on a pair channel. The table holds a reference on the socket.
pub(super) struct ConnEntry {
    pub(super) peer: u16,
    pub(super) token: u64,
    pub(super) sk: ARef<Sock>,
    /// A CONNECT waiting for the pair channel to come up.
    pub(super) pending: Option<Msg>,
    /// The peer has answered our CONNECT (ACCEPT or RESET; always so for an accepted
    /// connection): it holds no offer of ours it may still take up.
    pub(super) answered: bool,
}

/// What a released socket leaves for the peer until its CLOSE or RESET: the sending
/// ring, which it may still read, and, for a CONNECT it has not answered yet, the event
/// channel port that CONNECT offered (reused by another connection, the peer would bind
/// to that one's port when it sets the old CONNECT up).
struct Lingering {
    peer: u16,
    token: u64,
    /// When the socket was released (ms).
    since: u64,
    _tx: Option<TxRing>,
    _evt: Option<ParkedChannel>,
}

/// Every connection of every pair, and the lingering rings.
pub(super) struct Conns {
    pub(super) table: Slab<ConnEntry>,
    lingering: Slab<Lingering>,
}

impl Conns {
    pub(super) const fn new() -> Self {
        Conns {
            table: Slab::new(),
            lingering: Slab::new(),
        }
    }

    pub(super) fn find(&self, peer: u16, token: u64) -> Option<&ConnEntry> {
        self.table
            .iter()
            .find(|c| c.peer == peer && c.token == token)
    }

    pub(super) fn find_mut(&mut self, peer: u16, token: u64) -> Option<&mut ConnEntry> {
        self.table
            .iter_mut()
            .find(|c| c.peer == peer && c.token == token)
    }

    /// Our CONNECT `token` to `peer` still waits for the pair channel: the peer never
    /// heard of it.
    pub(super) fn unsent(&self, peer: u16, token: u64) -> bool {
        self.find(peer, token).is_some_and(|c| c.pending.is_some())
    }

    /// Our CONNECT `token` to `peer` has left and has no answer yet.
    pub(super) fn unanswered(&self, peer: u16, token: u64) -> bool {
        self.find(peer, token)
            .is_some_and(|c| c.pending.is_none() && !c.answered)
    }

    /// Removes a connection; returns the table's socket reference.
    pub(super) fn forget(&mut self, peer: u16, token: u64) -> Option<ARef<Sock>> {
        self.table
            .take(|c| c.peer == peer && c.token == token)
            .map(|c| c.sk)
    }

    /// Takes `peer`'s connections (all, or only those whose CONNECT still waits for the
    /// channel) out of the table as `PairDown` events. A connect that never reached the
    /// peer reports `EHOSTUNREACH`; a connection the peer knew about is reset.
    pub(super) fn fail(&mut self, peer: u16, only_pending: bool, out: &mut KVec<SockEvent>) {
        while let Some(c) = self
            .table
            .take(|c| c.peer == peer && (!only_pending || c.pending.is_some()))
        {
            let errno = if c.pending.is_some() {
                bindings::EHOSTUNREACH
            } else {
                bindings::ECONNRESET
            };
            // Out of memory: the event is lost and its reference dropped here; the socket
            // then waits for its own timeout.
            let _ = out.push(SockEvent::PairDown { sk: c.sk, errno }, GFP_KERNEL);
        }
    }

    /// Takes every connection out of the table, as [`Conns::fail`] does for one peer.
    pub(super) fn fail_all(&mut self, out: &mut KVec<SockEvent>) {
        loop {
            let Some(peer) = self.table.iter().next().map(|c| c.peer) else {
                return;
            };
            self.fail(peer, false, out);
        }
    }

    /// The CONNECTs of `peer` that waited for its channel.
    pub(super) fn take_pending(&mut self, peer: u16) -> KVec<Msg> {
        let mut v = KVec::new();
        for c in self.table.iter_mut().filter(|c| c.peer == peer) {
            if let Some(m) = c.pending.take() {
                let _ = v.push(m, GFP_KERNEL);
            }
        }
        v
    }

    /// Keeps a released socket's sending ring (and event channel, parked) until the
    /// peer's CLOSE, RESET or ACCEPT (or the pair going down or `linger_ms`), so the
    /// peer can still map and drain the ring and bind to the port it was offered.
    pub(super) fn linger(
        &mut self,
        peer: u16,
        token: u64,
        tx: Option<TxRing>,
        evt: Option<EventChannel>,
    ) {
        if tx.is_none() && evt.is_none() {
            return;
        }
        // If there is no room both go now: the peer sees a reset rather than a leak.
        let _ = self.lingering.insert(Lingering {
            peer,
            token,
            since: super::pairs::now_ms(),
            _tx: tx,
            _evt: evt.map(EventChannel::park),
        });
    }

    /// Drops `peer`'s lingering rings older than `bound_ms` (the peer never closed its
    /// side); returns how many. Pages it still maps are withheld, not freed.
    pub(super) fn revoke(&mut self, peer: u16, now: u64, bound_ms: u64) -> usize {
        let mut n = 0;
        while self
            .lingering
            .take(|l| l.peer == peer && now >= l.since.saturating_add(bound_ms))
            .is_some()
        {
            n += 1;
        }
        n
    }

    /// Whether `peer` has a lingering ring.
    pub(super) fn lingers_for(&self, peer: u16) -> bool {
        self.lingering.iter().any(|l| l.peer == peer)
    }

    /// Lingering rings in all.
    pub(super) fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// Drops lingering rings of `peer` (all, or the one of `token`).
    pub(super) fn end_linger(&mut self, peer: u16, token: Option<u64>) {
        while self
            .lingering
            .take(|l| l.peer == peer && token.is_none_or(|t| t == l.token))
            .is_some()
        {}
    }

    pub(super) fn drop_all_lingering(&mut self) {
        self.lingering.clear();
    }
}
