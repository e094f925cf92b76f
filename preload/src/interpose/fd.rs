//! `socket`, `close`, the `dup` family, `fcntl`, `shutdown` and `epoll_ctl`: the table
//! follows the program's descriptors.

use libc::{c_int, epoll_event};

use super::sys::{self, KeepErrno};
use crate::addr;
use crate::config::config;
use crate::real::real;
use crate::route;
use crate::table::{self, Cand, Entry};

/// `socket()`: AF_INET/AF_INET6 stream sockets are created as usual and remembered.
///
/// # Safety
/// As `socket(2)`.
pub unsafe fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    let fd = unsafe { (real().socket)(domain, ty, proto) };
    if fd < 0 {
        return fd;
    }
    let _e = KeepErrno::new();
    if addr::is_tcp_socket(domain, ty, proto) && !config().disabled {
        table::insert(fd, Entry::Cand(Cand::new(domain)));
    } else {
        table::remove(fd);
    }
    fd
}

/// `close()`.
///
/// # Safety
/// As `close(2)`.
pub unsafe fn close(fd: c_int) -> c_int {
    if !table::tracked(fd) {
        // SAFETY: forwarding.
        return unsafe { (real().close)(fd) };
    }
    let old = table::with(|t| t.remove(fd));
    // SAFETY: forwarding.
    let rc = unsafe { (real().close)(fd) };
    let _e = KeepErrno::new();
    if let Some(Entry::Listener(l)) = &old {
        sys::follow_cloexec(&l.hidden);
    }
    drop(old); // a listener's hidden descriptors, if this was the last reference
    rc
}

/// `dup()`.
///
/// # Safety
/// As `dup(2)`.
pub unsafe fn dup(fd: c_int) -> c_int {
    // SAFETY: forwarding.
    let n = unsafe { (real().dup)(fd) };
    if n >= 0 {
        let _e = KeepErrno::new();
        table::dup(fd, n);
        listener_cloexec(n);
    }
    n
}

/// After a change of the descriptor flags of `fd` (or a new number for it): if it is a
/// dual listener, its hidden listeners follow (see [`sys::follow_cloexec`]).
fn listener_cloexec(fd: c_int) {
    if let Some(Entry::Listener(l)) = table::get(fd) {
        sys::follow_cloexec(&l.hidden);
    }
}

/// `fcntl()`/`fcntl64()` (`wide`): `F_SETFD` on a dual listener carries its
/// close-on-exec flag to the hidden listeners; everything else goes straight to libc.
///
/// # Safety
/// As `fcntl(2)` with one argument.
pub unsafe fn fcntl(wide: bool, fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: forwarding.
    let rc = unsafe { crate::real::fcntl(wide, fd, cmd, arg) };
    if rc >= 0 && table::tracked(fd) {
        let _e = KeepErrno::new();
        match cmd {
            libc::F_SETFD => listener_cloexec(fd),
            // A new number for the same file, as dup() makes.
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
                table::dup(fd, rc);
                listener_cloexec(rc);
            }
            _ => {}
        }
    }
    rc
}

/// `dup2()`/`dup3()` (`flags` = `None` for dup2).
///
/// # Safety
/// As `dup2(2)`.
pub unsafe fn dup23(old: c_int, new: c_int, flags: Option<c_int>) -> c_int {
    // SAFETY: forwarding.
    let n = unsafe {
        match flags {
            None => (real().dup2)(old, new),
            Some(f) => (real().dup3)(old, new, f),
        }
    };
    if n >= 0 && old != new {
        let _e = KeepErrno::new();
        table::dup(old, new);
        listener_cloexec(new);
    }
    n
}

/// `shutdown()`: on a dual listener, both listeners (wakes blocked accepts).
///
/// # Safety
/// As `shutdown(2)`.
pub unsafe fn shutdown(fd: c_int, how: c_int) -> c_int {
    let r = real();
    match table::get(fd) {
        // SAFETY: our descriptors.
        Some(Entry::Listener(l)) => sys::both(&l.hidden, |h| unsafe { (r.shutdown)(h, how) }),
        // SAFETY: forwarding.
        _ => unsafe { (r.shutdown)(fd, how) },
    }
}

/// `epoll_ctl()`: registrations of not yet connected sockets are remembered (to re-make
/// them when the file is replaced); `EPOLLEXCLUSIVE` is dropped for a dual listener (the
/// kernel refuses it on an epoll instance).
///
/// # Safety
/// As `epoll_ctl(2)`.
pub unsafe fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int {
    let r = real();
    match table::get(fd) {
        Some(Entry::Listener(_)) if !ev.is_null() => {
            // SAFETY: the caller's event.
            let mut copy = unsafe { ev.read_unaligned() };
            copy.events &= !(libc::EPOLLEXCLUSIVE as u32);
            // SAFETY: forwarding with our copy.
            unsafe { (r.epoll_ctl)(epfd, op, fd, &mut copy) }
        }
        Some(Entry::Cand(_)) => {
            // SAFETY: forwarding.
            let rc = unsafe { (r.epoll_ctl)(epfd, op, fd, ev) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let event = if ev.is_null() {
                    None
                } else {
                    // SAFETY: the caller's event.
                    let e = unsafe { ev.read_unaligned() };
                    Some((e.events, e.u64))
                };
                table::update(fd, |e| {
                    if let Entry::Cand(c) = e {
                        route::note_epoll(&mut c.epoll, epfd, op, event);
                    }
                });
            }
            rc
        }
        // SAFETY: forwarding.
        _ => unsafe { (r.epoll_ctl)(epfd, op, fd, ev) },
    }
}
