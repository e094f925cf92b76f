// SPDX-License-Identifier: GPL-2.0
//! The transports behind one stream type: the sockets of `yasmin-endpoint` (AF_VSOCK,
//! TCP, Unix) and, with the `vchan` feature, Xen libvchan. libvchan is not a socket: see
//! the `vchan` module (its addresses parse either way; a build without the feature fails
//! to connect or listen on them).

use anyhow::{bail, Context, Result};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;
use xenstore_watch::control::paths;
pub use yasmin_endpoint::SockOpts;

/// `vsock:CID:PORT`, `tcp:HOST:PORT`, `unix:/path` or `vchan:DOMID:BASE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A socket address (vsock, TCP or Unix).
    Socket(yasmin_endpoint::Addr),
    /// Xen libvchan to or from domain `domid` (the peer), rendezvous under the XenStore
    /// directory `base`, which is in the *server's* tree (see [`VCHAN_BASE_MAX`]).
    Vchan { domid: u16, base: String },
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Socket(a) => a.fmt(f),
            Addr::Vchan { domid, base } => write!(f, "vchan:{domid}:{base}"),
        }
    }
}

/// The forms yasmin-bench takes, in every bad-address message (the socket forms' too).
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
        yasmin_endpoint::Addr::parse(s)
            .map(Addr::Socket)
            .map_err(|e| anyhow::anyhow!(e.message(ADDR_HELP)))
    }
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
    Socket(yasmin_endpoint::Conn),
    #[cfg(feature = "vchan")]
    Vchan(crate::vchan::Stream),
}

impl Conn {
    /// Connects within `opts.timeout` (forever if `None`). For vchan the ring sizes are
    /// the server's: `opts.buffer_size` is ignored.
    pub fn connect(a: &Addr, opts: &SockOpts) -> Result<Conn> {
        match a {
            Addr::Socket(sa) => Ok(Conn::Socket(yasmin_endpoint::Conn::connect(sa, opts)?)),
            #[cfg(feature = "vchan")]
            Addr::Vchan { domid, base } => Ok(Conn::Vchan(
                crate::vchan::Stream::connect(*domid, base, opts.timeout)
                    .with_context(|| format!("connect to {a}"))?,
            )),
            #[cfg(not(feature = "vchan"))]
            Addr::Vchan { .. } => Err(no_vchan(a)),
        }
    }

    /// A second handle on the same stream (for the other direction's thread).
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Socket(s) => Conn::Socket(s.try_clone()?),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => Conn::Vchan(s.try_clone()),
        })
    }

    /// For vchan this only wakes and stops this end's threads (the peer sees the close
    /// when the last handle is dropped).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Socket(s) => s.shutdown(how),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => {
                s.shutdown(how);
                Ok(())
            }
        }
    }

    /// Sets read and write timeouts (shared by clones of the same stream).
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Socket(s) => s.set_timeout(t),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.set_timeout(t),
        }
    }

    /// Applies `opts` to an accepted stream (listeners pass buffer sizes on themselves).
    pub fn apply(&self, opts: &SockOpts) -> io::Result<()> {
        match self {
            Conn::Socket(s) => s.apply(opts),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.set_timeout(opts.timeout),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Socket(s) => s.read(buf),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Socket(s) => s.write(buf),
            #[cfg(feature = "vchan")]
            Conn::Vchan(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Listener {
    Socket(yasmin_endpoint::Listener),
    #[cfg(feature = "vchan")]
    Vchan(crate::vchan::Listener),
}

impl Listener {
    /// Binds and listens; only `opts.buffer_size` matters here (accepted streams inherit
    /// it), timeouts are set per accepted connection. For vchan `opts.buffer_size` is the
    /// size of both rings (default [`DEFAULT_VCHAN_RING`]), rounded as
    /// [`vchan_ring_sizes`] says.
    pub fn bind(a: &Addr, opts: &SockOpts) -> Result<Listener> {
        match a {
            Addr::Socket(sa) => Ok(Listener::Socket(yasmin_endpoint::Listener::bind(sa, opts)?)),
            #[cfg(feature = "vchan")]
            Addr::Vchan { domid, base } => Ok(Listener::Vchan(
                crate::vchan::Listener::bind(*domid, base, opts.buffer_size)
                    .with_context(|| format!("listen on {a}"))?,
            )),
            #[cfg(not(feature = "vchan"))]
            Addr::Vchan { .. } => Err(no_vchan(a)),
        }
    }

    /// Accepts one connection and names its peer.
    pub fn accept(&self) -> io::Result<(Conn, String)> {
        Ok(match self {
            Listener::Socket(l) => {
                let (s, peer) = l.accept()?;
                (Conn::Socket(s), peer)
            }
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
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity to CPU {cpu}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        // The socket forms are yasmin-endpoint's (tested there); messages list vchan too.
        for s in ["vsock:3:5000", "tcp:localhost:80", "unix:/tmp/x.sock"] {
            let a = yasmin_endpoint::Addr::parse(s).unwrap();
            assert_eq!(Addr::parse(s).unwrap(), Addr::Socket(a));
        }
        for bad in [
            "udp:1.2.3.4:5",
            "tcp:example.com:80",
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
            let e = Addr::parse(bad).unwrap_err().to_string();
            // Every message lists the forms, vchan's included.
            assert!(e.contains(ADDR_HELP), "{bad}: {e}");
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
        // Socket addresses print as yasmin-endpoint prints them (tested there).
        for s in [
            "tcp:[::1]:9",
            "vchan:3:/local/domain/4/data/yasmin-bench-vchan",
        ] {
            assert_eq!(Addr::parse(s).unwrap().to_string(), s);
        }
    }
}
