// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers around the kernel's Xen APIs (xenbus/XenStore for now).

use crate::bindings;
use kernel::error::from_err_ptr;
use kernel::prelude::*;
use kernel::str::CStr;

/// Which kind of Xen domain this kernel runs in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DomainKind {
    /// The control domain (dom0).
    Initial,
    /// A paravirtualised guest.
    Pv,
    /// Another guest type (HVM/PVH): not supported by YASMIN.
    Other,
}

/// Returns the kind of Xen domain we run in, or `ENODEV` outside Xen.
pub(crate) fn domain_kind() -> Result<DomainKind> {
    // SAFETY: these glue functions only read boot-time constants (xen_domain_type).
    let (xen, pv, initial) = unsafe {
        (
            bindings::yasmin_xen_domain(),
            bindings::yasmin_xen_pv_domain(),
            bindings::yasmin_xen_initial_domain(),
        )
    };
    match (xen, initial, pv) {
        (false, _, _) => Err(ENODEV),
        (true, true, _) => Ok(DomainKind::Initial),
        (true, false, true) => Ok(DomainKind::Pv),
        (true, false, false) => Ok(DomainKind::Other),
    }
}

/// Reads a XenStore node (relative paths resolve under /local/domain/<self>) and
/// hands its bytes to `f`. The buffer is freed when `f` returns.
pub(crate) fn xs_read_with<R>(dir: &CStr, node: &CStr, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let mut len: u32 = 0;
    let nil = bindings::xenbus_transaction { id: 0 }; // XBT_NIL
    // SAFETY: `dir` and `node` are NUL-terminated strings valid for the call; `len`
    // is a valid out-pointer. xenbus_read may sleep; we are in process context.
    let ptr = unsafe { bindings::xenbus_read(nil, dir.as_char_ptr(), node.as_char_ptr(), &mut len) };
    let ptr = from_err_ptr(ptr)?;
    // SAFETY: on success xenbus_read returns a kmalloc'd buffer of `len` bytes (plus
    // a NUL) that we own until we kfree it below.
    let bytes = unsafe { core::slice::from_raw_parts(ptr as *const u8, len as usize) };
    let r = f(bytes);
    // SAFETY: `ptr` came from kmalloc inside xenbus_read and is not used afterwards.
    unsafe { bindings::kfree(ptr) };
    Ok(r)
}

/// Parses a XenStore decimal value (what `domid` holds); `EINVAL` on anything else.
pub(crate) fn parse_u32(bytes: &[u8]) -> Result<u32> {
    let s = core::str::from_utf8(bytes).map_err(|_| EINVAL)?;
    s.trim().parse::<u32>().map_err(|_| EINVAL)
}

/// Our own domain id, read from XenStore (`domid` under our home path).
pub(crate) fn own_domid() -> Result<u32> {
    xs_read_with(kernel::c_str!("domid"), kernel::c_str!(""), parse_u32)?
}
