//! The exported symbols. Each one runs its `interpose` function under `catch_unwind`; if
//! that ever panicked, the call is made again, unchanged, to libc (a panic must not
//! unwind into C). Not compiled into the unit-test build.
//!
//! # Safety
//! Every function has the contract of the libc function of the same name.

#![allow(clippy::missing_safety_doc)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use libc::{c_int, c_void, epoll_event, sockaddr, socklen_t};

use crate::interpose as ip;
use crate::real::real;

fn guard(f: impl FnOnce() -> c_int, fallback: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => fallback(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    guard(
        || unsafe { ip::socket(domain, ty, proto) },
        || unsafe { (real().socket)(domain, ty, proto) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    guard(
        || unsafe { ip::connect(fd, a, len) },
        || unsafe { (real().connect)(fd, a, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    guard(
        || unsafe { ip::bind(fd, a, len) },
        || unsafe { (real().bind)(fd, a, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    guard(
        || unsafe { ip::listen(fd, backlog) },
        || unsafe { (real().listen)(fd, backlog) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(
        || unsafe { ip::accept(fd, a, len, None) },
        || unsafe { (real().accept)(fd, a, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    guard(
        || unsafe { ip::accept(fd, a, len, Some(flags)) },
        || unsafe { (real().accept4)(fd, a, len, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(
        || unsafe { ip::getname(fd, a, len, false) },
        || unsafe { (real().getsockname)(fd, a, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(
        || unsafe { ip::getname(fd, a, len, true) },
        || unsafe { (real().getpeername)(fd, a, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    opt: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    guard(
        || unsafe { ip::setsockopt(fd, level, opt, val, len) },
        || unsafe { (real().setsockopt)(fd, level, opt, val, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    opt: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    guard(
        || unsafe { ip::getsockopt(fd, level, opt, val, len) },
        || unsafe { (real().getsockopt)(fd, level, opt, val, len) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    guard(
        || unsafe { ip::close(fd) },
        || unsafe { (real().close)(fd) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    guard(
        || unsafe { ip::shutdown(fd, how) },
        || unsafe { (real().shutdown)(fd, how) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    guard(|| unsafe { ip::dup(fd) }, || unsafe { (real().dup)(fd) })
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    guard(
        || unsafe { ip::dup23(old, new, None) },
        || unsafe { (real().dup2)(old, new) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    guard(
        || unsafe { ip::dup23(old, new, Some(flags)) },
        || unsafe { (real().dup3)(old, new, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    guard(
        || unsafe { ip::epoll_ctl(epfd, op, fd, ev) },
        || unsafe { (real().epoll_ctl)(epfd, op, fd, ev) },
    )
}
