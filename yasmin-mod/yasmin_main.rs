// SPDX-License-Identifier: GPL-2.0
//! YASMIN: an AF_VSOCK transport for Xen PV and PVH guests over grant-table shared rings.
//!
//! Crate root of `yasmin.ko` (see README.md in this folder for the map, the lock order
//! and the life of a connection):
//! - `transport`: the vsock ops table and its callbacks (`data`: send/receive/poll;
//!   `connect`: connect, accept, peer messages, release);
//! - `socket`: our sockets, typed: references, the socket lock, state transitions;
//! - `plane`: the per-pair control plane (pair machines, control channels, connection
//!   table), which returns socket events to the transport;
//! - `xen`: XenStore, grants, event channels, and rings over shared pages;
//! - `stats`, `debugfs`: every counter, every debugfs file;
//! - `ring`, `control`: the shared ring and the control protocol (codec, XenStore
//!   schema, pair state machine, CID mapping), compiled from the userspace crates;
//! - `glue`: the safe face of glue.c (parameters, work item, the published plane);
//! - `test_hooks`, `profile`: test build only (`make module-test`).

/// Times `$e` as data-path stage `$stage` (test build; elsewhere just `$e`).
#[macro_export]
macro_rules! profiled {
    ($stage:ident, $e:expr) => {{
        #[cfg(yasmin_test)]
        let r = $crate::profile::$stage.time(|| $e);
        #[cfg(not(yasmin_test))]
        let r = $e;
        r
    }};
}

/// Counts an event of stage `$stage` (test build; elsewhere nothing).
#[macro_export]
macro_rules! profiled_count {
    ($stage:ident) => {
        #[cfg(yasmin_test)]
        $crate::profile::$stage.count();
    };
}

mod bindings;
#[path = "../xenstore-watch/src/control/mod.rs"]
#[allow(dead_code, unreachable_pub)] // Shared with userspace; the module uses part of it.
mod control;
mod debugfs;
mod glue;
mod lifecycle;
mod limits;
mod plane;
#[cfg(yasmin_test)]
mod profile;
#[path = "../ring/src/record.rs"]
#[allow(dead_code, unreachable_pub)] // Shared with userspace; the module uses part of it.
mod record;
#[path = "../ring/src/ring.rs"]
#[allow(dead_code, unreachable_pub)] // The transport uses only part of the ring API.
mod ring;
mod ring_selftest;
mod socket;
mod stats;
#[cfg(yasmin_test)]
mod test_hooks;
mod transport;
mod xen;

use control::paths;
use kernel::prelude::*;

module! {
    type: Yasmin,
    name: "yasmin",
    author: "YASMIN-rs developers",
    description: "AF_VSOCK transport for Xen PV and PVH guests over grant-table shared rings",
    license: "GPL",
}

/// Largest ring a socket may ask for: 512 pages = 2 MiB per direction.
const RING_PAGES_LIMIT: u32 = 512;

/// Validated module parameters.
struct Params {
    ring_pages: u32,
    max_ring_pages: u32,
    max_setups: u32,
    limits: limits::Limits,
}

impl Params {
    fn load() -> Result<Self> {
        let (ring_pages, max_ring_pages) = glue::params();
        // max_ring_pages first: it bounds ring_pages.
        for (name, v, max, bound) in [
            (
                "max_ring_pages",
                max_ring_pages,
                RING_PAGES_LIMIT,
                "the limit",
            ),
            ("ring_pages", ring_pages, max_ring_pages, "max_ring_pages"),
        ] {
            if !v.is_power_of_two() || v > max {
                pr_err!(
                    "{}={} invalid: must be a power of two <= {} ({})\n",
                    name,
                    v,
                    bound,
                    max
                );
                return Err(EINVAL);
            }
        }
        let max_setups = glue::max_setups();
        if !(1..=glue::SETUPS_LIMIT).contains(&max_setups) {
            pr_err!(
                "max_setups={} invalid: must be 1..={}\n",
                max_setups,
                glue::SETUPS_LIMIT
            );
            return Err(EINVAL);
        }
        let limits = limits::Limits::resolve(glue::limit_params(), glue::guest_size(), ring_pages)?;
        Ok(Self {
            ring_pages,
            max_ring_pages,
            max_setups,
            limits,
        })
    }
}

struct Yasmin {
    // Drop order is field order: no suspend or resume runs once the PM hooks are gone;
    // no socket of ours exists once the transport is unregistered; debugfs goes before
    // the plane it reads.
    _pm: glue::PmHooks,
    _transport: transport::Transport,
    _debugfs: debugfs::Files,
    _control: plane::ControlPlane,
    // Last: pages withheld by peers are retried by the plane until it stops.
    _withheld: xen::grant::WithheldPages,
    // After every mapping is gone: the cached frames go back to the balloon.
    _frames: xen::grant::FrameCache,
}

impl kernel::Module for Yasmin {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let kind = xen::domain_kind().inspect_err(|_| pr_err!("not running on Xen\n"))?;
        if kind == xen::DomainKind::Hvm {
            pr_err!("HVM guests are not supported yet (PV and PVH guests and dom0 are)\n");
            return Err(ENODEV);
        }
        let params = Params::load()?;
        ring_selftest::run()?;
        let (domid, cid) = xen::own_ids().inspect_err(|e| {
            pr_err!(
                "cannot read own domid (or it is reserved, no CID): {:?}\n",
                e
            );
        })?;
        pr_info!(
            "loaded: domid {} vsock CID {} (CID = domid + {}), {}, ring {} pages (max {}), ring self-test ok{}\n",
            domid,
            cid,
            paths::CID_OFFSET,
            kind.name(),
            params.ring_pages,
            params.max_ring_pages,
            if cfg!(yasmin_test) { ", test build" } else { "" }
        );
        let l = params.limits;
        l.install();
        pr_info!(
            "limits: {} connections ({} per peer), {} granted pages, {} mapped pages; rings linger {} ms; {} bad messages per channel; {} set-ups at once\n",
            l.conns,
            l.conns_per_peer,
            l.granted_pages,
            l.mapped_pages,
            l.linger_ms,
            l.bad_msg_budget,
            params.max_setups
        );
        let frames = xen::grant::FrameCache::start()?;
        let withheld = xen::grant::WithheldPages::start()?;
        let control =
            plane::ControlPlane::start(domid, params.max_ring_pages as u16, params.max_setups)?;
        let debugfs = debugfs::Files::create();
        let transport =
            transport::Transport::register(cid, params.ring_pages, params.max_ring_pages)
                .inspect_err(|e| pr_err!("cannot register the vsock transport: {:?}\n", e))?;
        // Last: a suspend may run from here on.
        let pm = glue::PmHooks::register()
            .inspect_err(|e| pr_err!("cannot register for save/restore: {:?}\n", e))?;
        Ok(Yasmin {
            _pm: pm,
            _transport: transport,
            _debugfs: debugfs,
            _control: control,
            _withheld: withheld,
            _frames: frames,
        })
    }
}

impl Drop for Yasmin {
    fn drop(&mut self) {
        pr_info!("unloaded (CID {})\n", transport::local_cid());
    }
}
