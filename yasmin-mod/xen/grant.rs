// SPDX-License-Identifier: GPL-2.0
//! Grant tables: our pages granted to a peer, and a peer's pages mapped into our address
//! space. Each value gives its pages back on drop, and keeps `stats` honest.

use crate::bindings;
use crate::stats::{GRANTED_PAGES, MAPPED_PAGES};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kernel::error::to_result;
use kernel::prelude::*;

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
