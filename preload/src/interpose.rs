//! What the interposed calls do. `ffi.rs` exports them under libc's names.
//!
//! Rules kept throughout: a descriptor we do not manage goes straight to libc; the
//! table lock is never held across a call that can block or re-enter us; errno is what
//! the program would see from the call it made.

use core::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use libc::{c_int, c_void, epoll_event, sockaddr, sockaddr_vm, socklen_t};

use crate::addr::{self, FdFlags, Inet, V4};
use crate::config::config;
use crate::log::errno_name;
use crate::map::{self, Route};
use crate::opts::{self, BufReq, Class, Synth};
use crate::real::real;
use crate::source;
use crate::table::{self, Cand, Entry, Hidden, Listener, SetOpt, Vsock};

fn errno() -> c_int {
    // SAFETY: errno is thread-local.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// Returns -1 with errno `e`.
fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

/// Keeps errno across bookkeeping done after the real call.
struct KeepErrno(c_int);

impl KeepErrno {
    fn new() -> Self {
        KeepErrno(errno())
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// A descriptor of ours, closed on drop unless released.
struct Own(c_int);

impl Own {
    fn release(mut self) -> c_int {
        let fd = self.0;
        self.0 = -1;
        fd
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        if self.0 >= 0 {
            let _e = KeepErrno::new();
            // SAFETY: our descriptor, closed once.
            unsafe { (real().close)(self.0) };
        }
    }
}

/// Errors of a vsock attempt that mean "no vsock path here" (no AF_VSOCK, no transport
/// loaded, peer unknown to the transport): the connection falls back to TCP.
pub fn no_vsock_path(e: c_int) -> bool {
    matches!(
        e,
        libc::EAFNOSUPPORT
            | libc::ENODEV
            | libc::ENETUNREACH
            | libc::EHOSTUNREACH
            | libc::EPROTONOSUPPORT
            | libc::ESOCKTNOSUPPORT
    )
}

fn fd_flags(fd: c_int) -> Option<FdFlags> {
    // SAFETY: fcntl queries.
    let (fl, fdf) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    if fl < 0 || fdf < 0 {
        None
    } else {
        Some(FdFlags::from_fcntl(fl, fdf))
    }
}

/// The lowest number hidden descriptors get: high, so that they do not take the small
/// numbers a program may expect (or `dup2` over), yet not so high that the descriptor
/// table grows much.
fn hidden_base() -> c_int {
    // SAFETY: getrlimit into a zeroed struct.
    let soft = unsafe {
        let mut rl: libc::rlimit = core::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur
        } else {
            1024
        }
    };
    (soft / 2).min(512) as c_int
}

/// Moves `fd` to a high number (close-on-exec); keeps it where it is if that fails.
fn move_high(fd: c_int) -> c_int {
    // SAFETY: fcntl dup; the old number is closed only if the dup worked.
    unsafe {
        let n = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, hidden_base());
        if n >= 0 {
            (real().close)(fd);
            n
        } else {
            fd
        }
    }
}

fn setsockopt_raw(fd: c_int, level: c_int, opt: c_int, val: &[u8]) -> Result<(), c_int> {
    // SAFETY: val is valid for its length.
    let rc =
        unsafe { (real().setsockopt)(fd, level, opt, val.as_ptr().cast(), val.len() as socklen_t) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn getsockopt_u64(fd: c_int, level: c_int, opt: c_int) -> Result<u64, c_int> {
    let mut v: u64 = 0;
    let mut len = size_of::<u64>() as socklen_t;
    // SAFETY: a u64 buffer of the given length.
    let rc = unsafe { (real().getsockopt)(fd, level, opt, (&mut v as *mut u64).cast(), &mut len) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

fn getsockopt_int(fd: c_int, level: c_int, opt: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: an int buffer of the given length.
    let rc =
        unsafe { (real().getsockopt)(fd, level, opt, (&mut v as *mut c_int).cast(), &mut len) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

/// Sets the vsock buffer size of `fd` (moving the min/max bound first when needed).
fn set_vsock_buffer(fd: c_int, size: u64) -> Result<(), c_int> {
    let min = getsockopt_u64(fd, opts::SOL_VSOCK, opts::SO_VM_SOCKETS_BUFFER_MIN_SIZE)?;
    let max = getsockopt_u64(fd, opts::SOL_VSOCK, opts::SO_VM_SOCKETS_BUFFER_MAX_SIZE)?;
    for (opt, v) in opts::buffer_calls(size, min, max) {
        setsockopt_raw(fd, opts::SOL_VSOCK, opt, &v.to_ne_bytes())?;
    }
    Ok(())
}

/// Replays recorded `SOL_SOCKET` options and the buffer size on a vsock socket.
fn replay(v: c_int, kopts: &[SetOpt], buf: BufReq) -> Result<(), String> {
    for o in kopts {
        setsockopt_raw(v, o.level, o.opt, &o.val)
            .map_err(|e| format!("{} ({})", opts::name(o.level, o.opt), errno_name(e)))?;
    }
    if let Some(size) = buf.size() {
        set_vsock_buffer(v, size).map_err(|e| format!("buffer size {size} ({})", errno_name(e)))?;
    }
    Ok(())
}

/// The recorded epoll registrations of `fd` that still exist: `EPOLL_CTL_MOD` with the
/// same event succeeds only if that epoll instance holds this very file (the program may
/// have closed its epoll descriptor and the number now names another instance).
fn live_epoll_regs(fd: c_int, regs: &[(c_int, u32, u64)]) -> Vec<(c_int, u32, u64)> {
    regs.iter()
        .copied()
        .filter(|&(epfd, events, data)| {
            let mut ev = epoll_event { events, u64: data };
            // SAFETY: a valid event.
            unsafe { (real().epoll_ctl)(epfd, libc::EPOLL_CTL_MOD, fd, &mut ev) == 0 }
        })
        .collect()
}

/// Re-makes the program's epoll registrations of `fd` after its file was replaced (the
/// old file's registrations went away with it).
fn readd_epoll(fd: c_int, regs: &[(c_int, u32, u64)]) {
    for &(epfd, events, data) in regs {
        let mut ev = epoll_event { events, u64: data };
        // SAFETY: a valid event; failures (epfd closed since) are ignored.
        unsafe { (real().epoll_ctl)(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
}

/// vsock `getsockname`/`getpeername` of `fd`: (cid, port).
fn vsock_name(fd: c_int, peer: bool) -> Result<(u32, u32), c_int> {
    // SAFETY: sockaddr_vm is plain data.
    let mut sa: sockaddr_vm = unsafe { core::mem::zeroed() };
    let mut len = size_of::<sockaddr_vm>() as socklen_t;
    let f = if peer {
        real().getpeername
    } else {
        real().getsockname
    };
    // SAFETY: buffer and length match.
    let rc = unsafe { f(fd, (&mut sa as *mut sockaddr_vm).cast(), &mut len) };
    if rc < 0 {
        return Err(errno());
    }
    if c_int::from(sa.svm_family) != libc::AF_VSOCK {
        return Err(libc::EINVAL);
    }
    Ok((sa.svm_cid, sa.svm_port))
}

// ---------------------------------------------------------------------------------------
// socket / close / dup

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
    }
    n
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
    }
    n
}

// ---------------------------------------------------------------------------------------
// bind / connect

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
    let r = real();
    let entry = table::get(fd);
    // SAFETY: the caller passes `len` readable bytes (the kernel would fault otherwise,
    // and we read no more than it would).
    let inet = unsafe { addr::parse(a, len) };
    match (entry, inet) {
        (Some(Entry::Cand(c)), Some(i)) => match i.v4_for(c.family) {
            // SAFETY: forwarding the caller's arguments.
            Some(dest) => unsafe { connect_cand(fd, c, dest, a, len) },
            None => unsafe { (r.connect)(fd, a, len) },
        },
        (Some(Entry::Vsock(v)), Some(i)) => match i.v4_for(v.family) {
            // SAFETY: as above.
            Some(dest) => unsafe { connect_vsock(fd, v, dest, a, len) },
            None => fail(libc::EAFNOSUPPORT),
        },
        // SAFETY: as above.
        (Some(Entry::Listener(l)), _) => unsafe { (r.connect)(l.hidden.tcp, a, len) },
        // SAFETY: as above.
        _ => unsafe { (r.connect)(fd, a, len) },
    }
}

/// The connection stays TCP: the real connect. Once it is under way the descriptor is
/// an ordinary TCP connection and is forgotten (a failed one stays managed, since a
/// program may connect it again).
unsafe fn tcp_connect(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarding.
    let rc = unsafe { (real().connect)(fd, a, len) };
    if rc == 0 || errno() == libc::EINPROGRESS {
        let _e = KeepErrno::new();
        table::remove(fd);
    }
    rc
}

unsafe fn connect_cand(fd: c_int, c: Cand, dest: V4, a: *const sockaddr, len: socklen_t) -> c_int {
    let snap = source::current();
    let view = snap.view();
    let (domid, cid) = match view.route(dest.ip) {
        Route::Tcp(why) => {
            plog!("connect {dest} -> tcp ({why})");
            // SAFETY: forwarding.
            return unsafe { tcp_connect(fd, a, len) };
        }
        Route::Vsock { domid, cid } => (domid, cid),
    };
    let why_tcp = if c.shared {
        Some("the socket has another descriptor (dup)".to_string())
    } else {
        c.tcp_only.clone().map(|o| format!("{o} is set"))
    };
    if let Some(w) = why_tcp {
        plog!("connect {dest} -> tcp (domain {domid} is co-located, but {w})");
        // SAFETY: forwarding.
        return unsafe { tcp_connect(fd, a, len) };
    }
    if c.family == libc::AF_INET6
        && getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(0) != 0
    {
        // The kernel refuses v4-mapped destinations on an IPv6-only socket.
        // SAFETY: forwarding.
        return unsafe { tcp_connect(fd, a, len) };
    }
    let strict = config().strict;
    let fallback = |what: &str, e: c_int| -> c_int {
        if strict {
            plog!(
                "connect {dest} -> vsock CID {cid} port {}: {what} failed ({}), no fallback (strict)",
                dest.port,
                errno_name(e)
            );
            fail(e)
        } else {
            plog!(
                "connect {dest} -> vsock CID {cid} port {} unavailable ({what}: {}), tcp instead",
                dest.port,
                errno_name(e)
            );
            // SAFETY: forwarding.
            unsafe { tcp_connect(fd, a, len) }
        }
    };
    let Some(flags) = fd_flags(fd) else {
        // SAFETY: forwarding (the kernel reports the bad descriptor).
        return unsafe { tcp_connect(fd, a, len) };
    };
    // The temporary descriptor is always close-on-exec; the final one gets the
    // program's FD_CLOEXEC from dup3.
    let ty = libc::SOCK_STREAM
        | libc::SOCK_CLOEXEC
        | FdFlags {
            nonblock: flags.nonblock,
            cloexec: false,
        }
        .sock_type_flags();
    // SAFETY: plain socket creation.
    let v = unsafe { (real().socket)(libc::AF_VSOCK, ty, 0) };
    if v < 0 {
        return fallback("socket", errno());
    }
    let v = Own(v);
    if let Err(what) = replay(v.0, &c.kopts, c.buf) {
        plog!("connect {dest} -> tcp (domain {domid} is co-located, but option {what} cannot be set on vsock)");
        drop(v);
        // SAFETY: forwarding.
        return unsafe { tcp_connect(fd, a, len) };
    }
    // A client bound to a specific port keeps that port on vsock too.
    let bound_port = c.bound.map_or(0, Inet::port);
    if bound_port != 0 {
        let sa = addr::vm(libc::VMADDR_CID_ANY, u32::from(bound_port));
        // SAFETY: a sockaddr_vm of its size.
        let rc = unsafe {
            (real().bind)(
                v.0,
                (&sa as *const sockaddr_vm).cast(),
                size_of::<sockaddr_vm>() as socklen_t,
            )
        };
        if rc < 0 {
            let e = errno();
            plog!("connect {dest} -> tcp (domain {domid} is co-located, but vsock port {bound_port} cannot be bound: {})", errno_name(e));
            drop(v);
            // SAFETY: forwarding.
            return unsafe { tcp_connect(fd, a, len) };
        }
    }
    let sa = addr::vm(cid, u32::from(dest.port));
    // SAFETY: a sockaddr_vm of its size.
    let rc = unsafe {
        (real().connect)(
            v.0,
            (&sa as *const sockaddr_vm).cast(),
            size_of::<sockaddr_vm>() as socklen_t,
        )
    };
    let e = errno();
    if rc < 0 && e != libc::EINPROGRESS {
        if no_vsock_path(e) {
            drop(v);
            return fallback("connect", e);
        }
        // A real answer from the peer's side (refused, timed out): the program's socket
        // stays an unconnected TCP socket, as after a failed TCP connect.
        plog!(
            "connect {dest} -> vsock CID {cid} port {}: {}",
            dest.port,
            errno_name(e)
        );
        drop(v);
        return fail(e);
    }
    let local_ip = match c.bound {
        Some(Inet::V4(b)) | Some(Inet::Mapped(b)) if b.ip != [0; 4] => b.ip,
        _ => view.own_ip(dest.ip).unwrap_or([0; 4]),
    };
    let entry = Entry::Vsock(Vsock {
        family: c.family,
        peer: dest,
        local_ip,
        emu: c.emu.clone(),
        buf: c.buf,
    });
    let regs = live_epoll_regs(fd, &c.epoll);
    let installed = table::with(|t| {
        // SAFETY: both descriptors are valid; dup3 atomically replaces the program's.
        if unsafe { (real().dup3)(v.0, fd, flags.dup3_flags()) } < 0 {
            return Err(errno());
        }
        t.insert(fd, entry);
        Ok(())
    });
    if let Err(e2) = installed {
        plog!(
            "connect {dest} -> tcp (vsock socket could not replace the descriptor: {})",
            errno_name(e2)
        );
        drop(v);
        // SAFETY: forwarding.
        return unsafe { tcp_connect(fd, a, len) };
    }
    drop(v);
    readd_epoll(fd, &regs);
    plog!(
        "connect {dest} -> vsock CID {cid} port {}{}",
        dest.port,
        if rc < 0 { " (in progress)" } else { "" }
    );
    if rc < 0 {
        fail(e)
    } else {
        0
    }
}

/// `connect()` again on a descriptor that is already vsock.
unsafe fn connect_vsock(
    fd: c_int,
    v: Vsock,
    dest: V4,
    a: *const sockaddr,
    len: socklen_t,
) -> c_int {
    let snap = source::current();
    match snap.view().route(dest.ip) {
        Route::Vsock { cid, .. } => {
            let sa = addr::vm(cid, u32::from(dest.port));
            // SAFETY: a sockaddr_vm of its size.
            let rc = unsafe {
                (real().connect)(
                    fd,
                    (&sa as *const sockaddr_vm).cast(),
                    size_of::<sockaddr_vm>() as socklen_t,
                )
            };
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
        Route::Tcp(why) => {
            // Connected or connecting: as TCP would say.
            if vsock_name(fd, true).is_ok() {
                return fail(libc::EISCONN);
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd, no wait.
            if unsafe { libc::poll(&mut p, 1, 0) } == 0 {
                return fail(libc::EALREADY);
            }
            // A failed vsock connection: back to a fresh TCP socket.
            let Some(flags) = fd_flags(fd) else {
                return fail(libc::EBADF);
            };
            let ty = libc::SOCK_STREAM
                | libc::SOCK_CLOEXEC
                | if flags.nonblock {
                    libc::SOCK_NONBLOCK
                } else {
                    0
                };
            // SAFETY: plain socket creation.
            let t = unsafe { (real().socket)(v.family, ty, 0) };
            if t < 0 {
                return -1;
            }
            let t = Own(t);
            let ok = table::with(|tb| {
                // SAFETY: valid descriptors.
                if unsafe { (real().dup3)(t.0, fd, flags.dup3_flags()) } < 0 {
                    return false;
                }
                tb.insert(fd, Entry::Cand(Cand::new(v.family)));
                true
            });
            drop(t);
            if !ok {
                return -1;
            }
            plog!("connect {dest} -> tcp ({why})");
            // SAFETY: forwarding.
            unsafe { tcp_connect(fd, a, len) }
        }
    }
}

// ---------------------------------------------------------------------------------------
// listen / accept

/// `listen()`.
///
/// # Safety
/// As `listen(2)`.
pub unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
    let r = real();
    match table::get(fd) {
        Some(Entry::Listener(l)) => {
            // SAFETY: our descriptors; a new backlog for both.
            let rc = unsafe { (r.listen)(l.hidden.tcp, backlog) };
            let _e = KeepErrno::new();
            // SAFETY: as above.
            unsafe { (r.listen)(l.hidden.vsock, backlog) };
            rc
        }
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

/// Turns the listening TCP socket `fd` into a dual TCP + vsock listener, if it listens on
/// the wildcard or an address the map gives us and vsock works; `false`: it stays TCP
/// only (on any failure too).
fn make_dual(fd: c_int, c: Cand, backlog: c_int) -> bool {
    let r = real();
    let here = {
        let mut b = [0u8; 28];
        let mut len = b.len() as socklen_t;
        // SAFETY: buffer and length match.
        if unsafe { (r.getsockname)(fd, b.as_mut_ptr().cast(), &mut len) } < 0 {
            return false;
        }
        addr::parse_bytes(&b[..(len as usize).min(b.len())])
    };
    let (local_ip, port, shown) = match here {
        Some(Inet::V4(v)) | Some(Inet::Mapped(v)) => {
            let specific = v.ip != [0; 4];
            if specific && !source::current().view().is_mapped_to_self(v.ip) {
                plog!("listen {v} -> tcp only (not an address the map gives us)");
                return false;
            }
            (specific.then_some(v.ip), v.port, v.to_string())
        }
        Some(Inet::Any6 { port }) => {
            if getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(1) != 0 {
                plog!("listen [::]:{port} -> tcp only (IPV6_V6ONLY)");
                return false;
            }
            (None, port, format!("[::]:{port}"))
        }
        Some(Inet::Other6 { port }) => {
            plog!("listen [ipv6]:{port} -> tcp only (IPv6 address)");
            return false;
        }
        None => return false,
    };
    if c.shared {
        plog!("listen {shown} -> tcp only (the socket has another descriptor)");
        return false;
    }
    let Some(flags) = fd_flags(fd) else {
        return false;
    };
    // SAFETY: plain socket creation.
    let v = unsafe {
        (r.socket)(
            libc::AF_VSOCK,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if v < 0 {
        plog!(
            "listen {shown} -> tcp only (vsock: {})",
            errno_name(errno())
        );
        return false;
    }
    let v = Own(move_high(v));
    if let Some(size) = c.buf.size() {
        let _ = set_vsock_buffer(v.0, size);
    }
    let sa = addr::vm(libc::VMADDR_CID_ANY, u32::from(port));
    // SAFETY: a sockaddr_vm of its size; then listen.
    let ok = unsafe {
        (r.bind)(
            v.0,
            (&sa as *const sockaddr_vm).cast(),
            size_of::<sockaddr_vm>() as socklen_t,
        ) == 0
            && (r.listen)(v.0, backlog) == 0
    };
    if !ok {
        plog!(
            "listen {shown} -> tcp only (vsock port {port}: {})",
            errno_name(errno())
        );
        return false;
    }
    // SAFETY: fcntl dup of a valid descriptor.
    let t = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, hidden_base()) };
    if t < 0 {
        plog!("listen {shown} -> tcp only ({})", errno_name(errno()));
        return false;
    }
    let t = Own(t);
    // SAFETY: epoll instance creation and registration of our own descriptors.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        plog!(
            "listen {shown} -> tcp only (epoll: {})",
            errno_name(errno())
        );
        return false;
    }
    let ep = Own(ep);
    for (i, h) in [t.0, v.0].into_iter().enumerate() {
        let mut ev = epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: valid descriptors and event.
        if unsafe { (r.epoll_ctl)(ep.0, libc::EPOLL_CTL_ADD, h, &mut ev) } < 0 {
            plog!(
                "listen {shown} -> tcp only (epoll: {})",
                errno_name(errno())
            );
            return false;
        }
    }
    if flags.nonblock {
        // SAFETY: fcntl on our epoll descriptor.
        unsafe { libc::fcntl(ep.0, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    let inherit = c
        .kopts
        .iter()
        .filter(|o| opts::inherited(o.level, o.opt))
        .cloned()
        .collect();
    let listener = Listener {
        hidden: Arc::new(Hidden {
            tcp: t.0,
            vsock: v.0,
            turn: Default::default(),
        }),
        family: c.family,
        local_ip,
        port,
        emu: c.emu.clone(),
        buf: c.buf,
        inherit,
    };
    let regs = live_epoll_regs(fd, &c.epoll);
    let installed = table::with(|tb| {
        // SAFETY: valid descriptors; dup3 atomically replaces the program's.
        if unsafe { (r.dup3)(ep.0, fd, flags.dup3_flags()) } < 0 {
            return Err(errno());
        }
        tb.insert(fd, Entry::Listener(listener));
        Ok(())
    });
    match installed {
        Ok(()) => {
            // The hidden descriptors are owned by the entry now.
            t.release();
            v.release();
        }
        Err(e) => {
            // `listener` (and with it Hidden, which would close t and v) was dropped by
            // the closure; make sure we do not close them twice.
            t.release();
            v.release();
            plog!("listen {shown} -> tcp only (dup3: {})", errno_name(e));
            return false;
        }
    }
    drop(ep);
    // The TCP listener is only reached through the epoll instance now: non-blocking,
    // the program's blocking mode is the epoll descriptor's.
    // SAFETY: fcntl on our hidden descriptor (read back from the table).
    if let Some(Entry::Listener(l)) = table::get(fd) {
        unsafe {
            let fl = libc::fcntl(l.hidden.tcp, libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(l.hidden.tcp, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
    }
    readd_epoll(fd, &regs);
    plog!("listen {shown} -> tcp + vsock port {port}");
    true
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
    let r = real();
    let l = match table::get(fd) {
        Some(Entry::Listener(l)) => l,
        _ => {
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
            return n;
        }
    };
    let flags = flags.unwrap_or(0);
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return fail(libc::EINVAL);
    }
    let Some(fdf) = fd_flags(fd) else {
        return fail(libc::EBADF);
    };
    // SO_RCVTIMEO on the listener bounds a blocking accept, as for TCP.
    let timeout_ms = if fdf.nonblock {
        None
    } else {
        rcvtimeo_ms(l.hidden.tcp)
    };
    let start = std::time::Instant::now();
    loop {
        let first = l.hidden.turn.fetch_add(1, Ordering::Relaxed) & 1;
        for k in 0..2 {
            if (first + k) & 1 == 0 {
                // SAFETY: forwarding to the hidden TCP listener.
                let n = unsafe { (r.accept4)(l.hidden.tcp, a, len, flags) };
                if n >= 0 {
                    let _e = KeepErrno::new();
                    table::remove(n);
                    return n;
                }
                let e = errno();
                if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
                    return -1;
                }
            } else {
                // SAFETY: the caller's buffers, as for accept.
                match unsafe { accept_vsock(&l, a, len, flags) } {
                    Ok(Some(n)) => return n,
                    Ok(None) => {}
                    Err(e) => return fail(e),
                }
            }
        }
        if fdf.nonblock {
            return fail(libc::EAGAIN);
        }
        let wait = match timeout_ms {
            None => -1,
            Some(ms) => {
                let left = ms.saturating_sub(start.elapsed().as_millis() as i64);
                if left <= 0 {
                    return fail(libc::EAGAIN);
                }
                left.min(i64::from(c_int::MAX)) as c_int
            }
        };
        let mut p = [
            libc::pollfd {
                fd: l.hidden.tcp,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: l.hidden.vsock,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two pollfds.
        if unsafe { libc::poll(p.as_mut_ptr(), 2, wait) } < 0 {
            return -1; // EINTR, as a blocking accept interrupted by a signal
        }
    }
}

/// The listener's `SO_RCVTIMEO` in milliseconds (`None`: no timeout).
fn rcvtimeo_ms(fd: c_int) -> Option<i64> {
    // SAFETY: a timeval buffer of its size.
    let mut tv: libc::timeval = unsafe { core::mem::zeroed() };
    let mut len = size_of::<libc::timeval>() as socklen_t;
    // SAFETY: as above.
    let rc = unsafe {
        (real().getsockopt)(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if rc < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        None
    } else {
        Some(tv.tv_sec * 1000 + (tv.tv_usec as i64 + 999) / 1000)
    }
}

/// One non-blocking accept on the vsock listener: `Ok(None)` if nothing is pending.
unsafe fn accept_vsock(
    l: &Listener,
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> Result<Option<c_int>, c_int> {
    let r = real();
    // SAFETY: plain data.
    let mut sa: sockaddr_vm = unsafe { core::mem::zeroed() };
    let mut sl = size_of::<sockaddr_vm>() as socklen_t;
    // SAFETY: buffer and length match.
    let n = unsafe {
        (r.accept4)(
            l.hidden.vsock,
            (&mut sa as *mut sockaddr_vm).cast(),
            &mut sl,
            flags,
        )
    };
    if n < 0 {
        let e = errno();
        return match e {
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => Err(e),
            // Nothing pending, or a connection that died before we took it.
            _ => Ok(None),
        };
    }
    let _e = KeepErrno::new();
    let snap = source::current();
    let view = snap.view();
    let cid = sa.svm_cid;
    let peer_ip = map::domid_of(cid)
        .and_then(|d| view.ip_of(d))
        .unwrap_or([0; 4]);
    let peer = V4 {
        ip: peer_ip,
        port: addr::fold_port(sa.svm_port),
    };
    for o in &l.inherit {
        let _ = setsockopt_raw(n, o.level, o.opt, &o.val);
    }
    let local_ip = l
        .local_ip
        .or_else(|| view.own_ip(peer_ip))
        .unwrap_or([0; 4]);
    table::insert(
        n,
        Entry::Vsock(Vsock {
            family: l.family,
            peer,
            local_ip,
            emu: l.emu.clone(),
            buf: l.buf,
        }),
    );
    let (enc, elen) = addr::encode(l.family, peer);
    // SAFETY: the caller's accept buffers.
    if let Err(e) = unsafe { addr::write_out(&enc[..elen], a, len) } {
        let _ = unsafe { close(n) };
        return Err(e);
    }
    plog!(
        "accept vsock CID {cid} port {} on port {} as {peer}{}",
        sa.svm_port,
        l.port,
        if peer_ip == [0; 4] {
            " (peer not in the map)"
        } else {
            ""
        }
    );
    Ok(Some(n))
}

// ---------------------------------------------------------------------------------------
// names

/// `getsockname()`/`getpeername()`.
///
/// # Safety
/// As `getsockname(2)`.
pub unsafe fn getname(fd: c_int, a: *mut sockaddr, len: *mut socklen_t, peer: bool) -> c_int {
    let r = real();
    let f = if peer { r.getpeername } else { r.getsockname };
    match table::get(fd) {
        Some(Entry::Vsock(v)) => {
            let (_, port) = match vsock_name(fd, peer) {
                Ok(x) => x,
                Err(e) => return fail(e),
            };
            let ep = if peer {
                v.peer
            } else {
                V4 {
                    ip: v.local_ip,
                    port: addr::fold_port(port),
                }
            };
            let (enc, elen) = addr::encode(v.family, ep);
            // SAFETY: the caller's buffers.
            match unsafe { addr::write_out(&enc[..elen], a, len) } {
                Ok(()) => 0,
                Err(e) => fail(e),
            }
        }
        // SAFETY: forwarding to the TCP listener.
        Some(Entry::Listener(l)) => unsafe { f(l.hidden.tcp, a, len) },
        // SAFETY: forwarding.
        _ => unsafe { f(fd, a, len) },
    }
}

// ---------------------------------------------------------------------------------------
// options

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
    let r = real();
    let entry = table::get(fd);
    if entry.is_none() {
        // SAFETY: forwarding.
        return unsafe { (r.setsockopt)(fd, level, opt, val, len) };
    }
    // The value, as the kernel would read it (bounded; options are small).
    let bytes: Vec<u8> = if val.is_null() || len == 0 {
        Vec::new()
    } else {
        let n = (len as usize).min(4096);
        // SAFETY: the caller passes `len` readable bytes.
        unsafe { core::slice::from_raw_parts(val.cast::<u8>(), n) }.to_vec()
    };
    match entry {
        Some(Entry::Cand(c)) => {
            // SAFETY: forwarding.
            let rc = unsafe { (r.setsockopt)(fd, level, opt, val, len) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let class = opts::classify(c.family, level, opt);
                table::update(fd, |e| {
                    if let Entry::Cand(c) = e {
                        record(c, class, level, opt, &bytes);
                    }
                });
            }
            rc
        }
        Some(Entry::Listener(l)) => {
            // SAFETY: forwarding to the TCP listener.
            let rc = unsafe { (r.setsockopt)(l.hidden.tcp, level, opt, val, len) };
            if rc == 0 {
                let _e = KeepErrno::new();
                let class = opts::classify(l.family, level, opt);
                if let Class::Buffer(k) = class {
                    let mut b = l.buf;
                    if b.note(k, &bytes) {
                        if let Some(size) = b.size() {
                            let _ = set_vsock_buffer(l.hidden.vsock, size);
                        }
                    }
                }
                table::update(fd, |e| {
                    if let Entry::Listener(l) = e {
                        match class {
                            Class::Buffer(k) => {
                                l.buf.note(k, &bytes);
                            }
                            Class::Kernel if opts::inherited(level, opt) => table::remember(
                                &mut l.inherit,
                                SetOpt {
                                    level,
                                    opt,
                                    val: bytes.clone(),
                                },
                            ),
                            Class::Emulated(em) => l.emu.record(em, level, opt, &bytes),
                            _ => {}
                        }
                    }
                });
            }
            rc
        }
        Some(Entry::Vsock(v)) => match opts::classify(v.family, level, opt) {
            // SAFETY: forwarding to the vsock socket.
            Class::Kernel => unsafe { (r.setsockopt)(fd, level, opt, val, len) },
            Class::Buffer(k) => {
                // SAFETY: as above.
                let rc = unsafe { (r.setsockopt)(fd, level, opt, val, len) };
                if rc == 0 {
                    let _e = KeepErrno::new();
                    let mut b = v.buf;
                    if b.note(k, &bytes) {
                        if let Some(size) = b.size() {
                            let _ = set_vsock_buffer(fd, size);
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
            Class::Emulated(em) => {
                if val.is_null() && len > 0 {
                    return fail(libc::EFAULT);
                }
                let res = table::update(fd, |e| match e {
                    Entry::Vsock(x) => x.emu.set(em, level, opt, &bytes),
                    _ => Err(libc::EBADF),
                });
                match res {
                    Some(Ok(())) => 0,
                    Some(Err(e)) => fail(e),
                    None => fail(libc::EBADF),
                }
            }
            Class::Synthetic(_) | Class::Unsupported => fail(libc::ENOPROTOOPT),
        },
        // SAFETY: forwarding.
        None => unsafe { (r.setsockopt)(fd, level, opt, val, len) },
    }
}

/// Records an option the kernel accepted on a still-TCP socket.
fn record(c: &mut Cand, class: Class, level: c_int, opt: c_int, bytes: &[u8]) {
    let so = || SetOpt {
        level,
        opt,
        val: bytes.to_vec(),
    };
    match class {
        Class::Kernel => table::remember(&mut c.kopts, so()),
        Class::Buffer(k) => {
            c.buf.note(k, bytes);
            table::remember(&mut c.kopts, so());
        }
        Class::Emulated(e) => c.emu.record(e, level, opt, bytes),
        // Getting these is fine; setting them fails in the kernel too.
        Class::Synthetic(_) => {}
        Class::Unsupported => c.tcp_only = Some(opts::name(level, opt)),
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
    let r = real();
    let v = match table::get(fd) {
        Some(Entry::Vsock(v)) => v,
        // SAFETY: forwarding to the TCP listener.
        Some(Entry::Listener(l)) => {
            return unsafe { (r.getsockopt)(l.hidden.tcp, level, opt, val, len) }
        }
        // SAFETY: forwarding.
        _ => return unsafe { (r.getsockopt)(fd, level, opt, val, len) },
    };
    let bytes = match opts::classify(v.family, level, opt) {
        // SAFETY: forwarding to the vsock socket.
        Class::Kernel | Class::Buffer(_) => {
            return unsafe { (r.getsockopt)(fd, level, opt, val, len) }
        }
        Class::Unsupported => return fail(libc::ENOPROTOOPT),
        _ if val.is_null() || len.is_null() => return fail(libc::EFAULT),
        class => {
            // SAFETY: checked non-null above.
            let room = unsafe { *len } as i32;
            match class {
                Class::Emulated(em) => opts::int_bytes(v.emu.get(em, level, opt), room),
                Class::Synthetic(Synth::Domain) => opts::int_bytes(v.family, room),
                Class::Synthetic(Synth::Protocol) => opts::int_bytes(libc::IPPROTO_TCP, room),
                _ => {
                    let state = if vsock_name(fd, true).is_ok() {
                        opts::TCP_ESTABLISHED
                    } else {
                        opts::TCP_CLOSE
                    };
                    opts::tcp_info_bytes(state, room)
                }
            }
        }
    };
    match bytes {
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

// ---------------------------------------------------------------------------------------
// shutdown / epoll_ctl

/// `shutdown()`: on a dual listener, both listeners (wakes blocked accepts).
///
/// # Safety
/// As `shutdown(2)`.
pub unsafe fn shutdown(fd: c_int, how: c_int) -> c_int {
    let r = real();
    match table::get(fd) {
        Some(Entry::Listener(l)) => {
            // SAFETY: our descriptors.
            let rc = unsafe { (r.shutdown)(l.hidden.tcp, how) };
            let _e = KeepErrno::new();
            // SAFETY: as above.
            unsafe { (r.shutdown)(l.hidden.vsock, how) };
            rc
        }
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
                let reg = if ev.is_null() {
                    None
                } else {
                    // SAFETY: the caller's event.
                    let e = unsafe { ev.read_unaligned() };
                    Some((e.events, e.u64))
                };
                table::update(fd, |e| {
                    if let Entry::Cand(c) = e {
                        c.epoll.retain(|&(p, _, _)| p != epfd);
                        if let (libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD, Some((events, data))) =
                            (op, reg)
                        {
                            c.epoll.push((epfd, events, data));
                        }
                    }
                });
            }
            rc
        }
        // SAFETY: forwarding.
        _ => unsafe { (r.epoll_ctl)(epfd, op, fd, ev) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_errnos() {
        for e in [
            libc::EAFNOSUPPORT,
            libc::ENODEV,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
        ] {
            assert!(no_vsock_path(e), "{e}");
        }
        for e in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::ECONNRESET,
            libc::EINTR,
        ] {
            assert!(!no_vsock_path(e), "{e}");
        }
    }

    #[test]
    fn hidden_descriptors_are_high() {
        let b = hidden_base();
        assert!(b > 2 && b <= 512, "{b}");
    }
}
