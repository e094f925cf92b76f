// SPDX-License-Identifier: GPL-2.0
//! The transports behind one stream type: AF_VSOCK, TCP and Unix stream sockets, and
//! (with the `vchan` feature) Xen libvchan.
//!
//! Every socket is made with raw `socket(2)` so that buffer sizes (which select the
//! YASMIN ring size for vsock) and timeouts are set before `connect`/`listen`, the same
//! way for each family; the descriptor is then handed to the std or `vsock` type.
//! libvchan is not a socket: see the `vchan` module (its addresses parse either way; a
//! build without the feature fails to connect or listen on them).

use anyhow::{bail, Context, Result};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;
use vsock::{VsockListener, VsockStream};
use xenstore_watch::control::paths;

/// Option names at level `AF_VSOCK` from <linux/vm_sockets.h> (u64 values); the libc
/// crate does not name them.
const SO_VM_SOCKETS_BUFFER_SIZE: libc::c_int = 0;
const SO_VM_SOCKETS_BUFFER_MIN_SIZE: libc::c_int = 1;
const SO_VM_SOCKETS_BUFFER_MAX_SIZE: libc::c_int = 2;
/// `SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD` (`struct timeval`); vsock ignores SO_SNDTIMEO
/// for connect and defaults to 2 s.
const SO_VM_SOCKETS_CONNECT_TIMEOUT: libc::c_int = 6;

/// `vsock:CID:PORT`, `tcp:HOST:PORT`, `unix:/path` or `vchan:DOMID:BASE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Vsock {
        cid: u32,
        port: u32,
    },
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// Xen libvchan to or from domain `domid` (the peer), rendezvous under the XenStore
    /// directory `base`, which is in the *server's* tree (see [`VCHAN_BASE_MAX`]).
    Vchan {
        domid: u16,
        base: String,
    },
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Addr::Tcp(sa) => write!(f, "tcp:{sa}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Vchan { domid, base } => write!(f, "vchan:{domid}:{base}"),
        }
    }
}

const ADDR_HELP: &str = "want vsock:CID:PORT (CID a number or `any`), tcp:IP:PORT \
     ([IPv6]:PORT), unix:/path or vchan:DOMID:/xenstore/base (DOMID the peer's domain, BASE \
     an absolute XenStore path in the server's tree)";

/// Size asked for each of a vchan server's two rings when no buffer size is given.
pub const DEFAULT_VCHAN_RING: u64 = 64 << 10;

/// Longest `BASE` of a `vchan:` address. libxenvchan formats `<path>/ring-ref` and
/// `<path>/event-channel` into 64-byte buffers (truncating silently), and the path of
/// each connection is `BASE/<seq>`: 44 bytes leave room for sequence numbers of up to 4
/// digits; longer ones are checked when they come ([`vchan_path_fits`]).
pub const VCHAN_BASE_MAX: usize = 44;

/// Whether libxenvchan can use `path` without truncating `path/event-channel` (the longer
/// of its two nodes) in its 64-byte buffer.
pub fn vchan_path_fits(path: &str) -> bool {
    path.len() + "/event-channel".len() < 64
}

/// The ring sizes libxenvchan gives for `libxenvchan_server_init(.., read_min,
/// write_min)`, as (server read = client to server, server write = server to client):
/// each rounds up to a power of two of at least 4 KiB, except that small rings live in
/// the shared control page (1 KiB and 2 KiB) when both fit there. `None` above the
/// 1 MiB maximum. Mirrors `libxenvchan_server_init` in Xen 4.17 (tools/libs/vchan).
pub fn vchan_ring_sizes(read_min: u64, write_min: u64) -> Option<(u64, u64)> {
    const SMALL: u64 = 1 << 10;
    const LARGE: u64 = 1 << 11;
    const MAX: u64 = 1 << 20;
    if read_min > MAX || write_min > MAX {
        return None;
    }
    let round = |n: u64| n.max(4096).next_power_of_two();
    Some(if read_min <= SMALL && write_min <= LARGE {
        (SMALL, LARGE)
    } else if read_min <= LARGE && write_min <= SMALL {
        (LARGE, SMALL)
    } else if read_min <= LARGE {
        (LARGE, round(write_min))
    } else if write_min <= LARGE {
        (round(read_min), LARGE)
    } else {
        (round(read_min), round(write_min))
    })
}

impl Addr {
    pub fn parse(s: &str) -> Result<Addr> {
        let bad = || anyhow::anyhow!("bad address {s:?}: {ADDR_HELP}");
        if let Some(rest) = s.strip_prefix("vsock:") {
            let num = |p: &str| p.parse::<u32>().map_err(|_| bad());
            let (cid, port) = match rest.split_once(':') {
                Some((cid, port)) => (cid, port),
                // `vsock:PORT` listens on any CID.
                None => ("any", rest),
            };
            let cid = match cid {
                "any" => libc::VMADDR_CID_ANY,
                "local" => libc::VMADDR_CID_LOCAL,
                "host" => libc::VMADDR_CID_HOST,
                c => num(c)?,
            };
            return Ok(Addr::Vsock {
                cid,
                port: num(port)?,
            });
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            if let Ok(sa) = rest.parse::<SocketAddr>() {
                return Ok(Addr::Tcp(sa));
            }
            // Only `localhost` is resolved by hand: a static binary cannot use NSS.
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            if host == "localhost" {
                return Ok(Addr::Tcp(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
            bail!("bad address {s:?}: HOST must be an IP address or localhost ({ADDR_HELP})");
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            if rest.is_empty() {
                return Err(bad());
            }
            return Ok(Addr::Unix(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("vchan:") {
            let (domid, base) = rest.split_once(':').ok_or_else(bad)?;
            // The control plane's own rule: strict decimal, below DOMID_FIRST_RESERVED.
            let domid = paths::parse_domid(domid.as_bytes()).ok_or_else(bad)?;
            let path_ok = base.len() > 1
                && base.starts_with('/')
                && !base.ends_with('/')
                && !base.contains("//")
                && base
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-@.".contains(&b));
            if !path_ok {
                bail!(
                    "bad address {s:?}: BASE must be an absolute XenStore path \
                     (letters, digits, /_-@.; no trailing /) ({ADDR_HELP})"
                );
            }
            if base.len() > VCHAN_BASE_MAX {
                bail!(
                    "bad address {s:?}: BASE is longer than {VCHAN_BASE_MAX} bytes \
                     (libxenvchan truncates longer XenStore paths)"
                );
            }
            return Ok(Addr::Vchan {
                domid,
                base: base.to_string(),
            });
        }
        Err(bad())
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
    /// Read, write and connect timeout; `None` blocks forever.
    pub timeout: Option<Duration>,
}

fn os(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size given.
    os(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn getsockopt_u64(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and `len` is the size of `v`.
    os(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut u64).cast(), &mut len) })?;
    Ok(v)
}

fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

/// A raw socket address of any of the three families.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: libc::c_int,
}

impl RawAddr {
    fn new(a: &Addr) -> Result<RawAddr> {
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let p = (&mut storage as *mut libc::sockaddr_storage).cast::<u8>();
        // Each arm writes a smaller sockaddr into the storage, which is large and
        // aligned enough for all of them.
        let (family, len) = match a {
            Addr::Vsock { cid, port } => {
                let sa = libc::sockaddr_vm {
                    svm_family: libc::AF_VSOCK as libc::sa_family_t,
                    svm_reserved1: 0,
                    svm_port: *port,
                    svm_cid: *cid,
                    svm_zero: [0; 4],
                };
                // SAFETY: see above.
                unsafe { p.cast::<libc::sockaddr_vm>().write(sa) };
                (libc::AF_VSOCK, std::mem::size_of_val(&sa))
            }
            Addr::Tcp(SocketAddr::V4(v4)) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: see above.
                unsafe { p.cast::<libc::sockaddr_in>().write(sa) };
                (libc::AF_INET, std::mem::size_of_val(&sa))
            }
            Addr::Tcp(SocketAddr::V6(v6)) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: see above.
                unsafe { p.cast::<libc::sockaddr_in6>().write(sa) };
                (libc::AF_INET6, std::mem::size_of_val(&sa))
            }
            Addr::Unix(path) => {
                // SAFETY: all-zero bytes are a valid sockaddr_un.
                let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
                sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
                let bytes = path.as_os_str().as_bytes();
                // Keep a terminating NUL.
                if bytes.len() >= sa.sun_path.len() {
                    bail!("unix socket path {} is too long", path.display());
                }
                for (d, s) in sa.sun_path.iter_mut().zip(bytes) {
                    *d = *s as libc::c_char;
                }
                // SAFETY: see above.
                unsafe { p.cast::<libc::sockaddr_un>().write(sa) };
                (libc::AF_UNIX, std::mem::size_of_val(&sa))
            }
            Addr::Vchan { .. } => bail!("{a} is not a socket address"),
        };
        Ok(RawAddr {
            storage,
            len: len as libc::socklen_t,
            family,
        })
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

/// A fresh stream socket of `family` with `opts` applied.
fn socket(family: libc::c_int, opts: &SockOpts) -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = os(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
        .with_context(|| match family {
            libc::AF_VSOCK => "socket(AF_VSOCK): is the vsock transport (YASMIN) loaded?",
            _ => "socket()",
        })?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    if let Some(size) = opts.buffer_size {
        if family == libc::AF_VSOCK {
            set_vsock_buffer_size(raw, size)?;
        } else {
            let v = libc::c_int::try_from(size).context("buffer size too large for SO_SNDBUF")?;
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, &v).context("SO_SNDBUF")?;
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &v).context("SO_RCVBUF")?;
        }
    }
    if let Some(t) = opts.timeout {
        let tv = timeval(t);
        // On Linux SO_SNDTIMEO also bounds a blocking TCP or Unix connect.
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).context("SO_RCVTIMEO")?;
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv).context("SO_SNDTIMEO")?;
        if family == libc::AF_VSOCK {
            setsockopt(raw, libc::AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv)
                .context("SO_VM_SOCKETS_CONNECT_TIMEOUT")?;
        }
    }
    if opts.nodelay && (family == libc::AF_INET || family == libc::AF_INET6) {
        setsockopt(
            raw,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &1 as &libc::c_int,
        )
        .context("TCP_NODELAY")?;
    }
    Ok(fd)
}

/// The kernel clamps SIZE to [MIN, MAX], so MAX goes first (and MIN only when the wanted
/// size is below the current minimum).
fn set_vsock_buffer_size(fd: RawFd, size: u64) -> Result<()> {
    setsockopt(fd, libc::AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &size)
        .context("SO_VM_SOCKETS_BUFFER_MAX_SIZE")?;
    let min = getsockopt_u64(fd, libc::AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE)
        .context("getsockopt SO_VM_SOCKETS_BUFFER_MIN_SIZE")?;
    if size < min {
        setsockopt(fd, libc::AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &size)
            .context("SO_VM_SOCKETS_BUFFER_MIN_SIZE")?;
    }
    setsockopt(fd, libc::AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &size)
        .context("SO_VM_SOCKETS_BUFFER_SIZE")?;
    let got = getsockopt_u64(fd, libc::AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE)
        .context("getsockopt SO_VM_SOCKETS_BUFFER_SIZE")?;
    if got != size {
        bail!("vsock buffer size {size} was not taken (the socket reports {got})");
    }
    Ok(())
}

/// The error of a `vchan:` address in a build without the `vchan` feature.
#[cfg(not(feature = "vchan"))]
fn no_vchan(a: &Addr) -> anyhow::Error {
    anyhow::anyhow!(
        "{a}: yasmin-bench was built without the vchan feature \
         (build with `--features vchan`, which links Xen's libxenvchan)"
    )
}

/// One connected stream of any family.
pub enum Conn {
    Vsock(VsockStream),
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "vchan")]
    Vchan(crate::vchan::Stream),
}

impl Conn {
    /// Connects within `opts.timeout` (forever if `None`). For vchan the ring sizes are
    /// the server's: `opts.buffer_size` is ignored.
    pub fn connect(a: &Addr, opts: &SockOpts) -> Result<Conn> {
        if let Addr::Vchan { domid, base } = a {
            #[cfg(feature = "vchan")]
            return Ok(Conn::Vchan(
                crate::vchan::Stream::connect(*domid, base, opts.timeout)
                    .with_context(|| format!("connect to {a}"))?,
            ));
            #[cfg(not(feature = "vchan"))]
            {
                let _ = (domid, base);
                return Err(no_vchan(a));
            }
        }
        let ra = RawAddr::new(a)?;
        let fd = socket(ra.family, opts)?;
        // SAFETY: `ra` holds a valid address of `ra.len` bytes.
        os(unsafe { libc::connect(fd.as_raw_fd(), ra.ptr(), ra.len) }).map_err(|e| {
            // SO_SNDTIMEO expiring on connect shows as EINPROGRESS or EAGAIN.
            let hint = match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => " (timed out)",
                _ => "",
            };
            anyhow::anyhow!("connect to {a}: {e}{hint}")
        })?;
        Ok(match a {
            Addr::Vsock { .. } => Conn::Vsock(VsockStream::from(fd)),
            Addr::Tcp(_) => Conn::Tcp(TcpStream::from(fd)),
            Addr::Unix(_) => Conn::Unix(UnixStream::from(fd)),
            Addr::Vchan { .. } => unreachable!("handled above"),
        })
    }

    /// A second handle on the same stream (for the other direction's thread).
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Vsock(s) => Conn::Vsock(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => Conn::Vchan(s.try_clone()),
        })
    }

    /// For vchan this only wakes and stops this end's threads (the peer sees the close
    /// when the last handle is dropped).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Vsock(s) => s.shutdown(how),
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => {
                s.shutdown(how);
                Ok(())
            }
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
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.set_timeout(t),
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

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Listener {
    Vsock(VsockListener),
    Tcp(TcpListener),
    Unix(UnixListener),
    #[cfg(feature = "vchan")]
    Vchan(crate::vchan::Listener),
}

impl Listener {
    /// Binds and listens; only `opts.buffer_size` matters here (accepted sockets inherit
    /// it), timeouts are set per accepted connection. For vchan `opts.buffer_size` is the
    /// size of both rings (default [`DEFAULT_VCHAN_RING`]), rounded as
    /// [`vchan_ring_sizes`] says.
    pub fn bind(a: &Addr, opts: &SockOpts) -> Result<Listener> {
        if let Addr::Vchan { domid, base } = a {
            #[cfg(feature = "vchan")]
            return Ok(Listener::Vchan(
                crate::vchan::Listener::bind(*domid, base, opts.buffer_size)
                    .with_context(|| format!("listen on {a}"))?,
            ));
            #[cfg(not(feature = "vchan"))]
            {
                let _ = (domid, base);
                return Err(no_vchan(a));
            }
        }
        if let Addr::Unix(path) = a {
            // A socket file left by an earlier server would make bind fail.
            if let Ok(md) = std::fs::symlink_metadata(path) {
                if md.file_type().is_socket() {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing stale socket {}", path.display()))?;
                }
            }
        }
        let ra = RawAddr::new(a)?;
        let bind_opts = SockOpts {
            buffer_size: opts.buffer_size,
            ..SockOpts::default()
        };
        let fd = socket(ra.family, &bind_opts)?;
        if ra.family != libc::AF_UNIX {
            // Quick server restarts between runs must not hit TIME_WAIT.
            setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &1 as &libc::c_int,
            )
            .context("SO_REUSEADDR")?;
        }
        // SAFETY: `ra` holds a valid address of `ra.len` bytes.
        os(unsafe { libc::bind(fd.as_raw_fd(), ra.ptr(), ra.len) })
            .with_context(|| format!("bind {a}"))?;
        // SAFETY: plain listen(2) on our socket.
        os(unsafe { libc::listen(fd.as_raw_fd(), 128) }).with_context(|| format!("listen {a}"))?;
        Ok(match a {
            Addr::Vsock { .. } => Listener::Vsock(VsockListener::from(fd)),
            Addr::Tcp(_) => Listener::Tcp(TcpListener::from(fd)),
            Addr::Unix(_) => Listener::Unix(UnixListener::from(fd)),
            Addr::Vchan { .. } => unreachable!("handled above"),
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
            #[cfg(feature = "vchan")]
            Listener::Vchan(l) => {
                let (s, peer) = l.accept()?;
                (Conn::Vchan(s), peer)
            }
        })
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        bail!("CPU {cpu} is out of range");
    }
    // SAFETY: `cpu` is within the set's size (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given; pid 0 is this thread.
    os(unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) })
        .with_context(|| format!("sched_setaffinity to CPU {cpu}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Addr::parse("vsock:3:5000").unwrap(),
            Addr::Vsock { cid: 3, port: 5000 }
        );
        let any = Addr::Vsock {
            cid: 4294967295,
            port: 7000,
        };
        assert_eq!(Addr::parse("vsock:4294967295:7000").unwrap(), any);
        assert_eq!(Addr::parse("vsock:any:7000").unwrap(), any);
        assert_eq!(Addr::parse("vsock:7000").unwrap(), any);
        assert_eq!(
            Addr::parse("tcp:127.0.0.1:80").unwrap(),
            Addr::Tcp("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            Addr::parse("tcp:localhost:80").unwrap(),
            Addr::Tcp("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            Addr::parse("tcp:[::1]:9").unwrap(),
            Addr::Tcp("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            Addr::parse("unix:/tmp/x.sock").unwrap(),
            Addr::Unix("/tmp/x.sock".into())
        );
        for bad in [
            "",
            "vsock:",
            "vsock:a:1",
            "vsock:1:2:3",
            "vsock:1:99999999999",
            "tcp:nohost",
            "tcp:example.com:80",
            "tcp:1.2.3.4:70000",
            "unix:",
            "udp:1.2.3.4:5",
            "vchan:",
            "vchan:3",
            "vchan:3:",
            "vchan:x:/a",
            "vchan:-1:/a",
            "vchan:65536:/a",
            "vchan:32752:/a",
            "vchan:3:relative/path",
            "vchan:3:/",
            "vchan:3:/a/",
            "vchan:3:/a//b",
            "vchan:3:/a b",
            "vchan:3:/a\0b",
        ] {
            assert!(Addr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_vchan_addresses() {
        assert_eq!(
            Addr::parse("vchan:4:/local/domain/3/data/yasmin-bench-vchan").unwrap(),
            Addr::Vchan {
                domid: 4,
                base: "/local/domain/3/data/yasmin-bench-vchan".into()
            }
        );
        // dom0 and the last ordinary domain id.
        assert!(Addr::parse("vchan:0:/a").is_ok());
        assert!(Addr::parse("vchan:32751:/a").is_ok());
        // BASE up to the limit, whose first endpoints' nodes still fit libxenvchan's
        // 64-byte buffers; one more byte is refused.
        let longest = format!("/{}", "b".repeat(VCHAN_BASE_MAX - 1));
        let a = Addr::parse(&format!("vchan:1:{longest}")).unwrap();
        assert!(vchan_path_fits(&format!("{longest}/9999")));
        assert!(!vchan_path_fits(&format!("{longest}/99999")));
        assert_eq!(a.to_string(), format!("vchan:1:{longest}"));
        assert!(Addr::parse(&format!("vchan:1:{longest}b")).is_err());
        // Not a socket address.
        assert!(RawAddr::new(&a).is_err());
    }

    #[test]
    fn vchan_paths_fit_libxenvchan_buffers() {
        // "<path>/event-channel" plus its NUL must fit in 64 bytes.
        assert!(vchan_path_fits(&"p".repeat(49)));
        assert!(!vchan_path_fits(&"p".repeat(50)));
    }

    #[test]
    fn vchan_ring_sizes_round_like_libxenvchan() {
        // The default: 64 KiB each way, already a power of two.
        assert_eq!(
            vchan_ring_sizes(DEFAULT_VCHAN_RING, DEFAULT_VCHAN_RING),
            Some((65536, 65536))
        );
        // Powers of two of at least one page.
        assert_eq!(vchan_ring_sizes(5000, 70000), Some((8192, 131072)));
        assert_eq!(vchan_ring_sizes(1 << 20, 1 << 20), Some((1 << 20, 1 << 20)));
        // In-page rings: 1 KiB and 2 KiB when both fit, whichever way round.
        assert_eq!(vchan_ring_sizes(1, 1), Some((1024, 2048)));
        assert_eq!(vchan_ring_sizes(1024, 2048), Some((1024, 2048)));
        assert_eq!(vchan_ring_sizes(2048, 1024), Some((2048, 1024)));
        assert_eq!(vchan_ring_sizes(2048, 2048), Some((2048, 4096)));
        assert_eq!(vchan_ring_sizes(4096, 2048), Some((4096, 2048)));
        // Above 1 MiB libxenvchan refuses.
        assert_eq!(vchan_ring_sizes((1 << 20) + 1, 1), None);
        assert_eq!(vchan_ring_sizes(1, (1 << 20) + 1), None);
    }

    #[cfg(not(feature = "vchan"))]
    #[test]
    fn vchan_needs_the_feature() {
        let a = Addr::parse("vchan:1:/local/domain/2/data/x").unwrap();
        let opts = SockOpts::default();
        for e in [
            Conn::connect(&a, &opts).err().unwrap(),
            Listener::bind(&a, &opts).err().unwrap(),
        ] {
            let msg = format!("{e:#}");
            assert!(msg.contains("built without the vchan feature"), "{msg}");
        }
    }

    #[test]
    fn displays_addresses() {
        for s in [
            "vsock:3:5000",
            "tcp:127.0.0.1:80",
            "tcp:[::1]:9",
            "unix:/tmp/x",
            "vchan:3:/local/domain/4/data/yasmin-bench-vchan",
        ] {
            assert_eq!(Addr::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_long_unix_path() {
        let long = format!("unix:/{}", "x".repeat(200));
        assert!(RawAddr::new(&Addr::parse(&long).unwrap()).is_err());
    }
}
