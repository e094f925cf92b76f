use super::*;

use crate::map::IpMap;
use crate::opts::{EmuKind, EmuOpts};

const INET: c_int = libc::AF_INET;
const INET6: c_int = libc::AF_INET6;

fn int(v: c_int) -> [u8; 4] {
    v.to_ne_bytes()
}

fn v4(ip: [u8; 4], port: u16) -> V4 {
    V4 { ip, port }
}

fn ipmap() -> IpMap {
    IpMap::parse_env("198.18.0.11=1,198.18.0.12=2,198.18.1.11=1", &mut Vec::new())
}

const LOCAL: &[[u8; 4]] = &[[127, 0, 0, 1], [198, 18, 0, 11]];

/// We are domain 1 (198.18.0.11, 198.18.1.11); domain 2 is 198.18.0.12.
fn view(m: &IpMap) -> View<'_> {
    View {
        map: m,
        self_domid: Some(1),
        local: LOCAL,
    }
}

fn never<T>() -> T {
    panic!("asked although the decision does not depend on it")
}

fn vsock_to_2() -> Route {
    Route::Vsock { domid: 2, cid: 4 }
}

fn listener_of(c: &Cand, local_ip: Option<[u8; 4]>) -> Listener {
    let hidden = Arc::new(Hidden {
        tcp: -1,
        vsock: -1,
        turn: Default::default(),
    });
    listener(c, hidden, local_ip, 5201)
}

fn vsock_entry(family: c_int) -> Vsock {
    Vsock {
        family,
        peer: v4([198, 18, 0, 12], 5201),
        local_ip: [198, 18, 0, 11],
        emu: EmuOpts::default(),
        buf: Default::default(),
    }
}

#[test]
fn fallback_errnos() {
    for e in [
        libc::EAFNOSUPPORT,
        libc::ENODEV,
        libc::ENETUNREACH,
        libc::EHOSTUNREACH,
        libc::EPROTONOSUPPORT,
        libc::ESOCKTNOSUPPORT,
    ] {
        assert!(no_vsock_path(e), "{e}");
        assert_eq!(attempt(Some(e), false), Attempt::Fallback, "{e}");
        assert_eq!(attempt(Some(e), true), Attempt::Fail, "{e} strict");
    }
    // The other side did not take it: TCP gets to answer.
    for e in [
        libc::ECONNREFUSED,
        libc::ETIMEDOUT,
        libc::ECONNRESET,
        libc::ECONNABORTED,
        libc::EACCES,
        libc::EPERM,
    ] {
        assert!(!no_vsock_path(e), "{e}");
        assert_eq!(attempt(Some(e), false), Attempt::Fallback, "{e}");
        assert_eq!(attempt(Some(e), true), Attempt::Fail, "{e} strict");
    }
    // The program's own errors.
    for e in [libc::ENOMEM, libc::EMFILE, libc::ENOBUFS, libc::EADDRINUSE] {
        assert!(!falls_back(e), "{e}");
        assert_eq!(attempt(Some(e), false), Attempt::Fail, "{e}");
    }
    assert_eq!(attempt(None, false), Attempt::Connected);
    assert_eq!(attempt(None, true), Attempt::Connected);
}

#[test]
fn waiting_for_a_vsock_connect() {
    let never = || -> c_int { panic!("SO_ERROR read before the socket was ready") };
    assert_eq!(wait_step(false, 0, 5000, never), Wait::Poll(5500));
    assert_eq!(wait_step(false, 5200, 5000, never), Wait::Poll(300));
    assert_eq!(
        wait_step(false, 5500, 5000, never),
        Wait::Done(Some(libc::ETIMEDOUT)),
        "past the budget and its grace"
    );
    assert_eq!(wait_step(true, 10, 5000, || 0), Wait::Done(None));
    assert_eq!(
        wait_step(true, 10, 5000, || libc::ECONNREFUSED),
        Wait::Done(Some(libc::ECONNREFUSED))
    );
    assert_eq!(
        wait_step(true, 9000, 5000, || 0),
        Wait::Done(None),
        "a ready socket counts even when late"
    );
}

#[test]
fn connect_calls_are_sorted() {
    let dest = v4([198, 18, 0, 12], 80);
    let cand = |f| Some(Entry::Cand(Cand::new(f)));
    assert!(matches!(
        connect_call(3, cand(INET), Some(Inet::V4(dest))),
        Connect::Cand(_, d) if d == dest
    ));
    assert!(matches!(
        connect_call(3, cand(INET6), Some(Inet::Mapped(dest))),
        Connect::Cand(_, d) if d == dest
    ));
    // the wrong family for the socket, IPv6, unix: the kernel's business
    assert!(matches!(
        connect_call(3, cand(INET), Some(Inet::Mapped(dest))),
        Connect::Real(3)
    ));
    assert!(matches!(
        connect_call(3, cand(INET6), Some(Inet::Other6 { port: 80 })),
        Connect::Real(3)
    ));
    assert!(matches!(
        connect_call(3, cand(INET), None),
        Connect::Real(3)
    ));
    assert!(matches!(
        connect_call(3, None, Some(Inet::V4(dest))),
        Connect::Real(3)
    ));
    let vs = Some(Entry::Vsock(vsock_entry(INET)));
    assert!(matches!(
        connect_call(3, vs.clone(), Some(Inet::V4(dest))),
        Connect::Vsock(_, d) if d == dest
    ));
    assert!(matches!(
        connect_call(3, vs, Some(Inet::Other6 { port: 80 })),
        Connect::Fail(libc::EAFNOSUPPORT)
    ));
    let mut l = listener_of(&Cand::new(INET), None);
    l.hidden = Arc::new(Hidden {
        tcp: -7,
        vsock: -1,
        turn: Default::default(),
    });
    let l = Some(Entry::Listener(l));
    assert!(matches!(
        connect_call(3, l.clone(), Some(Inet::V4(dest))),
        Connect::Real(-7)
    ));
    assert_eq!(tcp_fd(3, l.as_ref()), -7);
    assert_eq!(tcp_fd(3, None), 3);
}

#[test]
fn co_located_destination_goes_to_vsock() {
    let dest = v4([198, 18, 0, 12], 5201);
    let mut c = Cand::new(INET);
    let t = Target {
        domid: 2,
        cid: 4,
        port: 5201,
        bind_port: 0,
    };
    assert_eq!(
        connect_plan(&c, dest, vsock_to_2(), never),
        ConnectPlan::Vsock(t)
    );
    // a client bound to a port keeps it
    c.bound = Some(Inet::V4(v4([0; 4], 40000)));
    assert_eq!(
        connect_plan(&c, dest, vsock_to_2(), never),
        ConnectPlan::Vsock(Target {
            bind_port: 40000,
            ..t
        })
    );
    // AF_INET6: unless IPv6-only (then silently TCP: the kernel refuses the address)
    let c6 = Cand::new(INET6);
    assert_eq!(
        connect_plan(&c6, dest, vsock_to_2(), || false),
        ConnectPlan::Vsock(t)
    );
    assert_eq!(
        connect_plan(&c6, dest, vsock_to_2(), || true),
        ConnectPlan::Tcp(None)
    );
}

#[test]
fn why_a_connection_stays_tcp() {
    let dest = v4([8, 8, 8, 8], 80);
    let c = Cand::new(INET6);
    assert_eq!(
        connect_plan(&c, dest, Route::Tcp("not co-located"), never),
        ConnectPlan::Tcp(Some("not co-located".into()))
    );
    let mut c = Cand::new(INET6);
    c.tcp_only = Some("TCP_CONGESTION".into());
    assert_eq!(
        connect_plan(&c, dest, vsock_to_2(), never),
        ConnectPlan::Tcp(Some(
            "domain 2 is co-located, but TCP_CONGESTION is set".into()
        ))
    );
    c.shared = true;
    assert_eq!(
        connect_plan(&c, dest, vsock_to_2(), never),
        ConnectPlan::Tcp(Some(
            "domain 2 is co-located, but the socket has another descriptor (dup)".into()
        ))
    );
}

#[test]
fn a_connection_shows_our_address() {
    let m = ipmap();
    let v = view(&m);
    let peer = v4([198, 18, 0, 12], 5201);
    let mut c = Cand::new(INET);
    c.emu.record(
        Emu {
            kind: EmuKind::Bool,
            default: 0,
        },
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        &int(1),
    );
    let x = connected(&c, peer, &v);
    assert_eq!(
        (x.family, x.peer, x.local_ip),
        (INET, peer, [198, 18, 0, 11])
    );
    assert_eq!(x.emu, c.emu, "emulated options carried over");
    // the bound address, unless the wildcard
    c.bound = Some(Inet::Mapped(v4([198, 18, 1, 11], 0)));
    assert_eq!(connected(&c, peer, &v).local_ip, [198, 18, 1, 11]);
    c.bound = Some(Inet::V4(v4([0; 4], 7)));
    assert_eq!(connected(&c, peer, &v).local_ip, [198, 18, 0, 11]);
    assert_eq!(bound_ip(Some(Inet::Any6 { port: 1 })), None);
    let nobody = View {
        map: &m,
        self_domid: None,
        local: &[[127, 0, 0, 1]],
    };
    assert_eq!(local_ip(None, &nobody, peer.ip), [0; 4]);
}

#[test]
fn connecting_a_vsock_socket_again() {
    assert_eq!(
        reconnect(Route::Vsock { domid: 3, cid: 5 }, never),
        Reconnect::Vsock { cid: 5 }
    );
    let tcp = Route::Tcp("not co-located");
    assert_eq!(
        reconnect(tcp, || VsockState::Connected),
        Reconnect::Fail(libc::EISCONN)
    );
    assert_eq!(
        reconnect(tcp, || VsockState::Connecting),
        Reconnect::Fail(libc::EALREADY)
    );
    assert_eq!(
        reconnect(tcp, || VsockState::Failed),
        Reconnect::Tcp("not co-located")
    );
}

#[test]
fn replacement_sockets_keep_nonblock_and_are_cloexec() {
    let f = |nonblock, cloexec| replacement_type(FdFlags { nonblock, cloexec });
    let base = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    assert_eq!(f(false, false), base);
    assert_eq!(f(false, true), base);
    assert_eq!(f(true, false), base | libc::SOCK_NONBLOCK);
}

#[test]
fn which_listeners_listen_on_vsock() {
    let c = Cand::new(INET);
    let any = Some(Inet::V4(v4([0; 4], 5201)));
    assert_eq!(
        listen_plan(&c, any, |_| never(), never),
        ListenPlan::Dual {
            local_ip: None,
            port: 5201,
            shown: "0.0.0.0:5201".into()
        }
    );
    let ours = Some(Inet::V4(v4([198, 18, 0, 11], 80)));
    assert_eq!(
        listen_plan(&c, ours, |ip| ip == [198, 18, 0, 11], never),
        ListenPlan::Dual {
            local_ip: Some([198, 18, 0, 11]),
            port: 80,
            shown: "198.18.0.11:80".into()
        }
    );
    let lo = Some(Inet::V4(v4([127, 0, 0, 1], 80)));
    assert_eq!(
        listen_plan(&c, lo, |_| false, never),
        ListenPlan::TcpOnly(Some((
            "127.0.0.1:80".into(),
            "not an address the map gives us"
        )))
    );
    let c6 = Cand::new(INET6);
    let any6 = Some(Inet::Any6 { port: 5201 });
    assert_eq!(
        listen_plan(&c6, any6, |_| never(), || false),
        ListenPlan::Dual {
            local_ip: None,
            port: 5201,
            shown: "[::]:5201".into()
        }
    );
    assert_eq!(
        listen_plan(&c6, any6, |_| never(), || true),
        ListenPlan::TcpOnly(Some(("[::]:5201".into(), "IPV6_V6ONLY")))
    );
    assert_eq!(
        listen_plan(&c6, Some(Inet::Other6 { port: 9 }), |_| never(), never),
        ListenPlan::TcpOnly(Some(("[ipv6]:9".into(), "IPv6 address")))
    );
    assert_eq!(
        listen_plan(&c6, None, |_| never(), never),
        ListenPlan::TcpOnly(None)
    );
    let mut shared = Cand::new(INET);
    shared.shared = true;
    assert_eq!(
        listen_plan(&shared, any, |_| never(), never),
        ListenPlan::TcpOnly(Some((
            "0.0.0.0:5201".into(),
            "the socket has another descriptor"
        )))
    );
}

#[test]
fn listeners_pass_options_on_to_accepted_connections() {
    let mut c = Cand::new(INET6);
    let set = |c: &mut Cand, level, opt, v| {
        let class = opts::classify(INET6, level, opt);
        record(c, class, level, opt, &int(v));
    };
    set(&mut c, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    set(&mut c, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(&mut c, libc::SOL_SOCKET, libc::SO_SNDBUF, 65536);
    set(&mut c, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    let l = listener_of(&c, Some([198, 18, 1, 11]));
    let kept: Vec<c_int> = l.inherit.iter().map(|o| o.opt).collect();
    assert_eq!(
        kept,
        [libc::SO_KEEPALIVE, libc::SO_SNDBUF],
        "no address reuse"
    );
    assert_eq!((l.family, l.port, l.buf), (INET6, 5201, c.buf));
    assert_eq!(l.emu, c.emu);

    let m = ipmap();
    let v = view(&m);
    let peer = shown_peer(4, 1187503642, &v);
    assert_eq!(peer.ip, [198, 18, 0, 12]);
    assert!(peer.port >= 1024, "folded: {}", peer.port);
    let x = accepted(&l, peer, &v);
    assert_eq!(
        (x.family, x.peer, x.local_ip),
        (INET6, peer, [198, 18, 1, 11])
    );
    assert_eq!((x.emu, x.buf), (c.emu.clone(), c.buf));
    // a wildcard listener shows our address in the peer's /24
    let wild = listener_of(&c, None);
    assert_eq!(accepted(&wild, peer, &v).local_ip, [198, 18, 0, 11]);
    // a peer the map does not know
    assert_eq!(shown_peer(99, 5201, &v), v4([0; 4], 5201));
    assert_eq!(
        shown_peer(1, 5201, &v),
        v4([0; 4], 5201),
        "CID 1 is no domain"
    );
}

#[test]
fn accept_on_a_dual_listener() {
    assert_eq!(accept_flags(None), Ok(0));
    let nc = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    assert_eq!(accept_flags(Some(nc)), Ok(nc));
    assert_eq!(
        accept_flags(Some(libc::O_RDWR | 0x4000_0000)),
        Err(libc::EINVAL)
    );
    assert_eq!(accept_order(0), [Side::Tcp, Side::Vsock]);
    assert_eq!(accept_order(1), [Side::Vsock, Side::Tcp]);
    assert_eq!(accept_order(u32::MAX), [Side::Vsock, Side::Tcp]);
    for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
        assert!(accept_error_is_fatal(e), "{e}");
    }
    for e in [libc::EAGAIN, libc::ECONNABORTED, libc::EINVAL] {
        assert!(!accept_error_is_fatal(e), "{e}");
    }
}

#[test]
fn accept_waits_as_tcp_would() {
    assert_eq!(timeout_ms(0, 0), None);
    assert_eq!(timeout_ms(2, 0), Some(2000));
    assert_eq!(timeout_ms(0, 1), Some(1), "rounded up");
    assert_eq!(timeout_ms(1, 500_000), Some(1500));
    assert_eq!(accept_wait(true, None, 0), None, "non-blocking: EAGAIN");
    assert_eq!(accept_wait(false, None, 12345), Some(-1));
    assert_eq!(accept_wait(false, Some(1500), 1000), Some(500));
    assert_eq!(accept_wait(false, Some(1500), 1500), None);
    assert_eq!(accept_wait(false, Some(1500), 9000), None);
    assert_eq!(accept_wait(false, Some(i64::MAX), 0), Some(c_int::MAX));
}

#[test]
fn names_of_a_vsock_connection() {
    let v = vsock_entry(INET);
    assert_eq!(shown_name(&v, true, 77), v.peer);
    assert_eq!(shown_name(&v, false, 40000), v4([198, 18, 0, 11], 40000));
    assert!(shown_name(&v, false, 70000).port >= 1024);
}

#[test]
fn options_set_before_connect_are_recorded() {
    let mut c = Cand::new(INET);
    let mut set = |level, opt, v| {
        let class = opts::classify(INET, level, opt);
        record(&mut c, class, level, opt, &int(v));
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0);
    set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 7);
    set(libc::SOL_SOCKET, libc::SO_DOMAIN, 1);
    let opts: Vec<(c_int, [u8; 4])> = c
        .kopts
        .iter()
        .map(|o| (o.opt, o.val[..].try_into().unwrap()))
        .collect();
    assert_eq!(
        opts,
        [(libc::SO_KEEPALIVE, int(0)), (libc::SO_RCVBUF, int(4096))],
        "replayed at the switch, last value"
    );
    assert_eq!(c.buf.size(), Some(4096));
    let nodelay = match opts::classify(INET, libc::IPPROTO_TCP, libc::TCP_NODELAY) {
        Class::Emulated(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(c.emu.get(nodelay, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    assert_eq!(c.tcp_only, None);
    let mut set = |level, opt| {
        let class = opts::classify(INET, level, opt);
        record(&mut c, class, level, opt, b"cubic\0");
    };
    set(libc::IPPROTO_TCP, libc::TCP_CONGESTION);
    assert_eq!(c.tcp_only.as_deref(), Some("TCP_CONGESTION"));
}

#[test]
fn options_set_on_a_listener_are_recorded() {
    let mut l = listener_of(&Cand::new(INET), None);
    let mut set = |level, opt, v: &[u8]| {
        let class = opts::classify(INET, level, opt);
        record_listener(&mut l, class, level, opt, v)
    };
    assert_eq!(
        set(libc::SOL_SOCKET, libc::SO_SNDBUF, &int(1 << 20)),
        Some(1 << 20)
    );
    assert_eq!(
        set(libc::SOL_SOCKET, libc::SO_RCVBUF, &int(4096)),
        Some(1 << 20)
    );
    assert_eq!(
        set(libc::SOL_SOCKET, libc::SO_RCVBUF, &int(-1)),
        None,
        "not a size"
    );
    assert_eq!(set(libc::SOL_SOCKET, libc::SO_RCVBUF, &[1]), None, "short");
    assert_eq!(set(libc::SOL_SOCKET, libc::SO_REUSEADDR, &int(1)), None);
    assert_eq!(set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, &int(1)), None);
    assert_eq!(set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, &int(30)), None);
    assert_eq!(
        set(libc::IPPROTO_TCP, libc::TCP_CONGESTION, b"reno\0"),
        None
    );
    let kept: Vec<c_int> = l.inherit.iter().map(|o| o.opt).collect();
    assert_eq!(kept, [libc::SO_KEEPALIVE]);
    assert_eq!((l.buf.rcv, l.buf.snd), (Some(4096), Some(1 << 20)));
    let idle = match opts::classify(INET, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) {
        Class::Emulated(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(l.emu.get(idle, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 30);
}

#[test]
fn options_on_a_vsock_socket() {
    let class = |level, opt| opts::classify(INET, level, opt);
    let set = |level, opt| set_on_vsock(class(level, opt));
    let get = |level, opt| get_on_vsock(class(level, opt));
    assert_eq!(set(libc::SOL_SOCKET, libc::SO_KEEPALIVE), SetOn::Kernel);
    assert_eq!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), GetOn::Kernel);
    assert_eq!(
        set(libc::SOL_SOCKET, libc::SO_SNDBUF),
        SetOn::Buffer(BufKind::Snd)
    );
    assert_eq!(get(libc::SOL_SOCKET, libc::SO_SNDBUF), GetOn::Kernel);
    assert!(matches!(
        set(libc::IPPROTO_TCP, libc::TCP_NODELAY),
        SetOn::Emulate(_)
    ));
    assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_NODELAY), GetOn::Here);
    let refused = SetOn::Fail(libc::ENOPROTOOPT);
    assert_eq!(set(libc::IPPROTO_TCP, libc::TCP_INFO), refused, "get only");
    assert_eq!(set(libc::SOL_SOCKET, libc::SO_DOMAIN), refused);
    assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_INFO), GetOn::Here);
    assert_eq!(set(libc::IPPROTO_TCP, libc::TCP_CONGESTION), refused);
    assert_eq!(
        get(libc::IPPROTO_TCP, libc::TCP_CONGESTION),
        GetOn::Fail(libc::ENOPROTOOPT)
    );
}

#[test]
fn options_answered_for_a_vsock_socket() {
    let v = vsock_entry(INET6);
    let ask = |level, opt, room, connected: bool| {
        let class = opts::classify(INET6, level, opt);
        answer(&v, class, level, opt, room, || connected)
    };
    let tcp = libc::IPPROTO_TCP;
    assert_eq!(ask(tcp, libc::TCP_QUICKACK, 4, false), Ok(int(1).to_vec()));
    assert_eq!(
        ask(tcp, libc::TCP_QUICKACK, 2, false),
        Ok(int(1)[..2].to_vec())
    );
    assert_eq!(ask(tcp, libc::TCP_QUICKACK, -1, false), Err(libc::EINVAL));
    let sol = libc::SOL_SOCKET;
    assert_eq!(ask(sol, libc::SO_DOMAIN, 4, false), Ok(int(INET6).to_vec()));
    assert_eq!(ask(sol, libc::SO_PROTOCOL, 8, false), Ok(int(tcp).to_vec()));
    let info = ask(tcp, libc::TCP_INFO, 1000, true).unwrap();
    assert_eq!(info.len(), core::mem::size_of::<libc::tcp_info>());
    assert_eq!(info[0], opts::TCP_ESTABLISHED);
    assert_eq!(
        ask(tcp, libc::TCP_INFO, 1, false),
        Ok(vec![opts::TCP_CLOSE])
    );
    assert_eq!(
        ask(sol, libc::SO_KEEPALIVE, 4, false),
        Err(libc::ENOPROTOOPT)
    );
}

#[test]
fn epoll_registrations_follow_epoll_ctl() {
    let mut regs = Vec::new();
    note_epoll(&mut regs, 5, libc::EPOLL_CTL_ADD, Some((1, 10)));
    note_epoll(&mut regs, 6, libc::EPOLL_CTL_ADD, Some((4, 20)));
    note_epoll(&mut regs, 5, libc::EPOLL_CTL_MOD, Some((5, 11)));
    assert_eq!(regs, [(6, 4, 20), (5, 5, 11)]);
    note_epoll(&mut regs, 6, libc::EPOLL_CTL_DEL, None);
    assert_eq!(regs, [(5, 5, 11)]);
    note_epoll(&mut regs, 5, libc::EPOLL_CTL_ADD, None);
    assert_eq!(regs, [], "no event: forgotten");
}
