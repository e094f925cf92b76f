// SPDX-License-Identifier: GPL-2.0
//! The control plane in the kernel: one `control::pair::Pair` state machine per peer
//! domain (see `xenstore-watch/PROTOCOL.md`), driven by XenStore watches, event-channel
//! interrupts and a 1 s tick, and the per-pair control channel they set up (one granted
//! page with two small rings plus one event channel).
//!
//! Everything runs in one work item (`yasmin_ctl_kick` in glue.c) under one mutex: the
//! XenStore watch callback and the interrupt handler only mark work and kick it, so
//! nothing here runs in atomic context and XenStore calls may sleep.

use crate::bindings;
use crate::control::pair::{Action, Channel, Event, LogKind, NodeError, Pair, Role, State};
use crate::control::paths::{self, Kind, Offer, Req};
use crate::control::wire::{self, Msg};
use crate::ring::{Consumer, Producer, Region, RingError};
use crate::socket_ring::TxRing;
use crate::vsock_transport::{self, SockEvent};
use crate::xen::{self, errno, EventChannel, ForeignPages, GrantedPage, Watch};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_void};
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::time::Ktime;

/// Most peers tracked at once; notices about more are dropped with a log line.
const MAX_PEERS: usize = 256;
/// Most control messages queued for a peer whose ring is full before the channel is reset.
const MAX_OUTBOX: usize = 256;
/// Bound on result events fed back into a pair while handling one event.
const MAX_FEED_DEPTH: u32 = 8;

/// The plane the work item, the watch and debugfs act on: set while `ControlPlane` lives.
static PLANE: AtomicPtr<Mutex<Plane>> = AtomicPtr::new(null_mut());
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

/// Removes and returns element `i` (order is not kept).
fn take_at<T>(v: &mut KVec<T>, i: usize) -> T {
    let last = v.len() - 1;
    v.as_mut_slice().swap(i, last);
    // SAFETY: the last element is moved out and the length shrunk past it, so it is
    // neither dropped nor read again.
    unsafe {
        let x = core::ptr::read(v.as_ptr().add(last));
        v.set_len(last);
        x
    }
}

/// A released socket's sending ring (see `Plane::linger`).
struct Lingering {
    peer: u16,
    token: u64,
    _tx: TxRing,
}

/// A socket riding on a pair channel. The table holds a reference on the socket.
struct ConnEntry {
    peer: u16,
    token: u64,
    sk: *mut bindings::sock,
    /// A CONNECT waiting for the pair channel to come up.
    pending: Option<Msg>,
}

fn now_ms() -> u64 {
    Ktime::ktime_get().to_ms().max(0) as u64
}

fn kick() {
    // SAFETY: queues the static work item; callable from any context.
    unsafe { bindings::yasmin_ctl_kick() };
}

/// One encoded control message waiting for ring space.
#[derive(Clone, Copy)]
struct OutMsg {
    buf: [u8; wire::MAX_V1_LEN],
    len: usize,
}

/// The shared control page: ours (offerer) or the peer's, mapped (acceptor).
#[allow(dead_code)] // Held only for its drop: revoke the grant or unmap.
enum Page {
    Granted(GrantedPage),
    Mapped(ForeignPages),
}

/// A live control channel. Field order is drop order: the interrupt goes first, the
/// page (whose memory the rings point into) last.
struct Link {
    evt: EventChannel,
    tx: Producer,
    rx: Consumer,
    outbox: KVec<OutMsg>,
    _page: Page,
}

impl Link {
    /// The two rings of a control page at `base`, from `role`'s point of view.
    fn rings(base: *mut u8, role: Role) -> Result<(Producer, Consumer)> {
        let part = |hdr: usize, data: usize| {
            // SAFETY: `base` is a mapped 4 KiB control page that outlives the endpoints (the
            // `Link` owns it and drops it last); header and data offsets are inside it and
            // the headers are only accessed atomically through the ring.
            unsafe {
                Region::from_parts(
                    base.wrapping_add(hdr),
                    base.wrapping_add(data),
                    wire::CTRL_RING_SIZE,
                )
            }
            .map_err(|_| EINVAL)
        };
        let o2a = part(wire::CTRL_O2A_HDR, wire::CTRL_O2A_DATA)?;
        let a2o = part(wire::CTRL_A2O_HDR, wire::CTRL_A2O_DATA)?;
        Ok(match role {
            Role::Offerer => (Producer::new(o2a), Consumer::new(a2o)),
            Role::Acceptor => (Producer::new(a2o), Consumer::new(o2a)),
        })
    }

    /// Offerer: a fresh control page granted to `peer` and an unbound port for it.
    fn offer(peer: u16) -> Result<(Link, Channel)> {
        let page = GrantedPage::new(peer, false, |base| {
            // The page is zeroed (ring headers included): only the magic and version.
            // SAFETY: `base` is our fresh page, not yet shared, 4 KiB long.
            unsafe {
                base.add(wire::CTRL_OFF_MAGIC)
                    .cast::<u32>()
                    .write_volatile(wire::CTRL_MAGIC.to_le());
                base.add(wire::CTRL_OFF_VERSION)
                    .cast::<u16>()
                    .write_volatile(wire::CTRL_VERSION.to_le());
            }
        })?;
        let evt = EventChannel::alloc_unbound(peer, on_event, cookie(peer))?;
        let (tx, rx) = Self::rings(page.addr(), Role::Offerer)?;
        let ch = Channel {
            gref: page.gref(),
            evtchn: evt.port(),
        };
        Ok((
            Link {
                evt,
                tx,
                rx,
                outbox: KVec::new(),
                _page: Page::Granted(page),
            },
            ch,
        ))
    }

    /// Acceptor: maps the offered page, checks it, binds the offered port.
    fn accept(peer: u16, ch: Channel) -> Result<Link> {
        let page = ForeignPages::map(peer, &[ch.gref], false)?;
        let base = page.addr(0);
        // SAFETY: the mapped page is 4 KiB; the peer may change it at any time, so the
        // fields are read once, volatile, and only compared.
        let (magic, version) = unsafe {
            (
                u32::from_le(base.add(wire::CTRL_OFF_MAGIC).cast::<u32>().read_volatile()),
                u16::from_le(
                    base.add(wire::CTRL_OFF_VERSION)
                        .cast::<u16>()
                        .read_volatile(),
                ),
            )
        };
        if magic != wire::CTRL_MAGIC || version != wire::CTRL_VERSION {
            return Err(EINVAL); // not a YASMIN control page
        }
        let evt = EventChannel::bind_interdomain(peer, ch.evtchn, on_event, cookie(peer))?;
        let (tx, rx) = Self::rings(base, Role::Acceptor)?;
        Ok(Link {
            evt,
            tx,
            rx,
            outbox: KVec::new(),
            _page: Page::Mapped(page),
        })
    }

    /// Writes queued messages while they fit; `Err` if the ring is corrupt.
    fn flush(&mut self) -> core::result::Result<(), RingError> {
        let mut sent = 0;
        let mut notify = false;
        for m in self.outbox.iter() {
            if self.tx.writable()? < m.len {
                break;
            }
            let t = self.tx.write_slice(&m.buf[..m.len])?;
            notify |= t.notify;
            sent += 1;
        }
        if sent > 0 {
            let left = self.outbox.len() - sent;
            self.outbox.as_mut_slice().copy_within(sent.., 0);
            // SAFETY: shrinking; the elements are `Copy` (nothing to drop) and the first
            // `left` now hold the unsent messages.
            unsafe { self.outbox.set_len(left) };
        }
        if !self.outbox.is_empty() && self.tx.arm_writable()? > 0 {
            // Space appeared while arming: the next run writes it.
            kick();
        }
        if notify {
            self.evt.notify();
        }
        Ok(())
    }

    /// Reads every complete message (at most `out.len()`); `Err` if the channel is broken.
    fn receive(
        &mut self,
        out: &mut [Option<Msg>],
        bad: &mut u32,
    ) -> core::result::Result<usize, ()> {
        let mut n = 0;
        let mut notify = false;
        while n < out.len() {
            let avail = self.rx.readable().map_err(|_| ())?;
            let mut hdr = [0u8; wire::HEADER_LEN];
            if avail < hdr.len() {
                if self.rx.arm_readable().map_err(|_| ())? >= hdr.len() {
                    continue;
                }
                break;
            }
            self.rx.peek_slice(0, &mut hdr).map_err(|_| ())?;
            let h = wire::peek_header(&hdr).map_err(|_| ())?; // bad version/length: fatal
            if avail < h.len {
                if self.rx.arm_readable().map_err(|_| ())? >= h.len {
                    continue;
                }
                break;
            }
            let mut buf = [0u8; wire::MAX_MSG_LEN];
            let t = self.rx.read_slice(&mut buf[..h.len]).map_err(|_| ())?;
            notify |= t.notify;
            match Msg::decode(&buf[..h.len]) {
                Ok((m, _)) => {
                    out[n] = Some(m);
                    n += 1;
                }
                Err(e) if e.is_fatal() => return Err(()),
                Err(_) => *bad += 1, // well framed but invalid: skipped
            }
        }
        if notify {
            self.evt.notify();
        }
        Ok(n)
    }
}

/// The interrupt handler's cookie for `peer` (never null, never dereferenced).
fn cookie(peer: u16) -> usize {
    peer as usize + 1
}

/// What the module knows about one peer domain.
struct Peer {
    pair: Pair,
    link: Option<Link>,
    ups: u64,
    downs: u64,
    resets: u64,
    bad_msgs: u32,
    msgs_in: u64,
    msgs_out: u64,
}

/// All control-plane state.
pub(crate) struct Plane {
    domid: u16,
    gen: Option<u64>,
    max_ring_pages: u16,
    peers: KVec<Peer>,
    stopping: bool,
    dropped_notices: u64,
    conns: KVec<ConnEntry>,
    /// Sending rings of released sockets, kept until the peer releases its side.
    lingering: KVec<Lingering>,
    /// Socket events for the work item to apply once the plane lock is dropped.
    deferred: KVec<SockEvent>,
}

// SAFETY: the socket pointers are references the table owns; they are only handed out
// (with a reference) to code that locks the socket.
unsafe impl Send for Plane {}

impl Plane {
    fn new(domid: u16, max_ring_pages: u16) -> Self {
        Plane {
            domid,
            gen: None,
            max_ring_pages,
            peers: KVec::new(),
            stopping: false,
            dropped_notices: 0,
            conns: KVec::new(),
            lingering: KVec::new(),
            deferred: KVec::new(),
        }
    }

    /// Keeps a released socket's sending ring until the peer's CLOSE or RESET (or the
    /// pair going down), so the peer can still map and drain it.
    pub(crate) fn linger(&mut self, peer: u16, token: u64, tx: TxRing) {
        // If there is no room the ring goes now: the peer sees a reset rather than a leak.
        let _ = self.lingering.push(
            Lingering {
                peer,
                token,
                _tx: tx,
            },
            GFP_KERNEL,
        );
    }

    /// Drops lingering rings of `peer` (all, or the one of `token`).
    fn end_linger(&mut self, peer: u16, token: Option<u64>) {
        let mut i = 0;
        while i < self.lingering.len() {
            let l = &self.lingering[i];
            if l.peer == peer && token.is_none_or(|t| t == l.token) {
                drop(take_at(&mut self.lingering, i));
            } else {
                i += 1;
            }
        }
    }

    fn defer(&mut self, ev: SockEvent) {
        if let Err(e) = self.deferred.push(ev, GFP_KERNEL) {
            // Out of memory: the event is lost; drop its socket reference at least.
            pr_err!("socket event lost (out of memory): {:?}\n", e);
        }
    }

    /// Fails `peer`'s connections (all, or only those whose CONNECT still waits for the
    /// channel). A connect that never reached the peer reports `EHOSTUNREACH`; a
    /// connection the peer knew about is reset (`ECONNRESET`).
    fn fail_conns(&mut self, peer: u16, only_pending: bool) {
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if c.peer == peer && (!only_pending || c.pending.is_some()) {
                let c = take_at(&mut self.conns, i);
                let e = if c.pending.is_some() {
                    bindings::EHOSTUNREACH
                } else {
                    bindings::ECONNRESET
                };
                self.defer(SockEvent::PairDown {
                    sk: c.sk,
                    errno: e as i32,
                });
            } else {
                i += 1;
            }
        }
    }

    fn conn_index(&self, peer: u16, token: u64) -> Option<usize> {
        self.conns
            .iter()
            .position(|c| c.peer == peer && c.token == token)
    }

    /// A connecting socket: sends its CONNECT now if the pair channel is up, else opens
    /// the channel first. Takes over the caller's reference on `sk`.
    pub(crate) fn connect_sock(
        &mut self,
        peer: u16,
        token: u64,
        sk: *mut bindings::sock,
        msg: Msg,
    ) -> Result {
        if self.gen.is_none() {
            return Err(errno(bindings::ENETUNREACH)); // no XenStore area (watcher not running)
        }
        let i = self.slot(peer).ok_or(errno(bindings::ENETUNREACH))?;
        let up = self.peers[i].pair.is_connected();
        self.conns.push(
            ConnEntry {
                peer,
                token,
                sk,
                pending: if up { None } else { Some(msg) },
            },
            GFP_KERNEL,
        )?;
        if up {
            self.send(i, msg);
        } else {
            self.feed(i, Event::Connect, 0);
        }
        Ok(())
    }

    /// An accepted socket: registers it and sends the ACCEPT. Takes over the caller's
    /// reference on `sk` on success.
    pub(crate) fn register_sock(
        &mut self,
        peer: u16,
        token: u64,
        sk: *mut bindings::sock,
        answer: Msg,
    ) -> Result {
        let i = self.find(peer).ok_or(errno(bindings::ENOTCONN))?;
        if !self.peers[i].pair.is_connected() {
            return Err(errno(bindings::ENOTCONN));
        }
        self.conns.push(
            ConnEntry {
                peer,
                token,
                sk,
                pending: None,
            },
            GFP_KERNEL,
        )?;
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

    /// Removes a connection; returns the socket reference the table held (to be dropped
    /// by the caller after unlocking).
    pub(crate) fn forget_sock(&mut self, peer: u16, token: u64) -> Option<*mut bindings::sock> {
        let i = self.conn_index(peer, token)?;
        Some(take_at(&mut self.conns, i).sk)
    }

    fn find(&self, peer: u16) -> Option<usize> {
        self.peers.iter().position(|p| p.pair.peer() == peer)
    }

    /// The slot for `peer`, created if there is room and our generation is known.
    fn slot(&mut self, peer: u16) -> Option<usize> {
        if let Some(i) = self.find(peer) {
            return Some(i);
        }
        let gen = self.gen?;
        if peer == self.domid || !paths::valid_domid(peer as u32) || self.peers.len() >= MAX_PEERS {
            return None;
        }
        let mut pair = Pair::new(self.domid, peer, gen);
        pair.max_ring_pages = self.max_ring_pages;
        let p = Peer {
            pair,
            link: None,
            ups: 0,
            downs: 0,
            resets: 0,
            bad_msgs: 0,
            msgs_in: 0,
            msgs_out: 0,
        };
        self.peers.push(p, GFP_KERNEL).ok()?;
        Some(self.peers.len() - 1)
    }

    /// Feeds `ev` to peer `i` and carries out the resulting actions.
    fn feed(&mut self, i: usize, ev: Event, depth: u32) {
        let now = now_ms();
        let acts = self.peers[i].pair.handle(ev, now);
        if acts.overflow {
            pr_err!(
                "pair with domain {}: action list overflow\n",
                self.peers[i].pair.peer()
            );
        }
        for a in acts.iter() {
            if let Some(next) = self.perform(i, a) {
                if depth < MAX_FEED_DEPTH {
                    self.feed(i, next, depth + 1);
                }
            }
        }
    }

    /// Carries out one action for peer `i`; returns the result event, if the action has one.
    fn perform(&mut self, i: usize, a: Action) -> Option<Event> {
        let me = self.domid;
        let peer = self.peers[i].pair.peer();
        match a {
            Action::Read(kind) => {
                let r =
                    xen::xs_read_path(paths::peer_node(peer, kind, me).as_str(), |v| match kind {
                        Kind::Offer => {
                            Event::OfferRead(Offer::parse(v).map_err(NodeError::Malformed))
                        }
                        _ => Event::ReqRead(Req::parse(v).map_err(NodeError::Malformed)),
                    });
                Some(r.unwrap_or_else(|e| {
                    // xenstored answers EACCES, not ENOENT, for a missing node under a
                    // directory we may not list (the peer's `offer/`, `req/`). The watcher
                    // sets the perms before it notifies, so EACCES here means "removed".
                    let ne = if e == ENOENT || e == EACCES {
                        NodeError::Missing
                    } else {
                        NodeError::Unreadable
                    };
                    match kind {
                        Kind::Offer => Event::OfferRead(Err(ne)),
                        _ => Event::ReqRead(Err(ne)),
                    }
                }))
            }
            Action::WriteOffer(o) => {
                self.publish(peer, Kind::Offer, o.format().as_bytes());
                None
            }
            Action::WriteReq(r) => {
                self.publish(peer, Kind::Req, r.format().as_bytes());
                None
            }
            Action::Remove(kind) => {
                if let Err(e) = xen::xs_rm(paths::peer_node(me, kind, peer).as_str()) {
                    pr_warn!(
                        "pair with domain {}: removing {} failed: {:?}\n",
                        peer,
                        kind.name(),
                        e
                    );
                }
                None
            }
            Action::AllocChannel => match Link::offer(peer) {
                Ok((link, ch)) => {
                    self.peers[i].link = Some(link);
                    Some(Event::Allocated(Some(ch)))
                }
                Err(e) => {
                    pr_warn!(
                        "pair with domain {}: cannot set up a control channel: {:?}\n",
                        peer,
                        e
                    );
                    Some(Event::Allocated(None))
                }
            },
            Action::MapChannel(ch) => match Link::accept(peer, ch) {
                Ok(link) => {
                    self.peers[i].link = Some(link);
                    Some(Event::Mapped(true))
                }
                Err(e) => {
                    pr_warn!(
                        "pair with domain {}: cannot map its control channel (gref {}, port {}): {:?}\n",
                        peer,
                        ch.gref,
                        ch.evtchn,
                        e
                    );
                    Some(Event::Mapped(false))
                }
            },
            Action::Teardown(_) => {
                // Unbinds the port, then revokes (offerer) or unmaps (acceptor) the page.
                self.peers[i].link = None;
                None
            }
            Action::Send(m) => {
                self.send(i, m);
                None
            }
            Action::ResetSockets => {
                self.peers[i].resets += 1;
                self.end_linger(peer, None);
                self.fail_conns(peer, false);
                None
            }
            Action::Up => {
                // Connects that waited for the channel go out now.
                let pending: KVec<Msg> = {
                    let mut v = KVec::new();
                    for c in self.conns.iter_mut().filter(|c| c.peer == peer) {
                        if let Some(m) = c.pending.take() {
                            let _ = v.push(m, GFP_KERNEL);
                        }
                    }
                    v
                };
                for m in pending.iter() {
                    self.send(i, *m);
                }
                let p = &mut self.peers[i];
                p.ups += 1;
                let role = if p.pair.role() == Role::Offerer {
                    "offerer"
                } else {
                    "acceptor"
                };
                pr_info!(
                    "pair with domain {}: control channel up ({}, peer generation {})\n",
                    peer,
                    role,
                    p.pair.peer_gen().unwrap_or(0)
                );
                None
            }
            Action::Down => {
                self.peers[i].downs += 1;
                // Connects that waited for this channel: the peer is unreachable.
                self.fail_conns(peer, true);
                pr_info!("pair with domain {}: control channel down\n", peer);
                None
            }
            Action::Log(k) => {
                log_kind(peer, k);
                None
            }
        }
    }

    /// Writes `Y(self)/<kind>/<peer>`. The watcher gives the peer read access (the
    /// kernel's xenbus has no set-permissions call) before it tells the peer.
    fn publish(&self, peer: u16, kind: Kind, value: &[u8]) {
        if let Err(e) = xen::xs_write(paths::peer_node(self.domid, kind, peer).as_str(), value) {
            // The handshake times out and resets.
            pr_warn!(
                "pair with domain {}: writing {} failed: {:?}\n",
                peer,
                kind.name(),
                e
            );
        }
    }

    /// Queues `m` on peer `i`'s control ring and writes what fits.
    fn send(&mut self, i: usize, m: Msg) {
        let p = &mut self.peers[i];
        let Some(link) = p.link.as_mut() else { return };
        let mut out = OutMsg {
            buf: [0; wire::MAX_V1_LEN],
            len: 0,
        };
        let Some(len) = m.encode(&mut out.buf) else {
            return;
        };
        out.len = len;
        let broken = if link.outbox.len() >= MAX_OUTBOX {
            pr_warn!(
                "pair with domain {}: control ring stuck, {} messages queued\n",
                p.pair.peer(),
                MAX_OUTBOX
            );
            true
        } else if link.outbox.push(out, GFP_KERNEL).is_err() {
            true
        } else {
            p.msgs_out += 1;
            link.flush().is_err()
        };
        if broken {
            self.feed(i, Event::ChannelBroken, 1);
        }
    }

    /// Drains peer `i`'s control ring and feeds pair-level messages to its state machine.
    fn poll(&mut self, i: usize) {
        loop {
            let p = &mut self.peers[i];
            let Some(link) = p.link.as_mut() else { return };
            let mut msgs: [Option<Msg>; 16] = [None; 16];
            let flushed = link.flush();
            let got = link.receive(&mut msgs, &mut p.bad_msgs);
            let n = match (flushed, got) {
                (Ok(()), Ok(n)) => n,
                _ => {
                    self.feed(i, Event::ChannelBroken, 0);
                    return;
                }
            };
            p.msgs_in += n as u64;
            for m in msgs.iter().take(n).flatten() {
                match m {
                    Msg::Hello(_)
                    | Msg::HelloAck(_)
                    | Msg::Ping { .. }
                    | Msg::Pong { .. }
                    | Msg::Goodbye { .. } => self.feed(i, Event::Received(*m), 0),
                    Msg::Connect { id, ring, evtchn } => {
                        let peer = self.peers[i].pair.peer();
                        self.defer(SockEvent::Incoming {
                            peer,
                            id: *id,
                            ring: *ring,
                            evtchn: *evtchn,
                        });
                    }
                    Msg::Accept { id, .. }
                    | Msg::Reset { id, .. }
                    | Msg::Shutdown { id, .. }
                    | Msg::Close { id } => {
                        let peer = self.peers[i].pair.peer();
                        match self.conn_index(peer, id.token) {
                            Some(c) => {
                                let sk = self.conns[c].sk;
                                // The event carries its own reference (taking one is fine
                                // under this lock; only dropping one is not).
                                // SAFETY: the table holds a reference, so `sk` is live.
                                unsafe { bindings::yasmin_sock_hold(sk) };
                                self.defer(SockEvent::ForSock { sk, msg: *m });
                            }
                            None => {
                                if let Msg::Close { id } | Msg::Reset { id, .. } = m {
                                    // The peer released: a ring we kept for it can go.
                                    self.end_linger(peer, Some(id.token));
                                }
                                // Unknown connection: a late message after a reset, or
                                // junk. An ACCEPT for nothing gets a RESET back.
                                if let Msg::Accept { id, .. } = m {
                                    // Our CONNECT's ring, kept for this answer, can go.
                                    self.end_linger(peer, Some(id.token));
                                    let back = wire::ConnId {
                                        src_port: id.dst_port,
                                        dst_port: id.src_port,
                                        token: id.token,
                                    };
                                    self.send(
                                        i,
                                        Msg::Reset {
                                            id: back,
                                            reason: wire::RESET_PROTOCOL,
                                        },
                                    );
                                }
                            }
                        }
                    }
                }
            }
            if n < msgs.len() {
                return;
            }
        }
    }

    /// Re-reads `Y(self)`: our generation, then every `notify/<p>` and `gone/<p>`.
    fn scan(&mut self) {
        let gen = xen::xs_read_path(paths::gen_node(self.domid).as_str(), paths::parse_gen);
        let gen = match gen {
            Ok(Some(g)) => g,
            _ => return, // not prepared (yet): the watch fires when it is
        };
        if self.gen != Some(gen) {
            if let Some(old) = self.gen {
                pr_warn!(
                    "own generation changed {} -> {}: all pairs reset\n",
                    old,
                    gen
                );
                self.stop_all();
                self.peers = KVec::new();
            } else {
                pr_info!("XenStore area ready (generation {})\n", gen);
            }
            self.gen = Some(gen);
            // We hear notices now (the watch on `Y(self)` is set): say so, so that the
            // watcher relays offers and requests to us instead of refusing them.
            let up = paths::up_node(self.domid);
            if let Err(e) = xen::xs_write(up.as_str(), paths::fmt_gen(gen).as_bytes()) {
                pr_err!(
                    "writing {} failed ({:?}): peers cannot reach us\n",
                    up.as_str(),
                    e
                );
            }
        }
        for kind in [Kind::Notify, Kind::Gone] {
            let mut names: KVec<u16> = KVec::new();
            let listed = xen::xs_directory(paths::kind_dir(self.domid, kind).as_str(), |name| {
                if let Some(p) = paths::parse_domid(name) {
                    let _ = names.push(p, GFP_KERNEL);
                }
            });
            if listed.is_err() {
                continue;
            }
            for &p in names.iter() {
                // `gone` may say "no such domain" (generation 0).
                let parse = if kind == Kind::Gone {
                    paths::parse_gone
                } else {
                    paths::parse_gen
                };
                let v = xen::xs_read_path(paths::peer_node(self.domid, kind, p).as_str(), parse);
                let v = match v {
                    Ok(Some(g)) => Ok(g),
                    Ok(None) => Err(NodeError::Unreadable),
                    Err(e) if e == ENOENT => Err(NodeError::Missing),
                    Err(_) => Err(NodeError::Unreadable),
                };
                let slot = match kind {
                    Kind::Notify => self.slot(p),
                    _ => self.find(p),
                };
                match (slot, kind) {
                    (Some(i), Kind::Notify) => self.feed(i, Event::Notify(v), 0),
                    (Some(i), _) => self.feed(i, Event::Gone(v), 0),
                    (None, _) => {
                        // A death notice for a peer we never talked to, or no room.
                        if kind == Kind::Notify {
                            self.dropped_notices += 1;
                        }
                        let _ = xen::xs_rm(paths::peer_node(self.domid, kind, p).as_str());
                    }
                }
            }
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
        let now = now_ms();
        for i in 0..self.peers.len() {
            if matches!(self.peers[i].pair.deadline(), Some(d) if now >= d) {
                self.feed(i, Event::Tick, 0);
            }
        }
        if self.peers.iter().any(|p| p.pair.deadline().is_some()) {
            // SAFETY: queues the static work item.
            unsafe { bindings::yasmin_ctl_kick_after(1000) };
        }
    }

    /// A local user wants the channel to `peer`.
    fn connect(&mut self, peer: u16) -> Result {
        if self.gen.is_none() {
            return Err(EAGAIN); // XenStore area not prepared by the watcher yet
        }
        let i = self.slot(peer).ok_or(EINVAL)?;
        self.feed(i, Event::Connect, 0);
        self.run();
        Ok(())
    }

    /// Says goodbye to every peer and frees every channel.
    fn stop_all(&mut self) {
        self.lingering = KVec::new();
        for i in 0..self.peers.len() {
            self.feed(i, Event::Shutdown, 0);
            self.peers[i].link = None;
        }
    }

    /// The debugfs `pairs` table.
    fn show(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        writeln!(
            w,
            "domid {} cid {} generation {} peers {} dropped_notices {}",
            self.domid,
            self.domid as u32 + paths::CID_OFFSET,
            self.gen.unwrap_or(0),
            self.peers.len(),
            self.dropped_notices
        )?;
        writeln!(
            w,
            "peer role state peer_gen gref evtchn ups downs resets msgs_in msgs_out bad_msgs"
        )?;
        for p in self.peers.iter() {
            let ch = p.pair.channel();
            writeln!(
                w,
                "{} {} {} {} {} {} {} {} {} {} {} {}",
                p.pair.peer(),
                if p.pair.role() == Role::Offerer {
                    "offerer"
                } else {
                    "acceptor"
                },
                state_name(p.pair.state()),
                p.pair.peer_gen().unwrap_or(0),
                ch.map_or(0, |c| c.gref),
                ch.map_or(0, |c| c.evtchn),
                p.ups,
                p.downs,
                p.resets,
                p.msgs_in,
                p.msgs_out,
                p.bad_msgs
            )?;
        }
        Ok(())
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Idle => "idle",
        State::Requested => "requested",
        State::Allocating => "allocating",
        State::Offered => "offered",
        State::Mapping => "mapping",
        State::HelloSent => "hello-sent",
        State::Connected => "connected",
    }
}

/// The state machine's (already rate-limited) log lines.
fn log_kind(peer: u16, k: LogKind) {
    match k {
        LogKind::BadNotify(e) => pr_warn!("domain {}: ignored unusable notice: {:?}\n", peer, e),
        LogKind::BadNode(e) => pr_warn!("domain {}: ignored malformed or unreadable offer/request: {:?}\n", peer, e),
        LogKind::GenMismatch { expected, found } => pr_warn!(
            "domain {}: ignored offer/request of generation {} (XenStore vouches for {}): forged or stale\n",
            peer,
            found,
            expected
        ),
        LogKind::NotForUs { found } => {
            pr_warn!("domain {}: ignored offer/request addressed to our generation {}\n", peer, found)
        }
        LogKind::Unexpected => pr_warn!("domain {}: ignored unexpected control message or node\n", peer),
        LogKind::Replaced { old, new } => {
            pr_info!("domain {}: new incarnation (generation {} -> {}): old pair reset\n", peer, old, new)
        }
        LogKind::SetupFailed => pr_warn!("domain {}: control channel set-up failed\n", peer),
        LogKind::Timeout => pr_warn!("domain {}: handshake timed out\n", peer),
        LogKind::Version => pr_warn!("domain {}: no common protocol version\n", peer),
        LogKind::Broken => pr_warn!("domain {}: control channel broken (corrupt ring or message framing)\n", peer),
        LogKind::PeerGone => pr_info!("domain {}: peer gone\n", peer),
    }
}

/// XenStore watch callback (xenwatch thread): rescan on the next run.
unsafe extern "C" fn on_watch(
    _w: *mut bindings::xenbus_watch,
    _path: *const c_char,
    _token: *const c_char,
) {
    XS_DIRTY.store(true, Ordering::Release);
    kick();
}

/// Control event-channel interrupt (hard IRQ): the work item reads the rings.
unsafe extern "C" fn on_event(_irq: c_int, _cookie: *mut c_void) -> bindings::irqreturn_t {
    kick();
    bindings::irqreturn_IRQ_HANDLED
}

/// Runs `f` on the live plane, if any.
/// Socket events produced outside the work item (e.g. by a socket call) are applied by
/// the next run, which this kicks.
pub(crate) fn with_plane<R>(f: impl FnOnce(&mut Plane) -> R) -> Option<R> {
    let p = PLANE.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: `PLANE` is non-null only while the `ControlPlane` owning the mutex lives, and
    // its drop clears `PLANE` only after cancelling this work item, removing debugfs and
    // unregistering the watch (each waits for running callers).
    let m = unsafe { &*p };
    let mut g = m.lock();
    let r = f(&mut g);
    if !g.deferred.is_empty() {
        kick();
    }
    Some(r)
}

/// The work item (called by glue.c): runs the plane, then applies the socket events it
/// produced with the plane unlocked (they take socket locks; see vsock_transport.rs).
#[no_mangle]
extern "C" fn yasmin_control_work() {
    let events = with_plane(|p| {
        p.run();
        core::mem::replace(&mut p.deferred, KVec::new())
    });
    for ev in events.into_iter().flatten() {
        vsock_transport::handle(ev);
    }
}

/// debugfs `pairs` (called by glue.c): writes the table into `buf`, returns its length.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_pairs(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: guaranteed by the caller (a kmalloc'd buffer of `len` bytes).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut w = SliceWriter { buf: out, at: 0 };
    match with_plane(|p| p.show(&mut w)) {
        Some(_) => w.at as c_long,
        None => ENODEV.to_errno() as c_long,
    }
}

/// debugfs `stats` (called by glue.c): global counters, one `name value` per line.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_stats(buf: *mut c_char, len: usize) -> c_long {
    use crate::vsock_transport as t;
    // SAFETY: guaranteed by the caller (a kmalloc'd buffer of `len` bytes).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut w = SliceWriter { buf: out, at: 0 };
    let conns = with_plane(|p| p.conns.len()).unwrap_or(0);
    let r = (|| -> core::fmt::Result {
        use core::fmt::Write;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        writeln!(
            w,
            "grant_pages {}",
            xen::GRANTED_PAGES.load(Ordering::Relaxed)
        )?;
        writeln!(
            w,
            "mapped_pages {}",
            xen::MAPPED_PAGES.load(Ordering::Relaxed)
        )?;
        writeln!(w, "sockets {}", l(&t::SOCKETS))?;
        writeln!(w, "connections_live {}", conns)?;
        writeln!(w, "connections_total {}", l(&t::CONNECTIONS))?;
        writeln!(w, "bytes_sent {}", l(&t::BYTES_SENT))?;
        writeln!(w, "bytes_received {}", l(&t::BYTES_RECEIVED))?;
        writeln!(w, "signals_sent {}", l(&t::SIGNALS_SENT))?;
        writeln!(w, "signals_received {}", l(&t::SIGNALS_RECEIVED))?;
        writeln!(w, "resets {}", l(&t::RESETS))
    })();
    let _ = r;
    w.at as c_long
}

/// debugfs `scribble_tx_port` (called by glue.c): arm the ring-corruption test hook.
#[no_mangle]
extern "C" fn yasmin_debugfs_scribble(port: c_uint) -> c_int {
    vsock_transport::SCRIBBLE_PORT.store(port, Ordering::Relaxed);
    pr_warn!(
        "test hook armed: the next write on local port {} corrupts its ring header\n",
        port
    );
    0
}

/// debugfs `peers` (called by glue.c): data counters per peer domain.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_peers(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: guaranteed by the caller (a kmalloc'd buffer of `len` bytes).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut w = SliceWriter { buf: out, at: 0 };
    let _ = crate::peer_stats::write(&mut w);
    w.at as c_long
}

/// debugfs `profile` read (called by glue.c): the data-path stage counters.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_profile(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: guaranteed by the caller (a kmalloc'd buffer of `len` bytes).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut w = SliceWriter { buf: out, at: 0 };
    let _ = crate::profile::write(&mut w);
    w.at as c_long
}

/// debugfs `profile` write (called by glue.c): 1 resets and starts, 0 stops.
#[no_mangle]
extern "C" fn yasmin_debugfs_profile_set(on: c_uint) -> c_int {
    match on {
        0 | 1 => {
            crate::profile::set(on == 1);
            0
        }
        _ => EINVAL.to_errno(),
    }
}

/// debugfs `connect` (called by glue.c): open the control channel to `domid`.
#[no_mangle]
extern "C" fn yasmin_debugfs_connect(domid: c_uint) -> c_int {
    let Ok(peer) = u16::try_from(domid) else {
        return EINVAL.to_errno();
    };
    match with_plane(|p| p.connect(peer)) {
        Some(Ok(())) => 0,
        Some(Err(e)) => e.to_errno(),
        None => ENODEV.to_errno(),
    }
}

/// A `fmt::Write` into a byte slice that silently truncates.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.at;
        let n = s.len().min(room);
        self.buf[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.at += n;
        Ok(())
    }
}

/// The running control plane: owns the state, the watch on `Y(self)` and debugfs.
pub(crate) struct ControlPlane {
    plane: Pin<KBox<Mutex<Plane>>>,
    watch: Option<Watch>,
}

impl ControlPlane {
    pub(crate) fn start(domid: u16, max_ring_pages: u16) -> Result<Self> {
        OWN_DOMID.store(domid as u64, Ordering::Relaxed);
        let plane = KBox::pin_init(
            kernel::new_mutex!(Plane::new(domid, max_ring_pages)),
            GFP_KERNEL,
        )?;
        let ptr = (&*plane as *const Mutex<Plane>).cast_mut();
        XS_DIRTY.store(true, Ordering::Release);
        PLANE.store(ptr, Ordering::Release);
        let mut cp = ControlPlane { plane, watch: None };
        // On failure `cp` drops: PLANE is cleared and the work cancelled.
        cp.watch = Some(Watch::new(paths::root(domid).as_str(), on_watch)?);
        // SAFETY: creates the module's debugfs files (failures are not fatal in debugfs).
        unsafe { bindings::yasmin_debugfs_init() };
        // First scan now, not from the work item: once insmod returns, `up` is written (if
        // the area is ready) and a peer's connect finds us.
        cp.plane.lock().run();
        kick();
        Ok(cp)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // SAFETY: removes the files created in `start` (waits for running readers/writers);
        // harmless if they were never created.
        unsafe { bindings::yasmin_debugfs_exit() };
        self.watch = None; // unregistered: no more watch callbacks
        {
            let mut g = self.plane.lock();
            if g.gen.is_some() {
                // First, so that the watcher stops relaying to us; then GOODBYE.
                let _ = xen::xs_rm(paths::up_node(g.domid).as_str());
            }
            g.stop_all(); // GOODBYE to every peer; all ports unbound, pages revoked/unmapped
            g.stopping = true;
        }
        // SAFETY: no interrupt or watch can queue the work any more; wait for a running one.
        unsafe { bindings::yasmin_ctl_cancel() };
        PLANE.store(null_mut(), Ordering::Release);
    }
}
