// SPDX-License-Identifier: GPL-2.0
//! YASMIN shared-memory byte ring: one producer, one consumer, two mutually distrusting VMs.
//!
//! This file is compiled twice: into the kernel module (`#[path = "../ring/src/ring.rs"] mod
//! ring;`) and into the userspace `ring` crate (tests, fuzzing, benchmarks). It therefore uses
//! `core` only: no allocation, no `std`, no crates, no kernel crate, no crate-level attributes.
//!
//! # Shared-memory layout (the protocol)
//!
//! A ring is one direction of a byte stream. It is a header followed by a data area:
//!
//! | offset (hex) | size | field          | written by                    | meaning |
//! |--------------|------|----------------|-------------------------------|---------|
//! | `0x000`      | 4    | `prod`         | producer                      | free-running producer index (bytes ever produced, mod 2^32) |
//! | `0x004`      | 4    | `prod_flags`   | producer                      | bit 0 `FLAG_CLOSED`: producer will write no more (end of stream) |
//! | `0x008`      | 56   | reserved       |                               | zero |
//! | `0x040`      | 4    | `cons`         | consumer                      | free-running consumer index (bytes ever consumed, mod 2^32) |
//! | `0x044`      | 4    | `cons_flags`   | consumer                      | bit 0 `FLAG_CLOSED`: consumer will read no more |
//! | `0x048`      | 56   | reserved       |                               | zero |
//! | `0x080`      | 4    | `want_data`    | consumer sets, producer clears| non-zero: consumer sleeps until data arrives, signal it |
//! | `0x084`      | 60   | reserved       |                               | zero |
//! | `0x0c0`      | 4    | `want_space`   | producer sets, consumer clears| non-zero: producer sleeps until space is freed, signal it |
//! | `0x0c4`      | 3900 | reserved       |                               | zero |
//! | `0x1000`     | `size` | data         | producer (free part), consumer reads (filled part) | byte `i` of the stream lives at `data[i mod size]` |
//!
//! All header words are little-endian `u32` accessed atomically (both VMs run on the same
//! host, so endianness is the host's, which for Xen x86 is little-endian). `size` is a power
//! of two between 1 and 2^31 bytes; it is not stored in the ring but agreed out of band (the
//! control protocol announces the number of data pages), so the peer cannot lie about it.
//! The header is one 4 KiB page (`HEADER_SIZE`), so the data area starts page-aligned and is
//! exactly N pages when `size` is `N * 4096`. Each group of words sits in its own 64-byte
//! cache line: the producer's (written on every publish), the consumer's, and one per
//! "wake me" word. The wake words are read after every publish but written only when a side
//! goes to sleep, so they stay cached on both CPUs instead of bouncing with the indices.
//!
//! Invariant of a well-formed ring: `0 <= prod - cons <= size` in wrapping `u32` arithmetic.
//! Bytes `[cons, prod)` are filled (readable), bytes `[prod, cons + size)` are free.
//! A fresh ring has an all-zero header (the side that allocates and grants the pages calls
//! [`Region::init`] before granting); both endpoints start with their private index at 0.
//!
//! # Hostile peer
//!
//! Every endpoint keeps a private copy of its own index and never reads it back from shared
//! memory (the peer could overwrite it). It reads only the peer's index and validates
//! `prod - cons <= size` on every read. It may reuse the last validated peer index while
//! that already shows enough data/space (a stale value only understates what is available),
//! and re-reads it otherwise; the queries always re-read it. A violation poisons the endpoint: this and every later
//! call returns [`RingError::Corrupt`], which the transport turns into a connection reset.
//! Offsets into the data area are always `index & (size - 1)` and every copy is split into
//! segments that lie inside the area (at the wrap, and at page boundaries for a paged data
//! area, see [`Region::from_pages`]), so no peer-written value can move an access
//! out of the region; no loop depends on a peer-written value; no arithmetic on a peer value
//! can overflow (wrapping or checked operations only), so nothing can panic.
//!
//! # Notification protocol (libvchan style)
//!
//! A side asks to be woken only when it lacks something: the consumer sets `want_data` when
//! the ring is empty ([`Consumer::arm_readable`]), the producer sets `want_space` when it is
//! full ([`Producer::arm_writable`]). After setting its bit the side re-checks the peer's
//! index and sleeps only if it still lacks data/space. After publishing, the other side
//! checks its peer's bit and, if it was set, clears it and reports [`Transfer::notify`] =
//! `true`: the caller must then signal the peer (a Xen event channel); the ring never calls
//! Xen itself. The same applies to [`Producer::close`] and [`Consumer::close`].
//!
//! Waiting consumer, as a kernel `wait_event` condition or a loop:
//! `cons.arm_readable()? > 0 || cons.producer_closed()` — only if this is false may it sleep.
//! Waiting producer: `prod.arm_writable()? > 0 || prod.consumer_closed()`.
//!
//! # Memory ordering
//!
//! * Publishing an index is a `Release` store; reading the peer's index is an `Acquire` load.
//!   Producer: the data bytes it copied happen-before the consumer's `Acquire` load that sees
//!   the new `prod`, so the consumer never reads stale bytes. Consumer: its reads of the data
//!   happen-before the producer's `Acquire` load that sees the new `cons`, so the producer
//!   never overwrites bytes that are still being read.
//! * Arming (`store bit; load peer index`) and publishing (`store index; load peer bit`) are
//!   each separated by a `SeqCst` fence. This is the store-buffering (Dekker) pattern: without
//!   the fences both stores could sit in store buffers while both loads read old values, so
//!   the consumer would sleep on an empty ring while the producer saw no request to signal
//!   (a lost wakeup). With both fences at least one side sees the other's store. Xen guests on
//!   x86 need exactly this (`mfence`/locked instruction); release/acquire alone is not enough.
//! * The `FLAG_CLOSED` store is `Release` (after the final `prod`) and its load is `Acquire`,
//!   so a consumer that sees the flag also sees every byte produced before the close.
//! * Clearing the peer's bit is a relaxed `swap` after the fence: it carries no data.
//!
//! # The data area is foreign memory
//!
//! The peer VM can write the data area at any time, including bytes we are copying. It is
//! never turned into a `&[u8]` or `&mut [u8]`: a Rust reference asserts that no one else
//! writes the memory while it lives, which the peer need not respect. Instead the ring hands
//! raw pointers and lengths to the caller's copy callbacks (in the kernel `copy_to_iter` /
//! `copy_from_iter`, in userspace `ptr::copy_nonoverlapping`), exactly like user memory in a
//! syscall: bytes may be garbage if the peer misbehaves, but the ring never makes a decision
//! based on data bytes, so garbage data cannot cause anything worse than garbage data.

use core::fmt;
use core::ptr;

/// Atomics shim: `core` atomics on raw shared memory normally, loom's model atomics under
/// `cfg(loom)` (userspace model checking only; never set in the kernel build).
#[cfg(not(loom))]
mod sync {
    pub(super) use core::sync::atomic::{fence, AtomicU32, Ordering};

    /// Alignment the header pointer must have.
    pub(super) const HEADER_ALIGN: usize = core::mem::align_of::<AtomicU32>();

    /// The header word at byte offset `off`.
    ///
    /// # Safety
    ///
    /// `hdr + off` must be valid, 4-byte aligned shared memory that lives for `'a` and is
    /// accessed only atomically.
    pub(super) unsafe fn word<'a>(hdr: *mut u8, off: usize) -> &'a AtomicU32 {
        // SAFETY: the caller guarantees `hdr + off` is in bounds, aligned and valid for `'a`,
        // and that all accesses to it are atomic, which is what `from_ptr` requires.
        unsafe { AtomicU32::from_ptr(hdr.add(off).cast::<u32>()) }
    }
}

#[cfg(loom)]
mod sync {
    pub(super) use loom::sync::atomic::{fence, AtomicU32, Ordering};

    /// Model-checked stand-in for the header page (loom atomics are not plain memory).
    #[derive(Debug)]
    pub struct LoomHeader {
        words: [AtomicU32; super::HEADER_USED / 4],
    }

    impl LoomHeader {
        /// An all-zero header.
        pub fn new() -> Self {
            LoomHeader {
                words: core::array::from_fn(|_| AtomicU32::new(0)),
            }
        }
    }

    impl Default for LoomHeader {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Alignment the header pointer must have.
    pub(super) const HEADER_ALIGN: usize = core::mem::align_of::<LoomHeader>();

    /// The header word at byte offset `off`.
    ///
    /// # Safety
    ///
    /// `hdr` must point to a live `LoomHeader` for `'a`.
    pub(super) unsafe fn word<'a>(hdr: *mut u8, off: usize) -> &'a AtomicU32 {
        // SAFETY: under loom, `Region::from_parts` is given a pointer to a `LoomHeader`.
        let h = unsafe { &*hdr.cast::<LoomHeader>() };
        &h.words[off / 4]
    }
}

#[cfg(loom)]
pub use sync::LoomHeader;
use sync::{fence, AtomicU32, Ordering};

/// Size of the header page; the data area starts at this offset in a contiguous region.
pub const HEADER_SIZE: usize = 0x1000;
/// Offset of the data area in a contiguous region (`HEADER_SIZE`).
pub const DATA_OFFSET: usize = HEADER_SIZE;
/// Offset of the producer index (`u32`, written by the producer).
pub const OFF_PROD: usize = 0x000;
/// Offset of the producer flags (`u32`, written by the producer; see [`FLAG_CLOSED`]).
pub const OFF_PROD_FLAGS: usize = 0x004;
/// Offset of the producer's "wake me when space frees" request (set by producer, cleared by consumer).
pub const OFF_WANT_SPACE: usize = 0x0c0;
/// Offset of the consumer index (`u32`, written by the consumer).
pub const OFF_CONS: usize = 0x040;
/// Offset of the consumer flags (`u32`, written by the consumer; see [`FLAG_CLOSED`]).
pub const OFF_CONS_FLAGS: usize = 0x044;
/// Offset of the consumer's "wake me when data arrives" request (set by consumer, cleared by producer).
pub const OFF_WANT_DATA: usize = 0x080;
/// Bytes of the header that carry fields; the rest of the header page is reserved (zero).
pub const HEADER_USED: usize = 0x100;
/// Flag bit in `prod_flags` / `cons_flags`: that side has closed its end of this direction.
pub const FLAG_CLOSED: u32 = 1;
/// Smallest data area size.
pub const MIN_DATA_SIZE: usize = 1;
/// Largest data area size (so that `prod - cons` in `[0, size]` is unambiguous in `u32`).
pub const MAX_DATA_SIZE: usize = 1 << 31;

/// Errors reported by the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The peer wrote an impossible index (`prod - cons > size`). The endpoint is poisoned:
    /// every later call fails the same way. Reset the connection.
    Corrupt,
    /// The region given to [`Region::new`] / [`Region::from_parts`] is unusable: null or
    /// misaligned header, or a data size that is not a power of two in
    /// [`MIN_DATA_SIZE`]..=[`MAX_DATA_SIZE`].
    BadRegion,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Corrupt => f.write_str("ring corrupted by peer"),
            RingError::BadRegion => f.write_str("invalid ring region"),
        }
    }
}

/// Outcome of a data transfer or close.
#[must_use = "if `notify` is true the peer must be signalled"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transfer {
    /// Bytes moved (published to / consumed from the ring).
    pub bytes: usize,
    /// The peer asked to be woken and this call satisfied it: signal the peer now.
    pub notify: bool,
}

/// A ring's shared memory: the header and the data area (`size` bytes, a power of two).
///
/// The data area is either contiguous ([`Region::new`], [`Region::from_parts`]) or a list of
/// equal, power-of-two sized pages ([`Region::from_pages`]): a guest maps a peer's granted
/// pages one by one, without a virtually contiguous mapping, so a copy is split at page
/// boundaries as well as at the wrap.
///
/// A `Region` is only a description (pointers and a size); it is `Copy` so that one side
/// of a loopback test can build both endpoints on it. In a VM, one side builds only a
/// [`Producer`] and the other only a [`Consumer`].
#[derive(Debug, Clone, Copy)]
pub struct Region {
    hdr: *mut u8,
    /// Contiguous data area, or null for a paged one.
    data: *mut u8,
    /// Paged data area: `size >> page_shift` page pointers (null for a contiguous one).
    pages: *const *mut u8,
    page_shift: u32,
    size: u32,
}

// SAFETY: a `Region` only refers to shared memory that by contract (see `Region::from_parts`)
// stays valid and is accessed concurrently only through atomics (header) or raw copies that
// tolerate concurrent modification (data), so it may be moved to and used from any thread.
unsafe impl Send for Region {}
// SAFETY: as for `Send`; `Region` has no interior state of its own.
unsafe impl Sync for Region {}

impl Region {
    /// Describes a contiguous region: header page at `base`, data area at
    /// `base + HEADER_SIZE` up to `base + len`. `len - HEADER_SIZE` must be a power of two.
    ///
    /// # Safety
    ///
    /// Same as [`Region::from_parts`] with `header = base`, `data = base + HEADER_SIZE`:
    /// `base..base + len` must be valid for reads and writes for as long as any `Region`,
    /// [`Producer`] or [`Consumer`] built from it is used.
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Self, RingError> {
        let data_len = match len.checked_sub(HEADER_SIZE) {
            Some(n) => n,
            None => return Err(RingError::BadRegion),
        };
        if base.is_null() {
            return Err(RingError::BadRegion);
        }
        // `wrapping_add` keeps this safe to compute; the caller guarantees it stays in bounds.
        let data = base.wrapping_add(HEADER_SIZE);
        // SAFETY: forwarded contract: header and data are the two parts of `base..base+len`.
        unsafe { Self::from_parts(base, data, data_len) }
    }

    /// Describes a region whose header and data area are mapped separately.
    ///
    /// # Safety
    ///
    /// * `header` must be valid for reads and writes of [`HEADER_USED`] bytes and `data` for
    ///   `data_len` bytes, for as long as any `Region`, [`Producer`] or [`Consumer`] built
    ///   from it is used.
    /// * The header must be accessed only atomically by everyone in this address space (the
    ///   peer VM may do anything), and neither part may be covered by a live Rust reference.
    /// * Under `cfg(loom)`, `header` must point to a [`LoomHeader`] instead.
    pub unsafe fn from_parts(
        header: *mut u8,
        data: *mut u8,
        data_len: usize,
    ) -> Result<Self, RingError> {
        if header.is_null()
            || data.is_null()
            || (header as usize) & (sync::HEADER_ALIGN - 1) != 0
            || !data_len.is_power_of_two()
            || !(MIN_DATA_SIZE..=MAX_DATA_SIZE).contains(&data_len)
        {
            return Err(RingError::BadRegion);
        }
        let size = match u32::try_from(data_len) {
            Ok(s) => s,
            Err(_) => return Err(RingError::BadRegion),
        };
        Ok(Region {
            hdr: header,
            data,
            pages: core::ptr::null(),
            page_shift: 0,
            size,
        })
    }

    /// Describes a region whose data area is `npages` separately mapped pages of
    /// `page_size` bytes each (both powers of two), in ring order.
    ///
    /// # Safety
    ///
    /// As for [`Region::from_parts`], and: `pages` must point to `npages` page pointers that
    /// stay valid and unchanged, each valid for reads and writes of `page_size` bytes, for
    /// as long as any `Region`, [`Producer`] or [`Consumer`] built from it is used.
    pub unsafe fn from_pages(
        header: *mut u8,
        pages: *const *mut u8,
        npages: usize,
        page_size: usize,
    ) -> Result<Self, RingError> {
        if pages.is_null() || !page_size.is_power_of_two() || !npages.is_power_of_two() {
            return Err(RingError::BadRegion);
        }
        let data_len = npages.checked_mul(page_size).ok_or(RingError::BadRegion)?;
        // SAFETY: the header contract is forwarded; the data pointer is a non-null
        // placeholder that `segments` never uses for a paged region.
        let mut r =
            unsafe { Self::from_parts(header, core::ptr::NonNull::dangling().as_ptr(), data_len) }?;
        r.data = core::ptr::null_mut();
        r.pages = pages;
        r.page_shift = page_size.trailing_zeros();
        Ok(r)
    }

    /// Zeroes every header field: call once, before the pages are shared with the peer.
    pub fn init(&self) {
        let mut off = 0;
        while off < HEADER_USED {
            self.word(off).store(0, Ordering::Relaxed);
            off += 4;
        }
        // Release: the zeroed header is complete before whatever publishes the grant.
        fence(Ordering::Release);
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> usize {
        self.size as usize
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` is one of the `OFF_*` constants (< HEADER_USED, multiple of 4), the
        // header is valid, aligned and atomic-only by the `from_parts` contract, and the
        // returned reference does not outlive `self`.
        unsafe { sync::word(self.hdr, off) }
    }

    fn mask(&self) -> u32 {
        self.size.wrapping_sub(1)
    }

    /// Calls `f` for the in-bounds pieces of `n <= size` bytes starting at stream index
    /// `start`: at most two for a contiguous area (the wrap), one per page touched for a
    /// paged one. Stops early when `f` copies fewer bytes than asked. Returns the number of
    /// bytes `f` reported (each clamped to what it was asked for).
    fn segments<F: FnMut(*mut u8, usize) -> usize>(&self, start: u32, n: usize, mut f: F) -> usize {
        let size = self.size as usize;
        let n = n.min(size);
        let mut off = (start & self.mask()) as usize; // < size
        let mut done = 0;
        // Every round moves at least one byte or stops, and `n <= size` is ours (validated),
        // so the loop is bounded by `n` whatever the peer writes.
        while done < n {
            let mut len = (n - done).min(size - off);
            let ptr = if self.pages.is_null() {
                // `off + len <= size`: inside the data area.
                self.data.wrapping_add(off)
            } else {
                let page_size = 1usize << self.page_shift;
                let in_page = off & (page_size - 1);
                len = len.min(page_size - in_page);
                // SAFETY: `off < size = npages * page_size`, so the index is below `npages`,
                // and the page list is valid by the `from_pages` contract.
                let page = unsafe { *self.pages.add(off >> self.page_shift) };
                page.wrapping_add(in_page)
            };
            let c = f(ptr, len).min(len);
            done += c;
            if c < len {
                break;
            }
            off = (off + len) & (size - 1);
        }
        done
    }

    /// Sets our "wake me" bit and orders it before the caller's re-check of the peer index.
    fn arm(&self, off: usize) {
        self.word(off).store(1, Ordering::Relaxed);
        // SeqCst fence: store-buffering pattern with the peer's fence between its index
        // store and its load of this bit; one of the two sides must see the other's store.
        fence(Ordering::SeqCst);
    }

    /// Clears the peer's "wake me" bit at `off` and reports whether it was set. Must follow
    /// a SeqCst fence that comes after our index (or flag) store.
    fn take(&self, off: usize) -> bool {
        let w = self.word(off);
        // Load first so the common "not set" case does not write the peer's cache line.
        w.load(Ordering::Relaxed) != 0 && w.swap(0, Ordering::Relaxed) != 0
    }
}

/// The producing endpoint of a ring.
#[derive(Debug)]
pub struct Producer {
    r: Region,
    /// Private copy of our index: never read back from shared memory.
    prod: u32,
    /// Last validated consumer index (`prod - cons_seen <= size` always holds).
    cons_seen: u32,
    poisoned: bool,
}

impl Producer {
    /// Producer endpoint on `region`, starting at index 0 (fresh ring).
    pub fn new(region: Region) -> Self {
        Producer {
            r: region,
            prod: 0,
            cons_seen: 0,
            poisoned: false,
        }
    }

    /// Data area size in bytes.
    pub fn capacity(&self) -> usize {
        self.r.data_size()
    }

    /// True once the peer has been caught corrupting the ring.
    pub fn is_corrupt(&self) -> bool {
        self.poisoned
    }

    /// Bytes in the ring not yet consumed: `prod - cons`, validated.
    fn used(&mut self) -> Result<u32, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        // Acquire: pairs with the consumer's Release store of `cons`, so its reads of the
        // bytes below `cons` are finished before we overwrite them.
        let cons = self.r.word(OFF_CONS).load(Ordering::Acquire);
        let used = self.prod.wrapping_sub(cons);
        if used > self.r.size {
            self.poisoned = true;
            return Err(RingError::Corrupt);
        }
        self.cons_seen = cons;
        Ok(used)
    }

    /// Like `used`, but skips the shared-memory read while the last validated consumer
    /// index already leaves `need` bytes free.
    fn used_for(&mut self, need: usize) -> Result<u32, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        let used = self.prod.wrapping_sub(self.cons_seen); // <= size by invariant
        if (self.r.size - used) as usize >= need {
            return Ok(used);
        }
        self.used()
    }

    /// Free space: bytes that can be written now.
    pub fn writable(&mut self) -> Result<usize, RingError> {
        let used = self.used()?;
        Ok((self.r.size - used) as usize)
    }

    /// Unsent bytes: written by us but not yet consumed by the peer (e.g. `SIOCOUTQ`).
    pub fn unsent(&mut self) -> Result<usize, RingError> {
        Ok(self.used()? as usize)
    }

    /// Writes up to `len` bytes. `copy_in(dst, n)` is called once per contiguous segment
    /// (the wrap, and page boundaries of a paged area) and must copy up to `n` bytes to `dst` and return how many it copied;
    /// if it returns less than `n` (e.g. a faulting user copy) no further segment is asked
    /// for, and only the bytes actually copied are published. `dst` is valid for writes of
    /// `n` bytes during the call only; it is shared memory (see the module docs). The
    /// segment lengths add up to at most `len`.
    pub fn write<F>(&mut self, len: usize, copy_in: F) -> Result<Transfer, RingError>
    where
        F: FnMut(*mut u8, usize) -> usize,
    {
        let free = (self.r.size - self.used_for(len)?) as usize;
        let n = len.min(free);
        if n == 0 {
            return Ok(Transfer::default());
        }
        let done = self.r.segments(self.prod, n, copy_in);
        if done == 0 {
            return Ok(Transfer::default());
        }
        Ok(self.publish(done))
    }

    /// Writes exactly `len` bytes or nothing: `Ok(None)` when fewer than `len` bytes are
    /// free, or when `copy_in` copied fewer than it was asked for (nothing is published,
    /// so the consumer never sees part of it). Same callback contract as [`Producer::write`].
    /// For framed records (`record.rs`), whose parts must appear together.
    pub fn write_exact<F>(&mut self, len: usize, copy_in: F) -> Result<Option<Transfer>, RingError>
    where
        F: FnMut(*mut u8, usize) -> usize,
    {
        let free = (self.r.size - self.used_for(len)?) as usize;
        if len == 0 || len > free {
            return Ok(None);
        }
        if self.r.segments(self.prod, len, copy_in) != len {
            return Ok(None);
        }
        Ok(Some(self.publish(len)))
    }

    /// Publishes `done` (<= validated free space) newly written bytes and collects the
    /// consumer's request.
    fn publish(&mut self, done: usize) -> Transfer {
        // `done <= size <= 2^31`, so it fits in u32.
        self.prod = self.prod.wrapping_add(done as u32);
        // Release: the bytes just copied are visible before the new index.
        self.r.word(OFF_PROD).store(self.prod, Ordering::Release);
        // SeqCst fence between the index store and the load of `want_data` (lost-wakeup
        // window; pairs with the fence in `Consumer::arm_readable`).
        fence(Ordering::SeqCst);
        Transfer {
            bytes: done,
            notify: self.r.take(OFF_WANT_DATA),
        }
    }

    /// Writes as much of `src` as fits.
    pub fn write_slice(&mut self, src: &[u8]) -> Result<Transfer, RingError> {
        let mut pos = 0usize;
        self.write(src.len(), |dst, n| {
            let rest = src.get(pos..).unwrap_or(&[]);
            let n = n.min(rest.len());
            // SAFETY: `rest` holds at least `n` bytes; `dst` is valid for `n` bytes of writes
            // (contract of `write`) and is ring memory, which cannot overlap a `&[u8]`.
            unsafe { ptr::copy_nonoverlapping(rest.as_ptr(), dst, n) };
            pos += n;
            n
        })
    }

    /// Asks the consumer to signal us when it frees space, then re-checks: returns the free
    /// space seen after asking. Only if it is 0 (and [`Producer::consumer_closed`] is false)
    /// may the caller sleep until signalled.
    pub fn arm_writable(&mut self) -> Result<usize, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        self.r.arm(OFF_WANT_SPACE);
        self.writable()
    }

    /// Marks the end of the stream: the consumer will see [`Consumer::producer_closed`]
    /// after reading everything written before. `notify` tells whether to signal the peer.
    pub fn close(&mut self) -> Transfer {
        // Release: every byte published before is visible to whoever sees the flag.
        self.r
            .word(OFF_PROD_FLAGS)
            .store(FLAG_CLOSED, Ordering::Release);
        // SeqCst fence: flag store before the `want_data` load (same window as `write`).
        fence(Ordering::SeqCst);
        Transfer {
            bytes: 0,
            notify: self.r.take(OFF_WANT_DATA),
        }
    }

    /// The consumer has closed its end: it will read no more.
    pub fn consumer_closed(&self) -> bool {
        self.r.word(OFF_CONS_FLAGS).load(Ordering::Acquire) & FLAG_CLOSED != 0
    }
}

/// The consuming endpoint of a ring.
#[derive(Debug)]
pub struct Consumer {
    r: Region,
    /// Private copy of our index: never read back from shared memory.
    cons: u32,
    /// Last validated producer index (`prod_seen - cons <= size` always holds).
    prod_seen: u32,
    poisoned: bool,
}

impl Consumer {
    /// Consumer endpoint on `region`, starting at index 0 (fresh ring).
    pub fn new(region: Region) -> Self {
        Consumer {
            r: region,
            cons: 0,
            prod_seen: 0,
            poisoned: false,
        }
    }

    /// Data area size in bytes.
    pub fn capacity(&self) -> usize {
        self.r.data_size()
    }

    /// True once the peer has been caught corrupting the ring.
    pub fn is_corrupt(&self) -> bool {
        self.poisoned
    }

    /// Bytes available to read: `prod - cons`, validated.
    fn avail(&mut self) -> Result<u32, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        // Acquire: pairs with the producer's Release store of `prod`, so the bytes below
        // `prod` are visible before we copy them.
        let prod = self.r.word(OFF_PROD).load(Ordering::Acquire);
        let avail = prod.wrapping_sub(self.cons);
        if avail > self.r.size {
            self.poisoned = true;
            return Err(RingError::Corrupt);
        }
        self.prod_seen = prod;
        Ok(avail)
    }

    /// Like `avail`, but skips the shared-memory read while the last validated producer
    /// index already shows `need` readable bytes.
    fn avail_for(&mut self, need: usize) -> Result<u32, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        let avail = self.prod_seen.wrapping_sub(self.cons); // <= size by invariant
        if avail as usize >= need {
            return Ok(avail);
        }
        self.avail()
    }

    /// Marks the ring corrupt from above: the caller found the peer's bytes break a
    /// framing the ring itself does not know (a bad record header, `record.rs`). Every
    /// later call fails with [`RingError::Corrupt`], as after a bad index.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Bytes readable now.
    pub fn readable(&mut self) -> Result<usize, RingError> {
        Ok(self.avail()? as usize)
    }

    /// Reads up to `len` bytes. `copy_out(src, n)` is called once per contiguous segment and
    /// must copy up to `n` bytes from `src` and return how many it copied; if it returns
    /// less than `n`, no further segment is asked for and only the bytes actually copied are
    /// consumed. `src` is valid for reads of `n` bytes during the call only; it is shared
    /// memory the peer may scribble on (see the module docs).
    pub fn read<F>(&mut self, len: usize, mut copy_out: F) -> Result<Transfer, RingError>
    where
        F: FnMut(*const u8, usize) -> usize,
    {
        let avail = self.avail_for(len)? as usize;
        let n = len.min(avail);
        if n == 0 {
            return Ok(Transfer::default());
        }
        let done = self
            .r
            .segments(self.cons, n, |p, k| copy_out(p.cast_const(), k));
        Ok(self.consume(done))
    }

    /// Reads into `dst` as much as is available.
    pub fn read_slice(&mut self, dst: &mut [u8]) -> Result<Transfer, RingError> {
        let mut pos = 0usize;
        self.read(dst.len(), |src, n| copy_to_slice(dst, &mut pos, src, n))
    }

    /// Copies up to `len` bytes starting `offset` bytes past the read position, without
    /// consuming (`MSG_PEEK`). Returns the number of bytes copied (0 if `offset` is at or past
    /// the end of the readable data). Same callback contract as [`Consumer::read`].
    pub fn peek<F>(
        &mut self,
        offset: usize,
        len: usize,
        mut copy_out: F,
    ) -> Result<usize, RingError>
    where
        F: FnMut(*const u8, usize) -> usize,
    {
        let avail = self.avail_for(offset.saturating_add(len))? as usize;
        if offset >= avail {
            return Ok(0);
        }
        let rest = avail - offset;
        let n = len.min(rest);
        // `offset < avail <= size <= 2^31` fits in u32.
        let start = self.cons.wrapping_add(offset as u32);
        Ok(self
            .r
            .segments(start, n, |p, k| copy_out(p.cast_const(), k)))
    }

    /// Peeks into `dst` (see [`Consumer::peek`]).
    pub fn peek_slice(&mut self, offset: usize, dst: &mut [u8]) -> Result<usize, RingError> {
        let mut pos = 0usize;
        self.peek(offset, dst.len(), |src, n| {
            copy_to_slice(dst, &mut pos, src, n)
        })
    }

    /// Discards up to `len` readable bytes without copying them (e.g. after a peek).
    pub fn skip(&mut self, len: usize) -> Result<Transfer, RingError> {
        let avail = self.avail_for(len)? as usize;
        let n = len.min(avail);
        Ok(self.consume(n))
    }

    /// Publishes `n` (<= validated avail) consumed bytes and collects the producer's request.
    fn consume(&mut self, n: usize) -> Transfer {
        if n == 0 {
            return Transfer::default();
        }
        // `n <= avail <= size <= 2^31` fits in u32.
        self.cons = self.cons.wrapping_add(n as u32);
        // Release: our reads of the consumed bytes are done before the producer can see the
        // space as free and overwrite it.
        self.r.word(OFF_CONS).store(self.cons, Ordering::Release);
        // SeqCst fence between the index store and the load of `want_space` (lost-wakeup
        // window; pairs with the fence in `Producer::arm_writable`).
        fence(Ordering::SeqCst);
        Transfer {
            bytes: n,
            notify: self.r.take(OFF_WANT_SPACE),
        }
    }

    /// Asks the producer to signal us when data arrives, then re-checks: returns the bytes
    /// readable after asking. Only if it is 0 (and [`Consumer::producer_closed`], checked
    /// after this call, is false) may the caller sleep until signalled.
    pub fn arm_readable(&mut self) -> Result<usize, RingError> {
        if self.poisoned {
            return Err(RingError::Corrupt);
        }
        self.r.arm(OFF_WANT_DATA);
        self.readable()
    }

    /// The producer has closed its end (no more data will come after what is readable).
    pub fn producer_closed(&self) -> bool {
        // Acquire: pairs with the Release store in `Producer::close`.
        self.r.word(OFF_PROD_FLAGS).load(Ordering::Acquire) & FLAG_CLOSED != 0
    }

    /// End of stream: the producer closed and everything it wrote has been consumed.
    pub fn at_eof(&mut self) -> Result<bool, RingError> {
        // Flag first (Acquire), then the index: a close seen here covers the final `prod`.
        let closed = self.producer_closed();
        let avail = self.avail()?;
        Ok(closed && avail == 0)
    }

    /// Tells the producer we will read no more. `notify` tells whether to signal the peer.
    pub fn close(&mut self) -> Transfer {
        self.r
            .word(OFF_CONS_FLAGS)
            .store(FLAG_CLOSED, Ordering::Release);
        // SeqCst fence: flag store before the `want_space` load (lost-wakeup window).
        fence(Ordering::SeqCst);
        Transfer {
            bytes: 0,
            notify: self.r.take(OFF_WANT_SPACE),
        }
    }
}

/// Copy callback body for the slice helpers: appends up to `n` bytes from `src` to
/// `dst[*pos..]` and returns how many were copied.
fn copy_to_slice(dst: &mut [u8], pos: &mut usize, src: *const u8, n: usize) -> usize {
    let rest = dst.get_mut(*pos..).unwrap_or(&mut []);
    let n = n.min(rest.len());
    // SAFETY: `src` is valid for `n` bytes of reads (callback contract) and is ring memory,
    // which cannot overlap the `&mut [u8]`; `rest` holds at least `n` bytes.
    unsafe { ptr::copy_nonoverlapping(src, rest.as_mut_ptr(), n) };
    *pos += n;
    n
}
