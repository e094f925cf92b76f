//! The exported symbols. Each one runs its `interpose` function under `catch_unwind`; if
//! that ever panicked, the call is made again, unchanged, to libc (a panic must not
//! unwind into C). Not compiled into the unit-test build.
//!
//! # Safety
//! Every function has the contract of the libc function of the same name.

#![allow(clippy::missing_safety_doc)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use libc::{c_int, c_ulong, c_void, epoll_event, sockaddr, socklen_t};

use crate::interpose as ip;
use crate::real::real;

/// Runs `f`, or `fallback` if `f` panicked.
fn guard(f: impl FnOnce() -> c_int, fallback: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => fallback(),
    }
}

/// Exports `fn name(args) -> c_int`, which runs `call` (an `interpose` function) under
/// [`guard`], falling back to the libc function of the same name with the same arguments.
macro_rules! export {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $call:expr;)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            guard(
                || unsafe { $call },
                || unsafe { (real().$name)($($arg),*) },
            )
        }
    )*};
}

export! {
    fn socket(domain: c_int, ty: c_int, proto: c_int) => ip::socket(domain, ty, proto);
    fn connect(fd: c_int, a: *const sockaddr, len: socklen_t) => ip::connect(fd, a, len);
    fn bind(fd: c_int, a: *const sockaddr, len: socklen_t) => ip::bind(fd, a, len);
    fn listen(fd: c_int, backlog: c_int) => ip::listen(fd, backlog);
    fn accept(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) => ip::accept(fd, a, len, None);
    fn accept4(fd: c_int, a: *mut sockaddr, len: *mut socklen_t, flags: c_int)
        => ip::accept(fd, a, len, Some(flags));
    fn getsockname(fd: c_int, a: *mut sockaddr, len: *mut socklen_t)
        => ip::getname(fd, a, len, false);
    fn getpeername(fd: c_int, a: *mut sockaddr, len: *mut socklen_t)
        => ip::getname(fd, a, len, true);
    fn setsockopt(fd: c_int, level: c_int, opt: c_int, val: *const c_void, len: socklen_t)
        => ip::setsockopt(fd, level, opt, val, len);
    fn getsockopt(fd: c_int, level: c_int, opt: c_int, val: *mut c_void, len: *mut socklen_t)
        => ip::getsockopt(fd, level, opt, val, len);
    fn close(fd: c_int) => ip::close(fd);
    fn shutdown(fd: c_int, how: c_int) => ip::shutdown(fd, how);
    fn dup(fd: c_int) => ip::dup(fd);
    fn dup2(old: c_int, new: c_int) => ip::dup23(old, new, None);
    fn dup3(old: c_int, new: c_int, flags: c_int) => ip::dup23(old, new, Some(flags));
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event)
        => ip::epoll_ctl(epfd, op, fd, ev);
}

// `fcntl` is variadic in C; every command passes at most one argument, an integer or a
// pointer, which the x86-64 and AArch64 calling conventions pass in the same register
// as this fixed third parameter (what other interposers of fcntl rely on too).

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    guard(
        || unsafe { ip::fcntl(false, fd, cmd, arg) },
        || unsafe { crate::real::fcntl(false, fd, cmd, arg) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    guard(
        || unsafe { ip::fcntl(true, fd, cmd, arg) },
        || unsafe { crate::real::fcntl(true, fd, cmd, arg) },
    )
}

/// At load, before `main`: inherited dual listeners and connections (after an `exec`).
extern "C" fn at_load() {
    if crate::config::config().disabled {
        return;
    }
    let _ = catch_unwind(ip::adopt_inherited);
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;
