//! Socket addresses as the program sees them (AF_INET, AF_INET6 with v4-mapped
//! addresses) and as vsock needs them, plus descriptor flag handling.

use core::fmt;
use core::mem::size_of;

use libc::{c_int, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_vm, socklen_t};

/// An IPv4 endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct V4 {
    pub ip: [u8; 4],
    pub port: u16,
}

impl fmt::Display for V4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.ip;
        write!(f, "{a}.{b}.{c}.{d}:{}", self.port)
    }
}

/// Formats an IPv4 address as a dotted quad.
pub fn ip_str(ip: [u8; 4]) -> String {
    let [a, b, c, d] = ip;
    format!("{a}.{b}.{c}.{d}")
}

/// An AF_INET or AF_INET6 socket address, classified for our purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inet {
    /// `sockaddr_in`.
    V4(V4),
    /// `sockaddr_in6` holding a v4-mapped address `::ffff:a.b.c.d`.
    Mapped(V4),
    /// `sockaddr_in6` holding `::` (a dual-stack wildcard unless IPV6_V6ONLY).
    Any6 { port: u16 },
    /// Any other `sockaddr_in6`.
    Other6 { port: u16 },
}

impl Inet {
    /// The IPv4 endpoint, if this address has one, for a socket of `family`: a
    /// `sockaddr_in` on an AF_INET socket or a v4-mapped `sockaddr_in6` on an AF_INET6
    /// socket (anything else the kernel rejects or routes over IPv6).
    pub fn v4_for(self, family: c_int) -> Option<V4> {
        match (family, self) {
            (libc::AF_INET, Inet::V4(v)) | (libc::AF_INET6, Inet::Mapped(v)) => Some(v),
            _ => None,
        }
    }

    /// Port of the address.
    pub fn port(self) -> u16 {
        match self {
            Inet::V4(v) | Inet::Mapped(v) => v.port,
            Inet::Any6 { port } | Inet::Other6 { port } => port,
        }
    }
}

const SIN_LEN: usize = size_of::<sockaddr_in>();
const SIN6_LEN: usize = size_of::<sockaddr_in6>();
/// The minimum the kernel accepts for a `sockaddr_in6` (no `sin6_scope_id`).
const SIN6_LEN_RFC2133: usize = 24;

/// Parses the bytes of a socket address (as passed to `connect`/`bind` or returned by
/// `getsockname`). `None` for other families and for lengths the kernel would reject.
pub fn parse_bytes(b: &[u8]) -> Option<Inet> {
    if b.len() < 2 {
        return None;
    }
    let family = c_int::from(u16::from_ne_bytes([b[0], b[1]]));
    match family {
        libc::AF_INET if b.len() >= SIN_LEN => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = [b[4], b[5], b[6], b[7]];
            Some(Inet::V4(V4 { ip, port }))
        }
        libc::AF_INET6 if b.len() >= SIN6_LEN_RFC2133 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let a = &b[8..24];
            if a.iter().all(|&x| x == 0) {
                Some(Inet::Any6 { port })
            } else if a[..10].iter().all(|&x| x == 0) && a[10] == 0xff && a[11] == 0xff {
                let ip = [a[12], a[13], a[14], a[15]];
                Some(Inet::Mapped(V4 { ip, port }))
            } else {
                Some(Inet::Other6 { port })
            }
        }
        _ => None,
    }
}

/// [`parse_bytes`] over a raw pointer and length.
///
/// # Safety
/// `addr` must be null or point to `len` readable bytes.
pub unsafe fn parse(addr: *const sockaddr, len: socklen_t) -> Option<Inet> {
    if addr.is_null() {
        return None;
    }
    let n = (len as usize).min(SIN6_LEN);
    let mut buf = [0u8; SIN6_LEN];
    // SAFETY: the caller guarantees `len` readable bytes; we read at most that many.
    unsafe { core::ptr::copy_nonoverlapping(addr.cast::<u8>(), buf.as_mut_ptr(), n) };
    parse_bytes(&buf[..n])
}

/// Encodes `ep` as the program's socket family would: `sockaddr_in` for AF_INET, a
/// v4-mapped `sockaddr_in6` for AF_INET6. Returns the bytes and their length.
pub fn encode(family: c_int, ep: V4) -> ([u8; SIN6_LEN], usize) {
    let mut b = [0u8; SIN6_LEN];
    if family == libc::AF_INET6 {
        b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&ep.port.to_be_bytes());
        b[18] = 0xff;
        b[19] = 0xff;
        b[20..24].copy_from_slice(&ep.ip);
        (b, SIN6_LEN)
    } else {
        b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&ep.port.to_be_bytes());
        b[4..8].copy_from_slice(&ep.ip);
        (b, SIN_LEN)
    }
}

/// Copies an encoded address out as `getsockname`/`accept` do: at most `*len` bytes,
/// then `*len` = the full length. A null `addr` (accept's "don't care") copies nothing.
///
/// # Safety
/// `addr`/`len` must be null or valid as for `getsockname(2)`.
pub unsafe fn write_out(enc: &[u8], addr: *mut sockaddr, len: *mut socklen_t) -> Result<(), c_int> {
    if addr.is_null() {
        return Ok(());
    }
    if len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller guarantees `len` is valid.
    let room = unsafe { *len } as i32;
    if room < 0 {
        return Err(libc::EINVAL);
    }
    let n = (room as usize).min(enc.len());
    // SAFETY: the caller guarantees `*len` writable bytes at `addr`; we write `n` <= that.
    unsafe {
        core::ptr::copy_nonoverlapping(enc.as_ptr(), addr.cast::<u8>(), n);
        *len = enc.len() as socklen_t;
    }
    Ok(())
}

/// A vsock address.
pub fn vm(cid: u32, port: u32) -> sockaddr_vm {
    // SAFETY: sockaddr_vm is plain old data; all-zero is valid.
    let mut sa: sockaddr_vm = unsafe { core::mem::zeroed() };
    sa.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    sa.svm_port = port;
    sa.svm_cid = cid;
    sa
}

/// A vsock port as a TCP port. vsock ports are 32 bits (autobound ones are random above
/// 1023), TCP ports 16: larger ones are folded into 1024..=65535.
pub fn fold_port(p: u32) -> u16 {
    if p <= 0xffff {
        p as u16
    } else {
        (1024 + (p - 1024) % (65536 - 1024)) as u16
    }
}

/// Descriptor state that a replacement socket must keep: the file's `O_NONBLOCK` and
/// the descriptor's `FD_CLOEXEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdFlags {
    pub nonblock: bool,
    pub cloexec: bool,
}

impl FdFlags {
    /// From `fcntl(F_GETFL)` and `fcntl(F_GETFD)`.
    pub fn from_fcntl(getfl: c_int, getfd: c_int) -> FdFlags {
        FdFlags {
            nonblock: getfl & libc::O_NONBLOCK != 0,
            cloexec: getfd & libc::FD_CLOEXEC != 0,
        }
    }

    /// From a `socket()` type argument (`SOCK_NONBLOCK`/`SOCK_CLOEXEC` bits).
    pub fn from_sock_type(ty: c_int) -> FdFlags {
        FdFlags {
            nonblock: ty & libc::SOCK_NONBLOCK != 0,
            cloexec: ty & libc::SOCK_CLOEXEC != 0,
        }
    }

    /// The `socket()` type flags that recreate these.
    pub fn sock_type_flags(self) -> c_int {
        (if self.nonblock {
            libc::SOCK_NONBLOCK
        } else {
            0
        }) | (if self.cloexec { libc::SOCK_CLOEXEC } else { 0 })
    }

    /// The `dup3()` flags that give the target descriptor this `FD_CLOEXEC`.
    pub fn dup3_flags(self) -> c_int {
        if self.cloexec {
            libc::O_CLOEXEC
        } else {
            0
        }
    }
}

/// Whether a `socket()` call is one we manage: an AF_INET/AF_INET6 stream socket with
/// the default or the TCP protocol (flags allowed). Returns the family.
pub fn is_tcp_socket(domain: c_int, ty: c_int, proto: c_int) -> bool {
    let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    (domain == libc::AF_INET || domain == libc::AF_INET6)
        && base == libc::SOCK_STREAM
        && (proto == 0 || proto == libc::IPPROTO_TCP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(ip: [u8; 4], port: u16) -> Vec<u8> {
        encode(libc::AF_INET, V4 { ip, port }).0[..SIN_LEN].to_vec()
    }

    #[test]
    fn ipv4_roundtrip() {
        let ep = V4 {
            ip: [198, 18, 0, 12],
            port: 5201,
        };
        let b = sin(ep.ip, ep.port);
        assert_eq!(parse_bytes(&b), Some(Inet::V4(ep)));
        assert_eq!(ep.to_string(), "198.18.0.12:5201");
        assert_eq!(parse_bytes(&b[..15]), None, "short sockaddr_in");
        assert_eq!(Inet::V4(ep).v4_for(libc::AF_INET), Some(ep));
        assert_eq!(Inet::V4(ep).v4_for(libc::AF_INET6), None);
    }

    #[test]
    fn ipv6_kinds() {
        let ep = V4 {
            ip: [10, 0, 0, 7],
            port: 80,
        };
        let (b, n) = encode(libc::AF_INET6, ep);
        assert_eq!(n, SIN6_LEN);
        assert_eq!(parse_bytes(&b[..n]), Some(Inet::Mapped(ep)));
        assert_eq!(
            parse_bytes(&b[..24]),
            Some(Inet::Mapped(ep)),
            "RFC 2133 length"
        );
        assert_eq!(Inet::Mapped(ep).v4_for(libc::AF_INET6), Some(ep));
        assert_eq!(Inet::Mapped(ep).v4_for(libc::AF_INET), None);

        let mut any = b;
        any[8..24].fill(0);
        assert_eq!(parse_bytes(&any[..n]), Some(Inet::Any6 { port: 80 }));
        let mut other = any;
        other[23] = 1; // ::1
        assert_eq!(parse_bytes(&other[..n]), Some(Inet::Other6 { port: 80 }));
        assert_eq!(Inet::Other6 { port: 80 }.v4_for(libc::AF_INET6), None);
    }

    #[test]
    fn other_families_untouched() {
        let mut b = [0u8; 16];
        b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(parse_bytes(&b), None);
        assert_eq!(parse_bytes(&[]), None);
    }

    #[test]
    fn write_out_truncates_and_reports_full_length() {
        let (b, n) = encode(
            libc::AF_INET,
            V4 {
                ip: [1, 2, 3, 4],
                port: 9,
            },
        );
        let mut out = [0u8; 8];
        let mut len: socklen_t = 8;
        unsafe { write_out(&b[..n], out.as_mut_ptr().cast(), &mut len) }.unwrap();
        assert_eq!(len as usize, SIN_LEN);
        assert_eq!(&out, &b[..8]);
        let mut len: socklen_t = 0;
        assert_eq!(
            unsafe { write_out(&b[..n], core::ptr::null_mut(), &mut len) },
            Ok(())
        );
        assert_eq!(
            unsafe { write_out(&b[..n], out.as_mut_ptr().cast(), core::ptr::null_mut()) },
            Err(libc::EFAULT)
        );
    }

    #[test]
    fn flags_preserved() {
        let all = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let f = FdFlags::from_sock_type(all);
        assert_eq!(
            f,
            FdFlags {
                nonblock: true,
                cloexec: true
            }
        );
        assert_eq!(
            f.sock_type_flags(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
        );
        assert_eq!(f.dup3_flags(), libc::O_CLOEXEC);
        let f = FdFlags::from_sock_type(libc::SOCK_STREAM);
        assert_eq!(f.sock_type_flags(), 0);
        assert_eq!(f.dup3_flags(), 0);
        // fcntl view: O_NONBLOCK set later by F_SETFL counts too.
        let f = FdFlags::from_fcntl(libc::O_RDWR | libc::O_NONBLOCK, 0);
        assert_eq!(
            f,
            FdFlags {
                nonblock: true,
                cloexec: false
            }
        );
        assert_eq!(f.sock_type_flags(), libc::SOCK_NONBLOCK);
        let f = FdFlags::from_fcntl(libc::O_RDWR, libc::FD_CLOEXEC);
        assert_eq!(f.sock_type_flags(), libc::SOCK_CLOEXEC);
    }

    #[test]
    fn which_sockets_are_managed() {
        let nb = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        assert!(is_tcp_socket(libc::AF_INET, libc::SOCK_STREAM, 0));
        assert!(is_tcp_socket(libc::AF_INET6, nb, libc::IPPROTO_TCP));
        assert!(!is_tcp_socket(libc::AF_INET, libc::SOCK_DGRAM, 0));
        assert!(!is_tcp_socket(libc::AF_INET, libc::SOCK_RAW, 6));
        assert!(!is_tcp_socket(libc::AF_UNIX, libc::SOCK_STREAM, 0));
        assert!(
            !is_tcp_socket(libc::AF_INET, libc::SOCK_STREAM, 262),
            "MPTCP"
        );
        assert!(!is_tcp_socket(libc::AF_INET, libc::SOCK_SEQPACKET, 0));
    }

    #[test]
    fn vsock_ports_fold_into_tcp_range() {
        assert_eq!(fold_port(5201), 5201);
        assert_eq!(fold_port(65535), 65535);
        for p in [65536u32, 1_000_000, u32::MAX] {
            let f = fold_port(p);
            assert!(f >= 1024, "{p} -> {f}");
        }
        let v = vm(7, 5201);
        assert_eq!((v.svm_cid, v.svm_port), (7, 5201));
        assert_eq!(c_int::from(v.svm_family), libc::AF_VSOCK);
    }
}
