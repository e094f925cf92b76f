// SPDX-License-Identifier: GPL-2.0
//! Byte rings (`crate::ring`, the code shared with userspace) laid over pages:
//! - [`TxRing`] / [`RxRing`]: one direction of a socket's byte stream (PROTOCOL.md 2.2).
//!   The producer allocates order-0 data pages and a ring-directory page (ring header +
//!   the data pages' grant references) and grants them to the peer; the consumer maps the
//!   directory page, checks it, and maps exactly the negotiated number of data pages,
//!   read-only. Neither side needs a virtually contiguous mapping: the ring works on the
//!   page list (`ring::Region::from_pages`).
//! - [`ControlRings`]: the pair's control page (two small rings, magic and version).
//! - [`LocalRing`]: a ring in private memory, for the load-time self-test.

use super::{ForeignPages, GrantedPage};
use crate::control::pair::Role;
use crate::control::wire;
use crate::ring::{Consumer, Producer, Region, HEADER_SIZE, OFF_PROD};
use core::sync::atomic::{AtomicU32, Ordering};
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
    #[cfg(yasmin_test)]
    pub(crate) fn scribble_header(&self) {
        // SAFETY: the header's producer word, in our own granted page; header words are
        // only accessed atomically.
        let w = unsafe {
            AtomicU32::from_ptr(
                self.dir
                    .addr()
                    .add(wire::DIR_OFF_RING_HDR + OFF_PROD)
                    .cast(),
            )
        };
        let size = (self.data.len() * PAGE) as u32;
        w.fetch_add(size.wrapping_mul(2).wrapping_add(12345), Ordering::Release);
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

/// The shared control page of a pair: ours, granted (offerer), or the peer's, mapped
/// (acceptor).
enum ControlPage {
    Granted(#[allow(dead_code)] GrantedPage),
    Mapped(#[allow(dead_code)] ForeignPages),
}

/// The two rings of a pair's control page, seen from one side. Field order is drop
/// order: the rings point into the page, which goes last.
pub(crate) struct ControlRings {
    pub(crate) tx: Producer,
    pub(crate) rx: Consumer,
    _page: ControlPage,
}

impl ControlRings {
    /// The two rings of a control page at `base`, from `role`'s point of view.
    fn rings(base: *mut u8, role: Role) -> Result<(Producer, Consumer)> {
        let part = |hdr: usize, data: usize| {
            // SAFETY: `base` is a mapped 4 KiB control page that outlives the endpoints
            // (`ControlRings` owns it and drops it last); header and data offsets are
            // inside it and the headers are only accessed atomically through the ring.
            unsafe {
                Region::from_parts(
                    base.wrapping_add(hdr),
                    base.wrapping_add(data),
                    wire::CTRL_RING_SIZE,
                )
            }
            .map_err(|_| EINVAL)
        };
        let o2a = part(wire::CTRL_O2A_HDR, wire::CTRL_O2A_DATA)?;
        let a2o = part(wire::CTRL_A2O_HDR, wire::CTRL_A2O_DATA)?;
        Ok(match role {
            Role::Offerer => (Producer::new(o2a), Consumer::new(a2o)),
            Role::Acceptor => (Producer::new(a2o), Consumer::new(o2a)),
        })
    }

    /// Offerer: a fresh control page granted to `peer`; returns it with its grant.
    pub(crate) fn offer(peer: u16) -> Result<(Self, u32)> {
        let page = GrantedPage::new(peer, false, |base| {
            // The page is zeroed (ring headers included): only the magic and version.
            // SAFETY: `base` is our fresh page, not yet shared, 4 KiB long.
            unsafe {
                base.add(wire::CTRL_OFF_MAGIC)
                    .cast::<u32>()
                    .write_volatile(wire::CTRL_MAGIC.to_le());
                base.add(wire::CTRL_OFF_VERSION)
                    .cast::<u16>()
                    .write_volatile(wire::CTRL_VERSION.to_le());
            }
        })?;
        let gref = page.gref();
        let (tx, rx) = Self::rings(page.addr(), Role::Offerer)?;
        let me = ControlRings {
            tx,
            rx,
            _page: ControlPage::Granted(page),
        };
        Ok((me, gref))
    }

    /// Acceptor: maps the offered page and checks it is a YASMIN control page.
    pub(crate) fn accept(peer: u16, gref: u32) -> Result<Self> {
        let page = ForeignPages::map(peer, &[gref], false)?;
        let base = page.addr(0);
        // SAFETY: the mapped page is 4 KiB; the peer may change it at any time, so the
        // fields are read once, volatile, and only compared.
        let (magic, version) = unsafe {
            (
                u32::from_le(base.add(wire::CTRL_OFF_MAGIC).cast::<u32>().read_volatile()),
                u16::from_le(
                    base.add(wire::CTRL_OFF_VERSION)
                        .cast::<u16>()
                        .read_volatile(),
                ),
            )
        };
        if magic != wire::CTRL_MAGIC || version != wire::CTRL_VERSION {
            return Err(EINVAL); // not a YASMIN control page
        }
        let (tx, rx) = Self::rings(base, Role::Acceptor)?;
        Ok(ControlRings {
            tx,
            rx,
            _page: ControlPage::Mapped(page),
        })
    }
}

/// Data bytes of a [`LocalRing`].
pub(crate) const LOCAL_RING_DATA: usize = 4096;

#[repr(C, align(4096))]
struct LocalArea([u8; HEADER_SIZE + LOCAL_RING_DATA]);

/// A ring in a private, zeroed kernel buffer with both ends ours: the load-time
/// self-test runs the shared ring code on it with the kernel's flags and atomics.
pub(crate) struct LocalRing {
    pub(crate) prod: Producer,
    pub(crate) cons: Consumer,
    // Declared last: the endpoints point into it.
    area: KBox<core::mem::MaybeUninit<LocalArea>>,
}

impl LocalRing {
    pub(crate) fn new() -> Result<Self> {
        let mut area = KBox::<LocalArea>::new_uninit(GFP_KERNEL)?;
        let base = area.as_mut_ptr().cast::<u8>();
        // SAFETY: `base` points to the `size_of::<LocalArea>()` bytes owned by `area`.
        unsafe { core::ptr::write_bytes(base, 0, core::mem::size_of::<LocalArea>()) };
        // SAFETY: the area is owned by the returned value, which drops it after the
        // endpoints; no Rust reference to its bytes is formed while they exist.
        let region =
            unsafe { Region::new(base, HEADER_SIZE + LOCAL_RING_DATA) }.map_err(|_| EINVAL)?;
        region.init();
        Ok(LocalRing {
            prod: Producer::new(region),
            cons: Consumer::new(region),
            area,
        })
    }

    /// Stores `v` as the producer index, as a hostile peer could.
    pub(crate) fn force_prod_index(&mut self, v: u32) {
        let base = self.area.as_mut_ptr().cast::<u8>();
        // SAFETY: OFF_PROD is an aligned u32 inside the header page of the area, which
        // is only accessed atomically.
        let prod = unsafe { AtomicU32::from_ptr(base.add(OFF_PROD).cast::<u32>()) };
        prod.store(v, Ordering::Release);
    }
}
