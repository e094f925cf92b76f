//! The system calls the interposers share: errno, our own descriptors, descriptor flags,
//! socket options, vsock addresses, epoll registrations and the replacement of a
//! program's descriptor.

use core::mem::size_of;

use libc::{c_int, epoll_event, sockaddr, sockaddr_vm, socklen_t};

use crate::addr::{self, FdFlags};
use crate::log::errno_name;
use crate::opts::{self, BufReq};
use crate::real::real;
use crate::route::EpollReg;
use crate::table::{self, Entry, Hidden, SetOpt};

pub fn errno() -> c_int {
    // SAFETY: errno is thread-local.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// Returns -1 with errno `e`.
pub fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

/// Keeps errno across bookkeeping done after the real call.
pub struct KeepErrno(c_int);

impl KeepErrno {
    pub fn new() -> Self {
        KeepErrno(errno())
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// A descriptor of ours, closed on drop unless released.
pub struct Own(pub c_int);

impl Own {
    pub fn release(mut self) -> c_int {
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

/// A new socket of ours (`Err`: errno).
pub fn own_socket(domain: c_int, ty: c_int) -> Result<Own, c_int> {
    // SAFETY: plain socket creation.
    let fd = unsafe { (real().socket)(domain, ty, 0) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(Own(fd))
    }
}

/// libc's `fcntl` with an integer argument (never our interposer, which would treat our
/// own `F_DUPFD` as the program's).
pub fn ctl(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    // SAFETY: the commands used here take an integer (or nothing).
    unsafe { crate::real::fcntl(false, fd, cmd, arg as libc::c_ulong) }
}

pub fn fd_flags(fd: c_int) -> Option<FdFlags> {
    let (fl, fdf) = (ctl(fd, libc::F_GETFL, 0), ctl(fd, libc::F_GETFD, 0));
    if fl < 0 || fdf < 0 {
        None
    } else {
        Some(FdFlags::from_fcntl(fl, fdf))
    }
}

/// Sets or clears `O_NONBLOCK` on `fd` (`Err`: errno).
pub fn set_nonblock(fd: c_int, on: bool) -> Result<(), c_int> {
    let fl = ctl(fd, libc::F_GETFL, 0);
    if fl < 0 {
        return Err(errno());
    }
    let want = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    if want != fl && ctl(fd, libc::F_SETFL, want) < 0 {
        return Err(errno());
    }
    Ok(())
}

/// Makes the hidden listeners of a dual listener close-on-exec exactly when every
/// descriptor number of the program that refers to it is: a listener the program lets
/// an `exec`ed image inherit takes its two listeners along (the new image's library
/// adopts them, see `adopt`), and one it does not leaves nothing behind.
pub fn follow_cloexec(h: &Hidden) {
    let numbers = table::listener_numbers(h);
    if numbers.is_empty() {
        return; // closed with the last one
    }
    let inherit = numbers.iter().any(|&fd| {
        let fl = ctl(fd, libc::F_GETFD, 0);
        fl >= 0 && fl & libc::FD_CLOEXEC == 0
    });
    let flag = if inherit { 0 } else { libc::FD_CLOEXEC };
    for fd in [h.tcp, h.vsock] {
        ctl(fd, libc::F_SETFD, flag);
    }
}

/// The lowest number hidden descriptors get: high, so that they do not take the small
/// numbers a program may expect (or `dup2` over), yet not so high that the descriptor
/// table grows much.
pub fn hidden_base() -> c_int {
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
pub fn move_high(fd: c_int) -> c_int {
    let n = ctl(fd, libc::F_DUPFD_CLOEXEC, hidden_base());
    if n < 0 {
        return fd;
    }
    // SAFETY: our descriptor, closed once the dup worked.
    unsafe { (real().close)(fd) };
    n
}

pub fn setsockopt_raw(fd: c_int, level: c_int, opt: c_int, val: &[u8]) -> Result<(), c_int> {
    // SAFETY: val is valid for its length.
    let rc =
        unsafe { (real().setsockopt)(fd, level, opt, val.as_ptr().cast(), val.len() as socklen_t) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `getsockopt` of a plain-data value `T` (an int, a u64, a timeval).
fn getsockopt_val<T: Copy>(fd: c_int, level: c_int, opt: c_int) -> Result<T, c_int> {
    // SAFETY: only instantiated with plain-data types, for which all-zero is valid.
    let mut v: T = unsafe { core::mem::zeroed() };
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: a buffer of `T` and its length.
    let rc = unsafe { (real().getsockopt)(fd, level, opt, (&mut v as *mut T).cast(), &mut len) };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

pub fn getsockopt_int(fd: c_int, level: c_int, opt: c_int) -> Result<c_int, c_int> {
    getsockopt_val(fd, level, opt)
}

/// Whether the AF_INET6 socket `fd` is IPv6-only (`or` if that cannot be read).
pub fn v6only(fd: c_int, or: bool) -> bool {
    getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).map_or(or, |v| v != 0)
}

/// The `SO_RCVTIMEO` of `fd` in milliseconds (`None`: no timeout).
pub fn rcvtimeo_ms(fd: c_int) -> Option<i64> {
    let tv: libc::timeval = getsockopt_val(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO).ok()?;
    crate::route::timeout_ms(tv.tv_sec, tv.tv_usec)
}

/// Sets the vsock buffer size of `fd` (moving the min/max bound first when needed).
pub fn set_vsock_buffer(fd: c_int, size: u64) -> Result<(), c_int> {
    let min: u64 = getsockopt_val(fd, opts::SOL_VSOCK, opts::SO_VM_SOCKETS_BUFFER_MIN_SIZE)?;
    let max: u64 = getsockopt_val(fd, opts::SOL_VSOCK, opts::SO_VM_SOCKETS_BUFFER_MAX_SIZE)?;
    for (opt, v) in opts::buffer_calls(size, min, max) {
        setsockopt_raw(fd, opts::SOL_VSOCK, opt, &v.to_ne_bytes())?;
    }
    Ok(())
}

/// Replays recorded `SOL_SOCKET` options and the buffer size on a vsock socket.
pub fn replay(v: c_int, kopts: &[SetOpt], buf: BufReq) -> Result<(), String> {
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
pub fn live_epoll_regs(fd: c_int, regs: &[EpollReg]) -> Vec<EpollReg> {
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
pub fn readd_epoll(fd: c_int, regs: &[EpollReg]) {
    for &(epfd, events, data) in regs {
        let mut ev = epoll_event { events, u64: data };
        // SAFETY: a valid event; failures (epfd closed since) are ignored.
        unsafe { (real().epoll_ctl)(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
}

/// `dup3()`s our `new` over the program's `fd` (keeping the program's `FD_CLOEXEC`) and
/// records `entry` for it, under the table lock so that no other thread sees the new
/// file with the old entry. `Err`: dup3's errno (`fd` unchanged).
pub fn replace(new: &Own, fd: c_int, flags: FdFlags, entry: Entry) -> Result<(), c_int> {
    table::with(|t| {
        // SAFETY: both descriptors are valid; dup3 atomically replaces the program's.
        if unsafe { (real().dup3)(new.0, fd, flags.dup3_flags()) } < 0 {
            return Err(errno());
        }
        t.insert(fd, entry);
        Ok(())
    })
}

/// `f` on both hidden listeners of a dual listener (a new backlog, a shutdown): the TCP
/// listener's result and errno.
pub fn both(h: &Hidden, f: impl Fn(c_int) -> c_int) -> c_int {
    let rc = f(h.tcp);
    let _e = KeepErrno::new();
    f(h.vsock);
    rc
}

/// vsock `getsockname`/`getpeername` of `fd`: (cid, port).
pub fn vsock_name(fd: c_int, peer: bool) -> Result<(u32, u32), c_int> {
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

/// `bind` (`connect` false) or `connect` of the vsock socket `fd` to (cid, port): the
/// real call's return value.
pub fn vm_call(fd: c_int, connect: bool, cid: u32, port: u32) -> c_int {
    let sa = addr::vm(cid, port);
    let f = if connect { real().connect } else { real().bind };
    let sa_ptr: *const sockaddr = (&sa as *const sockaddr_vm).cast();
    // SAFETY: a sockaddr_vm of its size.
    unsafe { f(fd, sa_ptr, size_of::<sockaddr_vm>() as socklen_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_descriptors_are_high() {
        let b = hidden_base();
        assert!(b > 2 && b <= 512, "{b}");
    }
}
