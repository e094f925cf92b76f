// SPDX-License-Identifier: GPL-2.0
//! What keeps a peer in bounds: the connection check against `crate::limits`, the
//! misbehaviour budget (and the penalty after a reset), the PING rate, and the
//! revocation of lingering rings the peer never released.

use super::{pairs, Plane, SockEvent};
use crate::control::pair::Event;
use crate::control::wire::Msg;
use crate::limits;
use crate::stats;
use crate::xen::grant;
use kernel::prelude::*;

/// The misbehaviour budget (`bad_msg_budget`) is spent within this window (ms).
const BUDGET_WINDOW_MS: u64 = 60_000;
/// PINGs a peer may send per second; more count as misbehaviour (and go unanswered).
const MAX_PINGS_PER_SEC: u32 = 8;
/// After a misbehaviour reset, the peer's requests for a new channel are ignored for
/// this long (ms): re-handshakes cost XenStore round trips, grants and event channels.
const PENALTY_MS: u64 = 5000;
/// At most one misbehaviour or revocation log line per peer in this many ms.
const LOG_INTERVAL_MS: u64 = 5000;
/// Liveness: a channel the peer has sent nothing on for this long (ms) gets a PING...
const LIVENESS_IDLE_MS: u64 = 5000;
/// ...and is reset if the peer still sends nothing this long (ms) after it. Generous: a
/// live peer answers from its work item within milliseconds, but the test bed's debug
/// kernels under an emulated CPU can take seconds.
const LIVENESS_TIMEOUT_MS: u64 = 10_000;

impl Plane {
    /// Whether one more connection with `peer` is within the limits: its live ones, the
    /// CONNECTs of this run not yet applied, and the pages it withholds from us.
    pub(super) fn conn_fits(&self, peer: u16) -> bool {
        // Incoming connections read this run, and those still being set up.
        let incoming = |only: Option<u16>| {
            self.deferred
                .iter()
                .filter(|e| matches!(e, SockEvent::Incoming { peer: p, .. } if only.is_none_or(|o| o == *p)))
                .count()
                + self.setups_in_flight(only)
        };
        let live = self.conns.table.iter().filter(|c| c.peer == peer).count();
        let fits = limits::conn_fits(
            live + incoming(Some(peer)),
            grant::withheld_by(peer),
            self.conns.table.len() + incoming(None),
        );
        if !fits {
            stats::add(&stats::LIMIT_REFUSALS, 1);
        }
        fits
    }

    /// `peer` sent one more invalid or abusive message: past its budget for this
    /// channel, the channel is reset (its connections with it), with one log line.
    pub(crate) fn misbehaved(&mut self, peer: u16) {
        if let Some(i) = self.find(peer) {
            self.strike(i);
        }
    }

    pub(super) fn strike(&mut self, i: usize) {
        let p = &mut self.peers[i];
        p.bad_msgs = p.bad_msgs.saturating_add(1);
        self.check_budget(i);
    }

    pub(super) fn check_budget(&mut self, i: usize) {
        let now = pairs::now_ms();
        let p = &mut self.peers[i];
        let spent = p.bad_msgs.saturating_sub(p.bad_base);
        if p.link.is_none() || spent < limits::bad_msg_budget() {
            if now >= p.bad_window.saturating_add(BUDGET_WINDOW_MS) {
                p.bad_window = now; // a new window: what was spent is forgiven
                p.bad_base = p.bad_msgs;
            }
            return;
        }
        p.bad_base = p.bad_msgs;
        p.bad_window = now;
        p.penalty_until = now.saturating_add(PENALTY_MS);
        stats::add(&stats::MISBEHAVIOUR_RESETS, 1);
        if now >= p.logged.saturating_add(LOG_INTERVAL_MS) {
            p.logged = now;
            pr_warn!(
                "domain {}: control channel reset: {} invalid or abusive messages (budget {}); its requests ignored for {} ms\n",
                p.pair.peer(),
                spent,
                limits::bad_msg_budget(),
                PENALTY_MS
            );
        }
        self.feed(i, Event::ChannelBroken, 0);
    }

    /// A PING from peer `i`: `false` (and a strike) past [`MAX_PINGS_PER_SEC`].
    pub(super) fn ping_allowed(&mut self, i: usize) -> bool {
        let now = pairs::now_ms();
        let p = &mut self.peers[i];
        if now >= p.ping_window.saturating_add(1000) {
            p.ping_window = now;
            p.pings = 0;
        }
        p.pings += 1;
        if p.pings <= MAX_PINGS_PER_SEC {
            return true;
        }
        self.strike(i);
        false
    }

    /// Liveness, for a peer whose module is wedged while its domain lives (a dead domain
    /// is reported by the watcher, an unloaded module says GOODBYE): a channel silent for
    /// [`LIVENESS_IDLE_MS`] gets a PING, and one still silent [`LIVENESS_TIMEOUT_MS`]
    /// later is reset, so its sockets get ECONNRESET and a new connect must set up a new
    /// channel (which fails with EHOSTUNREACH at the handshake deadline) instead of
    /// waiting on a peer that never answers. Returns whether any channel is up (the tick
    /// then comes back in a second).
    pub(super) fn check_liveness(&mut self, now: u64) -> bool {
        let mut any = false;
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            if !p.pair.is_connected() || p.link.is_none() || p.wedged() {
                p.ping_sent = None;
                continue;
            }
            any = true;
            if now < p.last_rx.saturating_add(LIVENESS_IDLE_MS) {
                p.ping_sent = None;
                continue;
            }
            match p.ping_sent {
                None => {
                    p.ping_sent = Some(now);
                    self.send(i, Msg::Ping { nonce: now });
                }
                Some(t) if now >= t.saturating_add(LIVENESS_TIMEOUT_MS) => {
                    p.ping_sent = None;
                    pr_warn!(
                        "pair with domain {}: no answer for {} ms, resetting the channel\n",
                        p.pair.peer(),
                        now.saturating_sub(p.last_rx)
                    );
                    stats::add(&stats::LIVENESS_RESETS, 1);
                    self.feed(i, Event::ChannelBroken, 0);
                }
                Some(_) => {}
            }
        }
        any
    }

    /// Revokes the rings of released sockets whose peer has not closed its side within
    /// `linger_ms`; what it still maps is withheld. Frees withheld pages let go since.
    pub(super) fn revoke_lingering(&mut self) {
        let now = pairs::now_ms();
        for i in 0..self.peers.len() {
            let peer = self.peers[i].pair.peer();
            let n = self.conns.revoke(peer, now, limits::linger_ms());
            if n == 0 {
                continue;
            }
            stats::add(&stats::LINGER_REVOKED, n as u64);
            let p = &mut self.peers[i];
            if now >= p.logged.saturating_add(LOG_INTERVAL_MS) {
                p.logged = now;
                pr_warn!(
                    "domain {}: revoked {} closed connections' rings it did not release within {} ms\n",
                    peer,
                    n,
                    limits::linger_ms()
                );
            }
        }
    }
}
