//! `listen` and `accept`: the server side. `route` decides which listeners also listen on
//! vsock; this builds the dual listener (an epoll instance over a hidden TCP and a hidden
//! vsock listener, `dup3()`ed over the program's descriptor) and accepts from both.

use core::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use libc::{c_int, epoll_event, sockaddr, sockaddr_vm, socklen_t};

use super::sys::{self, errno, fail, fd_flags, KeepErrno, Own};
use crate::addr::{self, FdFlags, Inet};
use crate::log::errno_name;
use crate::opts::BufReq;
use crate::real::real;
use crate::route::{self, ListenPlan, Side};
use crate::source;
use crate::table::{self, Cand, Entry, Hidden, Listener};

/// `listen()`.
///
/// # Safety
/// As `listen(2)`.
pub unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
    let r = real();
    match table::get(fd) {
        // SAFETY: our descriptors; a new backlog for both.
        Some(Entry::Listener(l)) => sys::both(&l.hidden, |h| unsafe { (r.listen)(h, backlog) }),
        Some(Entry::Cand(c)) => {
            // SAFETY: forwarding.
            let rc = unsafe { (r.listen)(fd, backlog) };
            if rc == 0 {
                let _e = KeepErrno::new();
                if !make_dual(fd, c, backlog) {
                    // A TCP-only listener is an ordinary socket from now on.
                    table::remove(fd);
                }
            }
            rc
        }
        // SAFETY: forwarding.
        _ => unsafe { (r.listen)(fd, backlog) },
    }
}

/// The address `fd` is bound to, if it is an AF_INET/AF_INET6 one.
pub(super) fn sock_name(fd: c_int) -> Option<Inet> {
    let mut b = [0u8; 28];
    let mut len = b.len() as socklen_t;
    // SAFETY: buffer and length match.
    if unsafe { (real().getsockname)(fd, b.as_mut_ptr().cast(), &mut len) } < 0 {
        return None;
    }
    addr::parse_bytes(&b[..(len as usize).min(b.len())])
}

/// Turns the listening TCP socket `fd` into a dual TCP + vsock listener if `route` says
/// so and vsock works; `false`: it stays TCP only (on any failure too).
fn make_dual(fd: c_int, c: Cand, backlog: c_int) -> bool {
    let plan = route::listen_plan(
        &c,
        sock_name(fd),
        |ip| source::current().view().is_mapped_to_self(ip),
        || sys::v6only(fd, true),
    );
    let (local_ip, port, shown) = match plan {
        ListenPlan::TcpOnly(why) => {
            if let Some((shown, why)) = why {
                plog!("listen {shown} -> tcp only ({why})");
            }
            return false;
        }
        ListenPlan::Dual {
            local_ip,
            port,
            shown,
        } => (local_ip, port, shown),
    };
    let Some(flags) = fd_flags(fd) else {
        return false;
    };
    let dual = Dual {
        fd,
        flags,
        backlog,
        local_ip,
        port,
    };
    match dual.install(&c) {
        Ok(()) => {
            plog!("listen {shown} -> tcp + vsock port {port}");
            true
        }
        Err(why) => {
            plog!("listen {shown} -> tcp only ({why})");
            false
        }
    }
}

/// A dual listener to be made of the listening TCP socket `fd`.
struct Dual {
    fd: c_int,
    flags: FdFlags,
    backlog: c_int,
    local_ip: Option<[u8; 4]>,
    port: u16,
}

impl Dual {
    /// Builds the listener from `c` (the entry of `fd`) and puts it in place of `fd`.
    /// `Err`: why it stays TCP only (nothing changed).
    fn install(&self, c: &Cand) -> Result<(), String> {
        let fd = self.fd;
        let v = self.vsock_listener(c.buf)?;
        let t = sys::ctl(fd, libc::F_DUPFD_CLOEXEC, sys::hidden_base());
        if t < 0 {
            return Err(errno_name(errno()));
        }
        let t = Own(t);
        let ep = epoll_over([t.0, v.0], self.flags.nonblock)?;
        let hidden = Arc::new(Hidden {
            tcp: t.0,
            vsock: v.0,
            turn: Default::default(),
        });
        let listener = route::listener(c, hidden, self.local_ip, self.port);
        let regs = sys::live_epoll_regs(fd, &c.epoll);
        let installed = sys::replace(&ep, fd, self.flags, Entry::Listener(listener));
        // The hidden descriptors are owned by the entry now; if it could not be
        // installed, dropping it has closed them: not twice.
        t.release();
        v.release();
        installed.map_err(|e| format!("dup3: {}", errno_name(e)))?;
        drop(ep);
        // The TCP listener is only reached through the epoll instance now: non-blocking,
        // the program's blocking mode is the epoll descriptor's.
        if let Some(Entry::Listener(l)) = table::get(fd) {
            let _ = sys::set_nonblock(l.hidden.tcp, true);
            // Inherited across exec when the program's descriptor is.
            sys::follow_cloexec(&l.hidden);
        }
        sys::readd_epoll(fd, &regs);
        Ok(())
    }

    /// The hidden vsock listener (non-blocking, high, close-on-exec) on our port, with
    /// the buffer size asked for.
    fn vsock_listener(&self, buf: BufReq) -> Result<Own, String> {
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let v =
            sys::own_socket(libc::AF_VSOCK, ty).map_err(|e| format!("vsock: {}", errno_name(e)))?;
        let v = Own(sys::move_high(v.release()));
        if let Some(size) = buf.size() {
            let _ = sys::set_vsock_buffer(v.0, size);
        }
        let port = u32::from(self.port);
        let r = real();
        let bound = sys::vm_call(v.0, false, libc::VMADDR_CID_ANY, port) == 0;
        // SAFETY: listen on our own socket, once it is bound.
        let ok = bound && unsafe { (r.listen)(v.0, self.backlog) } == 0;
        if !ok {
            return Err(format!("vsock port {port}: {}", errno_name(errno())));
        }
        Ok(v)
    }
}

/// A new epoll instance over the `members` (level-triggered `EPOLLIN`, data: their
/// index), non-blocking if `nonblock`.
fn epoll_over(members: [c_int; 2], nonblock: bool) -> Result<Own, String> {
    let r = real();
    let epoll_err = || format!("epoll: {}", errno_name(errno()));
    // SAFETY: epoll instance creation.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(epoll_err());
    }
    let ep = Own(ep);
    for (i, h) in members.into_iter().enumerate() {
        let mut ev = epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: valid descriptors and event.
        if unsafe { (r.epoll_ctl)(ep.0, libc::EPOLL_CTL_ADD, h, &mut ev) } < 0 {
            return Err(epoll_err());
        }
    }
    if nonblock {
        sys::ctl(ep.0, libc::F_SETFL, libc::O_NONBLOCK);
    }
    Ok(ep)
}

/// `accept()`/`accept4()` (`flags` = `None` for accept).
///
/// # Safety
/// As `accept4(2)`.
pub unsafe fn accept(
    fd: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: Option<c_int>,
) -> c_int {
    let Some(Entry::Listener(l)) = table::get(fd) else {
        // SAFETY: forwarding.
        return unsafe { accept_plain(fd, a, len, flags) };
    };
    let flags = match route::accept_flags(flags) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let Some(fdf) = fd_flags(fd) else {
        return fail(libc::EBADF);
    };
    // SO_RCVTIMEO on the listener bounds a blocking accept, as for TCP.
    let timeout_ms = if fdf.nonblock {
        None
    } else {
        sys::rcvtimeo_ms(l.hidden.tcp)
    };
    let call = AcceptCall { a, len, flags };
    let start = Instant::now();
    loop {
        for side in route::accept_order(l.hidden.turn.fetch_add(1, Ordering::Relaxed)) {
            // SAFETY: the caller's buffers, as for accept.
            let got = unsafe { call.one(&l, side) };
            match got {
                Ok(Some(n)) => return n,
                Ok(None) => {}
                Err(e) => return fail(e),
            }
        }
        let elapsed_ms = start.elapsed().as_millis() as i64;
        let Some(wait) = route::accept_wait(fdf.nonblock, timeout_ms, elapsed_ms) else {
            return fail(libc::EAGAIN);
        };
        if poll_both(&l, wait) < 0 {
            return -1; // EINTR, as a blocking accept interrupted by a signal
        }
    }
}

/// `accept` on a descriptor that is not a dual listener: the real one (a descriptor
/// number reused by the new connection loses any stale entry).
///
/// # Safety
/// As `accept4(2)`.
unsafe fn accept_plain(
    fd: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: Option<c_int>,
) -> c_int {
    let r = real();
    // SAFETY: forwarding.
    let n = unsafe {
        match flags {
            None => (r.accept)(fd, a, len),
            Some(f) => (r.accept4)(fd, a, len, f),
        }
    };
    if n >= 0 && table::tracked(n) {
        let _e = KeepErrno::new();
        table::remove(n);
    }
    n
}

/// Waits up to `wait` ms (-1: no limit) for a client on either listener of `l`.
fn poll_both(l: &Listener, wait: c_int) -> c_int {
    let mut p = [l.hidden.tcp, l.hidden.vsock].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: two pollfds.
    unsafe { libc::poll(p.as_mut_ptr(), 2, wait) }
}

/// The program's accept buffers and flags.
#[derive(Clone, Copy)]
struct AcceptCall {
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
}

impl AcceptCall {
    /// One non-blocking accept on one listener of `l`: `Ok(None)` if nothing is pending.
    ///
    /// # Safety
    /// `a`/`len` as for `accept4(2)`.
    unsafe fn one(self, l: &Listener, side: Side) -> Result<Option<c_int>, c_int> {
        // SAFETY: as for this function.
        unsafe {
            match side {
                Side::Tcp => self.tcp(l),
                Side::Vsock => self.vsock(l),
            }
        }
    }

    /// # Safety
    /// As [`AcceptCall::one`].
    unsafe fn tcp(self, l: &Listener) -> Result<Option<c_int>, c_int> {
        // SAFETY: forwarding to the hidden TCP listener.
        let n = unsafe { (real().accept4)(l.hidden.tcp, self.a, self.len, self.flags) };
        if n >= 0 {
            let _e = KeepErrno::new();
            table::remove(n);
            return Ok(Some(n));
        }
        let e = errno();
        if e == libc::EAGAIN || e == libc::EWOULDBLOCK {
            Ok(None)
        } else {
            Err(e)
        }
    }

    /// # Safety
    /// As [`AcceptCall::one`].
    unsafe fn vsock(self, l: &Listener) -> Result<Option<c_int>, c_int> {
        // SAFETY: plain data.
        let mut sa: sockaddr_vm = unsafe { core::mem::zeroed() };
        let mut sl = size_of::<sockaddr_vm>() as socklen_t;
        let sa_ptr: *mut sockaddr = (&mut sa as *mut sockaddr_vm).cast();
        // SAFETY: buffer and length match.
        let n = unsafe { (real().accept4)(l.hidden.vsock, sa_ptr, &mut sl, self.flags) };
        if n < 0 {
            let e = errno();
            return if route::accept_error_is_fatal(e) {
                Err(e)
            } else {
                Ok(None)
            };
        }
        let _e = KeepErrno::new();
        let snap = source::current();
        let view = snap.view();
        let peer = route::shown_peer(sa.svm_cid, sa.svm_port, &view);
        for o in &l.inherit {
            let _ = sys::setsockopt_raw(n, o.level, o.opt, &o.val);
        }
        table::insert(n, Entry::Vsock(route::accepted(l, peer, &view)));
        let (enc, elen) = addr::encode(l.family, peer);
        // SAFETY: the caller's accept buffers.
        if let Err(e) = unsafe { addr::write_out(&enc[..elen], self.a, self.len) } {
            // SAFETY: the descriptor we just accepted.
            let _ = unsafe { super::fd::close(n) };
            return Err(e);
        }
        plog!(
            "accept vsock CID {} port {} on port {} as {peer}{}",
            sa.svm_cid,
            sa.svm_port,
            l.port,
            if peer.ip == [0; 4] {
                " (peer not in the map)"
            } else {
                ""
            }
        );
        Ok(Some(n))
    }
}
