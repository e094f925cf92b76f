// SPDX-License-Identifier: GPL-2.0
//! Save/restore and live migration: Xen's suspend path calls these through glue.c's PM
//! device (`freeze` with processes frozen and XenStore still up; `thaw` after a
//! cancelled suspend, `restore` in the new domain, both with XenStore back).
//!
//! Like virtio-vsock's transport reset: every connection is reset (ECONNRESET, or
//! EHOSTUNREACH for a connect still waiting for its pair channel), listeners are kept,
//! and the CID is read again. Nothing Xen gave us survives a save: grant refs, mapped
//! pages, event channels and the XenStore watch all belong to the old domain, so all of
//! them go before the guest is frozen (which is also what lets `xl save` finish), and
//! the plane starts afresh as the new domain.

use crate::{plane, transport, xen};
use kernel::ffi::c_int;
use kernel::prelude::*;

/// Before the guest is frozen.
#[no_mangle]
extern "C" fn yasmin_pm_freeze() -> c_int {
    let events = plane::suspend();
    // Set-ups of incoming connections still running end now: the plane is stopped, so
    // they register nothing and their rings go with their children.
    crate::glue::setup_flush();
    let n = events.len();
    for ev in events {
        transport::apply(ev);
    }
    xen::grant::drain_frames();
    pr_info!(
        "suspending: {} connections reset, every channel closed\n",
        n
    );
    0
}

/// After a cancelled suspend (`restored` false: the same domain) or a restore or
/// migration (a new domain, so a new domid and CID).
#[no_mangle]
extern "C" fn yasmin_pm_resume(restored: bool) -> c_int {
    let how = if restored {
        "restored"
    } else {
        "suspend cancelled"
    };
    let Ok((domid, cid)) = xen::own_ids() else {
        pr_err!(
            "{}: cannot read a valid domid from XenStore; YASMIN stays down\n",
            how
        );
        return 0; // the rest of the guest resumes regardless
    };
    let old = transport::local_cid();
    transport::set_local_cid(cid);
    match plane::resume(domid) {
        Ok(()) => pr_info!("{}: domid {} vsock CID {} (was {})\n", how, domid, cid, old),
        Err(e) => pr_err!("{}: cannot restart the control plane: {:?}\n", how, e),
    }
    0
}
