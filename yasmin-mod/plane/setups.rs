// SPDX-License-Identifier: GPL-2.0
//! Incoming connections the transport sets up off the work item, several at once
//! (`transport::yasmin_control_work`): the plane tracks each from the moment
//! [`super::run_work`] hands it out until the transport registers or refuses it, so that
//! it counts against the limits, its token cannot be reused, and the peer can withdraw
//! it meanwhile.
//!
//! A withdrawn set-up is answered (RESET) by the set-up itself once it is done, never
//! before: until that answer the connector keeps the event-channel port and ring it
//! offered, and a port freed earlier could be handed to the connector's next connection
//! and then taken by this set-up's bind.

use super::{Plane, SockEvent};
use kernel::prelude::*;

/// Where a set-up stands.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Standing {
    Live,
    /// The peer gave up on it (its RESET or CLOSE for the token): answer RESET
    /// (cancelled), and do not register the child.
    Cancelled,
    /// Its channel went down: nothing to answer on, and no child to register.
    Dropped,
}

/// An incoming connection handed to the transport to set up, until it is registered or
/// refused.
pub(super) struct SetUp {
    pub(super) peer: u16,
    pub(super) token: u64,
    pub(super) standing: Standing,
}

/// How a set-up ends ([`Plane::setup_done`]).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum SetupEnd {
    /// Answer as the set-up found: ACCEPT with the child registered, or RESET.
    Answer,
    /// RESET (cancelled), and no child.
    Cancelled,
    /// Nothing: no channel to answer on (it went down, or the plane stops).
    Silent,
}

impl Plane {
    /// Tracks the incoming connections among `events`, handed out to be set up.
    pub(super) fn track_setups(&mut self, events: &KVec<SockEvent>) {
        for e in events.iter() {
            if let SockEvent::Incoming { peer, id, .. } = e {
                let s = SetUp {
                    peer: *peer,
                    token: id.token,
                    standing: Standing::Live,
                };
                // Out of memory: untracked, the set-up still answers; only a withdrawal
                // or a reused token during it goes unnoticed.
                let _ = self.setting_up.insert(s);
            }
        }
    }

    /// How incoming connection `token` from `peer` would end now. (A set-up the plane
    /// does not track, as at suspend, answers while the plane runs.)
    pub(crate) fn setup_end(&self, peer: u16, token: u64) -> SetupEnd {
        if self.stopping {
            return SetupEnd::Silent;
        }
        let standing = self
            .setting_up
            .iter()
            .find(|s| s.peer == peer && s.token == token)
            .map_or(Standing::Live, |s| s.standing);
        match standing {
            Standing::Live => SetupEnd::Answer,
            Standing::Cancelled => SetupEnd::Cancelled,
            Standing::Dropped => SetupEnd::Silent,
        }
    }

    /// The transport is done setting up incoming connection `token` from `peer`: it is
    /// no longer tracked. Returns how it ends.
    pub(crate) fn setup_done(&mut self, peer: u16, token: u64) -> SetupEnd {
        let end = self.setup_end(peer, token);
        self.setting_up.take(|s| s.peer == peer && s.token == token);
        end
    }

    /// Incoming connections from `peer` (or from anyone) handed out and not yet set up:
    /// they count against the connection limits. Cancelled and dropped ones too: each
    /// still holds a queued job, and a peer that connects and resets in a loop must not
    /// queue jobs past its limit.
    pub(super) fn setups_in_flight(&self, only: Option<u16>) -> usize {
        self.setting_up
            .iter()
            .filter(|s| only.is_none_or(|o| o == s.peer))
            .count()
    }

    /// `peer`'s channel went down: its set-ups register nothing and answer nothing.
    pub(super) fn drop_setups(&mut self, peer: u16) {
        for s in self.setting_up.iter_mut().filter(|s| s.peer == peer) {
            s.standing = Standing::Dropped;
        }
    }

    /// A CONNECT from `peer` with `token` being set up.
    pub(super) fn in_setup(&mut self, peer: u16, token: u64) -> Option<&mut SetUp> {
        self.setting_up
            .iter_mut()
            .find(|s| s.peer == peer && s.token == token)
    }
}
