//! The exported symbols. Each one runs its `interpose` function under `catch_unwind`; if
//! that ever panicked, the call is made again, unchanged, to libc (a panic must not
//! unwind into C). Not compiled into the unit-test build.
//!
//! # Safety
//! Every function has the contract of the libc function of the same name.

#![allow(clippy::missing_safety_doc)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use libc::{c_char, c_int, c_ulong, c_void, epoll_event, sockaddr, socklen_t};

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
                // SAFETY: the caller's arguments, with the contract of the libc function.
                || unsafe { $call },
                // SAFETY: as above.
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
        // SAFETY: the caller's arguments, as fcntl(2) takes them (see above).
        || unsafe { ip::fcntl(false, fd, cmd, arg) },
        // SAFETY: as above.
        || unsafe { crate::real::fcntl(false, fd, cmd, arg) },
    )
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    guard(
        // SAFETY: the caller's arguments, as fcntl(2) takes them (see above).
        || unsafe { ip::fcntl(true, fd, cmd, arg) },
        // SAFETY: as above.
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

// The exec family (the ones that take an argument vector; the variadic execl* cannot be
// defined in Rust): a log line for static binaries, then libc's own call.

type ExecFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;
type ExecEnvFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;

/// libc's `name` (NUL-terminated), or null.
fn next(name: &[u8]) -> *mut c_void {
    // SAFETY: a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) }
}

#[no_mangle]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's path, NUL-terminated as execve(2) needs.
    let _ = catch_unwind(|| unsafe { ip::note_exec(path, false) });
    let f = next(b"execve\0");
    if f.is_null() {
        // SAFETY: as execve(2).
        return unsafe { libc::syscall(libc::SYS_execve, path, argv, envp) as c_int };
    }
    // SAFETY: libc's execve.
    unsafe { core::mem::transmute::<*mut c_void, ExecEnvFn>(f)(path, argv, envp) }
}

#[no_mangle]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's file name, NUL-terminated as execvpe(3) needs.
    let _ = catch_unwind(|| unsafe { ip::note_exec(file, true) });
    let f = next(b"execvpe\0");
    if f.is_null() {
        return -1;
    }
    // SAFETY: libc's execvpe.
    unsafe { core::mem::transmute::<*mut c_void, ExecEnvFn>(f)(file, argv, envp) }
}

/// `execv` (`search` false) or `execvp`.
unsafe fn exec_argv(
    name: &[u8],
    file: *const c_char,
    argv: *const *const c_char,
    search: bool,
) -> c_int {
    // SAFETY: the caller's file name, NUL-terminated as exec(3) needs.
    let _ = catch_unwind(|| unsafe { ip::note_exec(file, search) });
    let f = next(name);
    if f.is_null() {
        return -1;
    }
    // SAFETY: libc's execv/execvp.
    unsafe { core::mem::transmute::<*mut c_void, ExecFn>(f)(file, argv) }
}

#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: as execv(3).
    unsafe { exec_argv(b"execv\0", path, argv, false) }
}

#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: as execvp(3).
    unsafe { exec_argv(b"execvp\0", file, argv, true) }
}
