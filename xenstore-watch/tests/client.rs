//! XsClient against the fake xenstored (tests/common) and against scripted peers.

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use common::{pair, scripted, Store};
use xenstore_watch::xs::wire::{join_nul, Message, MsgType};
use xenstore_watch::xs::{
    Errno, Error, Perm, PermKind, Transport, WatchEvent, XsClient, DEFAULT_TX_RETRIES,
};

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

const SHORT: Option<Duration> = Some(Duration::from_millis(200));

#[test]
fn read_write_roundtrip_and_binary_values() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    c.write("/a/b/c", "hello").unwrap();
    assert_eq!(c.read("/a/b/c").unwrap(), b"hello");
    assert_eq!(c.read_string("/a/b/c").unwrap(), "hello");
    // Parents were created with empty values.
    assert_eq!(c.read("/a/b").unwrap(), b"");
    // Values are bytes: NULs and non-UTF-8 survive, and read adds no terminator.
    c.write("/bin", [0u8, 1, 0xff, 0]).unwrap();
    assert_eq!(c.read("/bin").unwrap(), vec![0u8, 1, 0xff, 0]);
    assert!(matches!(c.read_string("/bin"), Err(Error::Protocol(_))));
    c.write("/empty", "").unwrap();
    assert_eq!(c.read("/empty").unwrap(), b"");
}

#[test]
fn errors_carry_the_errno_name() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    let e = c.read("/nope").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.errno().unwrap().name(), "ENOENT");
    assert_eq!(e.to_string(), "no such node (ENOENT)");
    let e = c.rm("/").unwrap_err();
    assert_eq!(e.errno(), Some(&Errno::Inval));
    // The client is still usable after an error reply.
    c.write("/x", "1").unwrap();
    assert_eq!(c.read("/x").unwrap(), b"1");
    assert!(!c.exists("/nope").unwrap());
    assert!(c.exists("/x").unwrap());
}

#[test]
fn invalid_arguments_are_refused_before_sending() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    assert!(matches!(c.read("a\0b"), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        c.write("/big", vec![b'x'; 5000]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.watch("/a", "t\0"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.set_perms("/a", &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(store.lock().unwrap().log.is_empty());
    // The largest payload that fits is accepted: path "/big\0" + 4091 bytes = 4096.
    c.write("/big", vec![b'x'; 4091]).unwrap();
    assert_eq!(c.read("/big").unwrap().len(), 4091);
}

#[test]
fn directory_mkdir_rm() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    c.mkdir("/d").unwrap();
    assert_eq!(c.directory("/d").unwrap(), Vec::<String>::new());
    c.write("/d/one", "1").unwrap();
    c.write("/d/two/deep", "2").unwrap();
    c.mkdir("/d/three").unwrap();
    c.mkdir("/d/three").unwrap(); // existing: no error
    let mut names = c.directory("/d").unwrap();
    names.sort();
    assert_eq!(names, ["one", "three", "two"]);
    c.rm("/d/two").unwrap();
    assert!(c.read("/d/two/deep").unwrap_err().is_not_found());
    let mut names = c.directory("/d").unwrap();
    names.sort();
    assert_eq!(names, ["one", "three"]);
    assert!(c.directory("/missing").unwrap_err().is_not_found());
}

#[test]
fn permissions_and_relative_paths() {
    let store = Store::new();
    store.lock().unwrap().put(
        "/local/domain/5",
        "",
        &[Perm::new(0, PermKind::None), Perm::new(5, PermKind::Read)],
    );
    store.lock().unwrap().put("/local/domain/5/domid", "5", &[]);
    let mut dom0 = pair(&store, 0);
    let mut guest = pair(&store, 5);

    // Relative paths resolve to the caller's home.
    assert_eq!(guest.read("domid").unwrap(), b"5");
    assert_eq!(
        guest.get_domain_path(5).unwrap(),
        "/local/domain/5".to_string()
    );

    dom0.write("/shared/x", "v").unwrap();
    assert_eq!(
        dom0.get_perms("/shared/x").unwrap(),
        [Perm::new(0, PermKind::None)]
    );
    assert_eq!(
        guest.read("/shared/x").unwrap_err().errno(),
        Some(&Errno::Acces)
    );
    let grant = [Perm::new(0, PermKind::None), Perm::new(5, PermKind::Both)];
    dom0.set_perms("/shared/x", &grant).unwrap();
    assert_eq!(dom0.get_perms("/shared/x").unwrap(), grant);
    assert_eq!(guest.read("/shared/x").unwrap(), b"v");
    guest.write("/shared/x", "w").unwrap();
    // Only the owner (or dom0) may change permissions.
    assert_eq!(
        guest
            .set_perms("/shared/x", &[Perm::new(5, PermKind::Both)])
            .unwrap_err()
            .errno(),
        Some(&Errno::Perm)
    );
}

#[test]
fn watch_initial_event_and_timeout() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    c.watch("/w", "tok").unwrap();
    assert_eq!(c.wait_event(SHORT).unwrap(), Some(ev("/w", "tok")));
    let t0 = Instant::now();
    assert_eq!(c.wait_event(SHORT).unwrap(), None);
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(c.wait_event(Some(Duration::ZERO)).unwrap(), None);
}

#[test]
fn events_interleaved_with_replies_are_queued_in_order() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    c.watch("/q", "A").unwrap();
    c.watch("/q/sub", "B").unwrap();
    // The fake sends each write's events before its reply, like xenstored.
    c.write("/q/sub/x", "1").unwrap();
    c.write("/q/y", "2").unwrap();
    assert_eq!(c.read("/q/y").unwrap(), b"2");
    assert!(c.pending_events() >= 3);
    let mut got = Vec::new();
    while let Some(e) = c.wait_event(SHORT).unwrap() {
        got.push(e);
    }
    assert_eq!(
        got,
        [
            ev("/q", "A"),
            ev("/q/sub", "B"),
            ev("/q/sub/x", "A"),
            ev("/q/sub/x", "B"),
            ev("/q/y", "A"),
        ]
    );
    c.unwatch("/q", "A").unwrap();
    c.write("/q/z", "3").unwrap();
    assert_eq!(c.wait_event(SHORT).unwrap(), None);
    assert!(c.unwatch("/q", "A").unwrap_err().is_not_found());
}

#[test]
fn events_from_another_connection_and_relative_watches() {
    let store = Store::new();
    store
        .lock()
        .unwrap()
        .put("/local/domain/3", "", &[Perm::new(3, PermKind::None)]);
    let mut guest = pair(&store, 3);
    let mut dom0 = pair(&store, 0);
    guest.watch("data", "t").unwrap();
    assert_eq!(guest.wait_event(SHORT).unwrap(), Some(ev("data", "t")));
    dom0.write("/local/domain/3/data/k", "v").unwrap();
    // A relative watch reports relative paths.
    assert_eq!(
        guest.wait_event(Some(Duration::from_secs(5))).unwrap(),
        Some(ev("data/k", "t"))
    );
    dom0.rm("/local/domain/3/data").unwrap();
    assert_eq!(
        guest.wait_event(Some(Duration::from_secs(5))).unwrap(),
        Some(ev("data", "t"))
    );
}

#[test]
fn transactions_pass_the_id_and_retry_on_eagain() {
    let store = Store::new();
    let mut c = pair(&store, 0);
    let id = c.transaction_start().unwrap();
    assert_ne!(id, 0);
    c.transaction_end(id, false).unwrap();

    store.lock().unwrap().fail_commits = 2;
    let mut runs = 0;
    let v = c
        .transaction(|tx| {
            runs += 1;
            tx.write("/t/a", "1")?;
            tx.mkdir("/t/b")?;
            let v = tx.read("/t/a")?;
            assert_eq!(tx.directory("/t")?.len(), 2);
            assert_eq!(tx.get_perms("/t/a")?.len(), 1);
            assert!(tx.exists("/t/b")?);
            tx.rm("/t/b")?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(v, b"1");
    assert_eq!(runs, 3);
    {
        let s = store.lock().unwrap();
        assert_eq!(s.commits, 1);
        assert_eq!(s.aborts, 1);
        // Every operation inside carried a transaction id; start and the plain ones did not.
        let inside: Vec<_> = s
            .log
            .iter()
            .filter(|(_, t)| matches!(t, MsgType::Write | MsgType::Read | MsgType::Rm))
            .collect();
        assert!(!inside.is_empty());
        assert!(inside.iter().all(|(tx, _)| *tx != 0));
        assert!(s
            .log
            .iter()
            .filter(|(_, t)| *t == MsgType::TransactionStart)
            .all(|(tx, _)| *tx == 0));
    }

    // An error inside aborts and is returned as it was.
    let e = c
        .transaction(|tx| tx.read("/missing").map(|_| ()))
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(store.lock().unwrap().aborts, 2);

    // Retries are bounded.
    store.lock().unwrap().fail_commits = 100;
    let e = c
        .transaction_with_retries(3, |tx| tx.write("/t/c", "x"))
        .unwrap_err();
    assert!(e.is_again());
    assert_eq!(store.lock().unwrap().fail_commits, 96);
    store.lock().unwrap().fail_commits = DEFAULT_TX_RETRIES;
    c.transaction(|tx| tx.write("/t/c", "y")).unwrap();
    // A stale transaction id is refused by the daemon.
    assert!(c.transaction_end(id, true).unwrap_err().is_not_found());
}

// ---- scripted peers: protocol violations ----

fn msg(ty: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
    Message::new(ty, req_id, 0, payload.to_vec())
        .encode()
        .unwrap()
}

#[test]
fn reply_with_wrong_request_id_is_a_protocol_error() {
    let mut c = scripted(msg(MsgType::Read, 99, b"x"), true);
    assert!(matches!(c.read("/a"), Err(Error::Protocol(_))));
}

#[test]
fn reply_of_unknown_or_wrong_type_is_a_protocol_error() {
    let mut c = scripted(msg(MsgType::Unknown(77), 1, b"x"), true);
    let e = c.read("/a").unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    let mut c = scripted(msg(MsgType::Write, 1, b"OK\0"), true);
    assert!(matches!(c.read("/a"), Err(Error::Protocol(_))));
}

#[test]
fn oversized_length_is_a_protocol_error_not_an_allocation() {
    let mut bytes = msg(MsgType::Read, 1, b"");
    bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut c = scripted(bytes, true);
    let e = c.read("/a").unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("exceeds 4096"), "{e}");
}

#[test]
fn closed_connection_is_an_io_error() {
    // Half a reply, then EOF.
    let mut c = scripted(msg(MsgType::Read, 1, b"value")[..10].to_vec(), false);
    match c.read("/a") {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_errno_names_are_kept() {
    let mut c = scripted(msg(MsgType::Error, 1, b"EWEIRD\0"), true);
    let e = c.read("/a").unwrap_err();
    assert_eq!(e.errno(), Some(&Errno::Other("EWEIRD".into())));
    assert_eq!(e.errno().unwrap().name(), "EWEIRD");
}

#[test]
fn malformed_events_are_dropped_and_unsolicited_replies_reported() {
    let mut bytes = msg(MsgType::WatchEvent, 0, b"only-a-path\0");
    bytes.extend(msg(MsgType::WatchEvent, 0, b"/p\0tok\0extra\0"));
    bytes.extend(msg(MsgType::Read, 1, b"v"));
    bytes.extend(msg(MsgType::Read, 5, b"stray"));
    let mut c = scripted(bytes, true);
    assert_eq!(c.read("/a").unwrap(), b"v");
    assert_eq!(c.pending_events(), 1);
    assert_eq!(c.wait_event(SHORT).unwrap(), Some(ev("/p", "tok")));
    assert!(matches!(c.wait_event(SHORT), Err(Error::Protocol(_))));
}

/// A transport that hands out one byte per read: replies split at every boundary.
struct Trickle {
    input: Vec<u8>,
    pos: usize,
    sent: Vec<u8>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.input.len() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.input[self.pos];
        self.pos += 1;
        Ok(1)
    }
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sent.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Trickle {}

#[test]
fn byte_at_a_time_stream_and_exact_request_bytes() {
    let mut input = msg(MsgType::WatchEvent, 0, b"/w\0t\0");
    input.extend(msg(MsgType::Directory, 1, b"a\0b\0"));
    input.extend(msg(MsgType::TransactionStart, 2, b"42\0"));
    input.extend(msg(MsgType::GetDomainPath, 3, b"/local/domain/7\0"));
    input.extend(msg(MsgType::Write, 4, b"OK\0"));
    let mut c = XsClient::new(Trickle {
        input,
        pos: 0,
        sent: Vec::new(),
    });
    assert_eq!(c.directory("/d").unwrap(), ["a", "b"]);
    assert_eq!(c.transaction_start().unwrap(), 42);
    assert_eq!(c.get_domain_path(7).unwrap(), "/local/domain/7");
    c.write("k", "v").unwrap();
    assert_eq!(c.wait_event(None).unwrap(), Some(ev("/w", "t")));

    let sent = c.into_inner().sent;
    let mut expect = Message::new(MsgType::Directory, 1, 0, join_nul(["/d"]))
        .encode()
        .unwrap();
    expect.extend(
        Message::new(MsgType::TransactionStart, 2, 0, b"\0".to_vec())
            .encode()
            .unwrap(),
    );
    expect.extend(
        Message::new(MsgType::GetDomainPath, 3, 0, b"7\0".to_vec())
            .encode()
            .unwrap(),
    );
    // XS_WRITE: "path\0value" with no terminator after the value.
    expect.extend(
        Message::new(MsgType::Write, 4, 0, b"k\0v".to_vec())
            .encode()
            .unwrap(),
    );
    assert_eq!(sent, expect);
}
