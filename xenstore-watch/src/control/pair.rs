// SPDX-License-Identifier: GPL-2.0
//! The per-peer handshake state machine of the YASMIN control plane (guest side).
//!
//! One [`Pair`] per peer domain. It does no I/O: the driver (kernel module, or the tests'
//! simulated guest) feeds it [`Event`]s (XenStore values it read, watch firings, control
//! messages, results of channel set-up, timer ticks) and carries out the [`Action`]s it
//! returns, feeding the results of `Read`, `AllocChannel` and `MapChannel` back as events
//! before anything else.
//!
//! Compiled into the kernel module next to `wire.rs` and `paths.rs`
//! (`mod control { #[path = ".../pair.rs"] mod pair; ... }`, siblings, because it refers
//! to `super::wire` and `super::paths`): `core` only, no allocation, no `unsafe`, never
//! panics. See `xenstore-watch/PROTOCOL.md` ("Handshake").
//!
//! Roles: the lower domid of a pair is the **offerer** (it allocates the control page and
//! event channel and writes `offer/<peer>`), the higher one the **acceptor** (it writes
//! `req/<peer>` to ask for an offer, maps the page and says HELLO). So two sides connecting
//! at once cannot produce two channels: only one side ever offers.

use super::paths::{Kind, Offer, Req, ValueError, GEN_NO_SUCH_DOMAIN};
use super::wire::{Hello, Msg, MAX_RING_PAGES, VERSION};

/// How long a handshake may take before it is abandoned.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Log lines allowed in a burst, per peer.
pub const LOG_BURST: u32 = 5;
/// One more log line is allowed per this many milliseconds.
pub const LOG_INTERVAL_MS: u64 = 1_000;
/// Capacity of [`Actions`].
pub const MAX_ACTIONS: usize = 16;

/// GOODBYE reasons.
pub const BYE_SHUTDOWN: u32 = 1;
pub const BYE_PROTOCOL: u32 = 2;
pub const BYE_TIMEOUT: u32 = 3;
pub const BYE_REPLACED: u32 = 4;

/// Which side of the pair this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Acceptor,
}

/// The role of `self_dom` towards `peer`: the lower domid offers.
pub const fn role(self_dom: u16, peer: u16) -> Role {
    if self_dom < peer {
        Role::Offerer
    } else {
        Role::Acceptor
    }
}

/// A control channel: the control page's grant and the event channel port (the offerer's
/// unbound port as written in the offer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub gref: u32,
    pub evtchn: u32,
}

/// States. Handshake states carry a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No channel, nothing published.
    Idle,
    /// Acceptor: `req/<peer>` written, waiting for an offer.
    Requested,
    /// Offerer: `AllocChannel` asked, waiting for `Allocated`.
    Allocating,
    /// Offerer: `offer/<peer>` written, waiting for HELLO.
    Offered,
    /// Acceptor: `MapChannel` asked, waiting for `Mapped`.
    Mapping,
    /// Acceptor: HELLO sent, waiting for HELLO_ACK.
    HelloSent,
    /// Channel up: per-socket messages may flow.
    Connected,
}

/// Why a XenStore node could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeError {
    /// ENOENT.
    Missing,
    /// EACCES or another error reading it.
    Unreadable,
    /// Read, but the value is not valid.
    Malformed(ValueError),
}

/// Inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A local socket wants the channel to this peer (connect, or an accepted reply).
    Connect,
    /// `Y(self)/notify/<peer>` fired; its value (the peer's generation, as dom0 vouches).
    Notify(Result<u64, NodeError>),
    /// `Y(self)/gone/<peer>` fired; its value (the generation that died).
    Gone(Result<u64, NodeError>),
    /// Result of `Action::Read(Kind::Offer)`: `Y(peer)/offer/<self>`.
    OfferRead(Result<Offer, NodeError>),
    /// Result of `Action::Read(Kind::Req)`: `Y(peer)/req/<self>`.
    ReqRead(Result<Req, NodeError>),
    /// Result of `Action::AllocChannel`.
    Allocated(Option<Channel>),
    /// Result of `Action::MapChannel`.
    Mapped(bool),
    /// A pair-level message (HELLO, HELLO_ACK, PING, PONG, GOODBYE) from the control ring.
    /// Per-socket messages are routed by the driver and never given here.
    Received(Msg),
    /// The control ring broke (fatal decode error, ring corrupt).
    ChannelBroken,
    /// Timer: the driver calls this at least once a second while [`Pair::deadline`] is set.
    Tick,
    /// Local shutdown (module unload).
    Shutdown,
}

/// Things that happen during handling and deserve a (rate-limited) log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A notify/gone value that is not a generation.
    BadNotify(NodeError),
    /// The peer's offer/req value is malformed or unreadable.
    BadNode(NodeError),
    /// An offer/req whose generation is not the one dom0 vouched for (forged or stale).
    GenMismatch { expected: u64, found: u64 },
    /// An offer/req addressed to an earlier incarnation of this domain.
    NotForUs { found: u64 },
    /// A message that makes no sense in this state, or a HELLO that does not match.
    Unexpected,
    /// The peer's generation changed: it is a new domain with a reused domid.
    Replaced { old: u64, new: u64 },
    /// Channel allocation or mapping failed.
    SetupFailed,
    /// The handshake timed out.
    Timeout,
    /// No common message version.
    Version,
    /// The control ring broke.
    Broken,
    /// The peer said goodbye or died.
    PeerGone,
}

/// Outputs, in the order they must be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read `Y(peer)/<kind>/<self>` (kind is `Offer` or `Req`) and feed `OfferRead`/`ReqRead`.
    Read(Kind),
    /// Write `Y(self)/offer/<peer>` (the watcher then sets its perms to `n<self> r<peer>`).
    WriteOffer(Offer),
    /// Write `Y(self)/req/<peer>` (the watcher then sets its perms to `n<self> r<peer>`).
    WriteReq(Req),
    /// Remove `Y(self)/<kind>/<peer>` (ENOENT is fine).
    Remove(Kind),
    /// Allocate and initialise a control page (see PROTOCOL.md), grant it to the peer,
    /// allocate an unbound event channel for the peer; feed `Allocated`.
    AllocChannel,
    /// Map the offered page, check its magic, bind the interdomain event channel; feed
    /// `Mapped`.
    MapChannel(Channel),
    /// Unmap/revoke this control page and close its event channel.
    Teardown(Channel),
    /// Put a message on the control ring and signal the event channel.
    Send(Msg),
    /// Reset every socket connected to this peer (ECONNRESET) and release their rings.
    ResetSockets,
    /// The channel is up: pending connects may send CONNECT.
    Up,
    /// The channel is down or could not be set up: pending connects fail.
    Down,
    /// Log a line (already rate-limited).
    Log(LogKind),
}

/// A fixed-capacity list of actions.
#[derive(Clone, Copy, Debug)]
pub struct Actions {
    items: [Option<Action>; MAX_ACTIONS],
    len: usize,
    /// Set if an action did not fit (a bug; the tests check it never happens).
    pub overflow: bool,
}

impl Actions {
    const fn new() -> Self {
        Actions {
            items: [None; MAX_ACTIONS],
            len: 0,
            overflow: false,
        }
    }

    fn push(&mut self, a: Action) {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(a);
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The actions, in order.
    pub fn iter(&self) -> impl Iterator<Item = Action> + '_ {
        self.items.iter().take(self.len).filter_map(|a| *a)
    }

    pub fn contains(&self, a: &Action) -> bool {
        self.iter().any(|x| x == *a)
    }
}

/// A token bucket for log lines.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    tokens: u32,
    last_ms: u64,
    /// Lines suppressed since the last one let through.
    pub suppressed: u32,
}

impl RateLimit {
    pub const fn new() -> Self {
        RateLimit {
            tokens: LOG_BURST,
            last_ms: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be logged at `now_ms`.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        let refill = elapsed / LOG_INTERVAL_MS;
        if refill > 0 {
            let t = (self.tokens as u64).saturating_add(refill);
            self.tokens = if t > LOG_BURST as u64 {
                LOG_BURST
            } else {
                t as u32
            };
            self.last_ms = now_ms;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            false
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

/// The state of this domain's relation with one peer.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    self_dom: u16,
    peer: u16,
    self_gen: u64,
    peer_gen: Option<u64>,
    state: State,
    channel: Option<Channel>,
    deadline: Option<u64>,
    now: u64,
    limit: RateLimit,
    /// Largest per-socket ring this side maps (announced in HELLO).
    pub max_ring_pages: u16,
    /// Largest ring the peer maps, from its HELLO (until then, the protocol's bound).
    peer_max_ring_pages: u16,
}

impl Pair {
    /// `self_gen` is this domain's generation (`Y(self)/gen`, written by the watcher).
    pub const fn new(self_dom: u16, peer: u16, self_gen: u64) -> Pair {
        Pair {
            self_dom,
            peer,
            self_gen,
            peer_gen: None,
            state: State::Idle,
            channel: None,
            deadline: None,
            now: 0,
            limit: RateLimit::new(),
            max_ring_pages: MAX_RING_PAGES,
            peer_max_ring_pages: MAX_RING_PAGES,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn role(&self) -> Role {
        role(self.self_dom, self.peer)
    }

    pub fn peer(&self) -> u16 {
        self.peer
    }

    /// The peer's generation, once known.
    pub fn peer_gen(&self) -> Option<u64> {
        self.peer_gen
    }

    /// Largest ring the peer maps (its HELLO; the protocol's bound before one arrived).
    /// A side sizes the rings it offers to this peer within it.
    pub fn peer_max_ring_pages(&self) -> u16 {
        self.peer_max_ring_pages
    }

    /// The channel in use or being set up.
    pub fn channel(&self) -> Option<Channel> {
        self.channel
    }

    /// When the current handshake times out (ms, the driver's clock).
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Handles one event at time `now_ms` (any monotonic millisecond clock).
    pub fn handle(&mut self, ev: Event, now_ms: u64) -> Actions {
        self.now = now_ms;
        let mut out = Actions::new();
        match ev {
            Event::Connect => self.on_connect(&mut out),
            Event::Notify(v) => self.on_notify(v, &mut out),
            Event::Gone(v) => self.on_gone(v, &mut out),
            Event::OfferRead(r) => self.on_offer(r, &mut out),
            Event::ReqRead(r) => self.on_req(r, &mut out),
            Event::Allocated(ch) => self.on_allocated(ch, &mut out),
            Event::Mapped(ok) => self.on_mapped(ok, &mut out),
            Event::Received(m) => self.on_msg(m, &mut out),
            Event::ChannelBroken => {
                if self.channel.is_some() {
                    self.log(LogKind::Broken, &mut out);
                    self.reset(Some(BYE_PROTOCOL), &mut out);
                }
            }
            Event::Tick => {
                if matches!(self.deadline, Some(d) if now_ms >= d) {
                    self.log(LogKind::Timeout, &mut out);
                    self.reset(Some(BYE_TIMEOUT), &mut out);
                }
            }
            Event::Shutdown => {
                if self.state != State::Idle {
                    self.reset(Some(BYE_SHUTDOWN), &mut out);
                }
            }
        }
        out
    }

    fn log(&mut self, k: LogKind, out: &mut Actions) {
        if self.limit.allow(self.now) {
            out.push(Action::Log(k));
        }
    }

    fn enter(&mut self, s: State) {
        self.state = s;
        self.deadline = match s {
            State::Idle | State::Connected => None,
            _ => Some(self.now.saturating_add(HANDSHAKE_TIMEOUT_MS)),
        };
    }

    /// Drops the channel and everything that depends on it; back to `Idle`.
    fn reset(&mut self, goodbye: Option<u32>, out: &mut Actions) {
        if let Some(ch) = self.channel {
            // Only a working channel (Connected or HELLO exchanged) can carry a GOODBYE.
            if let (Some(reason), State::Connected | State::HelloSent) = (goodbye, self.state) {
                out.push(Action::Send(Msg::Goodbye { reason }));
            }
            out.push(Action::ResetSockets);
            out.push(Action::Teardown(ch));
        }
        match self.role() {
            Role::Offerer => out.push(Action::Remove(Kind::Offer)),
            Role::Acceptor => out.push(Action::Remove(Kind::Req)),
        }
        if self.state != State::Idle {
            out.push(Action::Down);
        }
        self.channel = None;
        self.enter(State::Idle);
    }

    fn start(&mut self, out: &mut Actions) {
        match self.role() {
            Role::Offerer => {
                out.push(Action::AllocChannel);
                self.enter(State::Allocating);
            }
            Role::Acceptor => {
                out.push(Action::WriteReq(Req {
                    gen: self.self_gen,
                    peer_gen: self.peer_gen.unwrap_or(0),
                }));
                self.enter(State::Requested);
            }
        }
    }

    fn on_connect(&mut self, out: &mut Actions) {
        match self.state {
            State::Idle => self.start(out),
            State::Connected => out.push(Action::Up),
            _ => {} // in progress: Up or Down will follow
        }
    }

    fn on_notify(&mut self, v: Result<u64, NodeError>, out: &mut Actions) {
        let gen = match v {
            Ok(g) => g,
            Err(NodeError::Missing) => return, // our own acknowledgement, or cleaned up
            Err(e) => {
                self.log(LogKind::BadNotify(e), out);
                out.push(Action::Remove(Kind::Notify));
                return;
            }
        };
        out.push(Action::Remove(Kind::Notify));
        if let Some(old) = self.peer_gen {
            if old != gen {
                // Domid reuse: whatever we had was with another domain.
                self.log(LogKind::Replaced { old, new: gen }, out);
                self.reset(Some(BYE_REPLACED), out);
            }
        }
        self.peer_gen = Some(gen);
        match self.role() {
            Role::Acceptor => out.push(Action::Read(Kind::Offer)),
            Role::Offerer => out.push(Action::Read(Kind::Req)),
        }
    }

    fn on_gone(&mut self, v: Result<u64, NodeError>, out: &mut Actions) {
        let gen = match v {
            Ok(g) => g,
            Err(NodeError::Missing) => return,
            Err(e) => {
                self.log(LogKind::BadNotify(e), out);
                out.push(Action::Remove(Kind::Gone));
                return;
            }
        };
        out.push(Action::Remove(Kind::Gone));
        // A death notice for an incarnation we never knew still clears a handshake that
        // was started without knowing the peer's generation; "no such domain" clears any.
        if gen == GEN_NO_SUCH_DOMAIN || self.peer_gen.is_none() || self.peer_gen == Some(gen) {
            if self.state != State::Idle {
                self.log(LogKind::PeerGone, out);
            }
            self.reset(None, out);
            self.peer_gen = None;
        }
    }

    /// Checks generations of a peer node: `gen` must be the dom0-vouched one and the node
    /// must not be addressed to an earlier incarnation of us.
    fn gens_ok(&mut self, gen: u64, for_gen: u64, out: &mut Actions) -> bool {
        match self.peer_gen {
            Some(g) if g == gen => {}
            Some(g) => {
                self.log(
                    LogKind::GenMismatch {
                        expected: g,
                        found: gen,
                    },
                    out,
                );
                return false;
            }
            None => {
                self.log(
                    LogKind::GenMismatch {
                        expected: 0,
                        found: gen,
                    },
                    out,
                );
                return false;
            }
        }
        if for_gen != 0 && for_gen != self.self_gen {
            self.log(LogKind::NotForUs { found: for_gen }, out);
            return false;
        }
        true
    }

    fn on_offer(&mut self, r: Result<Offer, NodeError>, out: &mut Actions) {
        if self.role() != Role::Acceptor {
            self.log(LogKind::Unexpected, out);
            return;
        }
        let offer = match r {
            Ok(o) => o,
            Err(NodeError::Missing) => {
                // The offerer withdrew its offer: the channel is gone.
                if self.channel.is_some() {
                    self.log(LogKind::PeerGone, out);
                    self.reset(None, out);
                }
                return;
            }
            Err(e) => {
                // Malformed or unreadable: ignore, keep whatever works.
                self.log(LogKind::BadNode(e), out);
                return;
            }
        };
        if !self.gens_ok(offer.gen, offer.peer_gen, out) {
            return;
        }
        let ch = Channel {
            gref: offer.gref,
            evtchn: offer.evtchn,
        };
        if self.channel == Some(ch) {
            return; // the offer we already use or are mapping
        }
        if self.channel.is_some() {
            // The offerer replaced its channel (it reset without a GOODBYE reaching us).
            self.reset(None, out);
        }
        self.channel = Some(ch);
        out.push(Action::MapChannel(ch));
        self.enter(State::Mapping);
    }

    fn on_req(&mut self, r: Result<Req, NodeError>, out: &mut Actions) {
        if self.role() != Role::Offerer {
            self.log(LogKind::Unexpected, out);
            return;
        }
        let req = match r {
            Ok(q) => q,
            Err(NodeError::Missing) => return, // satisfied and removed by the acceptor
            Err(e) => {
                self.log(LogKind::BadNode(e), out);
                return;
            }
        };
        if !self.gens_ok(req.gen, req.peer_gen, out) {
            return;
        }
        match self.state {
            State::Idle => self.start(out),
            // The acceptor removes its request before saying HELLO, so a request seen while
            // connected means it lost the channel (e.g. module reload): offer a new one.
            State::Connected => {
                self.reset(Some(BYE_REPLACED), out);
                self.start(out);
            }
            _ => {} // offer under way
        }
    }

    fn on_allocated(&mut self, ch: Option<Channel>, out: &mut Actions) {
        if self.state != State::Allocating {
            // Stale result: give it back.
            if let Some(ch) = ch {
                out.push(Action::Teardown(ch));
            }
            return;
        }
        match ch {
            Some(ch) => {
                self.channel = Some(ch);
                out.push(Action::WriteOffer(Offer {
                    gen: self.self_gen,
                    peer_gen: self.peer_gen.unwrap_or(0),
                    gref: ch.gref,
                    evtchn: ch.evtchn,
                }));
                self.enter(State::Offered);
            }
            None => {
                self.log(LogKind::SetupFailed, out);
                self.reset(None, out);
            }
        }
    }

    fn on_mapped(&mut self, ok: bool, out: &mut Actions) {
        if self.state != State::Mapping {
            return;
        }
        if !ok {
            self.log(LogKind::SetupFailed, out);
            // Nothing mapped: forget the channel without a teardown.
            self.channel = None;
            self.reset(None, out);
            return;
        }
        // Remove the request before HELLO (see `on_req`).
        out.push(Action::Remove(Kind::Req));
        out.push(Action::Send(Msg::Hello(self.hello())));
        self.enter(State::HelloSent);
    }

    fn hello(&self) -> Hello {
        Hello {
            min_version: VERSION,
            max_version: VERSION,
            sender_domid: self.self_dom,
            receiver_domid: self.peer,
            max_ring_pages: self.max_ring_pages,
            sender_gen: self.self_gen,
            receiver_gen: self.peer_gen.unwrap_or(0),
            features: 0,
        }
    }

    /// Whether a HELLO/HELLO_ACK fits this pair; learns the peer's generation if unknown.
    fn hello_ok(&mut self, h: &Hello, out: &mut Actions) -> bool {
        if h.min_version > VERSION || h.max_version < VERSION {
            self.log(LogKind::Version, out);
            return false;
        }
        if h.sender_domid != self.peer
            || h.receiver_domid != self.self_dom
            || (h.receiver_gen != 0 && h.receiver_gen != self.self_gen)
        {
            self.log(LogKind::Unexpected, out);
            return false;
        }
        match self.peer_gen {
            Some(g) if g != h.sender_gen => {
                self.log(
                    LogKind::GenMismatch {
                        expected: g,
                        found: h.sender_gen,
                    },
                    out,
                );
                false
            }
            _ => {
                // Only the peer domain can map a page granted to it, so the channel itself
                // authenticates the sender; its generation is believed if none is known.
                self.peer_gen = Some(h.sender_gen);
                self.peer_max_ring_pages = h.max_ring_pages;
                true
            }
        }
    }

    fn on_msg(&mut self, m: Msg, out: &mut Actions) {
        match (m, self.state) {
            (Msg::Hello(h), State::Offered | State::Connected) if self.role() == Role::Offerer => {
                if !self.hello_ok(&h, out) {
                    self.reset(Some(BYE_PROTOCOL), out);
                    return;
                }
                if self.state == State::Connected {
                    // The acceptor re-mapped our page: its old sockets are gone.
                    out.push(Action::ResetSockets);
                }
                out.push(Action::Send(Msg::HelloAck(self.hello())));
                out.push(Action::Up);
                self.enter(State::Connected);
            }
            (Msg::HelloAck(h), State::HelloSent) => {
                if !self.hello_ok(&h, out) {
                    self.reset(Some(BYE_PROTOCOL), out);
                    return;
                }
                out.push(Action::Up);
                self.enter(State::Connected);
            }
            (Msg::Ping { nonce }, State::Connected) => {
                out.push(Action::Send(Msg::Pong { nonce }));
            }
            (Msg::Pong { .. }, State::Connected) => {}
            (Msg::Goodbye { .. }, _) if self.channel.is_some() => {
                self.log(LogKind::PeerGone, out);
                self.reset(None, out);
            }
            _ => self.log(LogKind::Unexpected, out),
        }
    }
}
