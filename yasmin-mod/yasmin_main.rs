// SPDX-License-Identifier: GPL-2.0
//! YASMIN: an AF_VSOCK transport for Xen PV guests over grant-table shared rings.
//!
//! Crate root of `yasmin.ko`. Components, one file each:
//! - `xen`: safe wrappers for XenStore, grants and event channels;
//! - `control_plane`: drives the per-peer handshake and the per-pair control channels;
//! - `vsock_transport`: the vsock callbacks (YASMIN as the G2H `struct vsock_transport`);
//! - `socket_ring`: a socket's rings in granted / mapped order-0 pages;
//! - `cid`: the documented CID <-> domid mapping;
//! - `ring`: the shared byte ring, compiled from the same source as the userspace crate;
//! - `ring_selftest`: exercises that ring in the kernel at load time;
//! - `control`: the control plane's pure logic (codec, XenStore schema, pair state
//!   machine), compiled from `xenstore-watch/src/control/` (see PROTOCOL.md there);
//! - `bindings`: bindgen output for the kernel's Xen and vsock headers (glue.h).

mod bindings;
mod cid;
#[path = "../xenstore-watch/src/control/mod.rs"]
#[allow(dead_code, unreachable_pub)] // Shared with userspace; the module uses part of it.
mod control;
mod control_plane;
mod peer_stats;
mod profile;
#[path = "../ring/src/ring.rs"]
#[allow(dead_code, unreachable_pub)] // The transport uses only part of the ring API.
mod ring;
mod ring_selftest;
mod socket_ring;
mod vsock_transport;
mod xen;

use kernel::prelude::*;

module! {
    type: Yasmin,
    name: "yasmin",
    author: "YASMIN-rs developers",
    description: "AF_VSOCK transport for Xen PV guests over grant-table shared rings",
    license: "GPL",
}

/// Largest ring a socket may ask for: 512 pages = 2 MiB per direction.
const RING_PAGES_LIMIT: u32 = 512;

/// Validated module parameters.
struct Params {
    ring_pages: u32,
    max_ring_pages: u32,
}

impl Params {
    fn load() -> Result<Self> {
        // SAFETY: the parameters are plain u32s written only by the module loader
        // before init runs (permissions 0444: sysfs cannot change them later).
        let (ring_pages, max_ring_pages) = unsafe {
            (
                bindings::yasmin_param_ring_pages,
                bindings::yasmin_param_max_ring_pages,
            )
        };
        if !max_ring_pages.is_power_of_two() || max_ring_pages > RING_PAGES_LIMIT {
            pr_err!(
                "max_ring_pages={} invalid: must be a power of two <= {}\n",
                max_ring_pages,
                RING_PAGES_LIMIT
            );
            return Err(EINVAL);
        }
        if !ring_pages.is_power_of_two() || ring_pages > max_ring_pages {
            pr_err!(
                "ring_pages={} invalid: must be a power of two <= max_ring_pages ({})\n",
                ring_pages,
                max_ring_pages
            );
            return Err(EINVAL);
        }
        Ok(Self {
            ring_pages,
            max_ring_pages,
        })
    }
}

struct Yasmin {
    cid: u32,
    // Dropped first: no socket of ours exists once the transport is unregistered.
    _transport: vsock_transport::Transport,
    _control: control_plane::ControlPlane,
}

impl kernel::Module for Yasmin {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let kind = xen::domain_kind().inspect_err(|_| pr_err!("not running on Xen\n"))?;
        if kind == xen::DomainKind::Other {
            pr_err!("only Xen PV guests and dom0 are supported\n");
            return Err(ENODEV);
        }
        let params = Params::load()?;
        ring_selftest::run()?;
        let domid = xen::own_domid().inspect_err(|e| {
            pr_err!("cannot read own domid from XenStore: {:?}\n", e);
        })?;
        let cid = cid::domid_to_cid(domid).ok_or_else(|| {
            pr_err!("domid {} is reserved, no CID\n", domid);
            EINVAL
        })?;
        pr_info!(
            "loaded: domid {} vsock CID {} (CID = domid + {}), {}, ring {} pages (max {}), ring self-test ok\n",
            domid,
            cid,
            cid::CID_OFFSET,
            if kind == xen::DomainKind::Initial { "dom0" } else { "PV guest" },
            params.ring_pages,
            params.max_ring_pages
        );
        let domid16 = u16::try_from(domid).map_err(|_| EINVAL)?;
        let control = control_plane::ControlPlane::start(domid16, params.max_ring_pages as u16)?;
        let transport =
            vsock_transport::Transport::register(cid, params.ring_pages, params.max_ring_pages)
                .inspect_err(|e| pr_err!("cannot register the vsock transport: {:?}\n", e))?;
        Ok(Yasmin {
            cid,
            _transport: transport,
            _control: control,
        })
    }
}

impl Drop for Yasmin {
    fn drop(&mut self) {
        pr_info!("unloaded (CID {})\n", self.cid);
    }
}
