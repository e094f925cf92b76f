// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers around the kernel's Xen APIs: XenStore (read, write, remove, list,
//! watch), grant tables (granting our pages, mapping a peer's) and event channels.
//! Every resource is a value that gives itself back on drop.

use crate::bindings;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI64, Ordering};
use kernel::error::{from_err_ptr, to_result};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::{CStr, CString};
use kernel::types::Opaque;

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

/// Pages this module has granted right now (control, ring directory and data pages).
pub(crate) static GRANTED_PAGES: AtomicI64 = AtomicI64::new(0);
/// Foreign pages this module has mapped right now.
pub(crate) static MAPPED_PAGES: AtomicI64 = AtomicI64::new(0);

/// A zeroed page of ours, granted to one foreign domain. Dropping it ends
/// the grant and frees the page, deferred by the kernel while the peer still maps it.
pub(crate) struct GrantedPage {
    addr: NonNull<u8>,
    gref: u32,
}

// SAFETY: the page is plain memory owned by this value; nothing ties it to a thread.
unsafe impl Send for GrantedPage {}

impl GrantedPage {
    /// Allocates a zeroed page, lets `init` fill it, then grants it to `domid` (read-only
    /// if `readonly`).
    pub(crate) fn new(domid: u16, readonly: bool, init: impl FnOnce(*mut u8)) -> Result<Self> {
        // SAFETY: plain page allocation (GFP_KERNEL, process context).
        let addr = NonNull::new(unsafe { bindings::yasmin_alloc_zeroed_page() }.cast::<u8>())
            .ok_or(ENOMEM)?;
        init(addr.as_ptr());
        // SAFETY: `addr` is a page we own; the grant names its frame.
        let rc = unsafe { bindings::yasmin_grant_page(domid, addr.as_ptr().cast(), readonly) };
        if rc < 0 {
            // SAFETY: never granted, still ours.
            unsafe { bindings::yasmin_free_page(addr.as_ptr().cast()) };
            return Err(Error::from_errno(rc));
        }
        GRANTED_PAGES.fetch_add(1, Ordering::Relaxed);
        Ok(GrantedPage {
            addr,
            gref: rc as u32,
        })
    }

    pub(crate) fn addr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    pub(crate) fn gref(&self) -> u32 {
        self.gref
    }
}

impl Drop for GrantedPage {
    fn drop(&mut self) {
        // SAFETY: `gref` grants `addr`'s page; the kernel frees the page once the peer has
        // unmapped it (immediately if it never mapped it). We never touch it again.
        unsafe { bindings::yasmin_end_foreign_access(self.gref, self.addr.as_ptr().cast()) };
        GRANTED_PAGES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Foreign granted pages of one domain, mapped into our address space with one batched
/// hypercall (each at its own ballooned page frame: no virtually contiguous mapping).
pub(crate) struct ForeignPages {
    pages: KVec<*mut bindings::page>,
    handles: KVec<bindings::grant_handle_t>,
    addrs: KVec<*mut u8>,
    readonly: bool,
}

// SAFETY: the mappings belong to this value alone and can be used from any thread.
unsafe impl Send for ForeignPages {}

impl ForeignPages {
    /// Maps grants `grefs` of domain `domid` (read-only if `readonly`). Fails with
    /// `EFAULT` if Xen refuses any of them (none stays mapped then).
    pub(crate) fn map(domid: u16, grefs: &[u32], readonly: bool) -> Result<Self> {
        let n = grefs.len();
        let count = i32::try_from(n).map_err(|_| EINVAL)?;
        let mut pages = KVec::from_elem(core::ptr::null_mut(), n, GFP_KERNEL)?;
        // SAFETY: a plain C struct of integers: all-zero is valid; filled by the glue below.
        let zero_op: bindings::gnttab_map_grant_ref = unsafe { core::mem::zeroed() };
        let mut ops = KVec::from_elem(zero_op, n, GFP_KERNEL)?;
        // SAFETY: asks for `n` ballooned-out page frames to map over into `pages`.
        to_result(unsafe { bindings::gnttab_alloc_pages(count, pages.as_mut_ptr()) })?;
        for (op, (&page, &gref)) in ops.iter_mut().zip(pages.iter().zip(grefs)) {
            // SAFETY: `page` came from gnttab_alloc_pages; `op` is a valid out-struct.
            unsafe { bindings::yasmin_set_map_op(op, page, gref, domid, readonly) };
        }
        // SAFETY: `n` ops for `n` pages, all valid; no kernel-side kmap ops (NULL).
        let rc = unsafe {
            bindings::gnttab_map_refs(
                ops.as_mut_ptr(),
                core::ptr::null_mut(),
                pages.as_mut_ptr(),
                n as u32,
            )
        };
        let mut this = ForeignPages {
            pages,
            handles: KVec::with_capacity(n, GFP_KERNEL)?,
            addrs: KVec::with_capacity(n, GFP_KERNEL)?,
            readonly,
        };
        let all_ok = rc == 0 && ops.iter().all(|o| o.status == bindings::GNTST_okay as i16);
        for (op, &page) in ops.iter().zip(this.pages.iter()) {
            // Record every mapping that did succeed, so that drop undoes exactly those.
            let h = if op.status == bindings::GNTST_okay as i16 {
                op.handle
            } else {
                INVALID_HANDLE
            };
            this.handles.push(h, GFP_KERNEL)?;
            // SAFETY: `page` is a valid struct page in the kernel's direct map.
            this.addrs.push(
                unsafe { bindings::yasmin_page_address(page) }.cast::<u8>(),
                GFP_KERNEL,
            )?;
        }
        MAPPED_PAGES.fetch_add(n as i64, Ordering::Relaxed);
        if !all_ok {
            return Err(EFAULT); // drop unmaps what was mapped
        }
        Ok(this)
    }

    /// Kernel address of page `i`.
    pub(crate) fn addr(&self, i: usize) -> *mut u8 {
        self.addrs.get(i).copied().unwrap_or(core::ptr::null_mut())
    }

    /// The page addresses, in order (for `ring::Region::from_pages`).
    pub(crate) fn addrs(&self) -> &[*mut u8] {
        &self.addrs
    }
}

/// `handles` entry of a page that was never mapped.
const INVALID_HANDLE: bindings::grant_handle_t = bindings::grant_handle_t::MAX;

impl Drop for ForeignPages {
    fn drop(&mut self) {
        let n = self.pages.len();
        // SAFETY: as in `map`: a zeroed integer struct filled by the glue.
        let zero_op: bindings::gnttab_unmap_grant_ref = unsafe { core::mem::zeroed() };
        let mut ops: KVec<bindings::gnttab_unmap_grant_ref> = KVec::new();
        let mut mapped: KVec<*mut bindings::page> = KVec::new();
        let mut leak = false;
        for (&page, &h) in self.pages.iter().zip(self.handles.iter()) {
            if h == INVALID_HANDLE {
                continue;
            }
            let mut op = zero_op;
            // SAFETY: `page` and `h` describe one of our live mappings.
            unsafe { bindings::yasmin_set_unmap_op(&mut op, page, h, self.readonly) };
            if ops.push(op, GFP_KERNEL).is_err() || mapped.push(page, GFP_KERNEL).is_err() {
                leak = true; // cannot even build the request: keep every frame
            }
        }
        if !leak && !ops.is_empty() {
            // SAFETY: unmaps exactly the mappings made in `map`.
            let rc = unsafe {
                bindings::gnttab_unmap_refs(
                    ops.as_mut_ptr(),
                    core::ptr::null_mut(),
                    mapped.as_mut_ptr(),
                    ops.len() as u32,
                )
            };
            leak = rc != 0 || ops.iter().any(|o| o.status != bindings::GNTST_okay as i16);
        }
        if leak {
            // Returning a still-mapped frame would hand the peer's page to someone else.
            pr_alert!("grant unmap failed: leaking {} page frames\n", n);
            return;
        }
        // SAFETY: nothing is mapped any more: the frames go back to the balloon.
        unsafe { bindings::gnttab_free_pages(n as i32, self.pages.as_mut_ptr()) };
        MAPPED_PAGES.fetch_sub(n as i64, Ordering::Relaxed);
    }
}

/// Signature of an event-channel interrupt handler (hard IRQ context).
pub(crate) type IrqFn =
    unsafe extern "C" fn(kernel::ffi::c_int, *mut kernel::ffi::c_void) -> bindings::irqreturn_t;

/// An interdomain event channel bound to an interrupt handler; closed on drop.
pub(crate) struct EventChannel {
    irq: u32,
    port: u32,
    cookie: usize,
}

impl EventChannel {
    /// Allocates a fresh port that `remote` may bind to (its number goes in an offer).
    pub(crate) fn alloc_unbound(remote: u16, handler: IrqFn, cookie: usize) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe { bindings::yasmin_evtchn_alloc_unbound(remote, &mut port) })?;
        Self::bind(port, handler, cookie)
    }

    /// Binds to `remote`'s unbound port `remote_port` (offered to us).
    pub(crate) fn bind_interdomain(
        remote: u16,
        remote_port: u32,
        handler: IrqFn,
        cookie: usize,
    ) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe {
            bindings::yasmin_evtchn_bind_interdomain(remote, remote_port, &mut port)
        })?;
        Self::bind(port, handler, cookie)
    }

    fn bind(port: u32, handler: IrqFn, cookie: usize) -> Result<Self> {
        // SAFETY: `port` is ours; the handler is a plain function and `cookie` an opaque
        // value it receives (never dereferenced); the name is a static string.
        let irq = unsafe {
            bindings::bind_evtchn_to_irqhandler(
                port,
                Some(handler),
                0,
                kernel::c_str!("yasmin").as_char_ptr(),
                cookie as *mut kernel::ffi::c_void,
            )
        };
        if irq < 0 {
            // SAFETY: the port is ours and bound to nothing.
            unsafe { bindings::yasmin_evtchn_close(port) };
            return Err(Error::from_errno(irq));
        }
        Ok(EventChannel {
            irq: irq as u32,
            port,
            cookie,
        })
    }

    /// Our local port number.
    pub(crate) fn port(&self) -> u32 {
        self.port
    }

    /// Signals the peer.
    pub(crate) fn notify(&self) {
        // SAFETY: `irq` is bound to our port as long as `self` lives.
        unsafe { bindings::notify_remote_via_irq(self.irq as i32) };
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: unbinds what `bind` bound (waits for a running handler) and closes the port.
        unsafe {
            bindings::unbind_from_irqhandler(self.irq, self.cookie as *mut kernel::ffi::c_void)
        };
    }
}

/// An errno the 6.12 `kernel` crate does not name (values from the kernel's headers).
pub(crate) fn errno(code: u32) -> Error {
    Error::from_errno(-(code as i32))
}
