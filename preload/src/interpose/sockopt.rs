//! `getsockname`/`getpeername`, `setsockopt` and `getsockopt`: a vsock-backed descriptor
//! answers as the TCP socket the program believes it has (`route` and `opts` say how);
//! a dual listener's calls go to its hidden TCP listener.

use libc::{c_int, c_void, sockaddr, socklen_t};

use super::sys::{self, fail, KeepErrno};
use crate::addr;
use crate::opts;
use crate::real::real;
use crate::route::{self, GetOn, SetOn};
use crate::table::{self, Entry, Vsock};

/// `getsockname()`/`getpeername()`.
///
/// # Safety
/// As `getsockname(2)`.
pub unsafe fn getname(fd: c_int, a: *mut sockaddr, len: *mut socklen_t, peer: bool) -> c_int {
    let r = real();
    let f = if peer { r.getpeername } else { r.getsockname };
    let v = match table::get(fd) {
        Some(Entry::Vsock(v)) => v,
        // SAFETY: forwarding (to the TCP listener of a dual listener).
        e => return unsafe { f(route::tcp_fd(fd, e.as_ref()), a, len) },
    };
    let (_, port) = match sys::vsock_name(fd, peer) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let (enc, elen) = addr::encode(v.family, route::shown_name(&v, peer, port));
    // SAFETY: the caller's buffers.
    match unsafe { addr::write_out(&enc[..elen], a, len) } {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// A `setsockopt()` call as the program made it.
struct SetCall {
    level: c_int,
    opt: c_int,
    val: *const c_void,
    len: socklen_t,
}

impl SetCall {
    /// The real `setsockopt` on `fd`.
    ///
    /// # Safety
    /// `val`/`len` as for `setsockopt(2)`.
    unsafe fn on(&self, fd: c_int) -> c_int {
        // SAFETY: forwarding the caller's arguments.
        unsafe { (real().setsockopt)(fd, self.level, self.opt, self.val, self.len) }
    }

    /// The value, as the kernel would read it (bounded; options are small).
    ///
    /// # Safety
    /// As above.
    unsafe fn bytes(&self) -> Vec<u8> {
        if self.val.is_null() || self.len == 0 {
            return Vec::new();
        }
        let n = (self.len as usize).min(4096);
        // SAFETY: the caller passes `len` readable bytes.
        unsafe { core::slice::from_raw_parts(self.val.cast::<u8>(), n) }.to_vec()
    }
}

/// `setsockopt()`.
///
/// # Safety
/// As `setsockopt(2)`.
pub unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    opt: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let call = SetCall {
        level,
        opt,
        val,
        len,
    };
    let Some(entry) = table::get(fd) else {
        // SAFETY: forwarding.
        return unsafe { call.on(fd) };
    };
    // SAFETY: the caller's value.
    let bytes = unsafe { call.bytes() };
    match entry {
        Entry::Cand(c) => {
            // SAFETY: forwarding.
            let rc = unsafe { call.on(fd) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let class = opts::classify(c.family, level, opt);
                table::update(fd, |e| {
                    if let Entry::Cand(c) = e {
                        route::record(c, class, level, opt, &bytes);
                    }
                });
            }
            rc
        }
        Entry::Listener(l) => {
            // SAFETY: forwarding to the TCP listener.
            let rc = unsafe { call.on(l.hidden.tcp) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let class = opts::classify(l.family, level, opt);
                let size = table::update(fd, |e| match e {
                    Entry::Listener(l) => route::record_listener(l, class, level, opt, &bytes),
                    _ => None,
                });
                if let Some(size) = size.flatten() {
                    let _ = sys::set_vsock_buffer(l.hidden.vsock, size);
                }
            }
            rc
        }
        // SAFETY: the caller's arguments.
        Entry::Vsock(v) => unsafe { set_on_vsock(fd, &v, &call, &bytes) },
    }
}

/// `setsockopt()` on the vsock-backed descriptor `fd` (entry `v`).
///
/// # Safety
/// As `setsockopt(2)` (the program's arguments in `call`).
unsafe fn set_on_vsock(fd: c_int, v: &Vsock, call: &SetCall, bytes: &[u8]) -> c_int {
    let (level, opt) = (call.level, call.opt);
    match route::set_on_vsock(opts::classify(v.family, level, opt)) {
        // SAFETY: forwarding to the vsock socket.
        SetOn::Kernel => unsafe { call.on(fd) },
        SetOn::Buffer(k) => {
            // SAFETY: as above.
            let rc = unsafe { call.on(fd) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let mut b = v.buf;
                if b.note(k, bytes) {
                    if let Some(size) = b.size() {
                        let _ = sys::set_vsock_buffer(fd, size);
                    }
                    table::update(fd, |e| {
                        if let Entry::Vsock(x) = e {
                            x.buf = b;
                        }
                    });
                }
            }
            rc
        }
        SetOn::Emulate(em) => {
            if call.val.is_null() && call.len > 0 {
                return fail(libc::EFAULT);
            }
            let res = table::update(fd, |e| match e {
                Entry::Vsock(x) => x.emu.set(em, level, opt, bytes),
                _ => Err(libc::EBADF),
            });
            match res {
                Some(Ok(())) => 0,
                Some(Err(e)) => fail(e),
                None => fail(libc::EBADF),
            }
        }
        SetOn::Fail(e) => fail(e),
    }
}

/// `getsockopt()`.
///
/// # Safety
/// As `getsockopt(2)`.
pub unsafe fn getsockopt(
    fd: c_int,
    level: c_int,
    opt: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let real_get = real().getsockopt;
    let v = match table::get(fd) {
        Some(Entry::Vsock(v)) => v,
        // SAFETY: forwarding (to the TCP listener of a dual listener).
        e => return unsafe { real_get(route::tcp_fd(fd, e.as_ref()), level, opt, val, len) },
    };
    let class = opts::classify(v.family, level, opt);
    match route::get_on_vsock(class) {
        // SAFETY: forwarding to the vsock socket.
        GetOn::Kernel => return unsafe { real_get(fd, level, opt, val, len) },
        GetOn::Fail(e) => return fail(e),
        GetOn::Here => {}
    }
    if val.is_null() || len.is_null() {
        return fail(libc::EFAULT);
    }
    // SAFETY: checked non-null above.
    let room = unsafe { *len } as i32;
    let connected = || sys::vsock_name(fd, true).is_ok();
    match route::answer(&v, class, level, opt, room, connected) {
        Ok(b) => {
            // SAFETY: `b.len()` <= the room the caller gave.
            unsafe {
                core::ptr::copy_nonoverlapping(b.as_ptr(), val.cast::<u8>(), b.len());
                *len = b.len() as socklen_t;
            }
            0
        }
        Err(e) => fail(e),
    }
}
