// SPDX-License-Identifier: GPL-2.0
//! Every counter the module keeps: global ones (`<debugfs>/yasmin/stats`) and per peer
//! domain (`<debugfs>/yasmin/peers`). Adding a counter touches this file and the code
//! that counts, nothing else.

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Pages this module has granted right now (control, ring directory and data pages).
pub(crate) static GRANTED_PAGES: AtomicI64 = AtomicI64::new(0);
/// Foreign pages this module has mapped right now.
pub(crate) static MAPPED_PAGES: AtomicI64 = AtomicI64::new(0);
/// Ballooned page frames cached for the next foreign map (`xen::grant::FramePool`).
pub(crate) static FRAME_CACHE_PAGES: AtomicI64 = AtomicI64::new(0);
/// Event channels this module has bound right now (control links and sockets).
pub(crate) static EVENT_CHANNELS: AtomicI64 = AtomicI64::new(0);
/// Of `GRANTED_PAGES`: pages we are done with that the peer still maps (`xen::grant::Withheld`).
pub(crate) static WITHHELD_PAGES: AtomicI64 = AtomicI64::new(0);
/// Grants, mappings or connections refused at a limit (`crate::limits`).
pub(crate) static LIMIT_REFUSALS: AtomicU64 = AtomicU64::new(0);
/// Released sockets' rings revoked because the peer did not close its side in time.
pub(crate) static LINGER_REVOKED: AtomicU64 = AtomicU64::new(0);
/// Pair channels reset because the peer spent its misbehaviour budget.
pub(crate) static MISBEHAVIOUR_RESETS: AtomicU64 = AtomicU64::new(0);
/// Pair channels reset because the peer stopped answering (liveness).
pub(crate) static LIVENESS_RESETS: AtomicU64 = AtomicU64::new(0);
/// Sockets with YASMIN state (created, not yet destructed).
pub(crate) static SOCKETS: AtomicU64 = AtomicU64::new(0);
/// Connections set up since load (connects sent plus children accepted).
pub(crate) static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS_RECEIVED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RESETS: AtomicU64 = AtomicU64::new(0);

/// Adds `n` to a counter.
#[inline]
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The `stats` file: one `name value` per line. `connections_live` comes from the
/// control plane's table, which the caller reads.
pub(crate) fn write_global(w: &mut impl core::fmt::Write, live: usize) -> core::fmt::Result {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    writeln!(w, "grant_pages {}", GRANTED_PAGES.load(Ordering::Relaxed))?;
    writeln!(w, "mapped_pages {}", MAPPED_PAGES.load(Ordering::Relaxed))?;
    writeln!(
        w,
        "map_frame_cache {}",
        FRAME_CACHE_PAGES.load(Ordering::Relaxed)
    )?;
    writeln!(
        w,
        "withheld_pages {}",
        WITHHELD_PAGES.load(Ordering::Relaxed)
    )?;
    writeln!(
        w,
        "event_channels {}",
        EVENT_CHANNELS.load(Ordering::Relaxed)
    )?;
    writeln!(w, "sockets {}", l(&SOCKETS))?;
    writeln!(w, "connections_live {}", live)?;
    writeln!(w, "connections_total {}", l(&CONNECTIONS))?;
    writeln!(w, "bytes_sent {}", l(&BYTES_SENT))?;
    writeln!(w, "bytes_received {}", l(&BYTES_RECEIVED))?;
    writeln!(w, "signals_sent {}", l(&SIGNALS_SENT))?;
    writeln!(w, "signals_received {}", l(&SIGNALS_RECEIVED))?;
    writeln!(w, "resets {}", l(&RESETS))?;
    writeln!(w, "limit_refusals {}", l(&LIMIT_REFUSALS))?;
    writeln!(w, "linger_revoked {}", l(&LINGER_REVOKED))?;
    writeln!(w, "misbehaviour_resets {}", l(&MISBEHAVIOUR_RESETS))?;
    writeln!(w, "liveness_resets {}", l(&LIVENESS_RESETS))?;
    crate::limits::write(w)
}

// ---- per peer ----------------------------------------------------------------------
// A fixed table: a peer claims a slot on its first connection and keeps it; once every
// slot is taken, further peers are counted together as `other`.

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
}

static TABLE: [PeerStats; SLOTS] = [const { PeerStats::new() }; SLOTS];
static OTHER: PeerStats = PeerStats::new();

/// The counters of `domid`, claiming a slot for it on first use.
pub(crate) fn of_peer(domid: u16) -> &'static PeerStats {
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
pub(crate) fn no_peer() -> &'static PeerStats {
    &OTHER
}

fn peer_line(
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

/// The `peers` file: a header line, then one line per peer: domid, CID, the counters.
pub(crate) fn write_peers(w: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(
        w,
        "peer cid connections bytes_sent bytes_received signals_sent signals_received resets"
    )?;
    for s in TABLE.iter() {
        let d = s.domid.load(Ordering::Acquire);
        if d != FREE {
            peer_line(w, d, d + crate::control::paths::CID_OFFSET, s)?;
        }
    }
    if OTHER.connections.load(Ordering::Relaxed) != 0 {
        peer_line(w, "other", "-", &OTHER)?;
    }
    Ok(())
}
