//! `bind` and `connect`: the client side. The decisions are `route`'s; this carries them
//! out (the vsock socket, its options and port, the replacement of the descriptor).

use core::mem::size_of;
use std::time::Instant;

use libc::{c_int, sockaddr, socklen_t};

use super::sys::{self, errno, fail, fd_flags, KeepErrno, Own};
use crate::addr::{self, FdFlags, V4};
use crate::config::config;
use crate::fallback;
use crate::log::errno_name;
use crate::map::View;
use crate::opts;
use crate::real::real;
use crate::route::{self, Attempt, Connect, ConnectPlan, Reconnect, Target, VsockState, Wait};
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
    if let Some(why) = remembered_failure(dest, t) {
        // SAFETY: as above.
        return unsafe { call.tcp_because(dest, &route::co_located_but(t.domid, &why)) };
    }
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
    let started = Instant::now();
    let err = attempt_vsock(&v, t, flags).err();
    let ms = started.elapsed().as_millis();
    let key = memory_key(dest, t);
    match route::attempt(err, config().strict) {
        Attempt::Connected => fallback::worked(key),
        Attempt::Fallback => {
            let e = err.unwrap_or(libc::EIO);
            drop(v);
            fallback::remember(key, e, config().fallback_ttl);
            plog!(
                "connect {dest} -> vsock CID {} port {} failed ({}, {ms} ms), tcp instead",
                t.cid,
                t.port,
                errno_name(e)
            );
            // SAFETY: as above.
            return unsafe { call.tcp() };
        }
        Attempt::Fail => {
            let e = err.unwrap_or(libc::EIO);
            let strict = if config().strict {
                ", no fallback (strict)"
            } else {
                ""
            };
            plog!(
                "connect {dest} -> vsock CID {} port {}: {} ({ms} ms){strict}",
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
    plog!(
        "connect {dest} -> vsock CID {} port {} ({ms} ms)",
        t.cid,
        t.port
    );
    // A non-blocking connect says it is under way, as TCP's does; the socket is
    // writable at once.
    if flags.nonblock {
        fail(libc::EINPROGRESS)
    } else {
        0
    }
}

/// The fallback memory's key of a vsock attempt to `dest`, sent to `t`.
fn memory_key(dest: V4, t: Target) -> fallback::Key {
    fallback::Key {
        ip: dest.ip,
        port: dest.port,
        cid: t.cid,
    }
}

/// The destination `t` of a vsock attempt failed within the fallback memory's time to
/// live: `Some(the log reason)` to go to TCP straight away.
fn remembered_failure(dest: V4, t: Target) -> Option<String> {
    let key = memory_key(dest, t);
    let miss = fallback::recent(key, config().fallback_ttl)?;
    Some(format!(
        "vsock CID {} port {} failed with {} {} ms ago",
        t.cid,
        t.port,
        errno_name(miss.errno),
        miss.age.as_millis()
    ))
}

/// Connects the vsock socket `v` to `t` and waits for the outcome, at most the connect
/// budget (and the socket's own connect timeout is set to it), whatever the program's
/// `O_NONBLOCK`: only a finished attempt can still fall back to TCP on the same
/// descriptor, invisibly. A healthy co-located peer answers within milliseconds; only
/// a dead or wedged one costs the budget, once per fallback memory's time to live.
/// `v` gets the program's `flags` back before it returns. `Err`: the attempt's errno.
fn attempt_vsock(v: &Own, t: Target, flags: FdFlags) -> Result<(), c_int> {
    let budget = config().connect_budget;
    let tv = libc::timeval {
        tv_sec: budget.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(budget.subsec_micros()),
    };
    // SAFETY: a timeval viewed as its bytes, for the option's length.
    let tv_bytes = unsafe {
        core::slice::from_raw_parts(
            (&tv as *const libc::timeval).cast::<u8>(),
            size_of::<libc::timeval>(),
        )
    };
    // Best effort: without it the core's default (2 s) applies.
    let _ = sys::setsockopt_raw(
        v.0,
        opts::SOL_VSOCK,
        opts::SO_VM_SOCKETS_CONNECT_TIMEOUT,
        tv_bytes,
    );
    sys::set_nonblock(v.0, true)?;
    // A signal ends a blocking program's wait with EINTR, as it would end its TCP
    // connect; a non-blocking program's connect does not wait for it.
    let result = wait_connected(v.0, t, budget.as_millis() as u64, !flags.nonblock);
    let restored = sys::set_nonblock(v.0, flags.nonblock);
    result.and(restored)
}

/// The non-blocking vsock connect of `fd` to `t` and the wait for its outcome
/// (`interruptible`: a signal ends it with `EINTR`).
fn wait_connected(fd: c_int, t: Target, budget_ms: u64, interruptible: bool) -> Result<(), c_int> {
    if sys::vm_call(fd, true, t.cid, t.port) == 0 {
        return Ok(());
    }
    let e = errno();
    if e != libc::EINPROGRESS {
        return Err(e);
    }
    let started = Instant::now();
    let mut ready = false;
    loop {
        let elapsed = started.elapsed().as_millis() as u64;
        let so_error =
            || sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or_else(|e| e);
        match route::wait_step(ready, elapsed, budget_ms, so_error) {
            Wait::Done(None) => return Ok(()),
            Wait::Done(Some(e)) => return Err(e),
            Wait::Poll(ms) => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one pollfd.
                let n = unsafe { libc::poll(&mut p, 1, ms) };
                if n < 0 && errno() == libc::EINTR && interruptible {
                    return Err(libc::EINTR);
                }
                ready = n > 0;
            }
        }
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
        let key = memory_key(dest, t);
        fallback::remember(key, e, config().fallback_ttl);
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
