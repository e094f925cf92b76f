// SPDX-License-Identifier: GPL-2.0
//! Raw AF_VSOCK sockets for the cases: plain `libc` calls, because the cases pass what
//! no safe wrapper would (NULL and half-mapped buffers) and read raw return values.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// Options at level `AF_VSOCK` (<linux/vm_sockets.h>; libc does not name them).
pub const SO_VM_SOCKETS_BUFFER_SIZE: libc::c_int = 0;
/// `SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD`, the `struct timeval` form.
pub const SO_VM_SOCKETS_CONNECT_TIMEOUT: libc::c_int = 6;
/// `ioctl`s of <linux/sockios.h>: bytes not yet sent / readable.
pub const SIOCOUTQ: libc::c_ulong = 0x5411;
pub const SIOCINQ: libc::c_ulong = 0x541B;
pub const PAGE: usize = 4096;

/// The errno of the last failed call.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A return value as a case reports it: the count, or the errno's name.
pub fn outcome(r: isize) -> String {
    if r >= 0 {
        r.to_string()
    } else {
        errno_name(errno())
    }
}

pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EFAULT => "EFAULT",
        libc::EAGAIN => "EAGAIN",
        libc::EINTR => "EINTR",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EPIPE => "EPIPE",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::ENOTTY => "ENOTTY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EISCONN => "EISCONN",
        libc::EALREADY => "EALREADY",
        _ => return format!("errno{e}"),
    };
    name.into()
}

fn check(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r)
    }
}

fn addr(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: all-zero is a valid `sockaddr_vm`.
    let mut a: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    a.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    a.svm_cid = cid;
    a.svm_port = port;
    a
}

/// A new vsock socket of `ty` (`SOCK_STREAM` or `SOCK_SEQPACKET`).
pub fn socket(ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = check(
        unsafe { libc::socket(libc::AF_VSOCK, ty | libc::SOCK_CLOEXEC, 0) },
        "socket",
    )?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect()`; the raw result (0 or -1 with errno).
pub fn connect_raw(fd: &OwnedFd, cid: u32, port: u32) -> libc::c_int {
    let a = addr(cid, port);
    // SAFETY: `a` is a valid address of the given size.
    unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&a as *const libc::sockaddr_vm).cast(),
            std::mem::size_of_val(&a) as libc::socklen_t,
        )
    }
}

/// A connected socket of `ty`.
pub fn connect(ty: libc::c_int, cid: u32, port: u32) -> io::Result<OwnedFd> {
    let fd = socket(ty)?;
    set_connect_timeout(&fd, Duration::from_secs(30))?;
    check(connect_raw(&fd, cid, port), "connect")?;
    Ok(fd)
}

/// A listening socket of `ty` on `port`, with the buffer size `buf` if given.
pub fn listen(ty: libc::c_int, port: u32, buf: Option<u64>) -> io::Result<OwnedFd> {
    let fd = socket(ty)?;
    if let Some(b) = buf {
        set_u64(&fd, SO_VM_SOCKETS_BUFFER_SIZE, b)?;
    }
    let a = addr(libc::VMADDR_CID_ANY, port);
    // SAFETY: `a` is a valid address of the given size.
    check(
        unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&a as *const libc::sockaddr_vm).cast(),
                std::mem::size_of_val(&a) as libc::socklen_t,
            )
        },
        "bind",
    )?;
    // SAFETY: plain syscall.
    check(unsafe { libc::listen(fd.as_raw_fd(), 64) }, "listen")?;
    Ok(fd)
}

pub fn accept(l: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; no address wanted.
    let fd = check(
        unsafe {
            libc::accept4(
                l.as_raw_fd(),
                ptr::null_mut(),
                ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        },
        "accept",
    )?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(level, opt, value)` with a plain value of type `T`.
fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `v` is a valid, initialised `T` of the size given, read by the kernel only.
    check(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                opt,
                (v as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        },
        what,
    )
    .map(drop)
}

fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

pub fn set_u64(fd: &OwnedFd, opt: libc::c_int, v: u64) -> io::Result<()> {
    setsockopt(fd, libc::AF_VSOCK, opt, &v, "setsockopt")
}

pub fn get_u64(fd: &OwnedFd, opt: libc::c_int) -> io::Result<u64> {
    let mut v = 0u64;
    let mut len: libc::socklen_t = 8;
    // SAFETY: `v` and `len` are valid for writes.
    check(
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::AF_VSOCK,
                opt,
                (&mut v as *mut u64).cast(),
                &mut len,
            )
        },
        "getsockopt",
    )?;
    Ok(v)
}

pub fn set_connect_timeout(fd: &OwnedFd, d: Duration) -> io::Result<()> {
    setsockopt(
        fd,
        libc::AF_VSOCK,
        SO_VM_SOCKETS_CONNECT_TIMEOUT,
        &timeval(d),
        "setsockopt(connect timeout)",
    )
}

/// An `int` socket option at `SOL_SOCKET`.
pub fn set_sol_int(fd: &OwnedFd, opt: libc::c_int, v: libc::c_int) -> libc::c_int {
    // SAFETY: `v` is a valid int for the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            4,
        )
    }
}

pub fn set_recv_timeout(fd: &OwnedFd, d: Duration) -> io::Result<()> {
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVTIMEO,
        &timeval(d),
        "setsockopt(SO_RCVTIMEO)",
    )
}

pub fn set_linger(fd: &OwnedFd, secs: i32) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: secs,
    };
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        &l,
        "setsockopt(SO_LINGER)",
    )
}

pub fn set_nonblocking(fd: &OwnedFd, on: bool) {
    // SAFETY: plain fcntl calls on our descriptor.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        let fl = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl);
    }
}

/// `send()` from a raw pointer (may be NULL or half-mapped: that is the point).
pub fn send_raw(fd: RawFd, buf: *const u8, len: usize, flags: libc::c_int) -> isize {
    // SAFETY: the kernel checks the user pointer; no Rust memory is written.
    unsafe { libc::send(fd, buf.cast(), len, flags | libc::MSG_NOSIGNAL) }
}

/// `recv()` into a raw pointer (may be NULL or half-mapped).
pub fn recv_raw(fd: RawFd, buf: *mut u8, len: usize, flags: libc::c_int) -> isize {
    // SAFETY: the kernel checks the user pointer; the callers' buffers are theirs alone.
    unsafe { libc::recv(fd, buf.cast(), len, flags) }
}

/// `recvmsg()` into `buf`: the result and the returned `msg_flags`.
pub fn recvmsg(fd: &OwnedFd, buf: &mut [u8], flags: libc::c_int) -> (isize, libc::c_int) {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; then it names one valid iovec.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` and the buffer it names are valid for the call.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
    (r, msg.msg_flags)
}

pub fn send_all(fd: &OwnedFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let r = send_raw(fd.as_raw_fd(), data.as_ptr(), data.len(), 0);
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        data = &data[r as usize..];
    }
    Ok(())
}

/// Reads until `want` bytes or EOF; returns what was read.
pub fn recv_upto(fd: &OwnedFd, want: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; want];
    let mut got = 0;
    while got < want {
        let r = recv_raw(fd.as_raw_fd(), out[got..].as_mut_ptr(), want - got, 0);
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            break;
        }
        got += r as usize;
    }
    out.truncate(got);
    Ok(out)
}

/// Reads one `\n`-terminated line (at most 200 bytes), byte by byte (nothing after it is
/// consumed).
pub fn recv_line(fd: &OwnedFd) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 200 {
        let r = recv_raw(fd.as_raw_fd(), b.as_mut_ptr(), 1, 0);
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        if r == 0 || b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// `ioctl(fd, req, &int)`: the value, or the errno's name.
pub fn ioctl_int(fd: &OwnedFd, req: libc::c_ulong) -> String {
    let mut v: libc::c_int = 0;
    // SAFETY: `v` is valid for the int the request writes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v) };
    if r < 0 {
        errno_name(errno())
    } else {
        v.to_string()
    }
}

/// poll() for `events`; whether they came within `ms`.
pub fn poll(fd: &OwnedFd, events: libc::c_short, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 && p.revents & events != 0 }
}

/// A deterministic pattern byte for offset `i` of stream `seed`.
pub fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed)
}

pub fn pattern_buf(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

/// `len` bytes of which only the first `good` are mapped: the rest of the pages are
/// unmapped, so a copy faults there. Unmapped again on drop.
pub struct Holey {
    base: *mut u8,
    pages: usize,
}

impl Holey {
    pub fn new(good_pages: usize, total_pages: usize) -> io::Result<Holey> {
        // SAFETY: a fresh anonymous mapping no Rust object refers to.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total_pages * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        // SAFETY: the tail of our own mapping.
        unsafe {
            libc::munmap(
                base.add(good_pages * PAGE).cast(),
                (total_pages - good_pages) * PAGE,
            );
        }
        // SAFETY: the first `good_pages` pages are mapped and writable.
        unsafe { ptr::write_bytes(base, 0x5a, good_pages * PAGE) };
        Ok(Holey {
            base,
            pages: good_pages,
        })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.base
    }

    /// The mapped part.
    pub fn good(&self) -> &[u8] {
        // SAFETY: the first `pages` pages are mapped for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.base, self.pages * PAGE) }
    }
}

impl Drop for Holey {
    fn drop(&mut self) {
        // SAFETY: the part of our mapping still mapped.
        unsafe { libc::munmap(self.base.cast(), self.pages * PAGE) };
    }
}
