//! The preload library under `LD_PRELOAD`, end to end.
//!
//! This test binary is its own test program: `main` re-executes itself with
//! `--child <scenario>` under `LD_PRELOAD=libyasmin_preload.so` and checks what the child
//! reports (stdout) and what the library logged (stderr). The child uses plain libc
//! calls, which the preloaded library interposes. (The binary does not link the crate,
//! so without LD_PRELOAD it is an ordinary program.)
//!
//! vsock: this host may or may not have a vsock transport. Connections to mapped
//! addresses are checked to go to vsock (log line, socket family) and then to either
//! fail with an errno of the vsock attempt or fall back to TCP when there is no vsock
//! path; nothing here needs a vsock peer.

#[path = "../../xenstore-watch/tests/common/mod.rs"]
mod xs_fake;

use std::io::{BufRead, BufReader, Write};
use std::mem::{size_of, zeroed};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use libc::{c_int, sockaddr, sockaddr_in, sockaddr_in6, socklen_t};

// ---------------------------------------------------------------------------------------
// parent side

fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        let p = dir.join("libyasmin_preload.so");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "libyasmin_preload.so not found next to {} (cargo builds it with the tests)",
        exe.display()
    );
}

fn child_cmd(scenario: &str, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--child", scenario]);
    for (k, _) in std::env::vars() {
        if k.starts_with("YASMIN_PRELOAD") || k == "XENSTORED_PATH" {
            c.env_remove(k);
        }
    }
    c.env("LD_PRELOAD", lib_path())
        .env("YASMIN_PRELOAD_LOG", "1")
        .env("XENSTORED_PATH", "/nonexistent/yasmin-preload-test")
        .env("YASMIN_PRELOAD_SELF_DOMID", "1")
        // No vsock peer answers here: attempts that time out do so quickly.
        .env("YASMIN_PRELOAD_CONNECT_MS", CONNECT_MS.to_string());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn run_child(scenario: &str, env: &[(&str, &str)]) -> (String, String) {
    let out: Output = child_cmd(scenario, env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {scenario} failed: {:?}\n--- stdout\n{so}\n--- stderr\n{se}",
        out.status
    );
    (so, se)
}

/// The value of `key=` in the child's stdout.
fn field(out: &str, key: &str) -> String {
    let k = format!("{key}=");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(&k))
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
        .to_string()
}

fn has(log: &str, needle: &str) {
    assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
}

fn dual_or_tcp_only(log: &str, shown: &str, port: &str) {
    let dual = format!("listen {shown} -> tcp + vsock port {port}");
    let single = format!("listen {shown} -> tcp only (vsock");
    assert!(
        log.contains(&dual) || log.contains(&single),
        "no listen decision for {shown}:\n{log}"
    );
}

/// Ordinary TCP (loopback is never moved) and UDP through the preload.
fn tcp_still_works() {
    let (out, log) = run_child(
        "tcp",
        &[("YASMIN_PRELOAD_MAP", "198.18.0.12=5,127.0.0.3=5")],
    );
    let (lo, dual, v6) = (field(&out, "lo"), field(&out, "dual"), field(&out, "v6"));
    has(
        &log,
        &format!("listen 127.0.0.1:{lo} -> tcp only (not an address the map gives us)"),
    );
    dual_or_tcp_only(&log, &format!("0.0.0.0:{dual}"), &dual);
    dual_or_tcp_only(&log, &format!("[::]:{v6}"), &v6);
    has(
        &log,
        &format!("connect 127.0.0.1:{lo} -> tcp (own address)"),
    );
    has(
        &log,
        &format!("connect 127.0.0.1:{dual} -> tcp (own address)"),
    );
    has(
        &log,
        &format!("connect 127.0.0.1:{v6} -> tcp (own address)"),
    );
    has(&log, "listen [::]:");
    has(&log, "-> tcp only (IPV6_V6ONLY)");
    // UDP and unix sockets leave no trace
    assert!(!log.contains("198.18.0.12"), "UDP was looked at:\n{log}");
    assert_eq!(field(&out, "udp"), "ok");
    assert_eq!(field(&out, "fds_back"), "yes");
}

/// A mapped destination goes to vsock CID domid + 2 (or falls back when there is no
/// vsock path); options and flags survive the switch.
fn mapped_destination_tries_vsock() {
    let (out, log) = run_child("vsock", &[("YASMIN_PRELOAD_MAP", "127.0.0.3=5")]);
    let port = field(&out, "port");
    // options without a vsock meaning keep the connection on TCP
    has(
        &log,
        &format!(
            "connect 127.0.0.3:{port} -> tcp (domain 5 is co-located, but TCP_CONGESTION is set)"
        ),
    );
    has(&log, &format!("connect 127.0.0.3:{port} -> tcp (domain 5 is co-located, but the socket has another descriptor (dup))"));
    has(
        &log,
        &format!("connect 127.0.0.4:{port} -> tcp (not co-located)"),
    );
    assert_eq!(field(&out, "congestion"), "tcp-ok");
    assert_eq!(field(&out, "dup"), "tcp-ok");
    assert_eq!(field(&out, "unmapped"), "tcp-ok");

    // No vsock peer has CID 7 here, so every attempt fails with one of these and falls
    // back to TCP, which reaches the child's local server.
    let prefix = format!("connect 127.0.0.3:{port} -> vsock CID 7 port {port}");
    let e = fell_back(&log, &prefix);
    assert_eq!(field(&out, "nonblocking"), "tcp-ok");
    // The failure is remembered: the next connect there goes straight to TCP.
    has(
        &log,
        &format!("connect 127.0.0.3:{port} -> tcp (domain 5 is co-located, but vsock CID 7 port {port} failed with {e} "),
    );
    assert_eq!(field(&out, "remembered"), "tcp-ok");

    // With no memory, a blocking connect falls back the same way.
    let env = [
        ("YASMIN_PRELOAD_MAP", "127.0.0.3=5"),
        ("YASMIN_PRELOAD_FALLBACK_TTL_MS", "0"),
    ];
    let (out, log) = run_child("blocking", &env);
    let port = field(&out, "port");
    fell_back(
        &log,
        &format!("connect 127.0.0.3:{port} -> vsock CID 7 port {port}"),
    );
    assert_eq!(field(&out, "blocking"), "tcp-ok");
    assert!(
        !log.contains("-> tcp (domain 5"),
        "remembered with a TTL of 0:\n{log}"
    );

    // Strict: the vsock errno goes to the program, the socket stays unconnected TCP.
    let env = [
        ("YASMIN_PRELOAD_MAP", "127.0.0.3=5"),
        ("YASMIN_PRELOAD_STRICT", "1"),
    ];
    let (out, log) = run_child("strict", &env);
    let port = field(&out, "port");
    let e = field(&out, "strict");
    assert!(VSOCK_FAILURES.contains(&e.as_str()), "strict: {e}");
    has(
        &log,
        &format!("connect 127.0.0.3:{port} -> vsock CID 7 port {port}: {e} ("),
    );
    has(&log, "no fallback (strict)");
    println!("    (this host: the vsock attempts failed with {e})");

    // A signal during a blocking connect's vsock attempt: EINTR, as for TCP.
    if e == "ETIMEDOUT" {
        let env = [
            ("YASMIN_PRELOAD_MAP", "127.0.0.3=5"),
            ("YASMIN_PRELOAD_CONNECT_MS", "3000"),
        ];
        let (out, _) = run_child("eintr", &env);
        assert_eq!(field(&out, "eintr"), "EINTR");
        let ms: u64 = field(&out, "ms").parse().unwrap();
        assert!(ms < 2000, "the signal did not end the wait: {ms} ms");
    }
}

/// The children's vsock connect budget.
const CONNECT_MS: u64 = 300;

/// How a vsock connect to a CID nobody has fails.
const VSOCK_FAILURES: [&str; 7] = [
    "ETIMEDOUT",
    "ECONNREFUSED",
    "ECONNRESET",
    "ENODEV",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EAFNOSUPPORT",
];

/// Checks the log says the attempt `prefix` failed and went to TCP; returns the errno.
fn fell_back(log: &str, prefix: &str) -> String {
    let at = format!("{prefix} failed (");
    let line = log
        .lines()
        .find(|l| l.contains(&at))
        .unwrap_or_else(|| panic!("log lacks {at:?}:\n{log}"));
    assert!(line.ends_with("ms), tcp instead"), "{line}");
    let rest = &line[line.find(&at).unwrap() + at.len()..];
    let e = rest.split(',').next().unwrap().to_string();
    assert!(
        VSOCK_FAILURES.contains(&e.as_str()),
        "vsock failed with {e}: {line}"
    );
    e
}

/// A dual listener the program lets an `exec`ed image inherit (`fcntl(F_SETFD, 0)`)
/// keeps working there, recognised by the new image's library; a close-on-exec one
/// leaves nothing behind.
fn listener_across_exec() {
    let (out, log) = run_child("exec-listener", &[]);
    if field(&out, "dual") == "no" {
        // No AF_VSOCK listener possible on this host: nothing dual to inherit.
        has(&log, "-> tcp only (vsock");
        println!("    (this host cannot listen on vsock: skipped)");
        return;
    }
    let (fd, port) = (field(&out, "fd"), field(&out, "port"));
    has(
        &log,
        &format!("inherited listener on fd {fd}: tcp + vsock port {port}"),
    );
    assert_eq!(field(&out, "accepted"), "ok");
    assert_eq!(field(&out, "name"), "ok");
    assert_eq!(field(&out, "cloexec_gone"), "ok");
    assert_eq!(field(&out, "fds"), "ok");
}

/// A preloaded shell that runs a static binary logs that the library cannot reach it;
/// a dynamic one gets no such line.
fn static_binaries_are_named() {
    let busybox = "/bin/busybox";
    // (busybox-static, which the project's dependencies install: an ELF file with no
    // interpreter path near its start)
    let head = std::fs::read(busybox).unwrap_or_default();
    let head = &head[..head.len().min(4096)];
    let is_static = head.starts_with(b"\x7fELF") && !head.windows(7).any(|w| w == b"ld-linu");
    if !is_static {
        println!("    (no static {busybox} here: skipped)");
        return;
    }
    let run = |script: &str| {
        let out = Command::new("/bin/sh")
            .args(["-c", script])
            .env("LD_PRELOAD", lib_path())
            .env("YASMIN_PRELOAD_LOG", "1")
            .env("YASMIN_PRELOAD_MAP", "198.18.0.12=5")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {:?}", out.status);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run(&format!("{busybox} true; true"));
    has(
        &log,
        &format!("exec {busybox}: a static binary; the preload library cannot reach it"),
    );
    let log = run("env true; true");
    assert!(
        !log.contains("static binary"),
        "a dynamic program named static:\n{log}"
    );
}

/// The map comes from XenStore (the fake daemon), with our domid from `domid`, and is
/// re-read once it is a second old.
fn map_from_xenstore_follows_changes() {
    use xenstore_watch::xs::{Perm, PermKind};
    let store = xs_fake::Store::new();
    {
        let mut s = store.lock().unwrap();
        let home = [Perm::new(0, PermKind::None), Perm::new(1, PermKind::Read)];
        s.put("/local/domain/1", "", &home);
        s.put("/local/domain/1/domid", "1", &[]);
        let world = [Perm::new(0, PermKind::Read)];
        let dir = "/local/domain/0/data/yasmin-watch/ipmap";
        s.put(dir, "", &world);
        s.put(&format!("{dir}/127-0-0-3"), "5", &world);
        s.put(&format!("{dir}/127-0-0-5"), "1", &world);
        s.put(&format!("{dir}/127-0-0-9"), "bogus", &world);
    }
    let sock = xs_fake::listen(&store, 1);
    let mut child = child_cmd("xenstore", &[])
        .env("XENSTORED_PATH", &sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("phase1"), "{line:?}");
    store.lock().unwrap().put(
        "/local/domain/0/data/yasmin-watch/ipmap/127-0-0-4",
        "6",
        &[Perm::new(0, PermKind::Read)],
    );
    stdin.write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let so = line + &String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{so}\n{log}");
    let port = field(&so, "port");
    let own = field(&so, "own");
    has(&log, "map from xenstore: 2 entries, own domid 1; ipmap/127-0-0-9 = \"bogus\" is malformed; ignored");
    has(&log, "map from xenstore: 3 entries, own domid 1");
    has(
        &log,
        &format!("connect 127.0.0.3:{port} -> vsock CID 7 port {port}"),
    );
    has(
        &log,
        &format!("connect 127.0.0.5:{port} -> tcp (own domain)"),
    );
    has(
        &log,
        &format!("connect 127.0.0.4:{port} -> tcp (not co-located)"),
    );
    has(
        &log,
        &format!("connect 127.0.0.4:{port} -> vsock CID 8 port {port}"),
    );
    dual_or_tcp_only(&log, &format!("127.0.0.5:{own}"), &own);
}

/// `YASMIN_PRELOAD_DISABLE=1`: nothing is touched or logged. `YASMIN_PRELOAD_MAP_FILE`
/// is read.
fn disable_and_map_file() {
    let (out, log) = run_child(
        "disabled",
        &[
            ("YASMIN_PRELOAD_MAP", "127.0.0.3=5"),
            ("YASMIN_PRELOAD_DISABLE", "1"),
        ],
    );
    assert_eq!(field(&out, "connect"), "tcp-ok");
    assert_eq!(field(&out, "fds_extra"), "0");
    assert!(!log.contains("yasmin-preload"), "{log}");

    let dir = std::env::temp_dir().join(format!("yasmin-preload-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("map");
    std::fs::write(&f, "# test map\n127.0.0.3 5\n127.0.0.7 9\n").unwrap();
    let (out, log) = run_child(
        "mapfile",
        &[("YASMIN_PRELOAD_MAP_FILE", f.to_str().unwrap())],
    );
    let port = field(&out, "port");
    has(&log, &format!("map from {}: 2 entries", f.display()));
    has(
        &log,
        &format!("connect 127.0.0.7:{port} -> vsock CID 11 port {port}"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let tests: [(&str, fn()); 6] = [
        ("tcp_still_works", tcp_still_works),
        (
            "mapped_destination_tries_vsock",
            mapped_destination_tries_vsock,
        ),
        (
            "map_from_xenstore_follows_changes",
            map_from_xenstore_follows_changes,
        ),
        ("disable_and_map_file", disable_and_map_file),
        ("listener_across_exec", listener_across_exec),
        ("static_binaries_are_named", static_binaries_are_named),
    ];
    let mut failed = 0;
    let mut ran = 0;
    for (name, f) in tests {
        if filter.as_ref().is_some_and(|p| !name.contains(p.as_str())) {
            continue;
        }
        ran += 1;
        println!("test {name} ...");
        let t = Instant::now();
        match std::panic::catch_unwind(f) {
            Ok(()) => println!("test {name} ... ok ({:.1} s)", t.elapsed().as_secs_f64()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        ran - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// child side: libc calls, interposed by the preloaded library

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ename(e: c_int) -> &'static str {
    match e {
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENODEV => "ENODEV",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::ENOTCONN => "ENOTCONN",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EINVAL => "EINVAL",
        libc::EAGAIN => "EAGAIN",
        libc::EINTR => "EINTR",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => "other",
    }
}

fn sin(ip: [u8; 4], port: u16) -> sockaddr_in {
    // SAFETY: plain data.
    let mut s: sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as _;
    s.sin_port = port.to_be();
    s.sin_addr.s_addr = u32::from_ne_bytes(ip);
    s
}

fn sin6_mapped(ip: [u8; 4], port: u16) -> sockaddr_in6 {
    // SAFETY: plain data.
    let mut s: sockaddr_in6 = unsafe { zeroed() };
    s.sin6_family = libc::AF_INET6 as _;
    s.sin6_port = port.to_be();
    s.sin6_addr.s6_addr[10] = 0xff;
    s.sin6_addr.s6_addr[11] = 0xff;
    s.sin6_addr.s6_addr[12..].copy_from_slice(&ip);
    s
}

fn sock(domain: c_int, ty: c_int) -> c_int {
    let fd = unsafe { libc::socket(domain, ty, 0) };
    assert!(fd >= 0, "socket: {}", errno());
    fd
}

fn setint(fd: c_int, level: c_int, opt: c_int, v: c_int) -> c_int {
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const c_int).cast(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if r < 0 {
        errno()
    } else {
        0
    }
}

fn getint(fd: c_int, level: c_int, opt: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = -1;
    let mut len = size_of::<c_int>() as socklen_t;
    let r = unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut c_int).cast(), &mut len) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

fn bind4(fd: c_int, ip: [u8; 4], port: u16) {
    let a = sin(ip, port);
    let r = unsafe {
        libc::bind(
            fd,
            (&a as *const sockaddr_in).cast(),
            size_of::<sockaddr_in>() as socklen_t,
        )
    };
    assert_eq!(r, 0, "bind: {}", errno());
}

fn connect4(fd: c_int, ip: [u8; 4], port: u16) -> Result<(), c_int> {
    let a = sin(ip, port);
    let r = unsafe {
        libc::connect(
            fd,
            (&a as *const sockaddr_in).cast(),
            size_of::<sockaddr_in>() as socklen_t,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// (family, ip, port) from getsockname/getpeername.
fn name(fd: c_int, peer: bool) -> Result<(c_int, [u8; 4], u16, bool), c_int> {
    let mut b = [0u8; 128];
    let mut len = b.len() as socklen_t;
    let p = b.as_mut_ptr().cast::<sockaddr>();
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r < 0 {
        return Err(errno());
    }
    Ok(decode(&b[..len as usize]))
}

/// (family, ipv4, port, v4-mapped) of an address buffer.
fn decode(b: &[u8]) -> (c_int, [u8; 4], u16, bool) {
    let family = c_int::from(u16::from_ne_bytes([b[0], b[1]]));
    let port = u16::from_be_bytes([b[2], b[3]]);
    match family {
        libc::AF_INET => (family, [b[4], b[5], b[6], b[7]], port, false),
        libc::AF_INET6 => {
            let mapped = b[8..18].iter().all(|&x| x == 0) && b[18] == 0xff && b[19] == 0xff;
            (family, [b[20], b[21], b[22], b[23]], port, mapped)
        }
        _ => (family, [0; 4], 0, false),
    }
}

/// The family of `fd` as the kernel has it (a raw system call, not interposed).
fn raw_family(fd: c_int) -> c_int {
    let mut b = [0u8; 128];
    let mut len = b.len() as socklen_t;
    let r = unsafe { libc::syscall(libc::SYS_getsockname, fd, b.as_mut_ptr(), &mut len) };
    assert_eq!(r, 0, "raw getsockname: {}", errno());
    c_int::from(u16::from_ne_bytes([b[0], b[1]]))
}

fn port_of(fd: c_int) -> u16 {
    name(fd, false).unwrap().2
}

fn listener(domain: c_int, ty: c_int, ip: [u8; 4]) -> (c_int, u16) {
    let fd = sock(domain, ty);
    assert_eq!(setint(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1), 0);
    bind4(fd, ip, 0);
    assert_eq!(unsafe { libc::listen(fd, 16) }, 0, "listen: {}", errno());
    (fd, port_of(fd))
}

fn poll1(fd: c_int, events: i16, ms: c_int) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    assert!(r >= 0, "poll: {}", errno());
    p.revents
}

fn send_all(fd: c_int, b: &[u8]) {
    let n = unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), 0) };
    assert_eq!(n, b.len() as isize, "send: {}", errno());
}

fn recv_some(fd: c_int) -> Vec<u8> {
    let mut b = [0u8; 256];
    assert!(
        poll1(fd, libc::POLLIN, 5000) & libc::POLLIN != 0,
        "nothing to read"
    );
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), 0) };
    assert!(n >= 0, "recv: {}", errno());
    b[..n as usize].to_vec()
}

fn accept_blocking(fd: c_int) -> c_int {
    let n = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert!(n >= 0, "accept: {}", errno());
    n
}

fn close(fd: c_int) {
    unsafe { libc::close(fd) };
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A thread accepting (and echoing one read) on `fd` forever.
fn echo_server(fd: c_int) {
    thread::spawn(move || loop {
        let c = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
        if c < 0 {
            return;
        }
        thread::spawn(move || {
            let mut b = [0u8; 256];
            let n = unsafe { libc::recv(c, b.as_mut_ptr().cast(), b.len(), 0) };
            if n > 0 {
                unsafe { libc::send(c, b.as_ptr().cast(), n as usize, 0) };
            }
            thread::sleep(Duration::from_millis(100));
            close(c);
        });
    });
}

fn roundtrip(fd: c_int) {
    send_all(fd, b"ping");
    assert_eq!(recv_some(fd), b"ping");
}

fn child(scenario: &str) {
    match scenario {
        "tcp" => child_tcp(),
        "vsock" => child_vsock(),
        "blocking" => child_blocking(false),
        "eintr" => child_eintr(),
        "exec-listener" => child_exec_listener(),
        "exec-listener-after" => child_exec_listener_after(),
        "strict" => child_blocking(true),
        "xenstore" => child_xenstore(),
        "disabled" => child_disabled(),
        "mapfile" => child_mapfile(),
        s => panic!("unknown scenario {s}"),
    }
}

fn child_tcp() {
    const LO: [u8; 4] = [127, 0, 0, 1];
    let fds0 = fd_count();

    // 1. a loopback listener stays TCP; blocking client, data, names, options.
    let (lo, lo_port) = listener(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, LO);
    assert_eq!(
        name(lo, false).unwrap(),
        (libc::AF_INET, LO, lo_port, false)
    );
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    assert_eq!(setint(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1), 0);
    assert_eq!(setint(c, libc::SOL_SOCKET, libc::SO_SNDBUF, 65536), 0);
    connect4(c, LO, lo_port).unwrap();
    let s = accept_blocking(lo);
    assert_eq!(name(c, true).unwrap(), (libc::AF_INET, LO, lo_port, false));
    assert_eq!(name(s, true).unwrap(), name(c, false).unwrap());
    assert_eq!(getint(c, libc::IPPROTO_TCP, libc::TCP_NODELAY), Ok(1));
    assert_eq!(raw_family(c), libc::AF_INET);
    send_all(c, b"hello");
    assert_eq!(recv_some(s), b"hello");
    send_all(s, b"world");
    assert_eq!(recv_some(c), b"world");
    close(c);
    close(s);

    // 2. a wildcard listener (dual if vsock works), non-blocking.
    let (dl, dual_port) = listener(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
        [0; 4],
    );
    assert_eq!(
        name(dl, false).unwrap(),
        (libc::AF_INET, [0; 4], dual_port, false)
    );
    assert_eq!(getint(dl, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), Ok(1));
    assert_eq!(
        getint(dl, libc::SOL_SOCKET, libc::SO_TYPE),
        Ok(libc::SOCK_STREAM)
    );
    assert_eq!(
        getint(dl, libc::SOL_SOCKET, libc::SO_DOMAIN),
        Ok(libc::AF_INET)
    );
    assert_eq!(getint(dl, libc::SOL_SOCKET, libc::SO_REUSEADDR), Ok(1));
    assert_eq!(setint(dl, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1), 0);
    let n = unsafe { libc::accept4(dl, std::ptr::null_mut(), std::ptr::null_mut(), 0) };
    assert_eq!((n, errno()), (-1, libc::EAGAIN), "nothing pending yet");
    assert_eq!(poll1(dl, libc::POLLIN, 0), 0, "not readable yet");
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
        u64: 42,
    };
    assert_eq!(
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, dl, &mut ev) },
        0,
        "epoll_ctl: {}",
        errno()
    );

    // non-blocking client with flags, poll for completion, SO_ERROR
    let c = sock(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
    );
    match connect4(c, LO, dual_port) {
        Ok(()) => {}
        Err(e) => assert_eq!(e, libc::EINPROGRESS),
    }
    assert!(poll1(c, libc::POLLOUT, 5000) & libc::POLLOUT != 0);
    assert_eq!(getint(c, libc::SOL_SOCKET, libc::SO_ERROR), Ok(0));
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
    let k = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 4, 5000) };
    assert_eq!(k, 1, "epoll on the listener: {}", errno());
    assert_eq!({ evs[0].u64 }, 42);
    assert!(
        poll1(dl, libc::POLLIN, 0) & libc::POLLIN != 0,
        "poll on the listener"
    );
    // select() too
    unsafe {
        let mut set: libc::fd_set = zeroed();
        libc::FD_SET(dl, &mut set);
        let mut tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        let r = libc::select(
            dl + 1,
            &mut set,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut tv,
        );
        assert_eq!(r, 1, "select on the listener");
    }
    let mut b = [0u8; 64];
    let mut len = b.len() as socklen_t;
    let s = unsafe {
        libc::accept4(
            dl,
            b.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    assert!(s >= 0, "accept4: {}", errno());
    assert_eq!(decode(&b[..len as usize]), name(c, false).unwrap());
    assert!(unsafe { libc::fcntl(s, libc::F_GETFD) } & libc::FD_CLOEXEC != 0);
    assert!(unsafe { libc::fcntl(s, libc::F_GETFL) } & libc::O_NONBLOCK != 0);
    assert!(unsafe { libc::fcntl(c, libc::F_GETFD) } & libc::FD_CLOEXEC != 0);
    send_all(c, b"x");
    assert_eq!(recv_some(s), b"x");
    close(c);
    close(s);
    close(ep);

    // 3. blocking accept on a blocking wildcard listener waits for a client; SO_RCVTIMEO
    let (bl, bl_port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        let c = sock(libc::AF_INET, libc::SOCK_STREAM);
        connect4(c, LO, bl_port).unwrap();
        roundtrip(c);
        close(c);
    });
    let s = accept_blocking(bl);
    send_all(s, &recv_some(s));
    t.join().unwrap();
    close(s);
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 300_000,
    };
    let r = unsafe {
        libc::setsockopt(
            bl,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as socklen_t,
        )
    };
    assert_eq!(r, 0);
    let t0 = Instant::now();
    let n = unsafe { libc::accept(bl, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!((n, errno()), (-1, libc::EAGAIN), "SO_RCVTIMEO");
    assert!(t0.elapsed() >= Duration::from_millis(250));

    // 4. dup of a listener outlives the original; closing both frees everything
    let d = unsafe { libc::dup(bl) };
    assert!(d >= 0);
    close(bl);
    let t = thread::spawn(move || {
        let c = sock(libc::AF_INET, libc::SOCK_STREAM);
        connect4(c, LO, bl_port).unwrap();
        roundtrip(c);
        close(c);
    });
    let tv = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    unsafe {
        libc::setsockopt(
            d,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as socklen_t,
        )
    };
    let s = accept_blocking(d);
    send_all(s, &recv_some(s));
    t.join().unwrap();
    close(s);
    close(d);
    // shutdown() of a listener makes accept fail instead of blocking
    let _ = unsafe { libc::shutdown(dl, libc::SHUT_RDWR) };
    let n = unsafe { libc::accept(dl, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(n, -1);
    close(dl);

    // 5. IPv6: a dual-stack [::] listener, a v4-mapped client
    let l6 = sock(libc::AF_INET6, libc::SOCK_STREAM);
    assert_eq!(setint(l6, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0), 0);
    // SAFETY: plain data.
    let mut any6: sockaddr_in6 = unsafe { zeroed() };
    any6.sin6_family = libc::AF_INET6 as _;
    let r = unsafe {
        libc::bind(
            l6,
            (&any6 as *const sockaddr_in6).cast(),
            size_of::<sockaddr_in6>() as socklen_t,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(unsafe { libc::listen(l6, 8) }, 0);
    let v6_port = port_of(l6);
    let c6 = sock(libc::AF_INET6, libc::SOCK_STREAM);
    let m = sin6_mapped(LO, v6_port);
    let r = unsafe {
        libc::connect(
            c6,
            (&m as *const sockaddr_in6).cast(),
            size_of::<sockaddr_in6>() as socklen_t,
        )
    };
    assert_eq!(r, 0, "v4-mapped connect: {}", errno());
    assert_eq!(name(c6, true).unwrap(), (libc::AF_INET6, LO, v6_port, true));
    let mut b = [0u8; 64];
    let mut len = b.len() as socklen_t;
    let s6 = unsafe { libc::accept(l6, b.as_mut_ptr().cast(), &mut len) };
    assert!(s6 >= 0);
    assert_eq!(decode(&b[..len as usize]).0, libc::AF_INET6);
    close(c6);
    close(s6);
    close(l6);
    // an IPv6-only wildcard listener stays TCP
    let l6o = sock(libc::AF_INET6, libc::SOCK_STREAM);
    assert_eq!(setint(l6o, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1), 0);
    let r = unsafe {
        libc::bind(
            l6o,
            (&any6 as *const sockaddr_in6).cast(),
            size_of::<sockaddr_in6>() as socklen_t,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(unsafe { libc::listen(l6o, 8) }, 0);
    close(l6o);

    // 6. UDP is never touched, even towards a mapped address
    let u = sock(libc::AF_INET, libc::SOCK_DGRAM);
    bind4(u, LO, 0);
    let up = port_of(u);
    let u2 = sock(libc::AF_INET, libc::SOCK_DGRAM);
    let a = sin(LO, up);
    let n = unsafe {
        libc::sendto(
            u2,
            b"dgram".as_ptr().cast(),
            5,
            0,
            (&a as *const sockaddr_in).cast(),
            size_of::<sockaddr_in>() as socklen_t,
        )
    };
    assert_eq!(n, 5);
    assert_eq!(recv_some(u), b"dgram");
    connect4(u2, [198, 18, 0, 12], 9).unwrap();
    assert_eq!(
        name(u2, true).unwrap(),
        (libc::AF_INET, [198, 18, 0, 12], 9, false)
    );
    assert_eq!(raw_family(u2), libc::AF_INET);
    close(u);
    close(u2);
    close(lo);

    let back = fd_count() == fds0;
    println!(
        "lo={lo_port} dual={dual_port} v6={v6_port} udp=ok fds_back={}",
        if back { "yes" } else { "no" }
    );
}

fn child_vsock() {
    let (srv, port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    echo_server(srv);
    let mapped = [127, 0, 0, 3];

    // an option with no vsock meaning keeps TCP
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    let algo = b"reno";
    let r = unsafe {
        libc::setsockopt(
            c,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            algo.as_ptr().cast(),
            algo.len() as socklen_t,
        )
    };
    assert_eq!(r, 0, "TCP_CONGESTION: {}", errno());
    connect4(c, mapped, port).unwrap();
    roundtrip(c);
    assert_eq!(raw_family(c), libc::AF_INET);
    close(c);
    print!("port={port} congestion=tcp-ok ");

    // a socket with two descriptors keeps TCP
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    let d = unsafe { libc::dup(c) };
    connect4(c, mapped, port).unwrap();
    roundtrip(d);
    close(c);
    close(d);
    print!("dup=tcp-ok ");

    // not in the map: TCP
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    connect4(c, [127, 0, 0, 4], port).unwrap();
    roundtrip(c);
    close(c);
    print!("unmapped=tcp-ok ");

    // non-blocking, options set before, epoll registration before connect
    let c = sock(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
    );
    assert_eq!(setint(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1), 0);
    assert_eq!(setint(c, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1), 0);
    assert_eq!(setint(c, libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20), 0);
    let ep = unsafe { libc::epoll_create1(0) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLOUT as u32,
        u64: 7,
    };
    assert_eq!(
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, &mut ev) },
        0
    );
    let r = connect4(c, mapped, port);
    // No vsock peer has CID 7: the attempt failed and the connection went to TCP on the
    // same descriptor, which reaches our server. The program cannot tell: EINPROGRESS,
    // then writable, its epoll registration and options intact.
    assert_eq!(raw_family(c), libc::AF_INET, "fell back to TCP");
    if let Err(e) = r {
        assert_eq!(e, libc::EINPROGRESS);
    }
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
    let k = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 2, 10_000) };
    assert_eq!(k, 1, "the epoll registration made before connect reports");
    assert_eq!({ evs[0].u64 }, 7);
    assert_eq!(getint(c, libc::SOL_SOCKET, libc::SO_ERROR), Ok(0));
    assert!(unsafe { libc::fcntl(c, libc::F_GETFL) } & libc::O_NONBLOCK != 0);
    assert!(unsafe { libc::fcntl(c, libc::F_GETFD) } & libc::FD_CLOEXEC != 0);
    assert_eq!(getint(c, libc::IPPROTO_TCP, libc::TCP_NODELAY), Ok(1));
    assert_eq!(getint(c, libc::SOL_SOCKET, libc::SO_KEEPALIVE), Ok(1));
    assert_eq!(name(c, true).unwrap().1, mapped);
    let mut flags = unsafe { libc::fcntl(c, libc::F_GETFL) };
    flags &= !libc::O_NONBLOCK;
    unsafe { libc::fcntl(c, libc::F_SETFL, flags) };
    roundtrip(c);
    print!("nonblocking=tcp-ok ");
    close(c);
    close(ep);

    // The destination is remembered: straight to TCP.
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    connect4(c, mapped, port).unwrap();
    assert_eq!(raw_family(c), libc::AF_INET);
    roundtrip(c);
    close(c);
    print!("remembered=tcp-ok ");
    println!();
}

fn is_epoll(fd: c_int) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]")
}

/// Before the exec: one inheritable dual listener (close-on-exec cleared with fcntl) and
/// one close-on-exec listener; then the exec.
fn child_exec_listener() {
    use std::os::unix::process::CommandExt;
    let (keep, port) = listener(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
        [0; 4],
    );
    if !is_epoll(keep) {
        println!("dual=no");
        return;
    }
    assert_eq!(unsafe { libc::fcntl(keep, libc::F_SETFD, 0) }, 0);
    let (gone, gone_port) = listener(
        libc::AF_INET,
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
        [0; 4],
    );
    assert!(is_epoll(gone));
    // The descriptors the new image should have: those not close-on-exec now (`keep`
    // and its two hidden listeners among them; not `gone` nor its hidden ones).
    let expected = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<c_int>().ok())
        .filter(|&fd| {
            let fl = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            fl >= 0 && fl & libc::FD_CLOEXEC == 0
        })
        .count();
    let err = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--child",
            "exec-listener-after",
            &keep.to_string(),
            &port.to_string(),
            &gone_port.to_string(),
            &expected.to_string(),
        ])
        .exec();
    panic!("exec: {err}");
}

/// After the exec: the inherited listener accepts a TCP client, shows its TCP name, and
/// the close-on-exec listener's port is free.
fn child_exec_listener_after() {
    let args: Vec<String> = std::env::args().collect();
    let at = args
        .iter()
        .position(|a| a == "exec-listener-after")
        .unwrap();
    let n = |i: usize| args[at + i].parse::<i64>().unwrap();
    let (fd, port, gone_port, expected) = (n(1) as c_int, n(2) as u16, n(3) as u16, n(4));
    assert!(is_epoll(fd), "the listener's number after exec");
    print!("dual=yes fd={fd} port={port} ");
    let client = thread::spawn(move || {
        let c = sock(libc::AF_INET, libc::SOCK_STREAM);
        connect4(c, [127, 0, 0, 1], port).unwrap();
        roundtrip(c);
        close(c);
    });
    assert!(poll1(fd, libc::POLLIN, 10_000) & libc::POLLIN != 0);
    let a = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert!(a >= 0, "accept after exec: {}", ename(errno()));
    let got = recv_some(a);
    send_all(a, &got);
    client.join().unwrap();
    close(a);
    print!("accepted=ok ");
    let (fam, _, p, _) = name(fd, false).unwrap();
    assert_eq!((fam, p), (libc::AF_INET, port));
    print!("name=ok ");
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    assert_eq!(
        connect4(c, [127, 0, 0, 1], gone_port),
        Err(libc::ECONNREFUSED)
    );
    close(c);
    print!("cloexec_gone=ok ");
    // (read_dir's own descriptor is counted too)
    let have = fd_count() as i64 - 1;
    assert_eq!(have, expected, "descriptors after exec");
    println!("fds=ok");
}

extern "C" fn on_alarm(_: c_int) {}

/// A blocking connect whose vsock attempt (to a CID nobody has, which times out) is
/// interrupted by a signal after 200 ms.
fn child_eintr() {
    let (srv, port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    echo_server(srv);
    unsafe {
        let mut sa: libc::sigaction = zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        assert_eq!(libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()), 0);
        let it = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            },
        };
        assert_eq!(
            libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()),
            0
        );
    }
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    let t = Instant::now();
    let r = connect4(c, [127, 0, 0, 3], port);
    let ms = t.elapsed().as_millis();
    assert_eq!(raw_family(c), libc::AF_INET);
    println!("eintr={} ms={ms}", r.err().map_or("none", ename));
    close(c);
}

/// Blocking connects with no fallback memory (`YASMIN_PRELOAD_FALLBACK_TTL_MS=0`), and in
/// strict mode.
fn child_blocking(strict: bool) {
    let (srv, port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    echo_server(srv);
    let mapped = [127, 0, 0, 3];
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    match connect4(c, mapped, port) {
        Ok(()) => {
            assert!(!strict, "strict, yet connected");
            assert_eq!(raw_family(c), libc::AF_INET, "fell back to TCP");
            roundtrip(c);
            print!("port={port} blocking=tcp-ok ");
        }
        Err(e) => {
            assert!(strict, "not strict, yet {}", ename(e));
            // the failed attempt leaves an unconnected TCP socket, as TCP would
            assert_eq!(raw_family(c), libc::AF_INET);
            print!("port={port} strict={} ", ename(e));
        }
    }
    close(c);
    println!();
}

fn child_xenstore() {
    let (srv, port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    echo_server(srv);
    // 127.0.0.5 is ours according to the map (domid 1 = our domid): dual listener
    let (own, own_port) = listener(libc::AF_INET, libc::SOCK_STREAM, [127, 0, 0, 5]);
    let c = sock(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK);
    let _ = connect4(c, [127, 0, 0, 3], port);
    close(c);
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    connect4(c, [127, 0, 0, 5], port).unwrap();
    roundtrip(c);
    close(c);
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    connect4(c, [127, 0, 0, 4], port).unwrap();
    roundtrip(c);
    close(c);
    println!("phase1 port={port} own={own_port}");
    let mut l = String::new();
    std::io::stdin().read_line(&mut l).unwrap();
    thread::sleep(Duration::from_millis(1100));
    let c = sock(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK);
    let _ = connect4(c, [127, 0, 0, 4], port);
    close(c);
    close(own);
    println!("done");
}

fn child_disabled() {
    let fds0 = fd_count();
    let (srv, port) = listener(libc::AF_INET, libc::SOCK_STREAM, [0; 4]);
    let extra = fd_count() - fds0 - 1;
    echo_server(srv);
    let c = sock(libc::AF_INET, libc::SOCK_STREAM);
    connect4(c, [127, 0, 0, 3], port).unwrap();
    roundtrip(c);
    assert_eq!(raw_family(c), libc::AF_INET);
    close(c);
    println!("connect=tcp-ok fds_extra={extra}");
}

fn child_mapfile() {
    let c = sock(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK);
    let port = 5201;
    let _ = connect4(c, [127, 0, 0, 7], port);
    close(c);
    println!("port={port}");
}
