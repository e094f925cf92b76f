// SPDX-License-Identifier: GPL-2.0
//! One direction of a socket's byte stream in shared pages (PROTOCOL.md 2.2): the
//! producer allocates order-0 data pages and a ring-directory page (ring header + the
//! data pages' grant references) and grants them to the peer; the consumer maps the
//! directory page, checks it, and maps exactly the negotiated number of data pages,
//! read-only. Neither side needs a virtually contiguous mapping: the ring works on the
//! page list (`ring::Region::from_pages`).

use crate::control::wire;
use crate::ring::{self, Consumer, Producer, Region};
use crate::xen::{ForeignPages, GrantedPage};
use kernel::prelude::*;

const PAGE: usize = wire::PAGE_SIZE;

/// Our sending ring: pages we own and grant to the peer.
pub(crate) struct TxRing {
    pub(crate) prod: Producer,
    // Declared after `prod`: the producer points into these pages (held for that only).
    _ptrs: KVec<*mut u8>,
    dir: GrantedPage,
    data: KVec<GrantedPage>,
}

// SAFETY: the pages belong to this value; the raw pointers are only used through `prod`.
unsafe impl Send for TxRing {}

impl TxRing {
    /// Allocates `pages` (a power of two <= 512) data pages for `peer`.
    pub(crate) fn new(peer: u16, pages: u16) -> Result<Self> {
        if !wire::valid_ring_pages(pages) {
            return Err(EINVAL);
        }
        let mut data = KVec::with_capacity(pages as usize, GFP_KERNEL)?;
        let mut ptrs = KVec::with_capacity(pages as usize, GFP_KERNEL)?;
        let mut grefs = KVec::with_capacity(pages as usize, GFP_KERNEL)?;
        for _ in 0..pages {
            // The consumer only reads the data: read-only grants.
            let p = GrantedPage::new(peer, true, |_| {})?;
            ptrs.push(p.addr(), GFP_KERNEL)?;
            grefs.push(p.gref(), GFP_KERNEL)?;
            data.push(p, GFP_KERNEL)?;
        }
        let dir = GrantedPage::new(peer, false, |base| {
            // SAFETY: `base` is our fresh, zeroed, not yet shared 4 KiB page.
            let page = unsafe { core::slice::from_raw_parts_mut(base, PAGE) };
            // Cannot fail: `grefs` has a valid page count (checked above).
            let _ = wire::dir_write(page, &grefs);
        })?;
        // SAFETY: header at the start of the directory page, data pages in `ptrs`; all stay
        // allocated (and `ptrs` unchanged) as long as `self`, which owns `prod`, lives; the
        // header is only accessed atomically.
        let region = unsafe {
            Region::from_pages(
                dir.addr().add(wire::DIR_OFF_RING_HDR),
                ptrs.as_ptr(),
                ptrs.len(),
                PAGE,
            )
        }
        .map_err(|_| EINVAL)?;
        Ok(TxRing {
            prod: Producer::new(region),
            _ptrs: ptrs,
            dir,
            data,
        })
    }

    /// The directory page's grant (sent in CONNECT/ACCEPT).
    pub(crate) fn dir_gref(&self) -> u32 {
        self.dir.gref()
    }

    /// Test hook: writes an impossible producer index (more than a ring ahead of any
    /// consumer) into the shared header, as a hostile peer could.
    pub(crate) fn scribble_header(&self) {
        // SAFETY: the header's producer word, in our own granted page; header words are
        // only accessed atomically.
        let w = unsafe {
            core::sync::atomic::AtomicU32::from_ptr(
                self.dir
                    .addr()
                    .add(wire::DIR_OFF_RING_HDR + ring::OFF_PROD)
                    .cast(),
            )
        };
        let size = (self.data.len() * PAGE) as u32;
        w.fetch_add(
            size.wrapping_mul(2).wrapping_add(12345),
            core::sync::atomic::Ordering::Release,
        );
    }

    pub(crate) fn pages(&self) -> u16 {
        self.data.len() as u16
    }
}

/// The peer's sending ring, mapped: we consume it.
pub(crate) struct RxRing {
    pub(crate) cons: Consumer,
    // The consumer points into these mappings: held until it is gone, then unmapped.
    _dir: ForeignPages,
    _data: ForeignPages,
}

// SAFETY: as for `TxRing`: mappings owned by this value, used only through `cons`.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Maps `peer`'s ring announced as directory grant `dir_gref` with `pages` data pages.
    /// `EINVAL` if the directory does not describe exactly that ring.
    pub(crate) fn map(peer: u16, dir_gref: u32, pages: u16) -> Result<Self> {
        if !wire::valid_ring_pages(pages) {
            return Err(EINVAL);
        }
        let dir = ForeignPages::map(peer, &[dir_gref], false)?;
        let mut grefs = KVec::from_elem(0u32, pages as usize, GFP_KERNEL)?;
        // Copy the directory once: the peer may change it while we look.
        let mut copy = KVec::from_elem(0u8, PAGE, GFP_KERNEL)?;
        // SAFETY: the mapped page is 4 KiB; a racing peer can only change the bytes read.
        unsafe {
            core::ptr::copy_nonoverlapping(dir.addr(0).cast_const(), copy.as_mut_ptr(), PAGE)
        };
        wire::dir_read(&copy, pages, &mut grefs).map_err(|_| EINVAL)?;
        let data = ForeignPages::map(peer, &grefs, true)?;
        // SAFETY: as in `TxRing::new`, with mappings instead of our pages (the address list
        // lives in `data`, which outlives the consumer); the data pages are only read
        // (mapped read-only), the header words only accessed atomically.
        let region = unsafe {
            Region::from_pages(
                dir.addr(0).add(wire::DIR_OFF_RING_HDR),
                data.addrs().as_ptr(),
                data.addrs().len(),
                PAGE,
            )
        }
        .map_err(|_| EINVAL)?;
        Ok(RxRing {
            cons: Consumer::new(region),
            _dir: dir,
            _data: data,
        })
    }
}
