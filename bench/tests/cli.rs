// SPDX-License-Identifier: GPL-2.0
//! Runs the real `yasmin-bench` binary as server and client over Unix and TCP sockets
//! (vsock is not assumed on the build host).

mod common;

use common::{assert_success, positive, records, Server, BIN};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yasmin-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn client(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("client")
        .args(args)
        .output()
        .expect("run client")
}

/// One client run of `kind` (and `direction`) with 2 connections, checked record by record
/// in both the JSON file and stdout.
fn run_and_check(addr: &str, label: &str, kind: &str, direction: Option<&str>, json: &Path) {
    let mut args = vec![
        "--connect",
        addr,
        "--kind",
        kind,
        "--msg-sizes",
        "1,4K",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--connections",
        "2",
        "--transport-label",
        label,
        "--ring-size",
        "64K",
        "--no-quit",
        "--json",
    ];
    args.push(json.to_str().unwrap());
    if let Some(d) = direction {
        args.extend(["--direction", d]);
    }
    let out = client(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client {args:?} failed: {stderr}");
    let stdout_recs = records(&String::from_utf8_lossy(&out.stdout));
    let file_recs = records(&std::fs::read_to_string(json).unwrap());
    assert_eq!(stdout_recs.len(), 2, "{stdout_recs:?}");
    // The file is appended to; this run's records are its last two.
    assert_eq!(&file_recs[file_recs.len() - 2..], &stdout_recs[..]);
    for (r, size) in stdout_recs.iter().zip([1, 4096]) {
        assert_eq!(r["transport"], label);
        assert_eq!(r["kind"], kind);
        assert_eq!(r["msg_size"], size);
        assert_eq!(r["connections"], 2);
        assert_eq!(r["ring_size"], 65536);
        assert_eq!(r["duration_s"], 0.3);
        match kind {
            "stream" => {
                assert_eq!(r["direction"], direction.unwrap());
                positive(r, "throughput_mb_s");
                positive(r, "bytes");
                let el = positive(r, "elapsed_s");
                assert!((0.2..5.0).contains(&el), "elapsed {el}");
            }
            _ => {
                let p50 = positive(r, "p50_us");
                let p99 = positive(r, "p99_us");
                let max = positive(r, "max_us");
                positive(r, "p90_us");
                positive(r, "p999_us");
                positive(r, "count");
                assert!(p50 <= p99 && p99 <= max, "{r}");
                let ladder = r["percentiles"].as_array().unwrap();
                assert_eq!(ladder.len(), 14);
                let us: Vec<f64> = ladder.iter().map(|p| p[1].as_f64().unwrap()).collect();
                assert!(us.windows(2).all(|w| w[0] <= w[1]), "{us:?}");
                assert_eq!(ladder[13][0], 100.0);
            }
        }
    }
}

fn all_modes(addr: &str, label: &str, json: &Path) {
    for d in ["send", "recv", "duplex"] {
        run_and_check(addr, label, "stream", Some(d), json);
    }
    run_and_check(addr, label, "latency", None, json);
}

#[test]
fn unix_all_modes() {
    let sock = tmp("unix.sock");
    let addr = format!("unix:{}", sock.display());
    let mut server = Server::start(&addr, &[]);
    all_modes(&addr, "unix", &tmp("unix.json"));
    let log = server.log();
    assert!(log.contains("stream-send 4096 B: received"), "{log}");
}

#[test]
fn tcp_all_modes() {
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let _server = Server::start(&addr, &["--buffer-size", "256K"]);
    let json = tmp("tcp.json");
    all_modes(&addr, "tcp-netfront", &json);
    // --buffer-size on the client side too.
    let out = client(&[
        "--connect",
        &addr,
        "--kind",
        "stream",
        "--msg-sizes",
        "64K",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--buffer-size",
        "128K",
        "--no-quit",
    ]);
    assert_success(&out);
    let r = &records(&String::from_utf8_lossy(&out.stdout))[0];
    assert_eq!(r["buffer_size"], 131072);
    assert!(r["ring_size"].is_null());
    assert_eq!(r["transport"], "tcp");
}

#[test]
fn once_server_exits_after_the_run() {
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut server = Server::start(&addr, &["--once"]);
    let out = client(&[
        "--connect",
        &addr,
        "--kind",
        "latency",
        "--msg-sizes",
        "64",
        "--duration",
        "0.2",
        "--warmup",
        "0",
    ]);
    assert_success(&out);
    let st = server.wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "server did not exit: {st:?}"
    );
}

#[test]
fn refused_connect_fails_quickly() {
    let port = free_port();
    let addr = format!("tcp:127.0.0.1:{port}");
    let start = Instant::now();
    let out = client(&["--connect", &addr, "--kind", "stream", "--duration", "0.3"]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("connect to {addr}")), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(out.stdout.is_empty());

    let missing = tmp("nobody.sock");
    let addr = format!("unix:{}", missing.display());
    let out = client(&["--connect", &addr, "--kind", "latency", "--duration", "0.3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn stalled_server_times_out() {
    // A "server" that accepts and reads but never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp:{}", l.local_addr().unwrap());
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    let start = Instant::now();
    let out = client(&[
        "--connect",
        &addr,
        "--kind",
        "latency",
        "--msg-sizes",
        "1",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--timeout-slack",
        "1",
        "--no-quit",
    ]);
    let took = start.elapsed();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn bad_arguments_are_rejected() {
    for args in [
        &["--connect", "udp:1.2.3.4:5", "--kind", "stream"][..],
        &[
            "--connect",
            "tcp:127.0.0.1:1",
            "--kind",
            "stream",
            "--msg-sizes",
            "1,2Q",
        ],
        &[
            "--connect",
            "tcp:127.0.0.1:1",
            "--kind",
            "stream",
            "--duration",
            "0",
        ],
        &[
            "--connect",
            "tcp:127.0.0.1:1",
            "--kind",
            "stream",
            "--connections",
            "0",
        ],
    ] {
        let out = client(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn memcpy_records() {
    let json = tmp("memcpy.json");
    let out = Command::new(BIN)
        .args([
            "memcpy",
            "--msg-sizes",
            "1,64K",
            "--duration",
            "0.1",
            "--warmup",
            "0",
        ])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&out);
    let recs = records(&std::fs::read_to_string(&json).unwrap());
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["transport"], "memcpy");
        assert_eq!(r["kind"], "stream");
        positive(r, "throughput_mb_s");
    }
    let _ = std::io::stdout().flush();
}
