// SPDX-License-Identifier: GPL-2.0
//! Resource limits: what one peer, and all peers together, may make this guest hold.
//! Set once at load from the module parameters (0 = derived from the guest: half the
//! grant table, a quarter of RAM); every grant and every mapping reserves against them,
//! so no peer can exhaust the grant table that blkfront and netfront share (they use a
//! few thousand entries of the 32,768 a default Xen 4.17 guest has).
//!
//! A connection past a limit fails: `connect()` with `ENOBUFS`, a peer's CONNECT with a
//! RESET (`RESET_LIMIT`, `ECONNREFUSED` at the connector).

use crate::stats::{GRANTED_PAGES, MAPPED_PAGES};
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use kernel::prelude::*;

static MAX_GRANTED: AtomicI64 = AtomicI64::new(i64::MAX);
static MAX_MAPPED: AtomicI64 = AtomicI64::new(i64::MAX);
static MAX_CONNS: AtomicU32 = AtomicU32::new(u32::MAX);
static MAX_CONNS_PER_PEER: AtomicU32 = AtomicU32::new(u32::MAX);
static LINGER_MS: AtomicU32 = AtomicU32::new(30_000);
static BAD_MSG_BUDGET: AtomicU32 = AtomicU32::new(32);
/// Pages of one connection at the default ring size (directory + data), the unit in
/// which withheld pages count against a peer's connections.
static CONN_PAGES: AtomicU32 = AtomicU32::new(129);

/// The limits in force (module parameters resolved at load).
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) conns_per_peer: u32,
    pub(crate) conns: u32,
    pub(crate) granted_pages: u64,
    pub(crate) mapped_pages: u64,
    pub(crate) linger_ms: u32,
    pub(crate) bad_msg_budget: u32,
    /// Pages of one connection at the default ring size (directory + data).
    pub(crate) conn_pages: u32,
}

impl Limits {
    /// Resolves the parameters: 0 for a page limit means half the grant table (granted
    /// pages; never more than a quarter of RAM) or a quarter of RAM (mapped pages).
    pub(crate) fn resolve(
        (conns_per_peer, conns, granted, mapped, linger_ms, budget): (u32, u32, u32, u32, u32, u32),
        (ram_pages, grant_entries): (u64, u64),
        ring_pages: u32,
    ) -> Result<Self> {
        if conns_per_peer == 0 || conns == 0 || budget == 0 {
            pr_err!("max_conns_per_peer, max_conns and bad_msg_budget must be at least 1\n");
            return Err(EINVAL);
        }
        let auto = |v: u32, d: u64| if v == 0 { d } else { v as u64 };
        Ok(Limits {
            conns_per_peer,
            conns,
            granted_pages: auto(granted, (grant_entries / 2).min(ram_pages / 4)),
            mapped_pages: auto(mapped, ram_pages / 4),
            linger_ms,
            bad_msg_budget: budget,
            conn_pages: ring_pages + 1,
        })
    }

    /// Puts these limits in force.
    pub(crate) fn install(&self) {
        MAX_GRANTED.store(self.granted_pages as i64, Ordering::Relaxed);
        MAX_MAPPED.store(self.mapped_pages as i64, Ordering::Relaxed);
        MAX_CONNS.store(self.conns, Ordering::Relaxed);
        MAX_CONNS_PER_PEER.store(self.conns_per_peer, Ordering::Relaxed);
        LINGER_MS.store(self.linger_ms, Ordering::Relaxed);
        BAD_MSG_BUDGET.store(self.bad_msg_budget, Ordering::Relaxed);
        CONN_PAGES.store(self.conn_pages, Ordering::Relaxed);
    }
}

/// The errno of a grant, mapping or connection past a limit.
pub(crate) fn enobufs() -> Error {
    crate::xen::errno(crate::bindings::ENOBUFS)
}

/// Adds `n` to `counter` if that stays within `max`; `ENOBUFS` otherwise.
fn reserve(counter: &AtomicI64, max: &AtomicI64, n: i64) -> Result {
    let prev = counter.fetch_add(n, Ordering::Relaxed);
    if prev + n > max.load(Ordering::Relaxed) {
        counter.fetch_sub(n, Ordering::Relaxed);
        crate::stats::add(&crate::stats::LIMIT_REFUSALS, 1);
        return Err(enobufs());
    }
    Ok(())
}

/// Counts `n` pages about to be granted; `ENOBUFS` past `max_granted_pages`.
pub(crate) fn reserve_granted(n: i64) -> Result {
    reserve(&GRANTED_PAGES, &MAX_GRANTED, n)
}

/// Counts `n` foreign pages about to be mapped; `ENOBUFS` past `max_mapped_pages`.
pub(crate) fn reserve_mapped(n: i64) -> Result {
    reserve(&MAPPED_PAGES, &MAX_MAPPED, n)
}

/// Whether one more connection fits: `peer_conns` live with that peer (its withheld
/// pages counted as connections of the default size), `all` live in total.
pub(crate) fn conn_fits(peer_conns: usize, peer_withheld: u64, all: usize) -> bool {
    let withheld = peer_withheld.div_ceil(CONN_PAGES.load(Ordering::Relaxed) as u64);
    let per_peer = peer_conns as u64 + withheld;
    per_peer < MAX_CONNS_PER_PEER.load(Ordering::Relaxed) as u64
        && (all as u64) < MAX_CONNS.load(Ordering::Relaxed) as u64
}

/// How long a released socket's ring waits for the peer's CLOSE before it is revoked.
pub(crate) fn linger_ms() -> u64 {
    LINGER_MS.load(Ordering::Relaxed) as u64
}

/// Invalid control messages a peer may send per channel before it is reset.
pub(crate) fn bad_msg_budget() -> u32 {
    BAD_MSG_BUDGET.load(Ordering::Relaxed)
}

/// The `limit_*` lines of debugfs `stats`.
pub(crate) fn write(w: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(
        w,
        "limit_granted_pages {}",
        MAX_GRANTED.load(Ordering::Relaxed)
    )?;
    writeln!(
        w,
        "limit_mapped_pages {}",
        MAX_MAPPED.load(Ordering::Relaxed)
    )?;
    writeln!(w, "limit_conns {}", MAX_CONNS.load(Ordering::Relaxed))?;
    writeln!(
        w,
        "limit_conns_per_peer {}",
        MAX_CONNS_PER_PEER.load(Ordering::Relaxed)
    )
}
