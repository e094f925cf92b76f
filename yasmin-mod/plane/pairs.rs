// SPDX-License-Identifier: GPL-2.0
//! The pair state machines (`control::pair`) and their XenStore side: the scan of
//! `Y(self)` for notices, reading the peer's offers and requests, publishing ours, and
//! carrying out every action a machine asks for.

use super::link::Link;
use super::{Peer, Plane};
use crate::control::pair::{Action, Event, LogKind, NodeError, Pair, Role, State};
use crate::control::paths::{self, Kind, Offer, Req};
use crate::glue;
use crate::xen::{self, grant};
use kernel::prelude::*;
use kernel::time::Ktime;

/// Most peers tracked at once. A full table recycles an idle peer's slot; a notice that
/// finds none idle is dropped (counted in `dropped_notices`).
const MAX_PEERS: usize = 256;
/// Bound on result events fed back into a pair while handling one event.
const MAX_FEED_DEPTH: u32 = 8;

pub(super) fn now_ms() -> u64 {
    Ktime::ktime_get().to_ms().max(0) as u64
}

impl Plane {
    pub(super) fn find(&self, peer: u16) -> Option<usize> {
        self.peers.iter().position(|p| p.pair.peer() == peer)
    }

    /// The slot for `peer`, created if there is room and our generation is known.
    pub(super) fn slot(&mut self, peer: u16) -> Option<usize> {
        if let Some(i) = self.find(peer) {
            return Some(i);
        }
        let gen = self.gen?;
        if peer == self.domid || !paths::valid_domid(peer as u32) {
            return None;
        }
        // A full table recycles the slot of a peer with nothing left: no channel, no
        // handshake under way, no connection, no lingering ring (e.g. a guest long gone).
        let reuse = if self.peers.len() >= MAX_PEERS {
            Some(self.peers.iter().position(|p| self.idle(p))?)
        } else {
            None
        };
        let mut pair = Pair::new(self.domid, peer, gen);
        pair.max_ring_pages = self.max_ring_pages;
        let p = Peer {
            pair,
            link: None,
            ups: 0,
            downs: 0,
            resets: 0,
            bad_msgs: 0,
            bad_base: 0,
            bad_window: 0,
            pings: 0,
            ping_window: 0,
            logged: 0,
            penalty_until: 0,
            msgs_in: 0,
            msgs_out: 0,
            last_rx: 0,
            ping_sent: None,
            #[cfg(yasmin_test)]
            wedged: false,
        };
        if let Some(j) = reuse {
            self.recycled_slots += 1;
            self.peers[j] = p;
            return Some(j);
        }
        self.peers.push(p, GFP_KERNEL).ok()?;
        Some(self.peers.len() - 1)
    }

    /// Whether `p`'s slot holds nothing but history.
    fn idle(&self, p: &Peer) -> bool {
        let peer = p.pair.peer();
        p.pair.state() == State::Idle
            && p.link.is_none()
            && p.pair.deadline().is_none()
            && !self.conns.table.iter().any(|c| c.peer == peer)
            && !self.conns.lingers_for(peer)
    }

    /// Feeds `ev` to peer `i` and carries out the resulting actions.
    pub(super) fn feed(&mut self, i: usize, ev: Event, depth: u32) {
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
        let peer = self.peers[i].pair.peer();
        match a {
            Action::Read(_) | Action::WriteOffer(_) | Action::WriteReq(_) | Action::Remove(_) => {
                self.perform_xenstore(i, a)
            }
            Action::AllocChannel | Action::MapChannel(_) | Action::Teardown(_) => {
                self.perform_channel(i, a)
            }
            Action::Log(k) => {
                log_kind(peer, k);
                None
            }
            _ => self.perform_conns(i, a),
        }
    }

    /// The XenStore side of an action: read the peer's node, write or remove ours.
    fn perform_xenstore(&mut self, i: usize, a: Action) -> Option<Event> {
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
            _ => None,
        }
    }

    /// Setting up and tearing down the control channel itself.
    fn perform_channel(&mut self, i: usize, a: Action) -> Option<Event> {
        let peer = self.peers[i].pair.peer();
        match a {
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
            _ => None,
        }
    }

    /// What the pair's state means for its connections.
    fn perform_conns(&mut self, i: usize, a: Action) -> Option<Event> {
        let peer = self.peers[i].pair.peer();
        match a {
            Action::Send(m) => {
                self.send(i, m);
                None
            }
            Action::ResetSockets => {
                self.peers[i].resets += 1;
                self.conns.end_linger(peer, None);
                self.conns.fail(peer, false, &mut self.deferred);
                self.drop_setups(peer);
                None
            }
            Action::Up => {
                // Connects that waited for the channel go out now.
                let pending = self.conns.take_pending(peer);
                for m in pending.iter() {
                    self.send(i, *m);
                }
                let p = &mut self.peers[i];
                p.ups += 1;
                p.bad_base = p.bad_msgs; // a fresh budget for the new channel
                p.last_rx = now_ms();
                p.ping_sent = None;
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
                self.conns.fail(peer, true, &mut self.deferred);
                pr_info!("pair with domain {}: control channel down\n", peer);
                None
            }
            _ => None,
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

    /// Re-reads `Y(self)`: our generation, then every `gone/<p>` and `notify/<p>`.
    pub(super) fn scan(&mut self) {
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
        // Deaths first: a death precedes any notice of the peer's next incarnation, and
        // survivors reset their sockets without first reading every pending notice.
        for kind in [Kind::Gone, Kind::Notify] {
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
                let penalized = slot.is_some_and(|i| now_ms() < self.peers[i].penalty_until);
                match (slot, kind) {
                    (Some(_), Kind::Notify) if penalized => {
                        // Reset for misbehaviour a moment ago: its request is dropped
                        // (it may ask again once the penalty is over).
                        let _ = xen::xs_rm(paths::peer_node(self.domid, kind, p).as_str());
                    }
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

    /// Handshake deadlines: feeds `Tick` to pairs whose deadline passed, and comes back
    /// in a second while any pair has one.
    pub(super) fn tick(&mut self) {
        let now = now_ms();
        for i in 0..self.peers.len() {
            if matches!(self.peers[i].pair.deadline(), Some(d) if now >= d) {
                self.feed(i, Event::Tick, 0);
            }
        }
        let mut again = self.peers.iter().any(|p| p.pair.deadline().is_some());
        again |= self.check_liveness(now);
        if now >= self.last_sweep.saturating_add(1000) {
            self.last_sweep = now;
            self.revoke_lingering();
            grant::retry_withheld();
            grant::trim_frames();
        }
        // The live counts, not the last sweep's: pages withheld since (a socket released
        // after its peer died), and frames cached since, need the next sweep even when no
        // channel is left to tick.
        again |= grant::withheld_now() > 0 || self.conns.lingering() > 0;
        again |= grant::frames_cached() > 0;
        if again {
            glue::work_kick_after(1000);
        }
    }

    /// A local user wants the channel to `peer`.
    pub(crate) fn connect(&mut self, peer: u16) -> Result {
        if self.gen.is_none() {
            return Err(EAGAIN); // XenStore area not prepared by the watcher yet
        }
        let i = self.slot(peer).ok_or(EINVAL)?;
        self.feed(i, Event::Connect, 0);
        self.run();
        Ok(())
    }

    /// Says goodbye to every peer and frees every channel.
    pub(super) fn stop_all(&mut self) {
        self.conns.drop_all_lingering();
        #[cfg(yasmin_test)]
        self.drop_hoard();
        for i in 0..self.peers.len() {
            self.feed(i, Event::Shutdown, 0);
            self.peers[i].link = None;
        }
    }

    /// The debugfs `pairs` table.
    pub(crate) fn show(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        writeln!(
            w,
            "domid {} cid {} generation {} peers {} dropped_notices {} recycled_slots {}",
            self.domid,
            self.domid as u32 + paths::CID_OFFSET,
            self.gen.unwrap_or(0),
            self.peers.len(),
            self.dropped_notices,
            self.recycled_slots
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
