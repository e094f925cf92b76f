//! `bind` and `connect`: the client side. The decisions are `route`'s; this carries them
//! out (the vsock socket, its options and port, the replacement of the descriptor).

use libc::{c_int, sockaddr, socklen_t};

use super::sys::{self, errno, fail, fd_flags, KeepErrno, Own};
use crate::addr::{self, FdFlags, V4};
use crate::config::config;
use crate::log::errno_name;
use crate::map::View;
use crate::real::real;
use crate::route::{self, Attempt, Connect, ConnectPlan, Reconnect, Target, VsockState};
use crate::source;
use crate::table::{self, Cand, Entry, Vsock};

/// `bind()`: remembered for the listen/connect decisions.
///
/// # Safety
/// As `bind(2)`.
pub unsafe fn bind(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    let r = real();
    if let Some(Entry::Listener(l)) = table::get(fd) {
        // SAFETY: forwarding to the socket the program thinks it has.
        return unsafe { (r.bind)(l.hidden.tcp, a, len) };
    }
    // SAFETY: forwarding.
    let rc = unsafe { (r.bind)(fd, a, len) };
    if rc == 0 && table::tracked(fd) {
        let _e = KeepErrno::new();
        // SAFETY: the kernel just read `len` bytes from `a`.
        let inet = unsafe { addr::parse(a, len) };
        table::update(fd, |e| {
            if let Entry::Cand(c) = e {
                c.bound = inet;
            }
        });
    }
    rc
}

/// `connect()`.
///
/// # Safety
/// As `connect(2)`.
pub unsafe fn connect(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    let entry = table::get(fd);
    // SAFETY: the caller passes `len` readable bytes (the kernel would fault otherwise,
    // and we read no more than it would).
    let inet = unsafe { addr::parse(a, len) };
    let call = Call { fd, a, len };
    match route::connect_call(fd, entry, inet) {
        // SAFETY: forwarding the caller's arguments.
        Connect::Real(to) => unsafe { (real().connect)(to, a, len) },
        // SAFETY: as above.
        Connect::Cand(c, dest) => unsafe { connect_cand(call, c, dest) },
        // SAFETY: as above.
        Connect::Vsock(v, dest) => unsafe { connect_vsock(call, v, dest) },
        Connect::Fail(e) => fail(e),
    }
}

/// The program's `connect()` call, made as it is when the connection stays TCP.
#[derive(Clone, Copy)]
struct Call {
    fd: c_int,
    a: *const sockaddr,
    len: socklen_t,
}

impl Call {
    /// The connection stays TCP: the real connect. Once it is under way the descriptor
    /// is an ordinary TCP connection and is forgotten (a failed one stays managed, since
    /// a program may connect it again).
    ///
    /// # Safety
    /// As `connect(2)` (the program's arguments).
    unsafe fn tcp(self) -> c_int {
        // SAFETY: forwarding.
        let rc = unsafe { (real().connect)(self.fd, self.a, self.len) };
        if rc == 0 || errno() == libc::EINPROGRESS {
            let _e = KeepErrno::new();
            table::remove(self.fd);
        }
        rc
    }

    /// The connection stays TCP, logged with `why`.
    ///
    /// # Safety
    /// As [`Call::tcp`].
    unsafe fn tcp_because(self, dest: V4, why: &str) -> c_int {
        plog!("connect {dest} -> tcp ({why})");
        // SAFETY: as for `tcp`.
        unsafe { self.tcp() }
    }
}

/// Why the vsock attempt stopped before its `connect()`.
enum Stop {
    /// No vsock path (`socket(AF_VSOCK)` failed): this step and errno.
    Unavailable(&'static str, c_int),
    /// The connection stays TCP, for this reason.
    Tcp(String),
}

/// `connect()` of a TCP socket of ours to an IPv4 destination.
///
/// # Safety
/// As `connect(2)`.
unsafe fn connect_cand(call: Call, c: Cand, dest: V4) -> c_int {
    let fd = call.fd;
    let snap = source::current();
    let view = snap.view();
    let route = view.route(dest.ip);
    let t = match route::connect_plan(&c, dest, route, || sys::v6only(fd, false)) {
        // SAFETY: the program's arguments (all calls below too).
        ConnectPlan::Tcp(Some(why)) => return unsafe { call.tcp_because(dest, &why) },
        // SAFETY: as above.
        ConnectPlan::Tcp(None) => return unsafe { call.tcp() },
        ConnectPlan::Vsock(t) => t,
    };
    let Some(flags) = fd_flags(fd) else {
        // The kernel reports the bad descriptor.
        // SAFETY: as above.
        return unsafe { call.tcp() };
    };
    let v = match vsock_client(&c, t, flags) {
        Ok(v) => v,
        // SAFETY: as above.
        Err(Stop::Unavailable(what, e)) => return unsafe { unavailable(call, dest, t, what, e) },
        // SAFETY: as above.
        Err(Stop::Tcp(why)) => return unsafe { call.tcp_because(dest, &why) },
    };
    let rc = sys::vm_call(v.0, true, t.cid, t.port);
    let e = errno();
    let outcome = route::attempt((rc < 0).then_some(e));
    match outcome {
        Attempt::Connected | Attempt::InProgress => {}
        Attempt::Unavailable => {
            drop(v);
            // SAFETY: as above.
            return unsafe { unavailable(call, dest, t, "connect", e) };
        }
        Attempt::Answer => {
            plog!(
                "connect {dest} -> vsock CID {} port {}: {}",
                t.cid,
                t.port,
                errno_name(e)
            );
            drop(v);
            return fail(e);
        }
    }
    if let Err(why) = install(fd, v, &c, dest, flags, &view) {
        // SAFETY: as above.
        return unsafe { call.tcp_because(dest, &why) };
    }
    let in_progress = outcome == Attempt::InProgress;
    plog!(
        "connect {dest} -> vsock CID {} port {}{}",
        t.cid,
        t.port,
        if in_progress { " (in progress)" } else { "" }
    );
    if in_progress {
        fail(libc::EINPROGRESS)
    } else {
        0
    }
}

/// The vsock socket that replaces the TCP socket `c` (flags `flags`), not yet connected:
/// the program's `O_NONBLOCK`, its options replayed, bound to its port if it had one.
fn vsock_client(c: &Cand, t: Target, flags: FdFlags) -> Result<Own, Stop> {
    let v = sys::own_socket(libc::AF_VSOCK, route::replacement_type(flags))
        .map_err(|e| Stop::Unavailable("socket", e))?;
    if let Err(what) = sys::replay(v.0, &c.kopts, c.buf) {
        let what = format!("option {what} cannot be set on vsock");
        return Err(Stop::Tcp(route::co_located_but(t.domid, &what)));
    }
    if t.bind_port != 0 && sys::vm_call(v.0, false, libc::VMADDR_CID_ANY, t.bind_port) < 0 {
        let what = format!(
            "vsock port {} cannot be bound: {}",
            t.bind_port,
            errno_name(errno())
        );
        return Err(Stop::Tcp(route::co_located_but(t.domid, &what)));
    }
    Ok(v)
}

/// Puts the vsock socket `v`, connected or connecting to `dest`, in place of the
/// program's `fd` (the TCP socket `c`, flags `flags`) and re-makes the program's epoll
/// registrations on it. `Err`: why the connection stays TCP.
fn install(
    fd: c_int,
    v: Own,
    c: &Cand,
    dest: V4,
    flags: FdFlags,
    view: &View,
) -> Result<(), String> {
    let entry = Entry::Vsock(route::connected(c, dest, view));
    let regs = sys::live_epoll_regs(fd, &c.epoll);
    let installed = sys::replace(&v, fd, flags, entry);
    drop(v);
    installed.map_err(|e| {
        let e = errno_name(e);
        format!("vsock socket could not replace the descriptor: {e}")
    })?;
    sys::readd_epoll(fd, &regs);
    Ok(())
}

/// No vsock path (`what` failed with `e`): TCP instead, or `e` if strict.
///
/// # Safety
/// As `connect(2)` (the program's arguments in `call`).
unsafe fn unavailable(call: Call, dest: V4, t: Target, what: &str, e: c_int) -> c_int {
    if config().strict {
        plog!(
            "connect {dest} -> vsock CID {} port {}: {what} failed ({}), no fallback (strict)",
            t.cid,
            t.port,
            errno_name(e)
        );
        fail(e)
    } else {
        plog!(
            "connect {dest} -> vsock CID {} port {} unavailable ({what}: {}), tcp instead",
            t.cid,
            t.port,
            errno_name(e)
        );
        // SAFETY: the program's arguments.
        unsafe { call.tcp() }
    }
}

/// `connect()` again on a descriptor that is already vsock.
///
/// # Safety
/// As `connect(2)`.
unsafe fn connect_vsock(call: Call, v: Vsock, dest: V4) -> c_int {
    let fd = call.fd;
    let route = source::current().view().route(dest.ip);
    match route::reconnect(route, || vsock_state(fd)) {
        Reconnect::Vsock { cid } => {
            let rc = sys::vm_call(fd, true, cid, u32::from(dest.port));
            if rc == 0 || errno() == libc::EINPROGRESS {
                let _e = KeepErrno::new();
                table::update(fd, |e| {
                    if let Entry::Vsock(x) = e {
                        x.peer = dest;
                    }
                });
            }
            rc
        }
        Reconnect::Fail(e) => fail(e),
        // SAFETY: the program's arguments.
        Reconnect::Tcp(why) => unsafe { back_to_tcp(call, v.family, dest, why) },
    }
}

/// The state of the vsock connection on `fd`.
fn vsock_state(fd: c_int) -> VsockState {
    if sys::vsock_name(fd, true).is_ok() {
        return VsockState::Connected;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd, no wait.
    if unsafe { libc::poll(&mut p, 1, 0) } == 0 {
        VsockState::Connecting
    } else {
        VsockState::Failed
    }
}

/// A failed vsock connection: back to a fresh TCP socket of `family`, which connects.
///
/// # Safety
/// As `connect(2)` (the program's arguments in `call`).
unsafe fn back_to_tcp(call: Call, family: c_int, dest: V4, why: &str) -> c_int {
    let Some(flags) = fd_flags(call.fd) else {
        return fail(libc::EBADF);
    };
    let Ok(t) = sys::own_socket(family, route::replacement_type(flags)) else {
        return -1;
    };
    let ok = sys::replace(&t, call.fd, flags, Entry::Cand(Cand::new(family))).is_ok();
    drop(t);
    if !ok {
        return -1;
    }
    // SAFETY: the program's arguments.
    unsafe { call.tcp_because(dest, why) }
}
