// SPDX-License-Identifier: GPL-2.0
//! The two transports the checker speaks, behind one stream type: AF_VSOCK (the `vsock`
//! crate) and TCP (std), so the same code path runs over YASMIN and over netfront.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;
use vsock::{VsockAddr, VsockListener, VsockStream};

/// `SO_VM_SOCKETS_CONNECT_TIMEOUT` (`struct timeval` form) at level `AF_VSOCK`, from
/// <linux/vm_sockets.h>; the libc crate does not name it.
const SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD: libc::c_int = 6;

/// Connect timeout for vsock: the kernel's default is 2 s, which many connections set up
/// at once on an emulated CPU can exceed; the checker tests integrity, not set-up time.
pub const VSOCK_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn os<T: PartialOrd + Default>(r: T) -> io::Result<T> {
    if r < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A vsock connect with an explicit connect timeout.
fn vsock_connect(cid: u32, port: u32, timeout: Duration) -> io::Result<VsockStream> {
    // SAFETY: plain socket(2) call.
    let fd =
        os(unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `tv` is a valid timeval of the size given.
    os(unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::AF_VSOCK,
            SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    let addr = libc::sockaddr_vm {
        svm_family: libc::AF_VSOCK as libc::sa_family_t,
        svm_reserved1: 0,
        svm_port: port,
        svm_cid: cid,
        svm_zero: [0; 4],
    };
    // SAFETY: `addr` is a valid sockaddr_vm of the size given.
    os(unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&addr as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    })?;
    Ok(VsockStream::from(fd))
}

/// `vsock:CID:PORT` (connect), `vsock:PORT` (listen on any CID) or `tcp:IP:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Vsock { cid: u32, port: u32 },
    Tcp(SocketAddr),
}

fn bad(s: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("bad address {s:?}: want vsock:CID:PORT, vsock:PORT or tcp:IP:PORT"),
    )
}

impl Addr {
    pub fn parse(s: &str) -> io::Result<Addr> {
        if let Some(rest) = s.strip_prefix("vsock:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let num = |p: &str| p.parse::<u32>().map_err(|_| bad(s));
            return match parts.as_slice() {
                [port] => Ok(Addr::Vsock {
                    cid: libc::VMADDR_CID_ANY,
                    port: num(port)?,
                }),
                [cid, port] => Ok(Addr::Vsock {
                    cid: num(cid)?,
                    port: num(port)?,
                }),
                _ => Err(bad(s)),
            };
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            return rest.parse().map(Addr::Tcp).map_err(|_| bad(s));
        }
        Err(bad(s))
    }
}

pub enum Conn {
    Vsock(VsockStream),
    Tcp(TcpStream),
}

impl Conn {
    pub fn connect(a: &Addr) -> io::Result<Conn> {
        Ok(match a {
            Addr::Vsock { cid, port } => {
                Conn::Vsock(vsock_connect(*cid, *port, VSOCK_CONNECT_TIMEOUT)?)
            }
            Addr::Tcp(sa) => Conn::Tcp(TcpStream::connect(sa)?),
        })
    }

    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Vsock(s) => Conn::Vsock(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    pub fn shutdown_both(&self) -> io::Result<()> {
        match self {
            Conn::Vsock(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Vsock(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Vsock(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Listener {
    Vsock(VsockListener),
    Tcp(TcpListener),
}

impl Listener {
    pub fn bind(a: &Addr) -> io::Result<Listener> {
        Ok(match a {
            Addr::Vsock { cid, port } => {
                Listener::Vsock(VsockListener::bind(&VsockAddr::new(*cid, *port))?)
            }
            Addr::Tcp(sa) => Listener::Tcp(TcpListener::bind(sa)?),
        })
    }

    pub fn accept(&self) -> io::Result<Conn> {
        Ok(match self {
            Listener::Vsock(l) => Conn::Vsock(l.accept()?.0),
            Listener::Tcp(l) => Conn::Tcp(l.accept()?.0),
        })
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
        assert_eq!(
            Addr::parse("vsock:5000").unwrap(),
            Addr::Vsock {
                cid: libc::VMADDR_CID_ANY,
                port: 5000
            }
        );
        assert_eq!(
            Addr::parse("tcp:198.18.0.1:80").unwrap(),
            Addr::Tcp("198.18.0.1:80".parse().unwrap())
        );
        for bad in [
            "",
            "vsock:",
            "vsock:a:1",
            "vsock:1:2:3",
            "tcp:nohost",
            "udp:1.2.3.4:5",
        ] {
            assert!(Addr::parse(bad).is_err(), "{bad}");
        }
    }
}
