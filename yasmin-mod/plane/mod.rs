// SPDX-License-Identifier: GPL-2.0
//! The control plane in the kernel: one `control::pair::Pair` state machine per peer
//! domain (see `xenstore-watch/PROTOCOL.md`), driven by XenStore watches, event-channel
//! interrupts and a 1 s tick, and the per-pair control channel they set up.
//!
//! - this file: the plane's state, the calls the transport makes, the control-ring
//!   polling, start and stop;
//! - `pairs`: the pair state machines and their XenStore side (scan, offers, requests);
//! - `link`: one control channel's rings, event channel and outbox;
//! - `conns`: the connection table, lingering rings, and the socket events handed back;
//! - `guard`: limits per peer, the misbehaviour budget, and revoking lingering rings;
//! - `setups`: incoming connections the transport is setting up off the work item.
//!
//! Everything runs in one work item under one mutex: the XenStore watch callback and the
//! interrupt handler only mark work and kick it, so nothing here runs in atomic context
//! and XenStore calls may sleep. The plane never calls the transport: it returns
//! [`SockEvent`]s, which the transport applies once the plane lock is dropped.

#[cfg(yasmin_test)]
mod adversary;
mod conns;
mod guard;
mod link;
mod pairs;
mod setups;

#[cfg(yasmin_test)]
pub(crate) use adversary::Attack;
pub(crate) use conns::SockEvent;
pub(crate) use setups::SetupEnd;

use crate::control::pair::{Event, Pair};
use crate::control::paths;
use crate::control::wire::{self, ConnId, Msg};
use crate::glue::{self, Published};
use crate::limits;
use crate::socket::Sock;
use crate::xen::rings::TxRing;
use crate::xen::{self, errno, EventChannel, Watch};
use conns::{ConnEntry, Conns};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::ffi::c_char;
use kernel::prelude::*;
use kernel::types::ARef;
use link::{Link, LinkError};

/// The running plane, for the work item, the watch, debugfs and socket callbacks.
static PLANE: Published<Plane> = Published::new();
/// Control frames one run reads from one peer before it yields (and requeues itself).
const FRAMES_PER_RUN: usize = 64;
/// Socket events waiting for the transport before polling stops for this run.
const MAX_DEFERRED: usize = 256;
/// Set by the XenStore watch: `Y(self)` changed, rescan it.
static XS_DIRTY: AtomicBool = AtomicBool::new(true);
/// Connection tokens: our domid in the top 16 bits (so both sides of a pair never pick
/// the same one), a counter below.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
static OWN_DOMID: AtomicU64 = AtomicU64::new(0);

/// A fresh connection token (PROTOCOL.md: unique while the pair channel lives).
pub(crate) fn next_token() -> u64 {
    (OWN_DOMID.load(Ordering::Relaxed) << 48)
        | (NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff)
}

/// Whether `token` is one [`next_token`] has handed out (in this incarnation).
fn issued(token: u64) -> bool {
    token >> 48 == OWN_DOMID.load(Ordering::Relaxed)
        && token & 0xffff_ffff_ffff < NEXT_TOKEN.load(Ordering::Relaxed)
}

/// Runs `f` on the live plane, if any. Socket events produced outside the work item
/// (e.g. by a socket call) are applied by the next run, which this kicks.
pub(crate) fn with<R>(f: impl FnOnce(&mut Plane) -> R) -> Option<R> {
    PLANE.with(|p| {
        let r = f(p);
        if !p.deferred.is_empty() {
            glue::work_kick();
        }
        r
    })
}

/// One run of the work item: drives the plane and returns the socket events it
/// produced, for the caller to apply with the plane unlocked. Incoming connections
/// handed out here are set up off the work item, concurrently ([`Plane::setup_done`]).
pub(crate) fn run_work() -> KVec<SockEvent> {
    PLANE
        .with(|p| {
            crate::profiled!(CONTROL_RUN, p.run());
            let events = core::mem::replace(&mut p.deferred, KVec::new());
            p.track_setups(&events);
            events
        })
        .unwrap_or_default()
}

/// What the module knows about one peer domain.
struct Peer {
    pair: Pair,
    link: Option<Link>,
    ups: u64,
    downs: u64,
    resets: u64,
    bad_msgs: u32,
    /// `bad_msgs` when the channel came up: the budget counts from there.
    bad_base: u32,
    /// Start of the current budget window (ms): the budget is per channel per minute.
    bad_window: u64,
    /// PINGs in the current one-second window, and when it started (ms).
    pings: u32,
    ping_window: u64,
    /// When we last logged about this peer's misbehaviour or revoked rings (ms).
    logged: u64,
    /// Until when (ms) the peer's requests for a new channel are ignored.
    penalty_until: u64,
    msgs_in: u64,
    msgs_out: u64,
    /// Liveness: when a control frame last came from the peer (ms), and when we sent
    /// the PING it has not answered yet.
    last_rx: u64,
    ping_sent: Option<u64>,
    /// Test build: this side plays a wedged module towards the peer (reads nothing).
    #[cfg(yasmin_test)]
    wedged: bool,
}

impl Peer {
    /// Test build: whether this side plays a wedged module towards the peer.
    fn wedged(&self) -> bool {
        #[cfg(yasmin_test)]
        return self.wedged;
        #[cfg(not(yasmin_test))]
        false
    }
}

/// All control-plane state.
pub(crate) struct Plane {
    domid: u16,
    gen: Option<u64>,
    max_ring_pages: u16,
    peers: KVec<Peer>,
    stopping: bool,
    dropped_notices: u64,
    /// Slots of idle peers given to new ones (the table is full).
    recycled_slots: u64,
    conns: Conns,
    /// Socket events for the transport, applied once the plane lock is dropped.
    deferred: KVec<SockEvent>,
    /// Incoming connections being set up by the transport (handed out by [`run_work`]).
    setting_up: conns::Slab<setups::SetUp>,
    /// When lingering rings and withheld pages were last swept (ms).
    last_sweep: u64,
    /// The watch on `Y(self)`, while the plane runs.
    watch: Option<Watch>,
    /// Test build: rings kept by the `hold` attack.
    #[cfg(yasmin_test)]
    hoard: KVec<(Option<TxRing>, Option<crate::xen::rings::RxRing>)>,
}

impl Plane {
    fn new(domid: u16, max_ring_pages: u16) -> Self {
        Plane {
            domid,
            gen: None,
            max_ring_pages,
            peers: KVec::new(),
            stopping: false,
            dropped_notices: 0,
            recycled_slots: 0,
            conns: Conns::new(),
            deferred: KVec::new(),
            setting_up: conns::Slab::new(),
            last_sweep: 0,
            watch: None,
            #[cfg(yasmin_test)]
            hoard: KVec::new(),
        }
    }

    // ---- calls from the transport ---------------------------------------------------

    /// A connecting socket: sends its CONNECT now if the pair channel is up, else opens
    /// the channel first. The table keeps `sk` until the connection is forgotten.
    pub(crate) fn connect_sock(
        &mut self,
        peer: u16,
        token: u64,
        sk: ARef<Sock>,
        msg: Msg,
    ) -> Result {
        if self.gen.is_none() {
            return Err(errno(crate::bindings::ENETUNREACH)); // watcher not running
        }
        let i = self.slot(peer).ok_or(errno(crate::bindings::ENETUNREACH))?;
        if !self.conn_fits(peer) {
            return Err(limits::enobufs());
        }
        let up = self.peers[i].pair.is_connected();
        self.conns.table.insert(ConnEntry {
            peer,
            token,
            sk,
            pending: if up { None } else { Some(msg) },
            answered: false,
        })?;
        if up {
            self.send(i, msg);
        } else {
            self.feed(i, Event::Connect, 0);
        }
        Ok(())
    }

    /// An accepted socket: registers it and sends the ACCEPT.
    pub(crate) fn register_sock(
        &mut self,
        peer: u16,
        token: u64,
        sk: ARef<Sock>,
        answer: Msg,
    ) -> Result {
        let i = self.find(peer).ok_or(errno(crate::bindings::ENOTCONN))?;
        if !self.peers[i].pair.is_connected() {
            return Err(errno(crate::bindings::ENOTCONN));
        }
        self.conns.table.insert(ConnEntry {
            peer,
            token,
            sk,
            pending: None,
            answered: true,
        })?;
        self.send(i, answer);
        Ok(())
    }

    /// Sends a per-socket message if the pair channel is up (else the peer has reset the
    /// connection anyway).
    pub(crate) fn send_sock(&mut self, peer: u16, msg: Msg) {
        if let Some(i) = self.find(peer) {
            if self.peers[i].pair.is_connected() {
                self.send(i, msg);
            }
        }
    }

    /// Removes a connection; returns the table's socket reference, for the caller to
    /// drop once the plane is unlocked.
    pub(crate) fn forget_sock(&mut self, peer: u16, token: u64) -> Option<ARef<Sock>> {
        self.conns.forget(peer, token)
    }

    /// Refuses or ends connection `id` with `peer`: RESET with `reason` (none for a
    /// CONNECT that never left: the peer never heard of it), then forgets it. A CONNECT
    /// the peer has not answered yet takes the socket's ring and event channel along,
    /// kept for the peer until its answer (see [`Plane::close_sock`]). Returns the table's
    /// socket reference, as [`Plane::forget_sock`].
    pub(crate) fn reset_sock(
        &mut self,
        peer: u16,
        id: ConnId,
        reason: u32,
        tx: &mut Option<TxRing>,
        evt: &mut Option<EventChannel>,
    ) -> Option<ARef<Sock>> {
        if !self.conns.unsent(peer, id.token) {
            self.send_sock(peer, Msg::Reset { id, reason });
        }
        if self.awaits_answer(peer, id.token) {
            self.conns.linger(peer, id.token, tx.take(), evt.take());
        }
        self.conns.forget(peer, id.token)
    }

    /// Whether our CONNECT `token` to `peer` has left, has no answer yet, and will get
    /// one (the channel is up): until then the peer may still map the ring it offered
    /// and bind to its event channel port, so neither may be reused.
    fn awaits_answer(&self, peer: u16, token: u64) -> bool {
        self.conns.unanswered(peer, token)
            && self
                .find(peer)
                .is_some_and(|i| self.peers[i].pair.is_connected())
    }

    /// A released socket: CLOSE to the peer, and its sending ring (`tx`, if the peer may
    /// still read it) kept until the peer has released its side too; for a CONNECT the
    /// peer has not answered yet, its event channel too (parked: the socket goes). A
    /// connection whose CONNECT never left (the pair channel was not up yet) just goes,
    /// ring and all. Returns the table's socket reference, as [`Plane::forget_sock`].
    pub(crate) fn close_sock(
        &mut self,
        peer: u16,
        id: ConnId,
        tx: Option<TxRing>,
        evt: Option<EventChannel>,
    ) -> Option<ARef<Sock>> {
        if !self.conns.unsent(peer, id.token) {
            self.send_sock(peer, Msg::Close { id });
            let evt = evt.filter(|_| self.awaits_answer(peer, id.token));
            self.conns.linger(peer, id.token, tx, evt);
        }
        self.conns.forget(peer, id.token)
    }

    /// The peer released connection `token` (its CLOSE or RESET): the sending ring we
    /// kept for it, if any, can go.
    pub(crate) fn peer_released(&mut self, peer: u16, token: u64) {
        self.conns.end_linger(peer, Some(token));
    }

    /// Largest ring `peer` maps (its HELLO), if its channel is up: rings we offer it fit.
    pub(crate) fn peer_max_ring(&self, peer: u16) -> Option<u16> {
        let p = &self.peers[self.find(peer)?];
        p.pair.is_connected().then(|| p.pair.peer_max_ring_pages())
    }

    /// Connections in the table (debugfs `stats`).
    pub(crate) fn conns_live(&self) -> usize {
        self.conns.table.len()
    }

    // ---- control channels -----------------------------------------------------------

    /// The index in `deferred` of a CONNECT from `peer` with `token` read this run and
    /// not yet set up.
    fn pending_incoming(&self, peer: u16, token: u64) -> Option<usize> {
        self.deferred.iter().position(|e| {
            matches!(e, SockEvent::Incoming { peer: p, id, .. } if *p == peer && id.token == token)
        })
    }

    fn defer(&mut self, ev: SockEvent) {
        if self.deferred.push(ev, GFP_KERNEL).is_err() {
            pr_err!("socket event lost (out of memory)\n");
        }
    }

    /// Queues `m` on peer `i`'s control ring and writes what fits.
    fn send(&mut self, i: usize, m: Msg) {
        let p = &mut self.peers[i];
        let Some(link) = p.link.as_mut() else { return };
        match link.send(&m) {
            Ok(()) => p.msgs_out += 1,
            Err(e) => {
                if matches!(e, LinkError::Stuck) {
                    pr_warn!(
                        "pair with domain {}: control ring stuck, {} messages queued\n",
                        p.pair.peer(),
                        link::MAX_OUTBOX
                    );
                }
                self.feed(i, Event::ChannelBroken, 1);
            }
        }
    }

    /// Drains peer `i`'s control ring, at most [`FRAMES_PER_RUN`] frames per run and only
    /// while fewer than [`MAX_DEFERRED`] socket events wait, so one run of the work item,
    /// which holds the plane mutex, stays short. A peer that spends the whole frame budget
    /// is flooding: the rest of its messages wait for a run one jiffy later, and its
    /// interrupt stays masked until then (no late EOI), so its notifications cannot pull
    /// that run forward. The victim then spends at most one budget per jiffy on it, the
    /// flooder's ring fills, and it is throttled by its own backpressure.
    fn poll(&mut self, i: usize) {
        if self.peers[i].wedged() {
            return; // its interrupt stays masked, its messages unread
        }
        let queued = self.peers[i].link.as_ref().map(|l| l.queued());
        let (frames, flooding) = self.poll_rings(i);
        if flooding {
            glue::work_kick_after(1);
            return;
        }
        if let (Some(before), Some(link)) = (queued, self.peers[i].link.as_ref()) {
            // Late EOI: nothing read and nothing written is a spurious interrupt.
            link.ack(frames == 0 && link.queued() == before);
        }
    }

    /// [`Plane::poll`]'s reading; returns the frames taken off the ring, and whether the
    /// peer spent the whole frame budget.
    fn poll_rings(&mut self, i: usize) -> (usize, bool) {
        let mut budget = FRAMES_PER_RUN;
        let mut total = 0;
        loop {
            if budget == 0 {
                return (total, true);
            }
            if self.deferred.len() >= MAX_DEFERRED {
                glue::work_kick(); // the next run goes on once these are applied
                return (total, false);
            }
            let p = &mut self.peers[i];
            let Some(link) = p.link.as_mut() else {
                return (total, false);
            };
            let mut msgs: [Option<Msg>; 16] = [None; 16];
            let flushed = link.flush();
            let got = link.receive(&mut msgs, &mut p.bad_msgs);
            let (n, frames) = match (flushed, got) {
                (Ok(()), Ok(r)) => r,
                _ => {
                    self.feed(i, Event::ChannelBroken, 0);
                    return (total, false);
                }
            };
            p.msgs_in += n as u64;
            if frames > 0 {
                p.last_rx = pairs::now_ms();
            }
            budget = budget.saturating_sub(frames);
            total += frames;
            self.check_budget(i); // invalid frames of this batch
            for m in msgs.iter().take(n).flatten() {
                if self.peers[i].link.is_none() {
                    return (total, false); // reset for misbehaviour: the rest is not read
                }
                self.dispatch(i, m);
            }
            if frames < msgs.len() {
                return (total, false);
            }
        }
    }

    /// One message from peer `i`: pair-level ones go to its state machine, per-socket ones
    /// become socket events.
    fn dispatch(&mut self, i: usize, m: &Msg) {
        let peer = self.peers[i].pair.peer();
        match m {
            Msg::Ping { .. } => {
                if self.ping_allowed(i) {
                    self.feed(i, Event::Received(*m), 0)
                }
            }
            Msg::Hello(_) | Msg::HelloAck(_) | Msg::Pong { .. } | Msg::Goodbye { .. } => {
                self.feed(i, Event::Received(*m), 0)
            }
            Msg::Connect {
                id,
                ring,
                evtchn,
                seqpacket,
            } => {
                // The connector picks the token with its own domid on top (PROTOCOL.md):
                // a foreign or reused one is refused.
                let foreign = id.token >> 48 != peer as u64;
                let abusive = foreign
                    || self.conns.find(peer, id.token).is_some()
                    || self.pending_incoming(peer, id.token).is_some()
                    || self.in_setup(peer, id.token).is_some();
                if abusive || !self.conn_fits(peer) {
                    let reason = if abusive {
                        wire::RESET_PROTOCOL
                    } else {
                        wire::RESET_LIMIT
                    };
                    self.send(
                        i,
                        Msg::Reset {
                            id: id.reversed(),
                            reason,
                        },
                    );
                    if abusive {
                        self.strike(i);
                    }
                    return;
                }
                self.defer(SockEvent::Incoming {
                    peer,
                    id: *id,
                    ring: *ring,
                    evtchn: *evtchn,
                    seqpacket: *seqpacket,
                })
            }
            Msg::Accept { id, .. }
            | Msg::Reset { id, .. }
            | Msg::Shutdown { id, .. }
            | Msg::Close { id } => {
                if let Some(c) = self.conns.find_mut(peer, id.token) {
                    // Whatever the peer says about the connection, it has set up or
                    // refused our CONNECT: the offer is used up.
                    c.answered = true;
                    // The event carries its own reference (taking one is fine under this
                    // lock; the transport drops it after locking the socket).
                    let sk = c.sk.clone();
                    self.defer(SockEvent::ForSock { sk, msg: *m });
                    return;
                }
                self.unknown_conn(i, m);
            }
        }
    }

    /// A message for a connection of pair `i` that we do not have (any more): a late
    /// message after a reset or a given-up connect attempt, or junk.
    fn unknown_conn(&mut self, i: usize, m: &Msg) {
        let peer = self.peers[i].pair.peer();
        if let Msg::Close { id } | Msg::Reset { id, .. } = m {
            // The peer released: a ring we kept for it can go.
            self.conns.end_linger(peer, Some(id.token));
            // A CONNECT of this run not set up yet (a connect the peer gave up
            // on at once): it is withdrawn, or its child would be accepted
            // after the peer's RESET and wait for a peer that left. It is still
            // answered (RESET): the peer keeps what it offered until then.
            // One handed to the transport and still being set up is answered by
            // the set-up once it is done (`setups`): its child is not registered.
            if let Some(k) = self.pending_incoming(peer, id.token) {
                self.deferred[k] = SockEvent::Withdrawn;
                self.send(
                    i,
                    Msg::Reset {
                        id: id.reversed(),
                        reason: wire::RESET_CANCELLED,
                    },
                );
            } else if let Some(s) = self.in_setup(peer, id.token) {
                s.standing = match s.standing {
                    setups::Standing::Live => setups::Standing::Cancelled,
                    other => other,
                };
            }
        }
        if let Msg::Accept { id, .. } = m {
            // Our CONNECT's ring, kept for this answer, can go.
            self.conns.end_linger(peer, Some(id.token));
            // A RESET back either way, so the peer's child does not wait for us.
            // For a token we issued, it is the late answer to a connect we gave
            // up on or released (the peer may have set the child up before our
            // RESET or CLOSE reached it): not misbehaviour, as a local program
            // cancelling connects must not get an honest peer's channel reset.
            let late = issued(id.token);
            let reason = if late {
                wire::RESET_CANCELLED
            } else {
                wire::RESET_PROTOCOL
            };
            self.send(
                i,
                Msg::Reset {
                    id: id.reversed(),
                    reason,
                },
            );
            if !late {
                self.strike(i);
            }
        }
    }

    /// A message the transport found addressed to an earlier connect attempt of one of
    /// its sockets (a connect retried on the same socket): handled as for a connection
    /// we do not have.
    pub(crate) fn stale_msg(&mut self, peer: u16, token: u64, m: &Msg) {
        match self.find(peer) {
            Some(i) if self.peers[i].pair.is_connected() => self.unknown_conn(i, m),
            // No channel to answer on: only a ring we kept for that attempt can go.
            _ => self.conns.end_linger(peer, Some(token)),
        }
    }

    /// One run of the work item.
    fn run(&mut self) {
        if self.stopping {
            return;
        }
        if XS_DIRTY.swap(false, Ordering::AcqRel) {
            self.scan();
        }
        for i in 0..self.peers.len() {
            self.poll(i);
        }
        self.tick();
    }
}

/// XenStore watch callback (xenwatch thread): rescan on the next run.
///
/// # Safety
///
/// Called by xenbus only, with valid (unused) arguments.
unsafe extern "C" fn on_watch(
    _w: *mut crate::bindings::xenbus_watch,
    _path: *const c_char,
    _token: *const c_char,
) {
    XS_DIRTY.store(true, Ordering::Release);
    glue::work_kick();
}

/// Save/restore (lifecycle.rs): stops the plane as module unload does, and returns the
/// socket events that reset every connection, for the caller to apply.
pub(crate) fn suspend() -> KVec<SockEvent> {
    let (watch, events) = PLANE
        .with(|p| {
            let watch = p.stop();
            p.conns.fail_all(&mut p.deferred);
            (watch, core::mem::replace(&mut p.deferred, KVec::new()))
        })
        .unwrap_or_default();
    // Unregistered with the plane unlocked (see `Plane::stop`).
    drop(watch);
    // Nothing queues the work any more: no watch, no channel, `stopping` set.
    glue::work_cancel();
    events
}

/// After a restore (a new domain) or a cancelled suspend: starts the plane afresh as
/// domain `domid`. Nothing of the old plane is left to touch: [`suspend`] dropped it.
pub(crate) fn resume(domid: u16) -> Result {
    PLANE
        .with(|p| {
            *p = Plane::new(domid, p.max_ring_pages);
            p.start()
        })
        .unwrap_or(Err(ENODEV))?;
    glue::work_kick();
    Ok(())
}

/// The running control plane: owns the state (with the watch on `Y(self)`).
pub(crate) struct ControlPlane {
    // Dropped first, once the work item that queues set-ups is off: waits for the
    // set-ups still running (they find the plane stopping and register nothing).
    _setups: glue::SetupQueue,
    // Dropped last: withdrawn from the callbacks once the last running one is done.
    plane: glue::Publication<Plane>,
}

impl Plane {
    /// Watches `Y(self)` and runs the first scan now, not from the work item: once it
    /// returns, `up` is written (if the area is ready) and a peer's connect finds us.
    fn start(&mut self) -> Result {
        OWN_DOMID.store(self.domid as u64, Ordering::Relaxed);
        XS_DIRTY.store(true, Ordering::Release);
        self.watch = Some(Watch::new(paths::root(self.domid).as_str(), on_watch)?);
        self.run();
        Ok(())
    }

    /// Stops the plane: `up` is withdrawn, every peer hears GOODBYE, and every port is
    /// unbound and every page revoked or unmapped. Returns the watch, for the caller to
    /// drop once the plane is unlocked: unregistering it takes xenbus' `xenwatch_mutex`,
    /// which Xen's suspend path holds while it calls us (and so takes the plane mutex).
    #[must_use]
    fn stop(&mut self) -> Option<Watch> {
        let watch = self.watch.take();
        if self.gen.is_some() {
            // First, so that the watcher stops relaying to us; then GOODBYE.
            let _ = xen::xs_rm(paths::up_node(self.domid).as_str());
        }
        self.gen = None; // connects fail with ENETUNREACH until a restart
        self.stop_all();
        self.stopping = true;
        watch
    }
}

impl ControlPlane {
    pub(crate) fn start(domid: u16, max_ring_pages: u16, max_setups: u32) -> Result<Self> {
        let plane = KBox::pin_init(
            kernel::new_mutex!(Plane::new(domid, max_ring_pages)),
            GFP_KERNEL,
        )?;
        let setups = glue::SetupQueue::start(max_setups)?;
        let cp = ControlPlane {
            _setups: setups,
            plane: PLANE.publish(plane),
        };
        // On failure `cp` drops: the plane is withdrawn and the work cancelled.
        cp.plane.with_locked(|p| p.start())?;
        glue::work_kick();
        Ok(cp)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The watch is dropped with the plane unlocked (see `Plane::stop`).
        drop(self.plane.with_locked(|p| p.stop()));
        // No interrupt or watch can queue the work any more; wait for a running one. A
        // page withheld from here to unload would still queue it: disabled, it stays off.
        glue::work_disable();
    }
}
