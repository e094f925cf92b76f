//! The functions we interpose, as libc implements them: resolved once with
//! `dlsym(RTLD_NEXT, ...)`; if a symbol cannot be found the raw system call is used.
//!
//! Everything in this crate that needs one of these calls goes through [`real()`], never
//! through the `libc` crate's binding, which would land in our own interposer.

use std::sync::OnceLock;

use libc::{c_int, c_void, epoll_event, sockaddr, socklen_t};

type SocketFn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type AddrFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type GetAddrFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
type Accept4Fn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
type SetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
type GetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;
type IntFn = unsafe extern "C" fn(c_int) -> c_int;
type Int2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type Int3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type EpollCtlFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut epoll_event) -> c_int;
/// `fcntl` is variadic; the commands pass at most one integer or pointer argument.
pub type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;

pub struct Real {
    pub socket: SocketFn,
    pub connect: AddrFn,
    pub bind: AddrFn,
    pub listen: Int2Fn,
    pub accept: GetAddrFn,
    pub accept4: Accept4Fn,
    pub getsockname: GetAddrFn,
    pub getpeername: GetAddrFn,
    pub setsockopt: SetOptFn,
    pub getsockopt: GetOptFn,
    pub close: IntFn,
    pub shutdown: Int2Fn,
    pub dup: IntFn,
    pub dup2: Int2Fn,
    pub dup3: Int3Fn,
    pub epoll_ctl: EpollCtlFn,
    /// `None`: not found, the raw system call is used.
    pub fcntl: Option<FcntlFn>,
    pub fcntl64: Option<FcntlFn>,
}

/// libc's `fcntl` (`wide`: `fcntl64`, the name large-file builds call), or the raw system
/// call, with the one argument every command takes (or ignores).
///
/// # Safety
/// As `fcntl(2)` with that argument.
pub unsafe fn fcntl(wide: bool, fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    let r = real();
    let f = if wide { r.fcntl64.or(r.fcntl) } else { r.fcntl };
    match f {
        // SAFETY: as for this function.
        Some(f) => unsafe { f(fd, cmd, arg) },
        // SAFETY: as above.
        None => ret(unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) }),
    }
}

/// `dlsym(RTLD_NEXT, name)` as a variadic `fcntl`.
fn resolve_fcntl(name: &[u8]) -> Option<FcntlFn> {
    // SAFETY: a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    // SAFETY: libc's fcntl/fcntl64 have exactly this C signature.
    (!p.is_null()).then(|| unsafe { core::mem::transmute::<*mut c_void, FcntlFn>(p) })
}

fn ret(r: libc::c_long) -> c_int {
    r as c_int
}

// Raw system call fallbacks (same signatures).
unsafe extern "C" fn sys_socket(a: c_int, b: c_int, c: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_socket, a, b, c) })
}
unsafe extern "C" fn sys_connect(a: c_int, b: *const sockaddr, c: socklen_t) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_connect, a, b, c) })
}
unsafe extern "C" fn sys_bind(a: c_int, b: *const sockaddr, c: socklen_t) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_bind, a, b, c) })
}
unsafe extern "C" fn sys_listen(a: c_int, b: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_listen, a, b) })
}
unsafe extern "C" fn sys_accept(a: c_int, b: *mut sockaddr, c: *mut socklen_t) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_accept4, a, b, c, 0) })
}
unsafe extern "C" fn sys_accept4(a: c_int, b: *mut sockaddr, c: *mut socklen_t, d: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_accept4, a, b, c, d) })
}
unsafe extern "C" fn sys_getsockname(a: c_int, b: *mut sockaddr, c: *mut socklen_t) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_getsockname, a, b, c) })
}
unsafe extern "C" fn sys_getpeername(a: c_int, b: *mut sockaddr, c: *mut socklen_t) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_getpeername, a, b, c) })
}
unsafe extern "C" fn sys_setsockopt(
    a: c_int,
    b: c_int,
    c: c_int,
    d: *const c_void,
    e: socklen_t,
) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_setsockopt, a, b, c, d, e) })
}
unsafe extern "C" fn sys_getsockopt(
    a: c_int,
    b: c_int,
    c: c_int,
    d: *mut c_void,
    e: *mut socklen_t,
) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_getsockopt, a, b, c, d, e) })
}
unsafe extern "C" fn sys_close(a: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_close, a) })
}
unsafe extern "C" fn sys_shutdown(a: c_int, b: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_shutdown, a, b) })
}
unsafe extern "C" fn sys_dup(a: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_dup, a) })
}
unsafe extern "C" fn sys_dup2(a: c_int, b: c_int) -> c_int {
    if a == b {
        // dup2(fd, fd) checks fd and returns it.
        return if unsafe { libc::fcntl(a, libc::F_GETFD) } < 0 {
            -1
        } else {
            a
        };
    }
    ret(unsafe { libc::syscall(libc::SYS_dup3, a, b, 0) })
}
unsafe extern "C" fn sys_dup3(a: c_int, b: c_int, c: c_int) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_dup3, a, b, c) })
}
unsafe extern "C" fn sys_epoll_ctl(a: c_int, b: c_int, c: c_int, d: *mut epoll_event) -> c_int {
    ret(unsafe { libc::syscall(libc::SYS_epoll_ctl, a, b, c, d) })
}

macro_rules! resolve {
    ($name:literal, $fallback:ident as $ty:ty) => {{
        // SAFETY: a NUL-terminated name; RTLD_NEXT finds the next definition after us.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, concat!($name, "\0").as_ptr().cast()) };
        if p.is_null() {
            $fallback as $ty
        } else {
            // SAFETY: libc's definition has exactly the C signature of the fallback.
            unsafe { core::mem::transmute::<*mut c_void, $ty>(p) }
        }
    }};
}

static REAL: OnceLock<Real> = OnceLock::new();

/// libc's versions of the interposed functions.
pub fn real() -> &'static Real {
    REAL.get_or_init(|| Real {
        socket: resolve!("socket", sys_socket as SocketFn),
        connect: resolve!("connect", sys_connect as AddrFn),
        bind: resolve!("bind", sys_bind as AddrFn),
        listen: resolve!("listen", sys_listen as Int2Fn),
        accept: resolve!("accept", sys_accept as GetAddrFn),
        accept4: resolve!("accept4", sys_accept4 as Accept4Fn),
        getsockname: resolve!("getsockname", sys_getsockname as GetAddrFn),
        getpeername: resolve!("getpeername", sys_getpeername as GetAddrFn),
        setsockopt: resolve!("setsockopt", sys_setsockopt as SetOptFn),
        getsockopt: resolve!("getsockopt", sys_getsockopt as GetOptFn),
        close: resolve!("close", sys_close as IntFn),
        shutdown: resolve!("shutdown", sys_shutdown as Int2Fn),
        dup: resolve!("dup", sys_dup as IntFn),
        dup2: resolve!("dup2", sys_dup2 as Int2Fn),
        dup3: resolve!("dup3", sys_dup3 as Int3Fn),
        epoll_ctl: resolve!("epoll_ctl", sys_epoll_ctl as EpollCtlFn),
        fcntl: resolve_fcntl(b"fcntl\0"),
        fcntl64: resolve_fcntl(b"fcntl64\0"),
    })
}
