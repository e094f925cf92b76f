//! Socket options on a vsock-backed descriptor that the program believes is TCP.
//!
//! Every (level, option) falls in one [`Class`]:
//!
//! | class | options | on a vsock-backed fd |
//! |---|---|---|
//! | `Kernel` | `SOL_SOCKET` options the socket layer implements for every family (`SO_KEEPALIVE`, `SO_REUSEADDR`, `SO_REUSEPORT`, `SO_LINGER`, `SO_PRIORITY`, `SO_RCVTIMEO`, `SO_SNDTIMEO`, `SO_ERROR`, `SO_TYPE`, ...) | passed to the kernel on the vsock socket: it stores them and `getsockopt` returns them |
//! | `Buffer` | `SO_RCVBUF`, `SO_SNDBUF` (and `*FORCE`) | kernel, and also `SO_VM_SOCKETS_BUFFER_SIZE` (the ring size) |
//! | `Emulated` | `TCP_NODELAY`, `TCP_QUICKACK`, `TCP_CORK`, `TCP_MAXSEG`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`, `TCP_USER_TIMEOUT`, `IP_TOS`, `IP_BIND_ADDRESS_NO_PORT`, `IPV6_TCLASS`, `IPV6_V6ONLY` | meaningless on vsock: validated as TCP would, remembered, `getsockopt` returns them (or the TCP default) |
//! | `Synthetic` | `SO_DOMAIN`, `SO_PROTOCOL`, `TCP_INFO` (get only) | answered as for TCP: AF_INET/AF_INET6, IPPROTO_TCP, a `tcp_info` with only `tcpi_state` filled in |
//! | `Unsupported` | everything else (`TCP_CONGESTION`, `TCP_FASTOPEN*`, `TCP_MD5SIG`, `IP_TTL`, `SO_BINDTODEVICE`, `SO_MARK`, socket filters, ...) | fails with `ENOPROTOOPT`, never silently succeeds |
//!
//! On a socket that is still TCP, options go to the kernel unchanged and are recorded so
//! that they can be replayed on the vsock socket at `connect()`; an `Unsupported` one set
//! before `connect()` keeps that connection on TCP (its meaning cannot be preserved).

use libc::c_int;

/// vsock's option level (`AF_VSOCK`).
pub const SOL_VSOCK: c_int = libc::AF_VSOCK;
/// `SO_VM_SOCKETS_BUFFER_SIZE` (u64).
pub const SO_VM_SOCKETS_BUFFER_SIZE: c_int = 0;
/// `SO_VM_SOCKETS_BUFFER_MIN_SIZE` (u64).
pub const SO_VM_SOCKETS_BUFFER_MIN_SIZE: c_int = 1;
/// `SO_VM_SOCKETS_BUFFER_MAX_SIZE` (u64).
pub const SO_VM_SOCKETS_BUFFER_MAX_SIZE: c_int = 2;
/// `SO_VM_SOCKETS_CONNECT_TIMEOUT` (a `struct timeval`; the 64-bit value of the uapi).
pub const SO_VM_SOCKETS_CONNECT_TIMEOUT: c_int = 6;

/// `TCP_INFO`'s `tcpi_state` values we report.
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_CLOSE: u8 = 7;

/// What an option means on a vsock-backed descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Passed to the kernel on the vsock socket.
    Kernel,
    /// Kernel, plus the vsock buffer size.
    Buffer(BufKind),
    /// Remembered here.
    Emulated(Emu),
    /// Answered here (get only).
    Synthetic(Synth),
    /// `ENOPROTOOPT`.
    Unsupported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufKind {
    Rcv,
    Snd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synth {
    Domain,
    Protocol,
    TcpInfo,
}

/// How an emulated integer option is validated and read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmuKind {
    /// Any int, read back as 0/1.
    Bool,
    /// `lo..=hi`, else `EINVAL`.
    Range(c_int, c_int),
    /// 0, or `lo..=hi` (TCP_MAXSEG).
    ZeroOrRange(c_int, c_int),
    /// IP_TOS: the ECN bits are not the program's to set on a stream socket.
    Tos,
    /// IPV6_TCLASS: -1 (default, reads as 0) ..= 255.
    Tclass,
    /// IPV6_V6ONLY: only before the socket is bound; ours always are.
    V6Only,
}

/// An emulated option: validation and the value `getsockopt` returns before any set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emu {
    pub kind: EmuKind,
    pub default: c_int,
}

const fn emu(kind: EmuKind, default: c_int) -> Class {
    Class::Emulated(Emu { kind, default })
}

/// Classifies `(level, opt)` for a vsock-backed descriptor of `family` (the family the
/// program created: AF_INET or AF_INET6).
pub fn classify(family: c_int, level: c_int, opt: c_int) -> Class {
    use EmuKind::*;
    match level {
        libc::SOL_SOCKET => match opt {
            libc::SO_RCVBUF | libc::SO_RCVBUFFORCE => Class::Buffer(BufKind::Rcv),
            libc::SO_SNDBUF | libc::SO_SNDBUFFORCE => Class::Buffer(BufKind::Snd),
            libc::SO_DOMAIN => Class::Synthetic(Synth::Domain),
            libc::SO_PROTOCOL => Class::Synthetic(Synth::Protocol),
            // Tied to IP routing or to packets, which a vsock connection has none of.
            libc::SO_BINDTODEVICE
            | libc::SO_BINDTOIFINDEX
            | libc::SO_MARK
            | libc::SO_DONTROUTE
            | libc::SO_ATTACH_FILTER
            | libc::SO_ATTACH_BPF
            | libc::SO_ATTACH_REUSEPORT_CBPF
            | libc::SO_ATTACH_REUSEPORT_EBPF
            | libc::SO_DETACH_FILTER
            | libc::SO_LOCK_FILTER
            | libc::SO_ZEROCOPY
            | libc::SO_TXTIME
            | libc::SO_INCOMING_CPU => Class::Unsupported,
            _ => Class::Kernel,
        },
        libc::IPPROTO_TCP => match opt {
            libc::TCP_NODELAY | libc::TCP_CORK => emu(Bool, 0),
            libc::TCP_QUICKACK => emu(Bool, 1),
            libc::TCP_MAXSEG => emu(ZeroOrRange(88, 32767), 536),
            libc::TCP_KEEPIDLE => emu(Range(1, 32767), 7200),
            libc::TCP_KEEPINTVL => emu(Range(1, 32767), 75),
            libc::TCP_KEEPCNT => emu(Range(1, 127), 9),
            libc::TCP_USER_TIMEOUT => emu(Range(0, c_int::MAX), 0),
            libc::TCP_INFO => Class::Synthetic(Synth::TcpInfo),
            _ => Class::Unsupported,
        },
        libc::IPPROTO_IP => match opt {
            libc::IP_TOS => emu(Tos, 0),
            libc::IP_BIND_ADDRESS_NO_PORT => emu(Bool, 0),
            _ => Class::Unsupported,
        },
        libc::IPPROTO_IPV6 if family == libc::AF_INET6 => match opt {
            libc::IPV6_TCLASS => emu(Tclass, 0),
            libc::IPV6_V6ONLY => emu(V6Only, 0),
            _ => Class::Unsupported,
        },
        _ => Class::Unsupported,
    }
}

/// A readable name for log lines.
pub fn name(level: c_int, opt: c_int) -> String {
    let n = match (level, opt) {
        (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => "SO_BINDTODEVICE",
        (libc::SOL_SOCKET, libc::SO_MARK) => "SO_MARK",
        (libc::SOL_SOCKET, libc::SO_ATTACH_FILTER) => "SO_ATTACH_FILTER",
        (libc::SOL_SOCKET, libc::SO_ZEROCOPY) => "SO_ZEROCOPY",
        (libc::IPPROTO_TCP, libc::TCP_CONGESTION) => "TCP_CONGESTION",
        (libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT) => "TCP_FASTOPEN_CONNECT",
        (libc::IPPROTO_TCP, libc::TCP_MD5SIG) => "TCP_MD5SIG",
        (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => "TCP_NOTSENT_LOWAT",
        (libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP) => "TCP_WINDOW_CLAMP",
        (libc::IPPROTO_IP, libc::IP_TTL) => "IP_TTL",
        (libc::IPPROTO_IP, libc::IP_TRANSPARENT) => "IP_TRANSPARENT",
        _ => "",
    };
    if n.is_empty() {
        format!("level {level} option {opt}")
    } else {
        n.to_string()
    }
}

/// The emulated options set on one descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmuOpts {
    vals: Vec<(c_int, c_int, c_int)>,
}

impl EmuOpts {
    /// Validates and stores a `setsockopt` value, as TCP would: `EINVAL` for a short
    /// value or one out of range.
    pub fn set(&mut self, e: Emu, level: c_int, opt: c_int, val: &[u8]) -> Result<(), c_int> {
        let v = read_int(val)?;
        let stored = match e.kind {
            EmuKind::Bool => c_int::from(v != 0),
            EmuKind::Range(lo, hi) if (lo..=hi).contains(&v) => v,
            EmuKind::ZeroOrRange(lo, hi) if v == 0 || (lo..=hi).contains(&v) => v,
            EmuKind::Tos => v & 0xfc,
            EmuKind::Tclass if (-1..=255).contains(&v) => v.max(0),
            EmuKind::V6Only => return Err(libc::EINVAL),
            _ => return Err(libc::EINVAL),
        };
        match self
            .vals
            .iter_mut()
            .find(|(l, o, _)| (*l, *o) == (level, opt))
        {
            Some(slot) => slot.2 = stored,
            None => self.vals.push((level, opt, stored)),
        }
        Ok(())
    }

    /// Records a value the kernel already accepted (on the TCP socket, before the
    /// switch), without validation.
    pub fn record(&mut self, e: Emu, level: c_int, opt: c_int, val: &[u8]) {
        if let Ok(v) = read_int(val) {
            let v = match e.kind {
                EmuKind::Bool | EmuKind::V6Only => c_int::from(v != 0),
                EmuKind::Tos => v & 0xfc,
                EmuKind::Tclass => v.max(0),
                _ => v,
            };
            match self
                .vals
                .iter_mut()
                .find(|(l, o, _)| (*l, *o) == (level, opt))
            {
                Some(slot) => slot.2 = v,
                None => self.vals.push((level, opt, v)),
            }
        }
    }

    /// The value `getsockopt` returns.
    pub fn get(&self, e: Emu, level: c_int, opt: c_int) -> c_int {
        self.vals
            .iter()
            .find(|(l, o, _)| (*l, *o) == (level, opt))
            .map_or(e.default, |&(_, _, v)| v)
    }
}

/// An int option value: at least 4 bytes, native endian, as the kernel reads it.
pub fn read_int(val: &[u8]) -> Result<c_int, c_int> {
    match val.get(..4) {
        Some(b) => Ok(c_int::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(libc::EINVAL),
    }
}

/// The bytes `getsockopt` puts for an int option given room for `room` bytes: TCP copies
/// `min(room, 4)` bytes; a negative room is `EINVAL`.
pub fn int_bytes(v: c_int, room: i32) -> Result<Vec<u8>, c_int> {
    if room < 0 {
        return Err(libc::EINVAL);
    }
    let b = v.to_ne_bytes();
    Ok(b[..(room as usize).min(4)].to_vec())
}

/// A `struct tcp_info` with only `tcpi_state` set, `min(room, sizeof)` bytes of it.
pub fn tcp_info_bytes(state: u8, room: i32) -> Result<Vec<u8>, c_int> {
    if room < 0 {
        return Err(libc::EINVAL);
    }
    let size = core::mem::size_of::<libc::tcp_info>();
    let mut b = vec![0u8; size];
    b[0] = state;
    b.truncate((room as usize).min(size));
    Ok(b)
}

/// `SO_RCVBUF`/`SO_SNDBUF` values the program asked for; the vsock buffer is their
/// maximum (YASMIN uses it as the size of the socket's own send ring).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufReq {
    pub rcv: Option<u64>,
    pub snd: Option<u64>,
}

impl BufReq {
    /// Records a request; `false` if the value is not a non-negative int.
    pub fn note(&mut self, k: BufKind, val: &[u8]) -> bool {
        match read_int(val) {
            Ok(v) if v >= 0 => {
                let v = Some(v as u64);
                match k {
                    BufKind::Rcv => self.rcv = v,
                    BufKind::Snd => self.snd = v,
                }
                true
            }
            _ => false,
        }
    }

    /// The vsock buffer size to set, if any was asked for.
    pub fn size(&self) -> Option<u64> {
        match (self.rcv, self.snd) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The `setsockopt` calls (level, option, u64 value) that give a vsock socket buffer
/// `size`, given its current min and max: the kernel refuses a size outside
/// `[min, max]`, so a bound is moved first when needed.
pub fn buffer_calls(size: u64, cur_min: u64, cur_max: u64) -> Vec<(c_int, u64)> {
    let mut v = Vec::with_capacity(3);
    if size > cur_max {
        v.push((SO_VM_SOCKETS_BUFFER_MAX_SIZE, size));
    }
    if size < cur_min {
        v.push((SO_VM_SOCKETS_BUFFER_MIN_SIZE, size));
    }
    v.push((SO_VM_SOCKETS_BUFFER_SIZE, size));
    v
}

/// `SOL_SOCKET` options that a connection accepted from a listener takes over from it
/// (TCP children inherit the listener's socket state; vsock children do not, so they are
/// replayed): everything recorded except the address-reuse flags.
pub fn inherited(level: c_int, opt: c_int) -> bool {
    level == libc::SOL_SOCKET && !matches!(opt, libc::SO_REUSEADDR | libc::SO_REUSEPORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INET: c_int = libc::AF_INET;
    const INET6: c_int = libc::AF_INET6;

    fn int(v: c_int) -> [u8; 4] {
        v.to_ne_bytes()
    }

    #[test]
    fn buffer_options_are_mapped() {
        assert_eq!(
            classify(INET, libc::SOL_SOCKET, libc::SO_RCVBUF),
            Class::Buffer(BufKind::Rcv)
        );
        assert_eq!(
            classify(INET, libc::SOL_SOCKET, libc::SO_SNDBUF),
            Class::Buffer(BufKind::Snd)
        );
        let mut b = BufReq::default();
        assert_eq!(b.size(), None);
        assert!(b.note(BufKind::Snd, &int(65536)));
        assert_eq!(b.size(), Some(65536));
        assert!(b.note(BufKind::Rcv, &int(1 << 20)));
        assert_eq!(b.size(), Some(1 << 20));
        assert!(!b.note(BufKind::Rcv, &int(-1)));
        assert!(!b.note(BufKind::Rcv, &[1, 2]));
        // raising above the current max moves the max first
        assert_eq!(
            buffer_calls(1 << 20, 128, 256 << 10),
            vec![
                (SO_VM_SOCKETS_BUFFER_MAX_SIZE, 1 << 20),
                (SO_VM_SOCKETS_BUFFER_SIZE, 1 << 20)
            ]
        );
        assert_eq!(
            buffer_calls(4096, 128, 256 << 10),
            vec![(SO_VM_SOCKETS_BUFFER_SIZE, 4096)]
        );
        assert_eq!(
            buffer_calls(64, 128, 256 << 10),
            vec![
                (SO_VM_SOCKETS_BUFFER_MIN_SIZE, 64),
                (SO_VM_SOCKETS_BUFFER_SIZE, 64)
            ]
        );
    }

    #[test]
    fn socket_level_goes_to_the_kernel() {
        for o in [
            libc::SO_KEEPALIVE,
            libc::SO_REUSEADDR,
            libc::SO_REUSEPORT,
            libc::SO_LINGER,
            libc::SO_PRIORITY,
            libc::SO_RCVTIMEO,
            libc::SO_SNDTIMEO,
            libc::SO_ERROR,
            libc::SO_TYPE,
            libc::SO_ACCEPTCONN,
        ] {
            assert_eq!(classify(INET, libc::SOL_SOCKET, o), Class::Kernel, "{o}");
        }
        assert_eq!(
            classify(INET, libc::SOL_SOCKET, libc::SO_DOMAIN),
            Class::Synthetic(Synth::Domain)
        );
        assert_eq!(
            classify(INET, libc::SOL_SOCKET, libc::SO_PROTOCOL),
            Class::Synthetic(Synth::Protocol)
        );
        assert!(inherited(libc::SOL_SOCKET, libc::SO_KEEPALIVE));
        assert!(!inherited(libc::SOL_SOCKET, libc::SO_REUSEADDR));
        assert!(!inherited(libc::IPPROTO_TCP, libc::TCP_NODELAY));
    }

    #[test]
    fn harmless_options_are_remembered() {
        let mut o = EmuOpts::default();
        for (level, opt, set, want) in [
            (libc::IPPROTO_TCP, libc::TCP_NODELAY, 1, 1),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY, 7, 1),
            (libc::IPPROTO_TCP, libc::TCP_QUICKACK, 0, 0),
            (libc::IPPROTO_TCP, libc::TCP_CORK, 1, 1),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30, 30),
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 5, 5),
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3, 3),
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG, 1400, 1400),
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 5000, 5000),
            (libc::IPPROTO_IP, libc::IP_TOS, 0x10, 0x10),
            (libc::IPPROTO_IP, libc::IP_TOS, 0x13, 0x10),
        ] {
            let Class::Emulated(e) = classify(INET, level, opt) else {
                panic!("{level}/{opt} not emulated");
            };
            o.set(e, level, opt, &int(set)).unwrap();
            assert_eq!(o.get(e, level, opt), want, "{level}/{opt}");
        }
        let Class::Emulated(e6) = classify(INET6, libc::IPPROTO_IPV6, libc::IPV6_TCLASS) else {
            panic!()
        };
        o.set(e6, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &int(-1))
            .unwrap();
        assert_eq!(o.get(e6, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 0);
    }

    #[test]
    fn defaults_are_tcps() {
        let o = EmuOpts::default();
        for (opt, want) in [
            (libc::TCP_NODELAY, 0),
            (libc::TCP_QUICKACK, 1),
            (libc::TCP_KEEPIDLE, 7200),
            (libc::TCP_KEEPINTVL, 75),
            (libc::TCP_KEEPCNT, 9),
        ] {
            let Class::Emulated(e) = classify(INET, libc::IPPROTO_TCP, opt) else {
                panic!()
            };
            assert_eq!(o.get(e, libc::IPPROTO_TCP, opt), want);
        }
    }

    #[test]
    fn invalid_values_are_einval() {
        let mut o = EmuOpts::default();
        let get = |l, op| match classify(INET6, l, op) {
            Class::Emulated(e) => e,
            c => panic!("{c:?}"),
        };
        let e = get(libc::IPPROTO_TCP, libc::TCP_NODELAY);
        assert_eq!(
            o.set(e, libc::IPPROTO_TCP, libc::TCP_NODELAY, &[1]),
            Err(libc::EINVAL)
        );
        let e = get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT);
        assert_eq!(
            o.set(e, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &int(0)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            o.set(e, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &int(128)),
            Err(libc::EINVAL)
        );
        let e = get(libc::IPPROTO_TCP, libc::TCP_MAXSEG);
        assert_eq!(
            o.set(e, libc::IPPROTO_TCP, libc::TCP_MAXSEG, &int(10)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            o.set(e, libc::IPPROTO_TCP, libc::TCP_MAXSEG, &int(0)),
            Ok(())
        );
        let e = get(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY);
        assert_eq!(
            o.set(e, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &int(1)),
            Err(libc::EINVAL),
            "a vsock-backed socket is always bound, like a connected TCP one"
        );
        // but the value a TCP socket had before the switch is kept
        o.record(e, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &int(1));
        assert_eq!(o.get(e, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY), 1);
    }

    #[test]
    fn unknown_options_are_enoprotoopt() {
        for (family, level, opt) in [
            (INET, libc::IPPROTO_TCP, libc::TCP_CONGESTION),
            (INET, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT),
            (INET, libc::IPPROTO_TCP, libc::TCP_MD5SIG),
            (INET, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT),
            (INET, libc::IPPROTO_TCP, 9999),
            (INET, libc::IPPROTO_IP, libc::IP_TTL),
            (INET, libc::IPPROTO_IP, libc::IP_TRANSPARENT),
            (INET, libc::SOL_SOCKET, libc::SO_BINDTODEVICE),
            (INET, libc::SOL_SOCKET, libc::SO_MARK),
            (INET, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER),
            (INET, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), // IPv6 level on an AF_INET socket
            (INET6, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS),
            (INET, SOL_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE), // the program thinks it is TCP
            (INET, libc::IPPROTO_UDP, 1),
        ] {
            assert_eq!(
                classify(family, level, opt),
                Class::Unsupported,
                "{family} {level} {opt}"
            );
        }
        assert_eq!(
            name(libc::IPPROTO_TCP, libc::TCP_CONGESTION),
            "TCP_CONGESTION"
        );
        assert_eq!(name(6, 9999), "level 6 option 9999");
    }

    #[test]
    fn getsockopt_copy_rules() {
        assert_eq!(int_bytes(1, 4).unwrap(), int(1).to_vec());
        assert_eq!(int_bytes(1, 64).unwrap().len(), 4);
        assert_eq!(int_bytes(0x10, 1).unwrap(), vec![0x10]);
        assert_eq!(int_bytes(1, -1), Err(libc::EINVAL));
        let ti = tcp_info_bytes(TCP_ESTABLISHED, 1000).unwrap();
        assert_eq!(ti.len(), core::mem::size_of::<libc::tcp_info>());
        assert_eq!(ti[0], TCP_ESTABLISHED);
        assert!(ti[1..].iter().all(|&b| b == 0));
        assert_eq!(tcp_info_bytes(TCP_CLOSE, 8).unwrap().len(), 8);
        assert_eq!(
            classify(INET, libc::IPPROTO_TCP, libc::TCP_INFO),
            Class::Synthetic(Synth::TcpInfo)
        );
    }
}
