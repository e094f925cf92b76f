// SPDX-License-Identifier: GPL-2.0
//! A pair's live control channel: the shared control page's two rings
//! (`xen::rings::ControlRings`), its event channel, and the queue of encoded messages
//! waiting for ring space.

use crate::control::pair::Channel;
use crate::control::wire::{self, Msg};
use crate::glue;
use crate::ring::RingError;
use crate::xen::rings::ControlRings;
use crate::xen::PolledChannel;
use kernel::prelude::*;

/// Most control messages queued for a peer whose ring is full before the channel is reset.
pub(super) const MAX_OUTBOX: usize = 256;

/// One encoded control message.
#[derive(Clone, Copy)]
struct OutMsg {
    buf: [u8; wire::MAX_V1_LEN],
    len: usize,
}

const EMPTY: OutMsg = OutMsg {
    buf: [0; wire::MAX_V1_LEN],
    len: 0,
};

/// Messages waiting for ring space, in order: a fixed ring of `MAX_OUTBOX` slots.
struct Outbox {
    slots: KVec<OutMsg>,
    head: usize,
    len: usize,
}

impl Outbox {
    fn new() -> Result<Self> {
        Ok(Outbox {
            slots: KVec::from_elem(EMPTY, MAX_OUTBOX, GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    fn front(&self) -> Option<&OutMsg> {
        (self.len > 0).then(|| &self.slots[self.head])
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % MAX_OUTBOX;
            self.len -= 1;
        }
    }

    /// `false` if full.
    fn push(&mut self, m: OutMsg) -> bool {
        if self.len == MAX_OUTBOX {
            return false;
        }
        self.slots[(self.head + self.len) % MAX_OUTBOX] = m;
        self.len += 1;
        true
    }
}

/// Why a control channel cannot go on.
pub(super) enum LinkError {
    /// The outbox is full: the peer has not read its ring for `MAX_OUTBOX` messages.
    Stuck,
    /// A corrupt ring or message framing.
    Broken,
}

/// A live control channel. Field order is drop order: the interrupt goes first, the
/// rings (and the page they live in) last.
pub(super) struct Link {
    evt: PolledChannel,
    outbox: Outbox,
    rings: ControlRings,
}

impl Link {
    /// Offerer: a fresh control page granted to `peer` and an unbound port for it.
    pub(super) fn offer(peer: u16) -> Result<(Link, Channel)> {
        let (rings, gref) = ControlRings::offer(peer)?;
        let evt = PolledChannel::alloc_unbound(peer, glue::work_kick)?;
        let ch = Channel {
            gref,
            evtchn: evt.port(),
        };
        let outbox = Outbox::new()?;
        Ok((Link { evt, outbox, rings }, ch))
    }

    /// Acceptor: maps the offered page, checks it, binds the offered port.
    pub(super) fn accept(peer: u16, ch: Channel) -> Result<Link> {
        let rings = ControlRings::accept(peer, ch.gref)?;
        let evt = PolledChannel::bind_interdomain(peer, ch.evtchn, glue::work_kick)?;
        let outbox = Outbox::new()?;
        Ok(Link { evt, outbox, rings })
    }

    /// Queues `m` and writes what fits.
    pub(super) fn send(&mut self, m: &Msg) -> core::result::Result<(), LinkError> {
        let mut out = EMPTY;
        let Some(len) = m.encode(&mut out.buf) else {
            return Ok(()); // not encodable in v1: nothing to send
        };
        out.len = len;
        if !self.outbox.push(out) {
            return Err(LinkError::Stuck);
        }
        self.flush().map_err(|_| LinkError::Broken)
    }

    /// Messages waiting for ring space.
    pub(super) fn queued(&self) -> usize {
        self.outbox.len
    }

    /// Acknowledges the channel's interrupt, if it fired, once the rings were looked at:
    /// `spurious` if the peer had given us nothing to do (late EOI, see `PolledChannel`).
    pub(super) fn ack(&self, spurious: bool) {
        self.evt.ack(spurious)
    }

    /// Test build: queues raw bytes as one frame, whatever they say.
    #[cfg(yasmin_test)]
    pub(super) fn send_raw(&mut self, bytes: &[u8]) -> core::result::Result<(), LinkError> {
        let mut out = EMPTY;
        let len = bytes.len().min(out.buf.len());
        out.buf[..len].copy_from_slice(&bytes[..len]);
        out.len = len;
        if !self.outbox.push(out) {
            return Err(LinkError::Stuck);
        }
        self.flush().map_err(|_| LinkError::Broken)
    }

    /// Writes queued messages while they fit; `Err` if the ring is corrupt.
    pub(super) fn flush(&mut self) -> core::result::Result<(), RingError> {
        let mut notify = false;
        while let Some(m) = self.outbox.front() {
            if self.rings.tx.writable()? < m.len {
                break;
            }
            let t = self.rings.tx.write_slice(&m.buf[..m.len])?;
            notify |= t.notify;
            self.outbox.pop();
        }
        if self.outbox.len > 0 && self.rings.tx.arm_writable()? > 0 {
            // Space appeared while arming: the next run writes it.
            glue::work_kick();
        }
        if notify {
            self.evt.notify();
        }
        Ok(())
    }

    /// Reads complete messages into `out`, taking at most `out.len()` frames off the ring
    /// (valid or not, so that a flood of invalid ones is bounded too), and counts the
    /// well-framed but invalid ones in `bad`. Returns (messages, frames); `Err` if the
    /// channel is broken.
    pub(super) fn receive(
        &mut self,
        out: &mut [Option<Msg>],
        bad: &mut u32,
    ) -> core::result::Result<(usize, usize), ()> {
        let rx = &mut self.rings.rx;
        let (mut n, mut frames) = (0, 0);
        let mut notify = false;
        while frames < out.len() {
            let avail = rx.readable().map_err(|_| ())?;
            let mut hdr = [0u8; wire::HEADER_LEN];
            if avail < hdr.len() {
                if rx.arm_readable().map_err(|_| ())? >= hdr.len() {
                    continue;
                }
                break;
            }
            rx.peek_slice(0, &mut hdr).map_err(|_| ())?;
            let h = wire::peek_header(&hdr).map_err(|_| ())?; // bad version/length: fatal
            if avail < h.len {
                if rx.arm_readable().map_err(|_| ())? >= h.len {
                    continue;
                }
                break;
            }
            let mut buf = [0u8; wire::MAX_MSG_LEN];
            let t = rx.read_slice(&mut buf[..h.len]).map_err(|_| ())?;
            notify |= t.notify;
            frames += 1;
            match Msg::decode(&buf[..h.len]) {
                Ok((m, _)) => {
                    out[n] = Some(m);
                    n += 1;
                }
                Err(e) if e.is_fatal() => return Err(()),
                Err(_) => *bad = bad.saturating_add(1), // well framed but invalid: skipped
            }
        }
        if notify {
            self.evt.notify();
        }
        Ok((n, frames))
    }
}
