//! Byte transports to xenstored: the unix socket in dom0, the kernel's xenbus device in a
//! guest, or anything else that reads and writes (tests use a `UnixStream` pair).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Error, Result};

/// The places [`XsTransport::open`] tries, in order, after `$XENSTORED_PATH`.
pub const DEFAULT_PATHS: [&str; 3] = [
    "/run/xenstored/socket",
    "/var/run/xenstored/socket",
    "/dev/xen/xenbus",
];

/// A byte channel to xenstored.
///
/// The client writes each message with one `write_all` of one buffer (the xenbus device
/// wants a whole message per `write()`), and reads with a buffer of its own, so a stream
/// that splits or joins messages is fine.
pub trait Transport: Read + Write {
    /// Waits until a `read` would not block, or `timeout` passes (`Ok(false)`).
    /// `None` waits without limit. The default cannot wait and says "readable", so a
    /// transport without a file descriptor works but ignores timeouts.
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let _ = timeout;
        Ok(true)
    }
}

/// `poll(2)` for `POLLIN` on `fd`, retried on `EINTR` until the deadline.
pub fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a sub-millisecond remainder still waits.
                let ms = left.as_micros().div_ceil(1000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            // POLLHUP/POLLERR also mean a read will not block (it returns 0 or the error).
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

impl Transport for UnixStream {
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        poll_readable(self.as_raw_fd(), timeout)
    }
}

impl Transport for File {
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        poll_readable(self.as_raw_fd(), timeout)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        (**self).wait_readable(timeout)
    }
}

/// The transport [`XsTransport::open`] found.
#[derive(Debug)]
pub enum XsTransport {
    /// xenstored's unix socket (dom0).
    Socket(UnixStream, PathBuf),
    /// The kernel's xenbus device (`/dev/xen/xenbus`, any domain).
    Device(File, PathBuf),
}

impl XsTransport {
    /// Opens the first that works of `$XENSTORED_PATH` (if set), `/run/xenstored/socket`,
    /// `/var/run/xenstored/socket` and `/dev/xen/xenbus`.
    pub fn open() -> Result<XsTransport> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("XENSTORED_PATH").filter(|p| !p.is_empty()) {
            candidates.push(p.into());
        }
        candidates.extend(DEFAULT_PATHS.iter().map(PathBuf::from));
        let mut tried = Vec::new();
        for path in candidates {
            match XsTransport::open_path(&path) {
                Ok(t) => return Ok(t),
                Err(e) => tried.push(format!("{}: {e}", path.display())),
            }
        }
        Err(Error::NoTransport(tried))
    }

    /// Opens one path: a unix socket is connected to, anything else opened read-write.
    pub fn open_path(path: &Path) -> io::Result<XsTransport> {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(path)?;
        if meta.file_type().is_socket() {
            Ok(XsTransport::Socket(
                UnixStream::connect(path)?,
                path.to_path_buf(),
            ))
        } else {
            let f = File::options().read(true).write(true).open(path)?;
            Ok(XsTransport::Device(f, path.to_path_buf()))
        }
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        match self {
            XsTransport::Socket(_, p) | XsTransport::Device(_, p) => p,
        }
    }
}

impl Read for XsTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            XsTransport::Socket(s, _) => s.read(buf),
            XsTransport::Device(f, _) => f.read(buf),
        }
    }
}

impl Write for XsTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            XsTransport::Socket(s, _) => s.write(buf),
            XsTransport::Device(f, _) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            XsTransport::Socket(s, _) => s.flush(),
            XsTransport::Device(f, _) => f.flush(),
        }
    }
}

impl Transport for XsTransport {
    fn wait_readable(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        match self {
            XsTransport::Socket(s, _) => s.wait_readable(timeout),
            XsTransport::Device(f, _) => f.wait_readable(timeout),
        }
    }
}
