//! XenStore path validity: the model refuses what C xenstored refuses (`EINVAL`), every
//! path of the schema is valid, and the watcher keeps going when single writes fail.

mod model;

use std::collections::BTreeSet;

use model::{valid_path, Conn, Model, World, ABS_PATH_MAX, REL_PATH_MAX};
use proptest::prelude::*;
use xenstore_watch::control::paths::{
    self, ipmap_name, ipmap_node, parse_ipmap_name, Kind, DOMID_FIRST_RESERVED, GEN_COUNTER,
    IPMAP_DIR, WATCH_ROOT,
};
use xenstore_watch::watcher::{Store, Watcher, DOM_RECORDS, VIF_BACKEND};
use xenstore_watch::xs::{Errno, Error, Perm, PermKind, Result};

fn is_inval<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::Xs(Errno::Inval)))
}

#[test]
fn model_enforces_xenstored_path_rules() {
    let m = Model::new();
    let mut c0 = Conn::new(&m, 0);
    let long_rel = format!("/local/domain/5/{}", "a".repeat(REL_PATH_MAX + 1));
    let long_abs = format!("/{}", "a".repeat(ABS_PATH_MAX));
    let bad = [
        // What the watcher used to write: '.' is not a valid path character.
        format!("{IPMAP_DIR}/198.18.0.11"),
        "/local/domain/1/data/a b".to_string(),
        "/local/domain/1/data/a:b".to_string(),
        "/local/domain/1/data/é".to_string(),
        "/local/domain/1/data/".to_string(),
        "/local/domain//1".to_string(),
        "//local".to_string(),
        long_rel,
        long_abs,
        // Outside `/local/domain/<d>/` the quota applies to the whole path.
        format!("/x/{}", "a".repeat(REL_PATH_MAX - 2)),
    ];
    for p in &bad {
        assert!(!valid_path(p), "{p}");
        assert!(is_inval(c0.write(p, b"1")), "write {p}");
        assert!(is_inval(c0.mkdir(p)), "mkdir {p}");
        assert!(is_inval(c0.read(p)), "read {p}");
        assert!(is_inval(c0.rm(p)), "rm {p}");
        assert!(is_inval(c0.directory(p)), "directory {p}");
        assert!(
            is_inval(c0.set_perms(p, &[Perm::new(0, PermKind::None)])),
            "{p}"
        );
        assert!(is_inval(c0.watch(p, "t")), "watch {p}");
    }
    assert!(m.borrow().nodes.keys().all(|k| valid_path(k)));
    assert_eq!(m.borrow().nodes.len(), 3, "nothing was created");
    // Just within the limits, and the characters xenstored accepts.
    let ok = [
        "/".to_string(),
        format!("{IPMAP_DIR}/198-18-0-11"),
        "/local/domain/1/data/aZ09-_@".to_string(),
        format!("/local/domain/5/{}", "a".repeat(REL_PATH_MAX)),
        format!("/x/{}", "a".repeat(REL_PATH_MAX - 3)),
    ];
    for p in &ok {
        assert!(valid_path(p), "{p}");
        c0.write(p, b"1").unwrap();
        assert_eq!(c0.read(p).unwrap(), b"1");
    }
    // A relative path is relative to the caller's home; special watches are allowed.
    c0.write("data/rel", b"2").unwrap();
    assert_eq!(c0.read("/local/domain/0/data/rel").unwrap(), b"2");
    assert!(is_inval(c0.write("data/a.b", b"2")));
    c0.watch("@introduceDomain", "t").unwrap();
}

#[test]
fn ipmap_names_round_trip() {
    assert_eq!(ipmap_name([198, 18, 0, 11]).as_str(), "198-18-0-11");
    assert_eq!(ipmap_name([255, 255, 255, 255]).as_str(), "255-255-255-255");
    assert_eq!(
        ipmap_node([10, 0, 0, 2]).as_str(),
        "/local/domain/0/data/yasmin-watch/ipmap/10-0-0-2"
    );
    assert_eq!(parse_ipmap_name(b"198-18-0-11"), Some([198, 18, 0, 11]));
    for bad in [
        &b"198.18.0.11"[..],
        b"198-18-0",
        b"198-18-0-256",
        b"1-2-3-4-5",
        b"01-2-3-4",
        b"1--3-4",
        b"-1-2-3",
        b"",
    ] {
        assert_eq!(
            parse_ipmap_name(bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

proptest! {
    #[test]
    fn every_schema_path_is_valid(d in 0..DOMID_FIRST_RESERVED, p in 0..DOMID_FIRST_RESERVED, ip in any::<[u8; 4]>()) {
        let mut all = vec![
            paths::root(d),
            paths::gen_node(d),
            paths::up_node(d),
            paths::ipv4_node(d),
            ipmap_node(ip),
        ];
        for k in [Kind::Notify, Kind::Gone, Kind::Offer, Kind::Req] {
            all.push(paths::kind_dir(d, k));
            all.push(paths::peer_node(d, k, p));
        }
        for path in &all {
            prop_assert!(valid_path(path.as_str()), "{:?}", path);
        }
        prop_assert_eq!(parse_ipmap_name(ipmap_name(ip).as_bytes()), Some(ip));
        let fixed = [WATCH_ROOT, IPMAP_DIR, GEN_COUNTER, DOM_RECORDS, VIF_BACKEND];
        prop_assert!(fixed.iter().all(|p| valid_path(p)));
    }

    #[test]
    fn parse_ipmap_name_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Some(ip) = parse_ipmap_name(&bytes) {
            let name = ipmap_name(ip);
            prop_assert_eq!(name.as_bytes(), &bytes[..]);
        }
    }
}

/// A store whose writes and removals of chosen paths fail (`ENOSPC`), as a quota would.
struct Faulty {
    inner: Conn,
    fail: BTreeSet<String>,
}

impl Faulty {
    fn check(&self, path: &str) -> Result<()> {
        if self.fail.contains(path) {
            Err(Error::Xs(Errno::NoSpc))
        } else {
            Ok(())
        }
    }
}

impl Store for Faulty {
    fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn write(&mut self, path: &str, value: &[u8]) -> Result<()> {
        self.check(path)?;
        self.inner.write(path, value)
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        self.check(path)?;
        self.inner.mkdir(path)
    }
    fn rm(&mut self, path: &str) -> Result<()> {
        self.check(path)?;
        self.inner.rm(path)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.inner.directory(path)
    }
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()> {
        self.inner.set_perms(path, perms)
    }
    fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>> {
        self.inner.get_perms(path)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.inner.watch(path, token)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.inner.unwatch(path, token)
    }
    fn is_introduced(&mut self, domid: u16) -> Result<bool> {
        self.inner.is_introduced(domid)
    }
}

#[test]
fn one_failed_map_write_does_not_stop_the_refresh() {
    let model = Model::new();
    {
        let mut m = model.borrow_mut();
        m.introduce(0, "");
        for d in 1..=3 {
            m.introduce(d, &format!("/vm/uuid-{d}"));
            m.write(
                0,
                &format!("{VIF_BACKEND}/{d}/0/ip"),
                format!("10.0.0.{d}").as_bytes(),
            )
            .unwrap();
        }
    }
    let mut xs = Faulty {
        inner: Conn::new(&model, 0),
        fail: BTreeSet::from([ipmap_node([10, 0, 0, 2]).as_str().to_string()]),
    };
    let mut w = Watcher::new(1000);
    w.start(&mut xs).unwrap();
    assert_eq!(w.domains.len(), 4);
    let read = |ip: [u8; 4]| model.borrow_mut().read(0, ipmap_node(ip).as_str()).ok();
    assert_eq!(read([10, 0, 0, 1]).as_deref(), Some(&b"1"[..]));
    assert_eq!(read([10, 0, 0, 2]), None);
    assert_eq!(read([10, 0, 0, 3]).as_deref(), Some(&b"3"[..]));
    assert!(
        w.logs
            .iter()
            .any(|l| l.contains("10-0-0-2") && l.contains("ENOSPC")),
        "{:?}",
        w.logs
    );
    assert!(!w.ipmap.contains_key(&[10, 0, 0, 2]));
    // The failed entry is retried on the next refresh.
    xs.fail.clear();
    w.refresh_ipmap(&mut xs).unwrap();
    assert_eq!(read([10, 0, 0, 2]).as_deref(), Some(&b"2"[..]));
    // A failed removal keeps the entry known, so it is retried too.
    xs.fail
        .insert(ipmap_node([10, 0, 0, 1]).as_str().to_string());
    model
        .borrow_mut()
        .rm(0, &format!("{VIF_BACKEND}/1"))
        .unwrap();
    model
        .borrow_mut()
        .rm(0, &format!("{VIF_BACKEND}/3"))
        .unwrap();
    w.refresh_ipmap(&mut xs).unwrap();
    assert_eq!(read([10, 0, 0, 3]), None);
    assert_eq!(read([10, 0, 0, 1]).as_deref(), Some(&b"1"[..]));
    xs.fail.clear();
    w.refresh_ipmap(&mut xs).unwrap();
    assert_eq!(read([10, 0, 0, 1]), None);
    assert_eq!(w.ipmap.keys().collect::<Vec<_>>(), [&[10, 0, 0, 2]]);
}

#[test]
fn scan_goes_on_when_one_domain_fails() {
    let mut world = World::new(&[1, 2, 3]);
    world.watcher_stopped = true;
    world.destroy(1);
    world.destroy(2);
    world.introduce(4, "/vm/uuid-4");
    let mut xs = Faulty {
        inner: Conn::new(&world.model, 0),
        // Cleaning up after domain 1 fails; domain 2's cleanup and 4's preparation must
        // still happen.
        fail: BTreeSet::from([format!("{DOM_RECORDS}/1")]),
    };
    world.watcher.scan(&mut xs).unwrap();
    let w = &world.watcher;
    assert_eq!(w.domains.keys().copied().collect::<Vec<_>>(), [0, 3, 4]);
    assert!(!world.exists(&format!("{DOM_RECORDS}/2")));
    assert!(world.exists(paths::gen_node(4).as_str()));
    assert!(
        w.logs
            .iter()
            .any(|l| l.contains("domain 1") && l.contains("ENOSPC")),
        "{:?}",
        w.logs
    );
}
