// SPDX-License-Identifier: GPL-2.0
//! Test build only: this guest as a hostile peer (debugfs `adversary`, parsed in
//! `test_hooks`). The attacks ride on a real, handshaken pair channel and use the
//! project's own codec, so the victim sees exactly what a malicious module could send.

use super::Plane;
use crate::control::wire::{ConnId, Msg, RingRef, MAX_V1_LEN};
use crate::xen::rings::{RxRing, TxRing};
use kernel::prelude::*;

/// One attack, as written to debugfs `adversary`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Attack {
    /// `n` well-framed frames of an unknown type.
    Junk(u32),
    /// `n` valid PINGs.
    Ping(u32),
    /// `n` valid CONNECTs to `port` whose ring cannot be mapped.
    Connect(u32, u32),
    /// A CONNECT to `port` with a 512-page ring (beyond a victim's smaller maximum).
    BigRing(u32),
    /// A CONNECT whose token carries another domain's id.
    ForeignToken(u32),
    /// A CONNECT reusing the token of each live connection with the victim.
    ReuseToken(u32),
    /// `n` ACCEPTs for connections that do not exist.
    StrayAccept(u32),
    /// A second ACCEPT for each live connection with the victim.
    DupAccept,
    /// From now on, play a wedged module towards the victim: read nothing from it and
    /// answer nothing (also on later channels with it), while the domain lives on.
    Wedge,
}

fn id_any() -> ConnId {
    ConnId {
        src_port: 1,
        dst_port: 1,
        token: 1,
    }
}

/// A ring grant no domain has given: mapping it fails.
const BOGUS_GREF: u32 = 0x00ff_fff0;

impl Plane {
    /// Sends attack `a` to `peer` over the live pair channel; `ENOTCONN` without one.
    pub(crate) fn attack(&mut self, peer: u16, a: Attack) -> Result {
        let i = self
            .find(peer)
            .ok_or(crate::xen::errno(crate::bindings::ENOTCONN))?;
        if !self.peers[i].pair.is_connected() {
            return Err(crate::xen::errno(crate::bindings::ENOTCONN));
        }
        let bogus = RingRef {
            dir_gref: BOGUS_GREF,
            pages: 1,
        };
        let id = |dst_port: u32, token: u64| ConnId {
            src_port: 40_000,
            dst_port,
            token,
        };
        let live: KVec<u64> = {
            let mut v = KVec::new();
            for c in self.conns.table.iter().filter(|c| c.peer == peer) {
                v.push(c.token, GFP_KERNEL)?;
            }
            v
        };
        let connect = |port: u32, token: u64, ring: RingRef| Msg::Connect {
            id: id(port, token),
            ring,
            evtchn: 1,
            seqpacket: false,
        };
        let accept = |token: u64| Msg::Accept {
            id: id(1, token),
            ring: bogus,
        };
        let big = RingRef {
            dir_gref: BOGUS_GREF,
            pages: 512,
        };
        let mut msgs: KVec<Msg> = KVec::new();
        match a {
            Attack::Junk(n) => {
                for _ in 0..n {
                    self.send_junk(i);
                }
            }
            Attack::Ping(n) => {
                for k in 0..n {
                    msgs.push(Msg::Ping { nonce: k as u64 }, GFP_KERNEL)?;
                }
            }
            Attack::Connect(n, port) => {
                for _ in 0..n {
                    msgs.push(connect(port, super::next_token(), bogus), GFP_KERNEL)?;
                }
            }
            Attack::BigRing(port) => {
                msgs.push(connect(port, super::next_token(), big), GFP_KERNEL)?
            }
            Attack::ForeignToken(port) => {
                // Any domid but ours (the connector's) on top: bit 14 flipped.
                let other = (self.domid as u64 ^ 0x4000) << 48 | 1;
                msgs.push(connect(port, other, bogus), GFP_KERNEL)?;
            }
            Attack::ReuseToken(port) => {
                for &token in live.iter() {
                    msgs.push(connect(port, token, bogus), GFP_KERNEL)?;
                }
            }
            Attack::StrayAccept(n) => {
                for _ in 0..n {
                    msgs.push(accept(super::next_token()), GFP_KERNEL)?;
                }
            }
            Attack::DupAccept => {
                for &token in live.iter() {
                    msgs.push(accept(token), GFP_KERNEL)?;
                }
            }
            Attack::Wedge => self.peers[i].wedged = true,
        }
        for m in msgs.iter() {
            self.send(i, *m);
        }
        pr_warn!(
            "test hook: attack {:?} sent to domain {} ({} messages)\n",
            a,
            peer,
            msgs.len()
        );
        Ok(())
    }

    fn send_junk(&mut self, i: usize) {
        let mut buf = [0u8; MAX_V1_LEN];
        let close = Msg::Close { id: id_any() };
        if let Some(n) = close.encode(&mut buf) {
            buf[1] = 0xee; // a type nobody knows, with a consistent length
            if let Some(link) = self.peers[i].link.as_mut() {
                let _ = link.send_raw(&buf[..n]);
            }
        }
    }

    /// `hold`: keeps a released socket's rings (ours granted, the peer's mapped) and
    /// tells the peer nothing, as a peer that never CLOSEs or unmaps.
    pub(crate) fn hoard(&mut self, tx: Option<TxRing>, rx: Option<RxRing>) {
        let _ = self.hoard.push((tx, rx), GFP_KERNEL);
    }

    /// Ends `hold`: unmaps and ungrants everything kept.
    pub(crate) fn drop_hoard(&mut self) -> usize {
        let n = self.hoard.len();
        self.hoard = KVec::new();
        n
    }
}
