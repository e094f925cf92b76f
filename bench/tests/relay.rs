// SPDX-License-Identifier: GPL-2.0
//! Runs `yasmin-bench` through a relay that, like Xen's `vchan-socket-proxy`, does not
//! pass a half-close on and serves one connection at a time: every mode must still end,
//! and every connection must be fully closed by both ends when its run is over (or the
//! next connection is never served).

mod common;

use common::{assert_success, positive, records, Server, BIN};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest a client run of this file may take (each takes about 1.5 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// What the relay does when one side's read reaches EOF.
#[derive(Clone, Copy, Debug)]
enum OnEof {
    /// Close both sides at once (a half-close ends the whole connection).
    CloseBoth,
    /// Stop that direction only, without telling the other side; the connection ends
    /// (both sockets closed) when the other direction reaches EOF too.
    Ignore,
}

/// A relay from a Unix socket to another, one connection at a time, that never
/// propagates a half-close.
struct Relay {
    addr: String,
    /// Connections whose both sockets the relay has closed.
    done: Arc<AtomicUsize>,
}

impl Relay {
    fn start(listen: &Path, upstream: PathBuf, on_eof: OnEof) -> Relay {
        let l = UnixListener::bind(listen).expect("bind relay");
        let done = Arc::new(AtomicUsize::new(0));
        let count = done.clone();
        thread::spawn(move || {
            for client in l.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                relay_one(client, server, on_eof);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Relay {
            addr: format!("unix:{}", listen.display()),
            done,
        }
    }

    /// Waits (bounded) until `n` connections have been relayed and closed.
    fn wait_done(&self, n: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.done.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < end,
                "relay: {} of {n} connections closed after {within:?}",
                self.done.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Copies both ways until the connection is over, then drops (closes) both sockets.
fn relay_one(a: UnixStream, b: UnixStream, on_eof: OnEof) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let up = thread::spawn(move || pump(a, b, on_eof));
    pump(b2, a2, on_eof);
    up.join().unwrap();
}

fn pump(mut from: UnixStream, mut to: UnixStream, on_eof: OnEof) {
    let close_both = |from: &UnixStream, to: &UnixStream| {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                if let OnEof::CloseBoth = on_eof {
                    close_both(&from, &to);
                }
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    close_both(&from, &to);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                close_both(&from, &to);
                return;
            }
        }
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yasmin-bench-relay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Runs a client, killing it (and failing) if it takes longer than `RUN_LIMIT`.
fn client(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .arg("client")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run client");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "client {args:?} still running after {RUN_LIMIT:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

const SIZES: [u64; 2] = [1, 65536];

/// One client run (two message sizes, then the quit connection) through `relay`.
fn run_through(relay: &Relay, kind: &str, direction: Option<&str>) {
    let mut args = vec![
        "--connect",
        &relay.addr,
        "--kind",
        kind,
        "--msg-sizes",
        "1,64K",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--timeout-slack",
        "5",
    ];
    if let Some(d) = direction {
        args.extend(["--direction", d]);
    }
    let start = Instant::now();
    let out = client(&args);
    assert_success(&out);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "{args:?} took {took:?}");
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), SIZES.len(), "{recs:?}");
    for (r, size) in recs.iter().zip(SIZES) {
        assert_eq!(r["kind"], kind);
        assert_eq!(r["msg_size"], size);
        assert_eq!(r["connections"], 1);
        if kind == "stream" {
            assert_eq!(r["direction"], direction.unwrap());
            positive(r, "throughput_mb_s");
            positive(r, "bytes");
            let el = positive(r, "elapsed_s");
            assert!((0.25..2.0).contains(&el), "elapsed {el} in {r}");
        } else {
            assert_eq!(r["direction"], "pingpong");
            positive(r, "count");
            let p50 = positive(r, "p50_us");
            let max = positive(r, "max_us");
            assert!(p50 <= positive(r, "p99_us") && p50 <= max, "{r}");
        }
    }
}

fn every_mode_through(on_eof: OnEof, tag: &str) {
    let sock = tmp(&format!("{tag}-server.sock"));
    let mut server = Server::start(
        &format!("unix:{}", sock.display()),
        &["--timeout-slack", "5"],
    );
    let relay = Relay::start(&tmp(&format!("{tag}-relay.sock")), sock, on_eof);
    // Runs one after the other through the one relay: each needs every connection of
    // the previous one (data connections, then quit) to have been closed by both ends.
    let runs = [
        ("stream", Some("send")),
        ("stream", Some("recv")),
        ("stream", Some("duplex")),
        ("latency", None),
        ("stream", Some("send")),
    ];
    for (i, (kind, direction)) in runs.into_iter().enumerate() {
        run_through(&relay, kind, direction);
        // Each run: one connection per size, and the quit.
        relay.wait_done((i + 1) * (SIZES.len() + 1), Duration::from_secs(3));
    }
    let log = server.log();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains(": received "),
            "{on_eof:?}: server said {line:?}"
        );
    }
    assert!(log.contains("stream-send 65536 B: received"), "{log}");
}

#[test]
fn every_mode_when_eof_closes_the_relay() {
    every_mode_through(OnEof::CloseBoth, "close");
}

#[test]
fn every_mode_when_the_relay_ignores_eof() {
    every_mode_through(OnEof::Ignore, "ignore");
}

#[test]
fn once_server_exits_through_the_relay() {
    for (on_eof, tag) in [
        (OnEof::CloseBoth, "once-close"),
        (OnEof::Ignore, "once-ignore"),
    ] {
        let sock = tmp(&format!("{tag}-server.sock"));
        let mut server = Server::start(
            &format!("unix:{}", sock.display()),
            &["--once", "--timeout-slack", "5"],
        );
        let relay = Relay::start(&tmp(&format!("{tag}-relay.sock")), sock, on_eof);
        run_through(&relay, "stream", Some("duplex"));
        let st = server.wait_exit(Duration::from_secs(5));
        assert!(
            st.is_some_and(|s| s.success()),
            "{on_eof:?}: server did not exit: {st:?}"
        );
        relay.wait_done(SIZES.len() + 1, Duration::from_secs(3));
    }
}
