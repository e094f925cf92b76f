// SPDX-License-Identifier: GPL-2.0
//! Userspace helpers shared by the tests, the benchmark and the fuzz target.
#![allow(dead_code)]

pub mod hostile;

use ring::{Region, HEADER_SIZE};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::AtomicU32;

/// A page-aligned, zeroed heap region holding one ring (header page + `size` data bytes).
pub struct HeapRing {
    ptr: *mut u8,
    layout: Layout,
    size: usize,
}

// SAFETY: the memory is only reached through `Region` (atomics and raw copies) and freed once.
unsafe impl Send for HeapRing {}
// SAFETY: as above; `HeapRing` hands out only copies of the raw pointers.
unsafe impl Sync for HeapRing {}

impl HeapRing {
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(HEADER_SIZE + size, 4096).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        HeapRing { ptr, layout, size }
    }

    pub fn region(&self) -> Region {
        // SAFETY: `ptr..ptr+HEADER_SIZE+size` is a live allocation owned by `self`, used only
        // through `Region`s; callers do not use a region after dropping the `HeapRing`.
        let r = unsafe { Region::new(self.ptr, HEADER_SIZE + self.size) }.expect("region");
        r.init();
        r
    }

    /// The same memory as a paged region: the data area cut into pages of `page_size`
    /// bytes, listed in reverse order so that a copy that forgets a page boundary lands in
    /// the wrong place. `pages` receives the list and must outlive the region.
    pub fn paged_region(&self, page_size: usize, pages: &mut Vec<*mut u8>) -> Region {
        let n = self.size / page_size;
        pages.clear();
        pages.extend(
            (0..n)
                .rev()
                .map(|i| self.data_ptr().wrapping_add(i * page_size)),
        );
        // SAFETY: every page lies inside the live allocation; `pages` outlives the region
        // by the caller's contract.
        let r =
            unsafe { Region::from_pages(self.ptr, pages.as_ptr(), n, page_size) }.expect("region");
        r.init();
        r
    }

    pub fn data_ptr(&self) -> *mut u8 {
        self.ptr.wrapping_add(HEADER_SIZE)
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The header word at byte offset `off`, as a hostile peer would poke it.
    pub fn word(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= HEADER_SIZE && off & 3 == 0);
        // SAFETY: in bounds and aligned (page-aligned base); header words are only accessed
        // atomically.
        unsafe { AtomicU32::from_ptr(self.ptr.add(off).cast()) }
    }
}

impl Drop for HeapRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// Small deterministic PRNG (xorshift64*), good enough for test traffic.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Order-sensitive checksum of a byte stream (FNV-1a style over 8-byte words, with a
/// byte-wise tail), fed in arbitrary chunks.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Checksum {
    h: u64,
    len: u64,
    carry: u64,
    carry_len: u32,
}

impl Checksum {
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while self.carry_len != 0 && !data.is_empty() {
            self.carry |= (data[0] as u64) << (8 * self.carry_len);
            self.carry_len = (self.carry_len + 1) % 8;
            data = &data[1..];
            if self.carry_len == 0 {
                self.mix(self.carry);
                self.carry = 0;
            }
        }
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().unwrap()));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.carry |= (b as u64) << (8 * i);
            self.carry_len += 1;
        }
    }
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }
    pub fn finish(&self) -> (u64, u64) {
        let mut c = *self;
        if c.carry_len != 0 {
            c.mix(c.carry ^ (u64::from(c.carry_len) << 56));
        }
        (c.h, c.len)
    }
}
