// SPDX-License-Identifier: GPL-2.0
//! `bad-buffers`: what a connected stream socket does with user buffers the kernel cannot
//! copy: a NULL pointer, or a buffer whose second page is unmapped. Every call must come
//! back at once, with EFAULT or (for the half-mapped buffer) a short count; none may hang,
//! spin, or pass a fault off as EOF. The same program runs against vsock loopback
//! (virtio_transport_common), the reference behaviour.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
/// A call that takes longer than this failed, whatever it returned.
const PROMPT: Duration = Duration::from_secs(5);

/// What one call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Bytes(usize),
    Errno(i32),
}

impl Outcome {
    fn of(r: isize) -> Outcome {
        if r < 0 {
            Outcome::Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Outcome::Bytes(r as usize)
        }
    }

    fn name(self) -> String {
        match self {
            Outcome::Bytes(n) => format!("{n}"),
            Outcome::Errno(libc::EFAULT) => "EFAULT".into(),
            Outcome::Errno(e) => format!("errno{e}"),
        }
    }
}

/// Whether `o` is acceptable for a buffer of which only the first `good` bytes can be
/// copied: EFAULT (any error if `any_error`), or a count within the good part (never 0:
/// that reads as EOF).
pub fn acceptable(o: Outcome, good: usize, any_error: bool) -> bool {
    match o {
        Outcome::Errno(e) => e == libc::EFAULT || any_error,
        Outcome::Bytes(n) => n > 0 && n <= good,
    }
}

/// Two pages, the second unmapped: a buffer that faults after `PAGE` bytes.
struct HalfMapped {
    base: *mut u8,
}

impl HalfMapped {
    fn new() -> io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; no Rust object refers to it.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                2 * PAGE,
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
        // SAFETY: the second page of our own mapping, unmapped so that it faults.
        if unsafe { libc::munmap(base.add(PAGE).cast(), PAGE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page is mapped and writable.
        unsafe { ptr::write_bytes(base, 0x5a, PAGE) };
        Ok(HalfMapped { base })
    }
}

impl Drop for HalfMapped {
    fn drop(&mut self) {
        // SAFETY: the page mapped in `new`.
        unsafe { libc::munmap(self.base.cast(), PAGE) };
    }
}

/// One system call of a case.
type Call = Box<dyn Fn() -> isize>;

/// Waits until `fd` is readable (the peer sends as soon as it has our request).
fn wait_readable(fd: RawFd) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut p, 1, 30_000) } {
        1 => Ok(()),
        0 => Err(io::Error::other("no data from the peer within 30 s")),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Runs every case on the connected socket `fd` (the peer keeps sending); prints one
/// `case=... result=... ms=... ok=...` line each; returns whether all were acceptable
/// (`any_error`: any prompt error counts, not only EFAULT; virtio's send path, for one,
/// reports a faulting buffer as ENOMEM).
pub fn run(fd: RawFd, any_error: bool) -> io::Result<bool> {
    let half = HalfMapped::new()?;
    wait_readable(fd)?;
    let flags = libc::MSG_NOSIGNAL;
    let null = ptr::null_mut::<libc::c_void>();
    let h = half.base.cast::<libc::c_void>();
    // The kernel checks every pointer: passing NULL or a half-mapped buffer to these
    // calls touches no Rust memory.
    let cases: [(&str, usize, Call); 5] = [
        // SAFETY: see above.
        (
            "peek-null",
            0,
            Box::new(move || unsafe { libc::recv(fd, null, PAGE, flags | libc::MSG_PEEK) }),
        ),
        // SAFETY: see above.
        (
            "recv-null",
            0,
            Box::new(move || unsafe { libc::recv(fd, null, PAGE, flags) }),
        ),
        // SAFETY: see above.
        (
            "recv-half-mapped",
            PAGE,
            Box::new(move || unsafe { libc::recv(fd, h, 2 * PAGE, flags) }),
        ),
        // SAFETY: see above.
        (
            "send-null",
            0,
            Box::new(move || unsafe { libc::send(fd, null, PAGE, flags) }),
        ),
        // SAFETY: see above.
        (
            "send-half-mapped",
            PAGE,
            Box::new(move || unsafe { libc::send(fd, h, 2 * PAGE, flags) }),
        ),
    ];
    let mut all = true;
    for (name, good, call) in cases.iter() {
        if name.starts_with("recv") {
            wait_readable(fd)?;
        }
        let t0 = Instant::now();
        let o = Outcome::of(call());
        let took = t0.elapsed();
        let ok = acceptable(o, *good, any_error) && took < PROMPT;
        all &= ok;
        println!(
            "case={name} result={} ms={} ok={}",
            o.name(),
            took.as_millis(),
            ok as u8
        );
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn acceptable_outcomes() {
        assert!(acceptable(Outcome::Errno(libc::EFAULT), 0, false));
        assert!(!acceptable(Outcome::Bytes(0), 0, true), "0 reads as EOF");
        assert!(!acceptable(Outcome::Errno(libc::ENOMEM), PAGE, false));
        assert!(acceptable(Outcome::Errno(libc::ENOMEM), PAGE, true));
        assert!(acceptable(Outcome::Bytes(PAGE), PAGE, false));
        assert!(!acceptable(Outcome::Bytes(PAGE + 1), PAGE, true));
    }

    /// AF_UNIX is a reference too: every case comes back at once and acceptable.
    #[test]
    fn unix_socket_reference() {
        let (a, b) = UnixStream::pair().unwrap();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let mut b = b;
            let _ = b.write_all(&[7u8; 64 * 1024]);
            b
        });
        assert!(run(a.as_raw_fd(), false).unwrap());
        drop(a);
        drop(feeder.join());
    }
}
