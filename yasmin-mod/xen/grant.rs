// SPDX-License-Identifier: GPL-2.0
//! Grant tables: our pages granted to a peer, and a peer's pages mapped into our address
//! space. Each value gives its pages back on drop, and keeps `stats` honest.

use crate::bindings;
use crate::glue::{self, Publication, Published};
use crate::limits;
use crate::stats::{FRAME_CACHE_PAGES, GRANTED_PAGES, MAPPED_PAGES, WITHHELD_PAGES};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use kernel::error::to_result;
use kernel::prelude::*;

/// A zeroed page of ours, granted to one foreign domain. Dropping it ends the grant
/// and frees the page; a page the peer still maps is withheld (see [`Withheld`]).
pub(crate) struct GrantedPage {
    addr: NonNull<u8>,
    gref: u32,
    domid: u16,
}

// SAFETY: the page is plain memory owned by this value; nothing ties it to a thread.
unsafe impl Send for GrantedPage {}

impl GrantedPage {
    /// Allocates a zeroed page, lets `init` fill it, then grants it to `domid` (read-only
    /// if `readonly`).
    /// `ENOBUFS` past the module's `max_granted_pages`.
    pub(crate) fn new(domid: u16, readonly: bool, init: impl FnOnce(*mut u8)) -> Result<Self> {
        limits::reserve_granted(1)?;
        let unreserve = || GRANTED_PAGES.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: plain page allocation (GFP_KERNEL, process context).
        let Some(addr) = NonNull::new(unsafe { bindings::yasmin_alloc_zeroed_page() }.cast::<u8>())
        else {
            unreserve();
            return Err(ENOMEM);
        };
        init(addr.as_ptr());
        // SAFETY: `addr` is a page we own; the grant names its frame.
        let rc = unsafe { bindings::yasmin_grant_page(domid, addr.as_ptr().cast(), readonly) };
        if rc < 0 {
            // SAFETY: never granted, still ours.
            unsafe { bindings::yasmin_free_page(addr.as_ptr().cast()) };
            unreserve();
            return Err(Error::from_errno(rc));
        }
        Ok(GrantedPage {
            addr,
            gref: rc as u32,
            domid,
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
        let page = Withheld {
            domid: self.domid,
            gref: self.gref,
            addr: self.addr,
        };
        let Err(page) = page.try_free() else {
            return;
        };
        // The peer still maps it: withheld until it lets go. Out of memory or while
        // unloading, `page` is dropped instead, which hands it to the kernel.
        WITHHELD_PAGES.fetch_add(1, Ordering::Relaxed);
        let _ = WITHHELD.with(move |list| match list.iter_mut().find(|w| w.is_none()) {
            Some(free) => *free = Some(page),
            None => {
                let _ = list.push(Some(page), GFP_KERNEL);
            }
        });
        // The sweep frees it once the peer lets go, even if no channel is left to run
        // the work item (a socket released after its peer died).
        glue::work_kick_after(1000);
    }
}

/// A granted page the peer still mapped when we were done with it. It stays granted
/// (and counted in `grant_pages`, and per peer against its connections) until the peer
/// unmaps it: the control work item retries every second ([`retry_withheld`]). Never
/// reused meanwhile; at unload the kernel's deferred-free list takes what is left.
pub(crate) struct Withheld {
    domid: u16,
    gref: u32,
    addr: NonNull<u8>,
}

// SAFETY: as `GrantedPage`.
unsafe impl Send for Withheld {}

impl Withheld {
    /// Ends the grant (its reference goes back to the kernel) and frees the page if the
    /// peer no longer maps it; hands the page back otherwise.
    fn try_free(self) -> core::result::Result<(), Self> {
        // SAFETY: `gref` grants `addr`'s page; on success the grant and its reference are
        // gone, nobody else can reach the page, and it is ours to free.
        if !unsafe { bindings::yasmin_try_end_foreign_access(self.gref) } {
            return Err(self);
        }
        // SAFETY: as above; never touched again.
        unsafe { bindings::yasmin_free_page(self.addr.as_ptr().cast()) };
        GRANTED_PAGES.fetch_sub(1, Ordering::Relaxed);
        // Ended and freed: `Drop` (which ends the grant) must not run as well.
        core::mem::forget(self);
        Ok(())
    }
}

impl Drop for Withheld {
    /// Only for a page that could not be kept on the list: the kernel's deferred-free
    /// list (which outlives this module) ends the grant and frees it.
    fn drop(&mut self) {
        // SAFETY: the grant is still live; the kernel ends it and frees the page once the
        // peer has unmapped it. We never touch either again.
        unsafe { bindings::yasmin_end_foreign_access(self.gref, self.addr.as_ptr().cast()) };
        GRANTED_PAGES.fetch_sub(1, Ordering::Relaxed);
        WITHHELD_PAGES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The withheld pages; a freed entry leaves a hole the next one reuses.
static WITHHELD: Published<KVec<Option<Withheld>>> = Published::new();

/// Owns the withheld-page list while the module is loaded.
pub(crate) struct WithheldPages(#[allow(dead_code)] Publication<KVec<Option<Withheld>>>);

impl WithheldPages {
    pub(crate) fn start() -> Result<Self> {
        let list = KBox::pin_init(kernel::new_mutex!(KVec::new()), GFP_KERNEL)?;
        Ok(WithheldPages(WITHHELD.publish(list)))
    }
}

/// Frees every withheld page its peer has let go.
pub(crate) fn retry_withheld() {
    let _ = WITHHELD.with(|list| {
        let mut left = 0;
        for slot in list.iter_mut() {
            if let Some(w) = slot.take() {
                match w.try_free() {
                    Ok(()) => {
                        WITHHELD_PAGES.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(w) => {
                        *slot = Some(w);
                        left += 1;
                    }
                }
            }
        }
        if left == 0 {
            *list = KVec::new(); // give the list's memory back too
        }
    });
}

/// Pages withheld from us now, by any peer.
pub(crate) fn withheld_now() -> i64 {
    WITHHELD_PAGES.load(Ordering::Relaxed)
}

/// Pages `domid` withholds from us now.
pub(crate) fn withheld_by(domid: u16) -> u64 {
    WITHHELD
        .with(|list| list.iter().flatten().filter(|w| w.domid == domid).count() as u64)
        .unwrap_or(0)
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
    /// `EFAULT` if Xen refuses any of them (none stays mapped then), `ENOBUFS` past the
    /// module's `max_mapped_pages`.
    pub(crate) fn map(domid: u16, grefs: &[u32], readonly: bool) -> Result<Self> {
        let n = grefs.len();
        limits::reserve_mapped(n as i64)?;
        Self::map_reserved(domid, grefs, readonly).map_err(|(e, reserved)| {
            if reserved {
                MAPPED_PAGES.fetch_sub(n as i64, Ordering::Relaxed); // nothing was mapped
            }
            e
        })
    }

    /// [`ForeignPages::map`] with `n` pages reserved; on failure, whether the reservation
    /// is still to be returned (else the dropped value returned it).
    fn map_reserved(
        domid: u16,
        grefs: &[u32],
        readonly: bool,
    ) -> core::result::Result<Self, (Error, bool)> {
        let n = grefs.len();
        let early = |e: Error| (e, true);
        i32::try_from(n).map_err(|_| early(EINVAL))?;
        // Every allocation before the frames, so that nothing fails while they are held
        // but not yet owned by a value that gives them back.
        let mut pages =
            KVec::from_elem(core::ptr::null_mut(), n, GFP_KERNEL).map_err(|e| early(e.into()))?;
        // SAFETY: a plain C struct of integers: all-zero is valid; filled by the glue below.
        let zero_op: bindings::gnttab_map_grant_ref = unsafe { core::mem::zeroed() };
        let mut ops = KVec::from_elem(zero_op, n, GFP_KERNEL).map_err(|e| early(e.into()))?;
        let handles = KVec::with_capacity(n, GFP_KERNEL).map_err(|e| early(e.into()))?;
        let addrs = KVec::with_capacity(n, GFP_KERNEL).map_err(|e| early(e.into()))?;
        crate::profiled!(MAP_FRAMES, take_frames(&mut pages)).map_err(early)?;
        for (op, (&page, &gref)) in ops.iter_mut().zip(pages.iter().zip(grefs)) {
            // SAFETY: `page` came from gnttab_alloc_pages; `op` is a valid out-struct.
            unsafe { bindings::yasmin_set_map_op(op, page, gref, domid, readonly) };
        }
        let rc = crate::profiled!(MAP_HYPERCALL, {
            // SAFETY: `n` ops for `n` pages, all valid; no kernel-side kmap ops (NULL).
            unsafe {
                bindings::gnttab_map_refs(
                    ops.as_mut_ptr(),
                    core::ptr::null_mut(),
                    pages.as_mut_ptr(),
                    n as u32,
                )
            }
        });
        // From here `this` owns the frames, the mappings and the reservation.
        let mut this = ForeignPages {
            pages,
            handles,
            addrs,
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
            // Within the capacity reserved above: cannot fail.
            let _ = this.handles.push(h, GFP_KERNEL);
            // SAFETY: `page` is a valid struct page in the kernel's direct map.
            let addr = unsafe { bindings::yasmin_page_address(page) }.cast::<u8>();
            let _ = this.addrs.push(addr, GFP_KERNEL);
        }
        if !all_ok {
            return Err((EFAULT, false)); // drop unmaps what was mapped
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
        crate::profiled!(UNMAP, self.unmap())
    }
}

impl ForeignPages {
    /// Unmaps every mapping and gives the frames back (or leaks them if Xen refuses).
    fn unmap(&mut self) {
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
        // Nothing is mapped any more: the frames go back to the cache or the balloon.
        give_frames(&mut self.pages);
        MAPPED_PAGES.fetch_sub(n as i64, Ordering::Relaxed);
    }
}

/// Ballooned page frames kept between foreign maps, at most this many (16 MiB). They are
/// out of the guest's memory while mapped anyway; the cache only keeps them out for the
/// 1-2 s until its sweep, so what it costs is bounded by what the maps used before.
const FRAME_CACHE_MAX: usize = 4096;

/// Page frames to map foreign pages at are ballooned out of the guest (`gnttab_alloc_pages`:
/// a reservation hypercall, and for PV a page-table update per frame), and the balloon
/// driver puts them back when they are freed. That cost more than the map itself (test
/// build profile, 2026-12-07: 5.5 of the 8.4 ms of mapping a 128-page ring). A map's
/// frames wait here for the next map instead. Unused for a whole sweep of the control
/// plane (1-2 s), they all go back to the balloon, so an idle guest has all its memory.
struct FramePool {
    /// `slots[..len]` are the cached frames (the slots are allocated once, at start).
    slots: KVec<*mut bindings::page>,
    len: usize,
    /// Takes and gives since load, and the count the last sweep saw.
    uses: u64,
    seen: u64,
}

// SAFETY: the frames are ballooned page frames owned by the pool alone, usable from any
// thread.
unsafe impl Send for FramePool {}

impl FramePool {
    /// Gives every frame back to the balloon.
    fn drain(&mut self) {
        let n = self.len;
        self.len = 0;
        free_frames(&mut self.slots[..n]);
        FRAME_CACHE_PAGES.store(0, Ordering::Relaxed);
    }
}

impl Drop for FramePool {
    fn drop(&mut self) {
        self.drain();
    }
}

static FRAMES: Published<FramePool> = Published::new();

/// Owns the frame cache while the module is loaded; gives every frame back at unload.
pub(crate) struct FrameCache(#[allow(dead_code)] Publication<FramePool>);

impl FrameCache {
    pub(crate) fn start() -> Result<Self> {
        let pool = FramePool {
            slots: KVec::from_elem(core::ptr::null_mut(), FRAME_CACHE_MAX, GFP_KERNEL)?,
            len: 0,
            uses: 0,
            seen: 0,
        };
        let pool = KBox::pin_init(kernel::new_mutex!(pool), GFP_KERNEL)?;
        Ok(FrameCache(FRAMES.publish(pool)))
    }
}

/// Fills `pages` with frames to map at: cached ones first, the rest from the balloon.
fn take_frames(pages: &mut [*mut bindings::page]) -> Result {
    let n = pages.len();
    let cached = FRAMES
        .with(|pool| {
            pool.uses += 1;
            let k = n.min(pool.len);
            pool.len -= k;
            pages[n - k..].copy_from_slice(&pool.slots[pool.len..pool.len + k]);
            FRAME_CACHE_PAGES.store(pool.len as i64, Ordering::Relaxed);
            k
        })
        .unwrap_or(0);
    let fresh = n - cached;
    if fresh == 0 {
        return Ok(());
    }
    // SAFETY: asks for `fresh` ballooned-out page frames into the first `fresh` slots.
    let rc = unsafe { bindings::gnttab_alloc_pages(fresh as i32, pages.as_mut_ptr()) };
    if let Err(e) = to_result(rc) {
        give_frames(&mut pages[fresh..]); // the cached ones go back
        return Err(e);
    }
    Ok(())
}

/// Takes back frames nothing is mapped at any more: into the cache while it has room,
/// the rest to the balloon.
fn give_frames(pages: &mut [*mut bindings::page]) {
    let kept = FRAMES
        .with(|pool| {
            pool.uses += 1;
            let k = pages.len().min(pool.slots.len() - pool.len);
            pool.slots[pool.len..pool.len + k].copy_from_slice(&pages[..k]);
            pool.len += k;
            FRAME_CACHE_PAGES.store(pool.len as i64, Ordering::Relaxed);
            k
        })
        .unwrap_or(0);
    if kept > 0 {
        // The sweep that gives them back if nothing takes them.
        glue::work_kick_after(1000);
    }
    free_frames(&mut pages[kept..]);
}

/// Gives `pages` back to the balloon.
fn free_frames(pages: &mut [*mut bindings::page]) {
    if pages.is_empty() {
        return;
    }
    // SAFETY: ballooned frames from gnttab_alloc_pages with nothing mapped at them, owned
    // by the caller and never used again.
    unsafe { bindings::gnttab_free_pages(pages.len() as i32, pages.as_mut_ptr()) };
}

/// The control plane's sweep (every second while anything is left to sweep, cached
/// frames included): a cache unused since the last sweep goes back to the balloon.
pub(crate) fn trim_frames() {
    let _ = FRAMES.with(|pool| {
        if pool.uses == pool.seen {
            pool.drain();
        }
        pool.seen = pool.uses;
    });
}

/// Frames cached now.
pub(crate) fn frames_cached() -> i64 {
    FRAME_CACHE_PAGES.load(Ordering::Relaxed)
}

/// Suspend: every cached frame goes back to the balloon before the guest is frozen.
pub(crate) fn drain_frames() {
    let _ = FRAMES.with(|pool| pool.drain());
}
