//! The yasmin-xs binary against the fake xenstored on a unix socket ($XENSTORED_PATH).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{pair, Shared, Store};
use xenstore_watch::xs::{Perm, PermKind};

fn xs(sock: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yasmin-xs"))
        .args(args)
        .env("XENSTORED_PATH", sock)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(sock: &Path, args: &[&str]) -> String {
    let o = xs(sock, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn setup(domid: u16) -> (Shared, PathBuf) {
    let store = Store::new();
    store.lock().unwrap().put(
        &format!("/local/domain/{domid}"),
        "",
        &[
            Perm::new(0, PermKind::None),
            Perm::new(domid, PermKind::Read),
        ],
    );
    store.lock().unwrap().put(
        &format!("/local/domain/{domid}/domid"),
        &domid.to_string(),
        &[],
    );
    let sock = common::listen(&store, domid);
    (store, sock)
}

#[test]
fn read_write_ls_rm_mkdir() {
    let (_store, s) = setup(0);
    assert_eq!(ok(&s, &["write", "/a/b", "hello world"]), "");
    assert_eq!(ok(&s, &["read", "/a/b"]), "hello world\n");
    ok(&s, &["mkdir", "/a/c"]);
    assert_eq!(ok(&s, &["ls", "/a"]), "b\nc\n");
    ok(&s, &["rm", "/a/b"]);
    assert_eq!(ok(&s, &["ls", "/a"]), "c\n");
    assert_eq!(ok(&s, &["domid"]), "0\n");
}

#[test]
fn read_dir_prints_name_value_lines() {
    let (_store, s) = setup(3);
    ok(&s, &["write", "yasmin-test/role", "guest1"]);
    ok(&s, &["write", "yasmin-test/peer-ip", "198.18.0.12"]);
    ok(&s, &["mkdir", "yasmin-test/empty"]);
    let text = ok(&s, &["read-dir", "yasmin-test"]);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["empty=", "peer-ip=198.18.0.12", "role=guest1"]);
    assert_eq!(
        xs(&s, &["read-dir", "/local/domain/3/nope"]).status.code(),
        Some(1)
    );
}

#[test]
fn not_found_exits_1_with_a_message() {
    let (_store, s) = setup(0);
    let o = xs(&s, &["read", "/nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nope") && err.contains("ENOENT"), "{err}");
    assert_eq!(xs(&s, &["ls", "/nope"]).status.code(), Some(1));
}

#[test]
fn other_errors_exit_2() {
    let (store, s) = setup(4);
    store
        .lock()
        .unwrap()
        .put("/secret", "x", &[Perm::new(0, PermKind::None)]);
    let o = xs(&s, &["read", "/secret"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EACCES"));
    // Bad arguments.
    assert_eq!(
        xs(&s, &["set-perms", "/secret", "q1"]).status.code(),
        Some(2)
    );
    assert_eq!(xs(&s, &["bogus"]).status.code(), Some(2));
    // No xenstore at all.
    let o = xs(Path::new("/nonexistent/yasmin/socket"), &["read", "/x"]);
    if !Path::new("/run/xenstored/socket").exists()
        && !Path::new("/var/run/xenstored/socket").exists()
        && !Path::new("/dev/xen/xenbus").exists()
    {
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("cannot reach xenstore"), "{err}");
    }
}

#[test]
fn perms_and_domid_in_a_guest() {
    let (store, s) = setup(6);
    assert_eq!(ok(&s, &["domid"]), "6\n");
    assert_eq!(ok(&s, &["get-perms", "/local/domain/6"]), "n0 r6\n");
    // Like libxl, the home itself is read-only for the guest: EACCES is exit 2.
    assert_eq!(xs(&s, &["write", "x", "1"]).status.code(), Some(2));
    // A subdirectory the guest owns takes relative writes, and what it creates is its own.
    store
        .lock()
        .unwrap()
        .put("/local/domain/6/data", "", &[Perm::new(6, PermKind::None)]);
    ok(&s, &["write", "data/k", "v"]);
    assert_eq!(ok(&s, &["read", "/local/domain/6/data/k"]), "v\n");
    assert_eq!(ok(&s, &["get-perms", "data/k"]), "n6\n");
}

#[test]
fn set_perms_then_get_perms() {
    let (_store, s) = setup(0);
    ok(&s, &["write", "/p", "v"]);
    ok(&s, &["set-perms", "/p", "n0", "r1", "b2"]);
    assert_eq!(ok(&s, &["get-perms", "/p"]), "n0 r1 b2\n");
}

#[test]
fn watch_prints_events_and_honours_count() {
    let (store, s) = setup(0);
    let writer = thread::spawn({
        let store = store.clone();
        move || {
            let mut c = pair(&store, 0);
            thread::sleep(Duration::from_millis(300));
            c.write("/w/x", "1").unwrap();
        }
    });
    let out = ok(&s, &["watch", "/w", "--count", "2", "--timeout", "20"]);
    assert_eq!(out, "/w yasmin-xs\n/w/x yasmin-xs\n");
    writer.join().unwrap();
    // Timeout before the count: exit 1, the events seen were printed.
    let o = xs(
        &s,
        &[
            "watch",
            "/w",
            "--count",
            "5",
            "--timeout",
            "0.3",
            "--token",
            "T",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/w T\n");
    // Timeout without a count is the normal end.
    let o = xs(&s, &["watch", "/w", "--timeout", "0.2"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn wait_returns_once_the_node_appears() {
    let (store, s) = setup(3);
    store.lock().unwrap().put(
        "/shared",
        "",
        &[Perm::new(0, PermKind::None), Perm::new(3, PermKind::Read)],
    );
    let writer = thread::spawn({
        let store = store.clone();
        move || {
            let mut c = pair(&store, 0);
            thread::sleep(Duration::from_millis(400));
            c.write("/shared/role", "guest1").unwrap();
        }
    });
    let t0 = Instant::now();
    assert_eq!(
        ok(&s, &["wait", "/shared/role", "--timeout", "20"]),
        "guest1\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    writer.join().unwrap();
    // Already there: immediate.
    assert_eq!(ok(&s, &["wait", "/shared/role"]), "guest1\n");
}

#[test]
fn wait_sees_a_node_that_becomes_readable_later() {
    // Created unreadable, then opened up by set-perms: the permission change fires the
    // watch (and the one-second re-read would catch it anyway).
    let (store, s) = setup(3);
    store
        .lock()
        .unwrap()
        .put("/late", "v", &[Perm::new(0, PermKind::None)]);
    let opener = thread::spawn({
        let store = store.clone();
        move || {
            let mut c = pair(&store, 0);
            thread::sleep(Duration::from_millis(300));
            c.set_perms("/late", &[Perm::new(0, PermKind::Read)])
                .unwrap();
        }
    });
    assert_eq!(ok(&s, &["wait", "/late", "--timeout", "20"]), "v\n");
    opener.join().unwrap();
}

#[test]
fn wait_times_out_with_exit_1() {
    let (_store, s) = setup(0);
    let t0 = Instant::now();
    let o = xs(&s, &["wait", "/never", "--timeout", "0.5"]);
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("timeout"));
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
