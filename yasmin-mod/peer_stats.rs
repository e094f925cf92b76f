// SPDX-License-Identifier: GPL-2.0

//! Data counters per peer domain (`<debugfs>/yasmin/peers`), kept since the module
//! loaded. A fixed table: a peer claims a slot on its first connection and keeps it;
//! once every slot is taken, further peers are counted together as `other`.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const SLOTS: usize = 64;
const FREE: u32 = u32::MAX;

/// One peer's counters.
pub(crate) struct PeerStats {
    domid: AtomicU32,
    pub(crate) connections: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) signals_sent: AtomicU64,
    pub(crate) signals_received: AtomicU64,
    pub(crate) resets: AtomicU64,
}

impl PeerStats {
    const fn new() -> Self {
        PeerStats {
            domid: AtomicU32::new(FREE),
            connections: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            signals_sent: AtomicU64::new(0),
            signals_received: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        }
    }

    /// Adds `n` to counter `c` (a field of this struct).
    #[inline]
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

static TABLE: [PeerStats; SLOTS] = [const { PeerStats::new() }; SLOTS];
static OTHER: PeerStats = PeerStats::new();

/// The counters of `domid`, claiming a slot for it on first use.
pub(crate) fn of(domid: u16) -> &'static PeerStats {
    let d = domid as u32;
    for s in TABLE.iter() {
        match s
            .domid
            .compare_exchange(FREE, d, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return s,
            Err(cur) if cur == d => return s,
            Err(_) => {}
        }
    }
    &OTHER
}

/// Counters of no peer yet (a socket before connect/accept).
pub(crate) fn none() -> &'static PeerStats {
    &OTHER
}

fn line(
    w: &mut impl core::fmt::Write,
    name: impl core::fmt::Display,
    cid: impl core::fmt::Display,
    s: &PeerStats,
) -> core::fmt::Result {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    writeln!(
        w,
        "{} {} {} {} {} {} {} {}",
        name,
        cid,
        l(&s.connections),
        l(&s.bytes_sent),
        l(&s.bytes_received),
        l(&s.signals_sent),
        l(&s.signals_received),
        l(&s.resets)
    )
}

/// A header line, then one line per peer: domid, CID, and the counters.
pub(crate) fn write(w: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(
        w,
        "peer cid connections bytes_sent bytes_received signals_sent signals_received resets"
    )?;
    for s in TABLE.iter() {
        let d = s.domid.load(Ordering::Acquire);
        if d != FREE {
            line(w, d, d + crate::cid::CID_OFFSET, s)?;
        }
    }
    if OTHER.connections.load(Ordering::Relaxed) != 0 {
        line(w, "other", "-", &OTHER)?;
    }
    Ok(())
}
