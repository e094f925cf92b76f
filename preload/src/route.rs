//! The decisions behind the interposed calls, as pure functions: given what the table
//! recorded about a descriptor, the address the program named, the map and the options,
//! what `connect`/`listen`/`accept`/`getsockname`/`setsockopt`/... should do.
//!
//! No system calls here. The few facts that need one (is an AF_INET6 socket IPv6-only,
//! is a vsock connection established) are passed in as closures and asked only when the
//! decision depends on them, as the calls have always done; `interpose/` carries the
//! decisions out.

use std::sync::Arc;

use libc::c_int;

use crate::addr::{self, FdFlags, Inet, V4};
use crate::map::{self, Route, View};
use crate::opts::{self, BufKind, Class, Emu, Synth};
use crate::table::{self, Cand, Entry, Hidden, Listener, SetOpt, Vsock};

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

/// The descriptor a call the program makes on `fd` really goes to: a dual listener's
/// hidden TCP listener (the socket the program thinks it has), else `fd` itself.
pub fn tcp_fd(fd: c_int, entry: Option<&Entry>) -> c_int {
    match entry {
        Some(Entry::Listener(l)) => l.hidden.tcp,
        _ => fd,
    }
}

/// The `socket()` type of a replacement socket: the program's `O_NONBLOCK`, always
/// close-on-exec (the final descriptor gets the program's `FD_CLOEXEC` from `dup3`).
pub fn replacement_type(flags: FdFlags) -> c_int {
    let nonblock = FdFlags {
        nonblock: flags.nonblock,
        cloexec: false,
    };
    libc::SOCK_STREAM | libc::SOCK_CLOEXEC | nonblock.sock_type_flags()
}

// ---------------------------------------------------------------------------------------
// connect

/// What `connect()` does, from the descriptor's entry and the address named.
#[derive(Clone, Debug)]
pub enum Connect {
    /// The real connect on this descriptor, nothing recorded.
    Real(c_int),
    /// A TCP socket of ours to an IPv4 destination: the vsock decision.
    Cand(Cand, V4),
    /// Already vsock, connected again to an IPv4 destination.
    Vsock(Vsock, V4),
    /// This errno.
    Fail(c_int),
}

/// Sorts a `connect()` call: only an IPv4 destination in the socket's family (a
/// `sockaddr_in`, or a v4-mapped `sockaddr_in6` on an AF_INET6 socket) can go to vsock.
pub fn connect_call(fd: c_int, entry: Option<Entry>, dest: Option<Inet>) -> Connect {
    match (entry, dest) {
        (Some(Entry::Cand(c)), Some(i)) => match i.v4_for(c.family) {
            Some(v4) => Connect::Cand(c, v4),
            None => Connect::Real(fd),
        },
        (Some(Entry::Vsock(v)), Some(i)) => match i.v4_for(v.family) {
            Some(v4) => Connect::Vsock(v, v4),
            None => Connect::Fail(libc::EAFNOSUPPORT),
        },
        (e, _) => Connect::Real(tcp_fd(fd, e.as_ref())),
    }
}

/// Where a vsock connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub domid: u16,
    pub cid: u32,
    /// The destination's port.
    pub port: u32,
    /// The port the TCP socket was bound to (a client bound to a specific port keeps it
    /// on vsock too); 0: none.
    pub bind_port: u32,
}

/// The vsock decision for a TCP socket of ours connecting to `dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectPlan {
    /// The real connect; `Some(why)` is logged as `connect <dest> -> tcp (<why>)`.
    Tcp(Option<String>),
    /// Try vsock.
    Vsock(Target),
}

/// The reason logged when a co-located destination stays TCP anyway.
pub fn co_located_but(domid: u16, what: &str) -> String {
    format!("domain {domid} is co-located, but {what}")
}

/// Decides a connect of the TCP socket `c` to `dest`, which the map routes by `route`.
/// `v6only` says whether the (AF_INET6) socket is IPv6-only.
pub fn connect_plan(
    c: &Cand,
    dest: V4,
    route: Route,
    v6only: impl FnOnce() -> bool,
) -> ConnectPlan {
    let (domid, cid) = match route {
        Route::Tcp(why) => return ConnectPlan::Tcp(Some(why.to_string())),
        Route::Vsock { domid, cid } => (domid, cid),
    };
    let but = if c.shared {
        Some("the socket has another descriptor (dup)".to_string())
    } else {
        c.tcp_only.as_ref().map(|o| format!("{o} is set"))
    };
    if let Some(w) = but {
        return ConnectPlan::Tcp(Some(co_located_but(domid, &w)));
    }
    // The kernel refuses v4-mapped destinations on an IPv6-only socket.
    if c.family == libc::AF_INET6 && v6only() {
        return ConnectPlan::Tcp(None);
    }
    ConnectPlan::Vsock(Target {
        domid,
        cid,
        port: u32::from(dest.port),
        bind_port: u32::from(c.bound.map_or(0, Inet::port)),
    })
}

/// Errors of a finished vsock connect after which the connection is made over TCP
/// instead, on the same descriptor: no vsock path here (above), or the other side did
/// not take the connection (nothing listens on that vsock port, e.g. the server is not
/// preloaded; the peer's module reset it or went away; the handshake did not finish
/// within the connect budget; vsock is forbidden to us). TCP gets to give its own
/// answer. Anything else (out of memory or descriptors) is the program's error.
pub fn falls_back(e: c_int) -> bool {
    no_vsock_path(e)
        || matches!(
            e,
            libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::ECONNABORTED
                | libc::ETIMEDOUT
                | libc::EACCES
                | libc::EPERM
        )
}

/// What a finished vsock `connect()` (failed with `err`, if it did) leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Connected,
    /// TCP instead (and the destination remembered for a while).
    Fallback,
    /// The error goes to the program, whose socket stays an unconnected TCP socket, as
    /// after a failed TCP connect (always so in strict mode).
    Fail,
}

pub fn attempt(err: Option<c_int>, strict: bool) -> Attempt {
    match err {
        None => Attempt::Connected,
        Some(e) if !strict && falls_back(e) => Attempt::Fallback,
        Some(_) => Attempt::Fail,
    }
}

/// Where a vsock connect attempt stands while we wait for it (`poll` and `SO_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait this many more milliseconds.
    Poll(c_int),
    Done(Option<c_int>),
}

/// The next step of waiting for a vsock connect that started `elapsed_ms` ago with a
/// budget of `budget_ms`: `ready` says whether `poll` reported the socket writable or in
/// error, `so_error` reads its pending error. A little grace past the budget lets the
/// socket's own connect timeout (set to the budget) report first.
pub fn wait_step(
    ready: bool,
    elapsed_ms: u64,
    budget_ms: u64,
    so_error: impl FnOnce() -> c_int,
) -> Wait {
    const GRACE_MS: u64 = 500;
    if ready {
        let e = so_error();
        return Wait::Done((e != 0).then_some(e));
    }
    let limit = budget_ms + GRACE_MS;
    if elapsed_ms >= limit {
        return Wait::Done(Some(libc::ETIMEDOUT));
    }
    Wait::Poll(c_int::try_from(limit - elapsed_ms).unwrap_or(c_int::MAX))
}

/// Our address as a vsock connection shows it: `specific` (the address bound), else
/// our mapped address towards `peer`, else `0.0.0.0`.
pub fn local_ip(specific: Option<[u8; 4]>, view: &View<'_>, peer: [u8; 4]) -> [u8; 4] {
    specific.or_else(|| view.own_ip(peer)).unwrap_or([0; 4])
}

/// The specific IPv4 address a socket was bound to, if any.
pub fn bound_ip(bound: Option<Inet>) -> Option<[u8; 4]> {
    match bound {
        Some(Inet::V4(b)) | Some(Inet::Mapped(b)) if b.ip != [0; 4] => Some(b.ip),
        _ => None,
    }
}

/// The entry of the TCP socket `c` once its vsock replacement connects to `dest`.
pub fn connected(c: &Cand, dest: V4, view: &View<'_>) -> Vsock {
    Vsock {
        family: c.family,
        peer: dest,
        local_ip: local_ip(bound_ip(c.bound), view, dest.ip),
        emu: c.emu.clone(),
        buf: c.buf,
    }
}

/// The state of a vsock connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VsockState {
    Connected,
    Connecting,
    Failed,
}

/// What `connect()` again on a vsock-backed descriptor does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconnect {
    /// A vsock connect to this CID.
    Vsock {
        cid: u32,
    },
    Fail(c_int),
    /// The failed vsock socket is replaced by a fresh TCP one, which connects (logged
    /// with this reason).
    Tcp(&'static str),
}

/// Decides a connect of a vsock-backed descriptor (in `state`) to a destination that
/// the map routes by `route`.
pub fn reconnect(route: Route, state: impl FnOnce() -> VsockState) -> Reconnect {
    match route {
        Route::Vsock { cid, .. } => Reconnect::Vsock { cid },
        // Connected or connecting: as TCP would say.
        Route::Tcp(why) => match state() {
            VsockState::Connected => Reconnect::Fail(libc::EISCONN),
            VsockState::Connecting => Reconnect::Fail(libc::EALREADY),
            VsockState::Failed => Reconnect::Tcp(why),
        },
    }
}

// ---------------------------------------------------------------------------------------
// listen / accept

/// What `listen()` makes of a TCP socket of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenPlan {
    /// TCP only; `Some((shown, why))` is logged as `listen <shown> -> tcp only (<why>)`.
    TcpOnly(Option<(String, &'static str)>),
    /// A dual TCP + vsock listener on `port`.
    Dual {
        /// The address bound, if a specific one.
        local_ip: Option<[u8; 4]>,
        port: u16,
        /// The address as log lines show it.
        shown: String,
    },
}

/// Decides a listen of `c`, bound to `here` (`None`: not an address of ours).
/// `mapped_to_self` says whether the map gives an address to our domain, `v6only` whether
/// the (AF_INET6) socket is IPv6-only. Only the wildcard (`0.0.0.0`, or `::` when not
/// IPv6-only) and our mapped addresses listen on vsock: loopback never does.
pub fn listen_plan(
    c: &Cand,
    here: Option<Inet>,
    mapped_to_self: impl FnOnce([u8; 4]) -> bool,
    v6only: impl FnOnce() -> bool,
) -> ListenPlan {
    let (local_ip, port, shown) = match here {
        Some(Inet::V4(v)) | Some(Inet::Mapped(v)) => {
            let specific = v.ip != [0; 4];
            if specific && !mapped_to_self(v.ip) {
                let why = "not an address the map gives us";
                return ListenPlan::TcpOnly(Some((v.to_string(), why)));
            }
            (specific.then_some(v.ip), v.port, v.to_string())
        }
        Some(Inet::Any6 { port }) => {
            let shown = format!("[::]:{port}");
            if v6only() {
                return ListenPlan::TcpOnly(Some((shown, "IPV6_V6ONLY")));
            }
            (None, port, shown)
        }
        Some(Inet::Other6 { port }) => {
            let shown = format!("[ipv6]:{port}");
            return ListenPlan::TcpOnly(Some((shown, "IPv6 address")));
        }
        None => return ListenPlan::TcpOnly(None),
    };
    if c.shared {
        let why = "the socket has another descriptor";
        return ListenPlan::TcpOnly(Some((shown, why)));
    }
    ListenPlan::Dual {
        local_ip,
        port,
        shown,
    }
}

/// The entry of the dual listener made of `c` over `hidden`.
pub fn listener(c: &Cand, hidden: Arc<Hidden>, local_ip: Option<[u8; 4]>, port: u16) -> Listener {
    let inherit = c
        .kopts
        .iter()
        .filter(|o| opts::inherited(o.level, o.opt))
        .cloned()
        .collect();
    Listener {
        hidden,
        family: c.family,
        local_ip,
        port,
        emu: c.emu.clone(),
        buf: c.buf,
        inherit,
    }
}

/// The flags of `accept4()` on a dual listener (`None`: `accept`); `EINVAL` for any but
/// `SOCK_NONBLOCK`/`SOCK_CLOEXEC`, as the kernel says.
pub fn accept_flags(flags: Option<c_int>) -> Result<c_int, c_int> {
    let flags = flags.unwrap_or(0);
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        Err(libc::EINVAL)
    } else {
        Ok(flags)
    }
}

/// One of a dual listener's two listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Tcp,
    Vsock,
}

/// The order `accept` tries the listeners in, from the listener's turn counter
/// (alternating, so neither starves).
pub fn accept_order(turn: u32) -> [Side; 2] {
    if turn & 1 == 0 {
        [Side::Tcp, Side::Vsock]
    } else {
        [Side::Vsock, Side::Tcp]
    }
}

/// Whether a failed accept on the vsock listener is an error for the program (out of
/// descriptors or memory) rather than "nothing pending" (or a connection that died
/// before we took it).
pub fn accept_error_is_fatal(e: c_int) -> bool {
    matches!(
        e,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

/// A `SO_RCVTIMEO` value in milliseconds, rounded up (`None`: no timeout).
pub fn timeout_ms(tv_sec: i64, tv_usec: i64) -> Option<i64> {
    if tv_sec == 0 && tv_usec == 0 {
        None
    } else {
        Some(tv_sec * 1000 + (tv_usec + 999) / 1000)
    }
}

/// How long a blocking `accept` that found no client polls both listeners, in `poll()`
/// milliseconds (-1: no limit), after `elapsed_ms` of a wait bounded by `timeout_ms`;
/// `None`: give up with `EAGAIN` (a non-blocking descriptor, or the timeout passed).
pub fn accept_wait(nonblock: bool, timeout_ms: Option<i64>, elapsed_ms: i64) -> Option<c_int> {
    if nonblock {
        return None;
    }
    match timeout_ms {
        None => Some(-1),
        Some(ms) => {
            let left = ms.saturating_sub(elapsed_ms);
            (left > 0).then(|| left.min(i64::from(c_int::MAX)) as c_int)
        }
    }
}

/// A vsock peer (CID, port) as the program sees it: the domain's IPv4 address
/// (`0.0.0.0` if the map does not know it) and the port folded into TCP's range.
pub fn shown_peer(cid: u32, port: u32, view: &View<'_>) -> V4 {
    V4 {
        ip: map::domid_of(cid)
            .and_then(|d| view.ip_of(d))
            .unwrap_or([0; 4]),
        port: addr::fold_port(port),
    }
}

/// The entry of a connection `l` accepted from `peer`: the listener's family, emulated
/// options and buffer size.
pub fn accepted(l: &Listener, peer: V4, view: &View<'_>) -> Vsock {
    Vsock {
        family: l.family,
        peer,
        local_ip: local_ip(l.local_ip, view, peer.ip),
        emu: l.emu.clone(),
        buf: l.buf,
    }
}

/// `getsockname` (`peer` false, `port` our vsock port) or `getpeername` of a
/// vsock-backed descriptor, as the program sees it.
pub fn shown_name(v: &Vsock, peer: bool, port: u32) -> V4 {
    if peer {
        v.peer
    } else {
        V4 {
            ip: v.local_ip,
            port: addr::fold_port(port),
        }
    }
}

// ---------------------------------------------------------------------------------------
// socket options

/// Records an option the kernel accepted on a still-TCP socket.
pub fn record(c: &mut Cand, class: Class, level: c_int, opt: c_int, bytes: &[u8]) {
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

/// Records an option the kernel accepted on a dual listener's TCP listener; returns the
/// buffer size to give the vsock listener, if this changed it.
pub fn record_listener(
    l: &mut Listener,
    class: Class,
    level: c_int,
    opt: c_int,
    bytes: &[u8],
) -> Option<u64> {
    match class {
        Class::Buffer(k) => return l.buf.note(k, bytes).then(|| l.buf.size()).flatten(),
        Class::Kernel if opts::inherited(level, opt) => {
            let val = bytes.to_vec();
            table::remember(&mut l.inherit, SetOpt { level, opt, val });
        }
        Class::Emulated(em) => l.emu.record(em, level, opt, bytes),
        _ => {}
    }
    None
}

/// What `setsockopt` does on a vsock-backed descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOn {
    /// The kernel's, on the vsock socket.
    Kernel,
    /// The kernel's, and the vsock buffer size.
    Buffer(BufKind),
    /// Validated and remembered here.
    Emulate(Emu),
    Fail(c_int),
}

pub fn set_on_vsock(class: Class) -> SetOn {
    match class {
        Class::Kernel => SetOn::Kernel,
        Class::Buffer(k) => SetOn::Buffer(k),
        Class::Emulated(em) => SetOn::Emulate(em),
        Class::Synthetic(_) | Class::Unsupported => SetOn::Fail(libc::ENOPROTOOPT),
    }
}

/// What `getsockopt` does on a vsock-backed descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetOn {
    /// The kernel's, on the vsock socket.
    Kernel,
    /// Answered here ([`answer`]).
    Here,
    Fail(c_int),
}

pub fn get_on_vsock(class: Class) -> GetOn {
    match class {
        Class::Kernel | Class::Buffer(_) => GetOn::Kernel,
        Class::Unsupported => GetOn::Fail(libc::ENOPROTOOPT),
        Class::Emulated(_) | Class::Synthetic(_) => GetOn::Here,
    }
}

/// The bytes `getsockopt` returns for an option answered here, given `room` bytes;
/// `connected` says whether the vsock connection is established (`TCP_INFO`).
pub fn answer(
    v: &Vsock,
    class: Class,
    level: c_int,
    opt: c_int,
    room: i32,
    connected: impl FnOnce() -> bool,
) -> Result<Vec<u8>, c_int> {
    match class {
        Class::Emulated(em) => opts::int_bytes(v.emu.get(em, level, opt), room),
        Class::Synthetic(Synth::Domain) => opts::int_bytes(v.family, room),
        Class::Synthetic(Synth::Protocol) => opts::int_bytes(libc::IPPROTO_TCP, room),
        Class::Synthetic(Synth::TcpInfo) => {
            let state = if connected() {
                opts::TCP_ESTABLISHED
            } else {
                opts::TCP_CLOSE
            };
            opts::tcp_info_bytes(state, room)
        }
        Class::Kernel | Class::Buffer(_) | Class::Unsupported => Err(libc::ENOPROTOOPT),
    }
}

// ---------------------------------------------------------------------------------------
// epoll

/// An epoll registration (epfd, events, data).
pub type EpollReg = (c_int, u32, u64);

/// Notes a successful `epoll_ctl(epfd, op, ..., event)` on a not yet connected socket in
/// its registrations (re-made on the replacement file).
pub fn note_epoll(regs: &mut Vec<EpollReg>, epfd: c_int, op: c_int, event: Option<(u32, u64)>) {
    regs.retain(|&(p, _, _)| p != epfd);
    if let (libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD, Some((events, data))) = (op, event) {
        regs.push((epfd, events, data));
    }
}

#[cfg(test)]
mod tests;
