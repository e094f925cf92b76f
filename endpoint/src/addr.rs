// SPDX-License-Identifier: GPL-2.0
//! Parsing and printing `vsock:`, `tcp:` and `unix:` addresses.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The forms [`Addr::parse`] takes, as its error messages list them.
pub const SYNTAX: &str = "want vsock:CID:PORT (CID a number, `any`, `local` or `host`; \
     vsock:PORT is any CID), tcp:IP:PORT ([IPv6]:PORT or localhost:PORT) or unix:/path";

/// A stream socket address: `vsock:CID:PORT`, `tcp:HOST:PORT` or `unix:/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// AF_VSOCK; `vsock:PORT` (listen on any CID) is `VMADDR_CID_ANY`.
    Vsock {
        cid: u32,
        port: u32,
    },
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Addr::Tcp(sa) => write!(f, "tcp:{sa}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// An address that did not parse. It prints with [`SYNTAX`]; a program that takes more
/// forms (yasmin-bench's `vchan:`) lists its own with [`AddrError::message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrError {
    input: String,
    /// What is wrong, when it is more than "none of the forms".
    problem: Option<&'static str>,
}

impl AddrError {
    /// The error message, with `syntax` saying which forms are wanted.
    pub fn message(&self, syntax: &str) -> String {
        match self.problem {
            Some(problem) => format!("bad address {:?}: {problem} ({syntax})", self.input),
            None => format!("bad address {:?}: {syntax}", self.input),
        }
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(SYNTAX))
    }
}

impl std::error::Error for AddrError {}

impl From<AddrError> for io::Error {
    fn from(e: AddrError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

impl Addr {
    pub fn parse(s: &str) -> Result<Addr, AddrError> {
        let bad = |problem| AddrError {
            input: s.to_string(),
            problem,
        };
        if let Some(rest) = s.strip_prefix("vsock:") {
            let num = |p: &str| p.parse::<u32>().map_err(|_| bad(None));
            // `vsock:PORT` listens on any CID.
            let (cid, port) = rest.split_once(':').unwrap_or(("any", rest));
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
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad(None))?;
            let port: u16 = port.parse().map_err(|_| bad(None))?;
            if host == "localhost" {
                return Ok(Addr::Tcp(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
            return Err(bad(Some("HOST must be an IP address or localhost")));
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            if rest.is_empty() {
                return Err(bad(None));
            }
            return Ok(Addr::Unix(PathBuf::from(rest)));
        }
        Err(bad(None))
    }

    /// `vsock`, `tcp` or `unix`: the family, as the address spells it.
    pub fn scheme(&self) -> &'static str {
        match self {
            Addr::Vsock { .. } => "vsock",
            Addr::Tcp(_) => "tcp",
            Addr::Unix(_) => "unix",
        }
    }
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
            cid: libc::VMADDR_CID_ANY,
            port: 7000,
        };
        assert_eq!(Addr::parse("vsock:4294967295:7000").unwrap(), any);
        assert_eq!(Addr::parse("vsock:any:7000").unwrap(), any);
        assert_eq!(Addr::parse("vsock:7000").unwrap(), any);
        assert_eq!(
            Addr::parse("vsock:local:1").unwrap(),
            Addr::Vsock { cid: 1, port: 1 }
        );
        assert_eq!(
            Addr::parse("vsock:host:1").unwrap(),
            Addr::Vsock { cid: 2, port: 1 }
        );
        assert_eq!(
            Addr::parse("tcp:198.18.0.1:80").unwrap(),
            Addr::Tcp("198.18.0.1:80".parse().unwrap())
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
            "vchan:3:/a",
        ] {
            assert!(Addr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_wanted_forms() {
        let e = Addr::parse("udp:1.2.3.4:5").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bad address \"udp:1.2.3.4:5\": {SYNTAX}")
        );
        assert_eq!(
            e.message("want tcp:IP:PORT"),
            "bad address \"udp:1.2.3.4:5\": want tcp:IP:PORT"
        );
        let e = Addr::parse("tcp:example.com:80").unwrap_err();
        assert_eq!(
            e.message("want tcp:IP:PORT"),
            "bad address \"tcp:example.com:80\": HOST must be an IP address or localhost \
             (want tcp:IP:PORT)"
        );
        let e = io::Error::from(e);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(SYNTAX), "{e}");
    }

    #[test]
    fn displays_addresses() {
        for s in [
            "vsock:3:5000",
            "tcp:127.0.0.1:80",
            "tcp:[::1]:9",
            "unix:/tmp/x",
        ] {
            let a = Addr::parse(s).unwrap();
            assert_eq!(a.to_string(), s);
            assert!(s.starts_with(a.scheme()), "{s}");
        }
    }
}
