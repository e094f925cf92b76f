// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers around the kernel's Xen APIs. This file: the domain's kind and XenStore
//! (read, write, remove, list, watch). `grant`: our pages granted, a peer's mapped.
//! `evtchn`: event channels. `rings`: byte rings over granted or mapped pages (a socket's
//! data rings, the pair's control page). Every resource is a value that gives itself back
//! on drop; this folder holds the module's Xen- and shared-memory `unsafe`.

mod evtchn;
pub(crate) mod grant;
pub(crate) mod rings;

pub(crate) use evtchn::{EventChannel, ParkedChannel, PolledChannel};
pub(crate) use grant::{ForeignPages, GrantedPage};

use crate::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::{CStr, CString};
use kernel::types::Opaque;

/// Which kind of Xen domain this kernel runs in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DomainKind {
    /// The control domain (dom0), PV or PVH.
    Initial,
    /// A paravirtualised guest: grants name machine frames.
    Pv,
    /// A PVH guest (auto-translated physmap): grants name guest frames, and foreign
    /// pages are mapped at guest-physical addresses of ballooned-out frames. The kernel's
    /// helpers we call (`virt_to_gfn`, `gnttab_set_map_op`, `gnttab_alloc_pages`,
    /// `gnttab_map_refs`) make both kinds work the same from here.
    Pvh,
    /// An HVM guest: not supported yet (untested; needs a device model in the bed).
    Hvm,
}

impl DomainKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DomainKind::Initial => "dom0",
            DomainKind::Pv => "PV guest",
            DomainKind::Pvh => "PVH guest",
            DomainKind::Hvm => "HVM guest",
        }
    }
}

/// Returns the kind of Xen domain we run in, or `ENODEV` outside Xen.
pub(crate) fn domain_kind() -> Result<DomainKind> {
    // SAFETY: these glue functions only read boot-time constants (xen_domain_type).
    let (xen, pv, pvh, initial) = unsafe {
        (
            bindings::yasmin_xen_domain(),
            bindings::yasmin_xen_pv_domain(),
            bindings::yasmin_xen_pvh_domain(),
            bindings::yasmin_xen_initial_domain(),
        )
    };
    match (xen, initial, pv, pvh) {
        (false, ..) => Err(ENODEV),
        (true, true, ..) => Ok(DomainKind::Initial),
        (true, false, true, _) => Ok(DomainKind::Pv),
        (true, false, false, true) => Ok(DomainKind::Pvh),
        (true, false, false, false) => Ok(DomainKind::Hvm),
    }
}

/// Reads a XenStore node (relative paths resolve under /local/domain/<self>) and
/// hands its bytes to `f`. The buffer is freed when `f` returns.
pub(crate) fn xs_read_with<R>(dir: &CStr, node: &CStr, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let mut len: u32 = 0;
    let nil = bindings::xenbus_transaction { id: 0 }; // XBT_NIL
                                                      // SAFETY: `dir` and `node` are NUL-terminated strings valid for the call; `len`
                                                      // is a valid out-pointer. xenbus_read may sleep; we are in process context.
    let ptr =
        unsafe { bindings::xenbus_read(nil, dir.as_char_ptr(), node.as_char_ptr(), &mut len) };
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

/// Our domid and vsock CID (`CID = domid + 2`), read at load and after every restore:
/// `Err` if `domid` cannot be read, `EINVAL` for a domid that has no CID (reserved).
pub(crate) fn own_ids() -> Result<(u16, u32)> {
    let domid = own_domid()?;
    u16::try_from(domid)
        .ok()
        .and_then(|d| Some((d, crate::control::paths::domid_to_cid(d)?)))
        .ok_or(EINVAL)
}

/// A NUL-terminated copy of `s` for C APIs.
pub(crate) fn cstring(s: &str) -> Result<CString> {
    CString::try_from_fmt(fmt!("{}", s))
}

/// Writes `value` to the XenStore node `path` (absolute), creating it if needed.
pub(crate) fn xs_write(path: &str, value: &[u8]) -> Result {
    let p = cstring(path)?;
    let v = CString::try_from_fmt(fmt!("{}", BStrDisplay(value)))?;
    // SAFETY: both strings are NUL-terminated and live across the call; process context.
    let rc = unsafe {
        bindings::xenbus_write(
            XBT_NIL,
            p.as_char_ptr(),
            kernel::c_str!("").as_char_ptr(),
            v.as_char_ptr(),
        )
    };
    to_result(rc)
}

/// Removes the XenStore node `path` and everything below it; a missing node is fine.
pub(crate) fn xs_rm(path: &str) -> Result {
    let p = cstring(path)?;
    // SAFETY: as in `xs_write`.
    let rc =
        unsafe { bindings::xenbus_rm(XBT_NIL, p.as_char_ptr(), kernel::c_str!("").as_char_ptr()) };
    match to_result(rc) {
        Err(e) if e == ENOENT => Ok(()),
        r => r,
    }
}

/// Reads the absolute node `path` and hands its bytes to `f`.
pub(crate) fn xs_read_path<R>(path: &str, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let p = cstring(path)?;
    xs_read_with(&p, kernel::c_str!(""), f)
}

/// Lists the children of the absolute node `path`, calling `f` with each name.
pub(crate) fn xs_directory(path: &str, mut f: impl FnMut(&[u8])) -> Result {
    let p = cstring(path)?;
    let mut num: u32 = 0;
    // SAFETY: NUL-terminated strings valid for the call, `num` a valid out-pointer.
    let arr = unsafe {
        bindings::xenbus_directory(
            XBT_NIL,
            p.as_char_ptr(),
            kernel::c_str!("").as_char_ptr(),
            &mut num,
        )
    };
    let arr = from_err_ptr(arr)?;
    for i in 0..num as usize {
        // SAFETY: on success `arr` is one kmalloc'd block holding `num` pointers to
        // NUL-terminated names inside the same block.
        let name = unsafe { CStr::from_char_ptr(*arr.add(i)) };
        f(name.as_bytes());
    }
    // SAFETY: the block came from kmalloc in xenbus_directory; no name is used after this.
    unsafe { bindings::kfree(arr.cast()) };
    Ok(())
}

/// Displays raw bytes as text (XenStore values are ASCII; others become `?`).
struct BStrDisplay<'a>(&'a [u8]);

impl core::fmt::Display for BStrDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            let c = if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            };
            core::fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

const XBT_NIL: bindings::xenbus_transaction = bindings::xenbus_transaction { id: 0 };

/// Signature of a XenStore watch callback (runs in the xenwatch thread).
pub(crate) type WatchFn = unsafe extern "C" fn(
    *mut bindings::xenbus_watch,
    *const kernel::ffi::c_char,
    *const kernel::ffi::c_char,
);

/// A registered XenStore watch; unregistered (and waited for) on drop.
pub(crate) struct Watch {
    w: Pin<KBox<Opaque<bindings::xenbus_watch>>>,
    _path: CString,
}

// SAFETY: after registration the C side only reads the watch under xenbus' own locks;
// we never touch it again until `drop` unregisters it, from any thread.
unsafe impl Send for Watch {}
// SAFETY: `&Watch` gives no access to the C object at all.
unsafe impl Sync for Watch {}

impl Watch {
    /// Watches `path` and everything below it. Xen fires the watch once right away.
    pub(crate) fn new(path: &str, callback: WatchFn) -> Result<Self> {
        let path = cstring(path)?;
        let w = KBox::pin(Opaque::<bindings::xenbus_watch>::uninit(), GFP_KERNEL)?;
        // SAFETY: `w.get()` points to memory we own; an all-zero xenbus_watch (empty list
        // head, no callbacks) is a valid starting point that we fill before registering.
        unsafe {
            core::ptr::write_bytes(w.get(), 0, 1);
            (*w.get()).node = path.as_char_ptr();
            (*w.get()).callback = Some(callback);
        }
        // SAFETY: the watch and its path live (pinned) until `drop` unregisters it.
        to_result(unsafe { bindings::register_xenbus_watch(w.get()) })?;
        Ok(Watch { w, _path: path })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; unregistering waits for a running callback.
        unsafe { bindings::unregister_xenbus_watch(self.w.get()) };
    }
}

/// An errno the 6.12 `kernel` crate does not name (values from the kernel's headers).
pub(crate) fn errno(code: u32) -> Error {
    Error::from_errno(-(code as i32))
}
