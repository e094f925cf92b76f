// SPDX-License-Identifier: GPL-2.0
//! Connected and listening stream sockets of the three families.

use crate::Addr;
use nix::errno::Errno;
use nix::sys::socket::{
    self as sys, getsockopt, setsockopt, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, SockaddrLike, UnixAddr, VsockAddr,
};
use nix::sys::time::TimeVal;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;
use vsock::{VsockListener, VsockStream};

/// Connections `listen(2)` queues: what std's and the `vsock` crate's listeners ask.
const LISTEN_BACKLOG: i32 = 128;

/// Options at level `AF_VSOCK` from <linux/vm_sockets.h>, which neither nix nor libc
/// name. nix's `sockopt_impl!` writes their (unsafe) `setsockopt`/`getsockopt` calls
/// from the value's type, as it does for its own options.
mod vm_sockets {
    use nix::sys::time::TimeVal;
    use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};

    const SO_VM_SOCKETS_BUFFER_SIZE: libc::c_int = 0;
    const SO_VM_SOCKETS_BUFFER_MIN_SIZE: libc::c_int = 1;
    const SO_VM_SOCKETS_BUFFER_MAX_SIZE: libc::c_int = 2;
    /// `SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD`, the `struct timeval` form.
    const SO_VM_SOCKETS_CONNECT_TIMEOUT: libc::c_int = 6;

    sockopt_impl!(
        /// The buffer size (for YASMIN, the ring size), clamped to [MIN, MAX].
        BufferSize,
        Both,
        libc::AF_VSOCK,
        SO_VM_SOCKETS_BUFFER_SIZE,
        u64
    );
    sockopt_impl!(
        /// The smallest buffer size allowed.
        BufferMinSize,
        Both,
        libc::AF_VSOCK,
        SO_VM_SOCKETS_BUFFER_MIN_SIZE,
        u64
    );
    sockopt_impl!(
        /// The largest buffer size allowed.
        BufferMaxSize,
        SetOnly,
        libc::AF_VSOCK,
        SO_VM_SOCKETS_BUFFER_MAX_SIZE,
        u64
    );
    sockopt_impl!(
        /// vsock ignores SO_SNDTIMEO for connect and defaults to 2 s.
        ConnectTimeout,
        SetOnly,
        libc::AF_VSOCK,
        SO_VM_SOCKETS_CONNECT_TIMEOUT,
        TimeVal
    );
}

/// Puts what was being done in front of an error, keeping its kind (callers match on
/// kinds, people read the text).
trait Context<T> {
    fn context(self, what: impl fmt::Display) -> io::Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> io::Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> io::Result<T> {
        self.with_context(|| what)
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> io::Result<T> {
        self.map_err(|e| {
            let e = e.into();
            io::Error::new(e.kind(), format!("{}: {e}", what()))
        })
    }
}

/// What to set on a socket before it connects or listens.
#[derive(Clone, Debug, Default)]
pub struct SockOpts {
    /// vsock: SO_VM_SOCKETS_BUFFER_SIZE (the YASMIN ring size); tcp/unix: SO_SNDBUF and
    /// SO_RCVBUF.
    pub buffer_size: Option<u64>,
    /// TCP_NODELAY (TCP only), for latency runs.
    pub nodelay: bool,
    /// Read, write and connect timeout; `None` blocks forever (except a vsock connect,
    /// see `vsock_connect_timeout`).
    pub timeout: Option<Duration>,
    /// vsock only: the connect timeout instead of `timeout`. With neither, the kernel's
    /// default applies (2 s).
    pub vsock_connect_timeout: Option<Duration>,
}

fn timeval(d: Duration) -> TimeVal {
    TimeVal::new(
        d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        d.subsec_micros() as libc::suseconds_t,
    )
}

impl Addr {
    fn family(&self) -> AddressFamily {
        match self {
            Addr::Vsock { .. } => AddressFamily::Vsock,
            Addr::Tcp(SocketAddr::V4(_)) => AddressFamily::Inet,
            Addr::Tcp(SocketAddr::V6(_)) => AddressFamily::Inet6,
            Addr::Unix(_) => AddressFamily::Unix,
        }
    }

    fn sockaddr(&self) -> io::Result<Box<dyn SockaddrLike>> {
        Ok(match self {
            Addr::Vsock { cid, port } => Box::new(VsockAddr::new(*cid, *port)),
            Addr::Tcp(SocketAddr::V4(sa)) => Box::new(SockaddrIn::from(*sa)),
            Addr::Tcp(SocketAddr::V6(sa)) => Box::new(SockaddrIn6::from(*sa)),
            Addr::Unix(path) => match UnixAddr::new(path) {
                Ok(sa) => Box::new(sa),
                // nix keeps room for a terminating NUL, as the kernel wants.
                Err(Errno::ENAMETOOLONG) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("unix socket path {} is too long", path.display()),
                    ))
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("unix socket path {}", path.display()))
                }
            },
        })
    }
}

/// A fresh stream socket of `family` with `opts` applied.
fn socket(family: AddressFamily, opts: &SockOpts) -> io::Result<OwnedFd> {
    let vsock = family == AddressFamily::Vsock;
    let what = if vsock {
        "socket(AF_VSOCK): is the vsock transport (YASMIN) loaded?"
    } else {
        "socket()"
    };
    let fd = sys::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).context(what)?;
    if let Some(size) = opts.buffer_size {
        if vsock {
            set_vsock_buffer_size(&fd, size)?;
        } else {
            let v = libc::c_int::try_from(size).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("buffer size too large for SO_SNDBUF: {e}"),
                )
            })? as usize;
            setsockopt(&fd, sockopt::SndBuf, &v).context("SO_SNDBUF")?;
            setsockopt(&fd, sockopt::RcvBuf, &v).context("SO_RCVBUF")?;
        }
    }
    if let Some(t) = opts.timeout {
        let tv = timeval(t);
        // On Linux SO_SNDTIMEO also bounds a blocking TCP or Unix connect.
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv).context("SO_RCVTIMEO")?;
        setsockopt(&fd, sockopt::SendTimeout, &tv).context("SO_SNDTIMEO")?;
    }
    if vsock {
        if let Some(t) = opts.vsock_connect_timeout.or(opts.timeout) {
            set_vsock_connect_timeout(&fd, t)?;
        }
    }
    if opts.nodelay && matches!(family, AddressFamily::Inet | AddressFamily::Inet6) {
        setsockopt(&fd, sockopt::TcpNoDelay, &true).context("TCP_NODELAY")?;
    }
    Ok(fd)
}

/// Sets a vsock socket's connect timeout (`SO_VM_SOCKETS_CONNECT_TIMEOUT`; the kernel
/// rounds it up to a jiffy). Also for callers that manage the descriptor themselves.
pub fn set_vsock_connect_timeout(fd: &OwnedFd, d: Duration) -> io::Result<()> {
    setsockopt(fd, vm_sockets::ConnectTimeout, &timeval(d)).context("SO_VM_SOCKETS_CONNECT_TIMEOUT")
}

/// The kernel clamps SIZE to [MIN, MAX], so MAX goes first (and MIN only when the wanted
/// size is below the current minimum).
fn set_vsock_buffer_size(fd: &OwnedFd, size: u64) -> io::Result<()> {
    use vm_sockets::{BufferMaxSize, BufferMinSize, BufferSize};
    setsockopt(fd, BufferMaxSize, &size).context("SO_VM_SOCKETS_BUFFER_MAX_SIZE")?;
    let min = getsockopt(fd, BufferMinSize).context("getsockopt SO_VM_SOCKETS_BUFFER_MIN_SIZE")?;
    if size < min {
        setsockopt(fd, BufferMinSize, &size).context("SO_VM_SOCKETS_BUFFER_MIN_SIZE")?;
    }
    setsockopt(fd, BufferSize, &size).context("SO_VM_SOCKETS_BUFFER_SIZE")?;
    let got = getsockopt(fd, BufferSize).context("getsockopt SO_VM_SOCKETS_BUFFER_SIZE")?;
    if got != size {
        return Err(io::Error::other(format!(
            "vsock buffer size {size} was not taken (the socket reports {got})"
        )));
    }
    Ok(())
}

/// One connected stream socket.
pub enum Conn {
    Vsock(VsockStream),
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A failed `connect`: the address, and the errno (which callers can read back with
/// [`errno_of`] although the message names the address).
#[derive(Debug)]
pub struct ConnectError {
    pub addr: String,
    pub errno: i32,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = io::Error::from_raw_os_error(self.errno);
        // SO_SNDTIMEO expiring on connect shows as EINPROGRESS or EAGAIN.
        let hint = match Errno::from_raw(self.errno) {
            Errno::EAGAIN | Errno::EINPROGRESS => " (timed out)",
            _ => "",
        };
        write!(f, "connect to {}: {e}{hint}", self.addr)
    }
}

impl std::error::Error for ConnectError {}

/// The errno behind `e`, also for a [`ConnectError`].
pub fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<ConnectError>())
            .map(|c| c.errno)
    })
}

/// The symbolic name of the errno behind `e` ("ETIMEDOUT"), "other" if there is none.
pub fn errno_name(e: &io::Error) -> String {
    errno_of(e).map_or_else(|| "other".into(), |n| format!("{:?}", Errno::from_raw(n)))
}

impl Conn {
    /// Connects within `opts.timeout` (forever if `None`; vsock: see
    /// [`SockOpts::vsock_connect_timeout`]).
    pub fn connect(a: &Addr, opts: &SockOpts) -> io::Result<Conn> {
        let sa = a.sockaddr()?;
        let fd = socket(a.family(), opts)?;
        sys::connect(fd.as_raw_fd(), &*sa).map_err(|e| {
            let kind = io::Error::from(e).kind();
            io::Error::new(
                kind,
                ConnectError {
                    addr: a.to_string(),
                    errno: e as i32,
                },
            )
        })?;
        Ok(match a {
            Addr::Vsock { .. } => Conn::Vsock(VsockStream::from(fd)),
            Addr::Tcp(_) => Conn::Tcp(TcpStream::from(fd)),
            Addr::Unix(_) => Conn::Unix(UnixStream::from(fd)),
        })
    }

    /// A second handle on the same stream (for the other direction's thread).
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Vsock(s) => Conn::Vsock(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Vsock(s) => s.shutdown(how),
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }

    /// Sets read and write timeouts (shared by clones of the same socket).
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Vsock(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Conn::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Conn::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_nodelay(on),
            _ => Ok(()),
        }
    }

    /// Applies `opts` to an accepted socket (listeners pass buffer sizes on themselves).
    pub fn apply(&self, opts: &SockOpts) -> io::Result<()> {
        self.set_timeout(opts.timeout)?;
        self.set_nodelay(opts.nodelay)
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Conn::Vsock(s) => s.as_raw_fd(),
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening stream socket.
pub enum Listener {
    Vsock(VsockListener),
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Binds and listens; only `opts.buffer_size` matters here (accepted sockets inherit
    /// it), timeouts are set per accepted connection ([`Conn::apply`]).
    pub fn bind(a: &Addr, opts: &SockOpts) -> io::Result<Listener> {
        if let Addr::Unix(path) = a {
            // A socket file left by an earlier server would make bind fail.
            if let Ok(md) = std::fs::symlink_metadata(path) {
                if md.file_type().is_socket() {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing stale socket {}", path.display()))?;
                }
            }
        }
        let sa = a.sockaddr()?;
        let bind_opts = SockOpts {
            buffer_size: opts.buffer_size,
            ..SockOpts::default()
        };
        let fd = socket(a.family(), &bind_opts)?;
        if !matches!(a, Addr::Unix(_)) {
            // Quick server restarts between runs must not hit TIME_WAIT.
            setsockopt(&fd, sockopt::ReuseAddr, &true).context("SO_REUSEADDR")?;
        }
        sys::bind(fd.as_raw_fd(), &*sa).with_context(|| format!("bind {a}"))?;
        Backlog::new(LISTEN_BACKLOG)
            .and_then(|backlog| sys::listen(&fd, backlog))
            .with_context(|| format!("listen {a}"))?;
        Ok(match a {
            Addr::Vsock { .. } => Listener::Vsock(VsockListener::from(fd)),
            Addr::Tcp(_) => Listener::Tcp(TcpListener::from(fd)),
            Addr::Unix(_) => Listener::Unix(UnixListener::from(fd)),
        })
    }

    /// Accepts one connection and names its peer.
    pub fn accept(&self) -> io::Result<(Conn, String)> {
        Ok(match self {
            Listener::Vsock(l) => {
                let (s, a) = l.accept()?;
                (Conn::Vsock(s), format!("vsock:{}:{}", a.cid(), a.port()))
            }
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                (Conn::Tcp(s), format!("tcp:{a}"))
            }
            Listener::Unix(l) => (Conn::Unix(l.accept()?.0), "unix".to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::thread;

    #[test]
    fn a_failed_connect_keeps_its_errno() {
        let a = Addr::parse("unix:/nonexistent/yasmin-endpoint-test.sock").unwrap();
        let Err(e) = Conn::connect(&a, &SockOpts::default()) else {
            panic!("connected to a path that does not exist");
        };
        assert_eq!(errno_of(&e), Some(Errno::ENOENT as i32));
        assert_eq!(super::errno_name(&e), "ENOENT");
        assert!(e.to_string().contains("yasmin-endpoint-test.sock"), "{e}");
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("yasmin-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// A listener at `addr` echoes one connection; the client sends, half-closes and
    /// reads everything back.
    fn echo_once(addr: &Addr, opts: &SockOpts) {
        let l = Listener::bind(addr, opts).unwrap();
        let server = thread::spawn(move || {
            let (mut c, peer) = l.accept().unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            c.write_all(&got).unwrap();
            peer
        });
        let mut c = Conn::connect(addr, opts).unwrap();
        c.apply(opts).unwrap();
        let mut w = c.try_clone().unwrap();
        w.write_all(b"hello").unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");
        let peer = server.join().unwrap();
        assert!(peer.starts_with(addr.scheme()), "{peer}");
    }

    fn free_tcp_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn unix_round_trip_and_stale_socket() {
        let addr = Addr::Unix(tmp("echo.sock"));
        echo_once(&addr, &SockOpts::default());
        // The first listener's socket file is still there: bind replaces it.
        let opts = SockOpts {
            buffer_size: Some(64 << 10),
            timeout: Some(Duration::from_secs(10)),
            ..SockOpts::default()
        };
        echo_once(&addr, &opts);
    }

    #[test]
    fn tcp_round_trip_with_options() {
        let addr = Addr::parse(&format!("tcp:127.0.0.1:{}", free_tcp_port())).unwrap();
        let opts = SockOpts {
            buffer_size: Some(256 << 10),
            nodelay: true,
            timeout: Some(Duration::from_secs(10)),
            vsock_connect_timeout: Some(Duration::from_secs(1)),
        };
        echo_once(&addr, &opts);
    }

    #[test]
    fn refused_connect_names_the_address() {
        let addr = Addr::parse(&format!("tcp:127.0.0.1:{}", free_tcp_port())).unwrap();
        let e = Conn::connect(&addr, &SockOpts::default()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("connect to {addr}: ")), "{msg}");
        assert!(msg.contains("refused"), "{msg}");
    }

    #[test]
    fn oversized_tcp_buffer_is_refused() {
        let addr = Addr::parse("tcp:127.0.0.1:1").unwrap();
        let opts = SockOpts {
            buffer_size: Some(1 << 40),
            ..SockOpts::default()
        };
        let e = Conn::connect(&addr, &opts).err().unwrap();
        assert!(e.to_string().contains("too large for SO_SNDBUF"), "{e}");
    }

    #[test]
    fn rejects_long_unix_path() {
        let long = Addr::parse(&format!("unix:/{}", "x".repeat(200))).unwrap();
        let e = Conn::connect(&long, &SockOpts::default()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("too long"), "{e}");
        // 107 bytes and the NUL fill `sun_path`; 108 do not fit.
        let fits = Addr::Unix(format!("/{}", "x".repeat(106)).into());
        assert!(fits.sockaddr().is_ok());
        let over = Addr::Unix(format!("/{}", "x".repeat(107)).into());
        assert!(over.sockaddr().is_err());
    }
}
