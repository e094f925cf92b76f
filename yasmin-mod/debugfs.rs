// SPDX-License-Identifier: GPL-2.0
//! Every file under `<debugfs>/yasmin/`. glue.c owns the C file operations (and creates
//! the files); each calls one of the shims below, which format into glue.c's buffer or
//! act on one number written.
//!
//! | file | what |
//! |---|---|
//! | `pairs` | one line per peer: role, pair state, channel, counters |
//! | `stats` | global counters (`crate::stats`) |
//! | `peers` | data counters per peer domain |
//! | `connect` (write a domid) | open the control channel to that domain |
//! | `scribble_tx_port` (test build) | corrupt the ring of the socket on that local port |
//! | `profile` (test build) | data-path time per call; write 1 (reset, start) or 0 |
//! | `adversary` (test build) | act as a hostile peer: `test_hooks::adversary` |

use crate::bindings;
use crate::plane;
use crate::stats;
use kernel::ffi::{c_char, c_int, c_long, c_uint};
use kernel::prelude::*;

/// The files exist while this lives.
pub(crate) struct Files(());

impl Files {
    pub(crate) fn create() -> Self {
        // SAFETY: creates the module's files (failures are not fatal in debugfs).
        unsafe { bindings::yasmin_debugfs_init() };
        Files(())
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        // SAFETY: removes the files of `create`, waiting for running readers and writers.
        unsafe { bindings::yasmin_debugfs_exit() };
    }
}

/// A `fmt::Write` into a byte slice that silently truncates.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.at += n;
        Ok(())
    }
}

/// Runs `fill` on glue.c's buffer; returns the length written or an errno.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
unsafe fn fill(
    buf: *mut c_char,
    len: usize,
    f: impl FnOnce(&mut SliceWriter<'_>) -> Option<core::fmt::Result>,
) -> c_long {
    // SAFETY: by the caller (a kmalloc'd buffer of `len` bytes).
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut w = SliceWriter { buf, at: 0 };
    match f(&mut w) {
        Some(_) => w.at as c_long,
        None => ENODEV.to_errno() as c_long,
    }
}

/// `pairs`.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_pairs(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: by the caller.
    unsafe { fill(buf, len, |w| plane::with(|p| p.show(w))) }
}

/// `stats`.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_stats(buf: *mut c_char, len: usize) -> c_long {
    let live = plane::with(|p| p.conns_live()).unwrap_or(0);
    // SAFETY: by the caller.
    unsafe { fill(buf, len, |w| Some(stats::write_global(w, live))) }
}

/// `peers`.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_peers(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: by the caller.
    unsafe { fill(buf, len, |w| Some(stats::write_peers(w))) }
}

/// `connect`: open the control channel to `domid`.
#[no_mangle]
extern "C" fn yasmin_debugfs_connect(domid: c_uint) -> c_int {
    let Ok(peer) = u16::try_from(domid) else {
        return EINVAL.to_errno();
    };
    match plane::with(|p| p.connect(peer)) {
        Some(Ok(())) => 0,
        Some(Err(e)) => e.to_errno(),
        None => ENODEV.to_errno(),
    }
}

/// `scribble_tx_port`: arm the ring-corruption test hook.
#[cfg(yasmin_test)]
#[no_mangle]
extern "C" fn yasmin_debugfs_scribble(port: c_uint) -> c_int {
    crate::test_hooks::arm_scribble(port);
    0
}

/// `adversary`: one attack command (see `test_hooks::adversary`).
///
/// # Safety
///
/// `buf` is valid for reads of `len` bytes.
#[cfg(yasmin_test)]
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_adversary(buf: *const c_char, len: usize) -> c_int {
    // SAFETY: by the caller (glue.c's copy of the user's command).
    let cmd = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    match crate::test_hooks::adversary(cmd) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `profile` read.
///
/// # Safety
///
/// `buf` is valid for writes of `len` bytes.
#[cfg(yasmin_test)]
#[no_mangle]
unsafe extern "C" fn yasmin_debugfs_profile(buf: *mut c_char, len: usize) -> c_long {
    // SAFETY: by the caller.
    unsafe { fill(buf, len, |w| Some(crate::profile::write(w))) }
}

/// `profile` write: 1 resets and starts, 0 stops.
#[cfg(yasmin_test)]
#[no_mangle]
extern "C" fn yasmin_debugfs_profile_set(on: c_uint) -> c_int {
    match on {
        0 | 1 => {
            crate::profile::set(on == 1);
            0
        }
        _ => EINVAL.to_errno(),
    }
}
