//! The rendezvous end to end: the watcher and two or three guests' state machines over
//! the in-memory XenStore model (owners, read permissions, watch delivery, special
//! watches) and a model of Xen's grant and event-channel checks.

mod model;

use model::{Conn, World};
use xenstore_watch::control::pair::{Channel, LogKind, NodeError, State, LOG_BURST};
use xenstore_watch::control::paths::{
    self, ipmap_node, parse_gen, parse_ipv4, Kind, Offer, IPMAP_DIR,
};
use xenstore_watch::control::wire::{Msg, HEADER_LEN};
use xenstore_watch::watcher::{compute_ipmap, Store, Watcher, VIF_BACKEND};
use xenstore_watch::xs::{Errno, Error, Perm, PermKind};

fn n(d: u16) -> Perm {
    Perm::new(d, PermKind::None)
}

fn r(d: u16) -> Perm {
    Perm::new(d, PermKind::Read)
}

fn gen_of(w: &World, d: u16) -> u64 {
    parse_gen(&w.read(paths::gen_node(d).as_str()).unwrap()).unwrap()
}

fn is_acces<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::Xs(Errno::Acces)))
}

#[test]
fn watcher_prepares_areas_with_owner_only_perms() {
    let w = World::new(&[1, 2]);
    for d in [1, 2] {
        let m = w.model.borrow();
        assert_eq!(m.get_perms(paths::root(d).as_str()), vec![n(d)]);
        assert_eq!(m.get_perms(paths::gen_node(d).as_str()), vec![n(d)]);
        assert_eq!(
            m.get_perms(paths::kind_dir(d, Kind::Notify).as_str()),
            vec![n(d)]
        );
    }
    assert_ne!(gen_of(&w, 1), gen_of(&w, 2));
    // Another guest can read nothing there.
    let mut c2 = Conn::new(&w.model, 2);
    assert!(is_acces(c2.read(paths::gen_node(1).as_str())));
    assert!(is_acces(c2.directory(paths::root(1).as_str())));
    // Nothing in the whole store is writable by a domain other than its owner.
    for (path, node) in &w.model.borrow().nodes {
        let default = node.perms[0].kind;
        assert!(
            matches!(default, PermKind::None | PermKind::Read),
            "{path} is world-writable: {:?}",
            node.perms
        );
    }
    // The watcher's private records are dom0-only.
    assert!(is_acces(
        c2.read("/local/domain/0/data/yasmin-watch/next-gen")
    ));
}

#[test]
fn lower_domid_connects() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
    assert_eq!(w.xen.allocations, 1);
    assert_eq!(w.guest(1).ups, vec![2]);
    assert_eq!(w.guest(2).ups, vec![1], "the acceptor is up too");
    // The offer is readable by exactly the peer; the notify was acknowledged.
    let offer = paths::peer_node(1, Kind::Offer, 2);
    assert_eq!(w.model.borrow().get_perms(offer.as_str()), vec![n(1), r(2)]);
    assert!(!w.exists(paths::peer_node(2, Kind::Notify, 1).as_str()));
    let o = Offer::parse(&w.read(offer.as_str()).unwrap()).unwrap();
    assert_eq!(o.gen, gen_of(&w, 1));
    assert_eq!(w.guests[&2].pairs[&1].peer_gen(), Some(gen_of(&w, 1)));
    assert_eq!(w.guests[&1].pairs[&2].peer_gen(), Some(gen_of(&w, 2)));
    assert!(w.guests[&1].logs.is_empty() && w.guests[&2].logs.is_empty());
}

#[test]
fn each_side_learns_the_peers_ring_maximum() {
    let mut w = World::new(&[1, 2]);
    w.guest(1).pair(2).max_ring_pages = 64;
    // Before any HELLO: the protocol's bound.
    assert_eq!(w.guest(2).pair(1).peer_max_ring_pages(), 512);
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
    assert_eq!(w.guest(2).pair(1).peer_max_ring_pages(), 64);
    assert_eq!(w.guest(1).pair(2).peer_max_ring_pages(), 512);
}

#[test]
fn higher_domid_connects_through_a_request() {
    let mut w = World::new(&[1, 2]);
    w.connect(2, 1);
    w.settle();
    assert!(w.connected(1, 2));
    assert_eq!(w.xen.allocations, 1);
    // The request is gone (removed before HELLO), the offer stays while connected.
    assert!(!w.exists(paths::peer_node(2, Kind::Req, 1).as_str()));
    assert!(w.exists(paths::peer_node(1, Kind::Offer, 2).as_str()));
    assert!(w.guests[&1].logs.is_empty() && w.guests[&2].logs.is_empty());
}

#[test]
fn both_sides_connect_at_once() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.connect(2, 1);
    w.settle();
    assert!(w.connected(1, 2));
    assert_eq!(w.xen.allocations, 1, "exactly one control channel");
    assert_eq!(w.xen.live_pages(), 1);
    // Connecting again is a no-op that reports Up.
    w.connect(2, 1);
    w.connect(1, 2);
    w.settle();
    assert_eq!(w.xen.allocations, 1);
    assert!(w.connected(1, 2));
}

#[test]
fn peer_dies_mid_handshake() {
    let mut w = World::new(&[1, 2]);
    w.guest(2).paused = true; // its module never answers
    w.connect(1, 2);
    w.settle();
    assert_eq!(w.guest(1).state(2), State::Offered);
    // The watcher already relayed the offer, so it knows the pair.
    w.destroy(2);
    let g1 = w.guest(1);
    assert_eq!(g1.state(2), State::Idle);
    assert_eq!(g1.downs, vec![2]);
    assert!(g1.logs.contains(&(2, LogKind::PeerGone)));
    assert_eq!(w.xen.live_pages(), 0, "grant revoked");
    assert!(!w.exists(paths::peer_node(1, Kind::Offer, 2).as_str()));
    assert!(
        !w.exists(paths::peer_node(1, Kind::Gone, 2).as_str()),
        "acked"
    );
    assert!(!w.exists(paths::root(2).as_str()));
}

#[test]
fn acceptor_dies_after_mapping() {
    let mut w = World::new(&[1, 2]);
    w.connect(2, 1);
    // Guest 1 is paused after receiving nothing yet: 2 writes its request, 1 offers,
    // 2 maps and says HELLO, then dies before 1 answers.
    w.guest(1).paused = true;
    w.settle();
    assert_eq!(w.guest(2).state(1), State::Requested);
    w.guest(1).paused = false;
    w.settle();
    assert!(w.connected(1, 2));
    w.destroy(2);
    let g1 = w.guest(1);
    assert_eq!(g1.state(2), State::Idle);
    assert_eq!(g1.resets, vec![2]);
    assert_eq!(w.xen.live_pages(), 0);
}

#[test]
fn handshake_times_out_without_peer() {
    let mut w = World::new(&[1, 2]);
    w.guest(2).paused = true;
    w.connect(1, 2);
    w.settle();
    w.advance(5_000);
    assert_eq!(w.guest(1).state(2), State::Offered);
    w.advance(6_000);
    let g1 = w.guest(1);
    assert_eq!(g1.state(2), State::Idle);
    assert_eq!(g1.downs, vec![2]);
    assert!(g1.logs.contains(&(2, LogKind::Timeout)));
    assert_eq!(w.xen.live_pages(), 0);
    assert!(!w.exists(paths::peer_node(1, Kind::Offer, 2).as_str()));
    // The peer wakes up and finds a notify for an offer that is gone: nothing happens.
    w.guest(2).paused = false;
    w.settle();
    assert_eq!(w.guest(2).state(1), State::Idle);
    // A later connect works.
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
}

#[test]
fn connecting_to_a_domain_that_does_not_exist_fails_at_once() {
    let mut w = World::new(&[3, 4]);
    // Offerer role (3 < 9) and acceptor role (4 > 2), both towards absent domains.
    w.connect(3, 9);
    w.connect(4, 2);
    w.settle();
    for (d, p) in [(3, 9), (4, 2)] {
        let g = w.guest(d);
        assert_eq!(g.state(p), State::Idle, "{d} -> {p}");
        assert_eq!(
            g.downs,
            vec![p],
            "{d} -> {p}: down without waiting for the timeout"
        );
        for kind in [Kind::Offer, Kind::Req, Kind::Gone] {
            assert!(
                !w.exists(paths::peer_node(d, kind, p).as_str()),
                "{d}: {kind:?}/{p} left"
            );
        }
    }
    assert_eq!(w.xen.live_pages(), 0);
    // The existing pair still works.
    w.connect(3, 4);
    w.settle();
    assert!(w.connected(3, 4));
}

#[test]
fn connecting_to_a_domain_without_yasmin_fails_at_once() {
    let mut w = World::new(&[1, 2, 3]);
    // 1 and 3 exist but their modules are unloaded: 2 is acceptor towards 1 and offerer
    // towards 3.
    w.unload(1);
    w.unload(3);
    assert!(!w.exists(paths::up_node(1).as_str()));
    w.connect(2, 1);
    w.connect(2, 3);
    w.settle();
    let g = w.guest(2);
    for p in [1, 3] {
        assert_eq!(g.state(p), State::Idle, "2 -> {p}");
        assert!(
            g.downs.contains(&p),
            "2 -> {p}: down without waiting for the timeout"
        );
    }
    for p in [1, 3] {
        for kind in [Kind::Offer, Kind::Req, Kind::Gone] {
            assert!(
                !w.exists(paths::peer_node(2, kind, p).as_str()),
                "{kind:?}/{p} left"
            );
        }
        assert!(!w.exists(paths::peer_node(p, Kind::Notify, 2).as_str()));
    }
    assert_eq!(w.xen.live_pages(), 0);
    // Loaded again, both are reachable.
    w.load(1);
    w.load(3);
    w.settle();
    w.connect(2, 1);
    w.connect(2, 3);
    w.settle();
    assert!(w.connected(1, 2));
    assert!(w.connected(2, 3));
}

#[test]
fn unload_of_a_connected_peer_then_connect_fails_at_once() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
    w.unload(2);
    assert_eq!(w.guest(1).state(2), State::Idle);
    assert_eq!(w.xen.live_pages(), 0);
    let downs = w.guest(1).downs.len();
    w.connect(1, 2);
    w.settle();
    assert_eq!(w.guest(1).state(2), State::Idle);
    assert_eq!(w.guest(1).downs.len(), downs + 1);
    assert_eq!(w.xen.live_pages(), 0);
}

#[test]
fn a_stale_up_node_is_not_believed() {
    let mut w = World::new(&[1, 2]);
    w.unload(2);
    // An `up` that does not hold 2's generation (e.g. written by an old incarnation's
    // tooling) does not count.
    let mut c2 = Conn::new(&w.model, 2);
    c2.write(paths::up_node(2).as_str(), b"7").unwrap();
    w.connect(1, 2);
    w.settle();
    assert_eq!(w.guest(1).state(2), State::Idle);
    assert!(!w.exists(paths::peer_node(2, Kind::Notify, 1).as_str()));
}

#[test]
fn third_domain_cannot_forge_or_disturb() {
    let mut w = World::new(&[1, 2, 3]);
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
    let gen1 = gen_of(&w, 1);
    let mut m = Conn::new(&w.model, 3);
    let offer12 = paths::peer_node(1, Kind::Offer, 2);
    // Write, create, remove, re-permission or read the pair's nodes: all refused.
    assert!(is_acces(m.write(offer12.as_str(), b"1 1 0 1 1")));
    assert!(is_acces(
        m.write(paths::peer_node(1, Kind::Offer, 3).as_str(), b"x")
    ));
    assert!(is_acces(m.rm(offer12.as_str())));
    assert!(is_acces(m.set_perms(offer12.as_str(), &[n(1), r(3)])));
    assert!(is_acces(m.read(offer12.as_str())));
    assert!(is_acces(
        m.write(paths::peer_node(2, Kind::Notify, 1).as_str(), b"5")
    ));
    assert!(is_acces(
        m.write(paths::peer_node(2, Kind::Gone, 1).as_str(), b"5")
    ));
    assert!(is_acces(m.write(paths::gen_node(2).as_str(), b"5")));
    assert!(is_acces(
        m.write(ipmap_node([198, 18, 0, 12]).as_str(), b"3")
    ));
    // Watching the pair's nodes yields only the initial event, never their changes.
    m.watch(paths::root(1).as_str(), "spy").unwrap();
    m.watch(paths::root(2).as_str(), "spy").unwrap();
    m.watch("@releaseDomain", "spy").unwrap();
    let _ = m.take_event();
    let _ = m.take_event();
    let _ = m.take_event();
    // Mapping the grant made to domain 2 fails in Xen.
    let (_, gref, _) = w.guests[&1].links[&2];
    let evtchn = w.guests[&1].pairs[&2].channel().unwrap().evtchn;
    assert!(!w.xen.map(3, 1, Channel { gref, evtchn }));

    // In its own area, domain 3 publishes an offer to 2 carrying 1's channel: 3 is the
    // higher domid, so 2 never takes offers from it (role rule).
    let forged = Offer {
        gen: gen1,
        peer_gen: 0,
        gref,
        evtchn,
    };
    m.write(
        paths::peer_node(3, Kind::Offer, 2).as_str(),
        forged.format().as_bytes(),
    )
    .unwrap();
    m.set_perms(paths::peer_node(3, Kind::Offer, 2).as_str(), &[n(3), r(2)])
        .unwrap();
    w.settle();
    assert_eq!(w.guest(2).state(3), State::Idle);
    assert_eq!(w.xen.allocations, 1);
    // A request that claims 1's generation instead of its own (dom0 vouches for 3's).
    let req = xenstore_watch::control::paths::Req {
        gen: gen1,
        peer_gen: 0,
    };
    m.write(
        paths::peer_node(3, Kind::Req, 2).as_str(),
        req.format().as_bytes(),
    )
    .unwrap();
    m.set_perms(paths::peer_node(3, Kind::Req, 2).as_str(), &[n(3), r(2)])
        .unwrap();
    w.settle();
    let g2 = w.guest(2);
    assert!(g2
        .logs
        .iter()
        .any(|l| matches!(l, (3, LogKind::GenMismatch { .. }))));
    assert_eq!(g2.state(3), State::Idle);
    // Garbage, many times: ignored, logged at a limited rate.
    for i in 0..100 {
        m.write(
            paths::peer_node(3, Kind::Req, 2).as_str(),
            format!("garbage {i}").as_bytes(),
        )
        .unwrap();
        w.settle();
    }
    let g2 = w.guest(2);
    let from3 = g2.logs.iter().filter(|(p, _)| *p == 3).count();
    assert!(from3 <= LOG_BURST as usize, "{from3} log lines");
    assert!(g2.logs.contains(&(
        3,
        LogKind::BadNode(NodeError::Malformed(
            xenstore_watch::control::paths::ValueError::Syntax
        ))
    )));
    // The spy saw nothing of 1 and 2's traffic.
    while let Some((path, _)) = m.take_event() {
        assert!(
            !path.starts_with("/local/domain/1") && !path.starts_with("/local/domain/2"),
            "leaked {path}"
        );
    }
    // The 1-2 channel never noticed.
    assert!(w.connected(1, 2));
    assert!(w.guest(1).resets.is_empty() && w.guest(2).resets.is_empty());
    assert!(w.guest(1).logs.is_empty());
    assert_eq!(w.xen.live_pages(), 1);
}

#[test]
fn malformed_offer_from_the_peer_does_not_break_the_channel() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    let mut c1 = Conn::new(&w.model, 1);
    c1.write(paths::peer_node(1, Kind::Offer, 2).as_str(), b"1 2 3")
        .unwrap();
    w.settle();
    assert!(w.connected(1, 2));
    assert!(w
        .guest(2)
        .logs
        .iter()
        .any(|l| matches!(l, (1, LogKind::BadNode(_)))));
}

#[test]
fn domid_reuse_after_peer_died() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    let old_gen = gen_of(&w, 2);
    w.destroy(2);
    assert_eq!(w.guest(1).state(2), State::Idle);
    assert_eq!(w.guests[&1].pairs[&2].peer_gen(), None);
    // A new domain gets the same domid.
    w.introduce(2, "/vm/another-vm");
    let new_gen = gen_of(&w, 2);
    assert_ne!(new_gen, old_gen);
    w.load(2);
    // Nothing of the old pair state survives: no offer for 2, no channel.
    assert!(!w.exists(paths::peer_node(1, Kind::Offer, 2).as_str()));
    assert_eq!(w.guest(2).state(1), State::Idle);
    w.connect(2, 1);
    w.settle();
    assert!(w.connected(1, 2));
    assert_eq!(w.guests[&1].pairs[&2].peer_gen(), Some(new_gen));
    assert_eq!(w.xen.allocations, 2);
    assert_eq!(w.xen.live_pages(), 1);
}

#[test]
fn domid_reuse_while_the_watcher_was_down() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    let old_gen = gen_of(&w, 2);
    // The watcher crashes; domain 2 dies and a new domain 2 is created meanwhile.
    w.watcher_stopped = true;
    w.destroy(2);
    w.introduce(2, "/vm/another-vm");
    assert!(w.guest(1).is_connected_to(2), "1 missed the death");
    // The watcher restarts: it adopts domain 1 and prepares the new domain 2.
    let mut conn = Conn::new(&w.model, 0);
    let mut watcher = Watcher::new(5000);
    watcher.start(&mut conn).unwrap();
    w.wconn = conn;
    w.watcher = watcher;
    w.watcher_stopped = false;
    w.settle();
    let new_gen = gen_of(&w, 2);
    assert_ne!(new_gen, old_gen);
    w.load(2);
    w.connect(2, 1);
    w.settle();
    let g1 = w.guest(1);
    assert!(g1.logs.contains(&(
        2,
        LogKind::Replaced {
            old: old_gen,
            new: new_gen
        }
    )));
    assert_eq!(g1.resets, vec![2], "old sockets reset");
    assert!(w.connected(1, 2));
    assert_eq!(w.xen.live_pages(), 1, "old grant revoked");
}

#[test]
fn watcher_restart_keeps_generations_and_connections() {
    let mut w = World::new(&[1, 2]);
    w.connect(1, 2);
    w.settle();
    let gens = (gen_of(&w, 1), gen_of(&w, 2));
    let mut conn = Conn::new(&w.model, 0);
    let mut watcher = Watcher::new(5000);
    watcher.start(&mut conn).unwrap();
    w.wconn = conn;
    w.watcher = watcher;
    w.settle();
    assert_eq!((gen_of(&w, 1), gen_of(&w, 2)), gens);
    assert!(w.connected(1, 2));
    assert!(w.guest(1).resets.is_empty() && w.guest(2).resets.is_empty());
}

#[test]
fn broken_control_ring_resets_the_pair_only() {
    let mut w = World::new(&[1, 2, 3]);
    w.connect(1, 2);
    w.connect(1, 3);
    w.settle();
    assert!(w.connected(1, 2) && w.connected(1, 3));
    // Domain 1 writes a frame with a bad version into the 1->2 ring.
    let (granter, gref, _) = w.guests[&1].links[&2];
    let page = w.xen.pages.get_mut(&(granter, gref)).unwrap();
    page.o2a.extend([9u8, 1, 16, 0, 0, 0, 0, 0]);
    w.settle();
    assert!(w.guest(2).logs.contains(&(1, LogKind::Broken)));
    assert_eq!(w.guest(2).state(1), State::Idle);
    assert_eq!(w.guest(1).state(2), State::Idle, "GOODBYE reached 1");
    assert!(w.connected(1, 3), "other pairs untouched");
    // An unknown type with a valid frame is skipped without a reset.
    w.connect(1, 2);
    w.settle();
    assert!(w.connected(1, 2));
    let (granter, gref, _) = w.guests[&1].links[&2];
    let page = w.xen.pages.get_mut(&(granter, gref)).unwrap();
    page.o2a.extend([1u8, 99, HEADER_LEN as u8, 0, 0, 0, 0, 0]);
    let mut ping = [0u8; 16];
    Msg::Ping { nonce: 7 }.encode(&mut ping).unwrap();
    page.o2a.extend(ping);
    w.settle();
    assert!(w.connected(1, 2));
}

#[test]
fn local_shutdown_says_goodbye() {
    let mut w = World::new(&[1, 2]);
    w.connect(2, 1);
    w.settle();
    w.feed(2, 1, xenstore_watch::control::pair::Event::Shutdown);
    w.settle();
    assert_eq!(w.guest(2).state(1), State::Idle);
    assert_eq!(w.guest(1).state(2), State::Idle);
    assert_eq!(w.xen.live_pages(), 0);
    assert!(!w.exists(paths::peer_node(1, Kind::Offer, 2).as_str()));
    // Guest 2 reloads and reconnects.
    w.connect(2, 1);
    w.settle();
    assert!(w.connected(1, 2));
}

#[test]
fn ipmap_prefers_toolstack_and_drops_conflicts() {
    let mut w = World::new(&[1, 2, 3]);
    {
        let mut m = w.model.borrow_mut();
        m.write(0, &format!("{VIF_BACKEND}/1/0/ip"), b"198.18.0.11")
            .unwrap();
        m.write(0, &format!("{VIF_BACKEND}/2/0/ip"), b"198.18.0.12 10.0.0.2")
            .unwrap();
    }
    w.settle();
    // Guest 3 claims 2's address and its own; guest 1 and 3 both claim 10.9.9.9.
    let mut c3 = Conn::new(&w.model, 3);
    c3.write(
        paths::ipv4_node(3).as_str(),
        b"198.18.0.12 198.18.0.13 10.9.9.9",
    )
    .unwrap();
    let mut c1 = Conn::new(&w.model, 1);
    c1.write(paths::ipv4_node(1).as_str(), b"10.9.9.9 bogus")
        .unwrap();
    w.settle();
    let read = |w: &World, ip: &str| {
        let ip = parse_ipv4(ip.as_bytes()).unwrap();
        w.read(ipmap_node(ip).as_str())
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert_eq!(read(&w, "198.18.0.11").as_deref(), Some("1"));
    assert_eq!(read(&w, "198.18.0.12").as_deref(), Some("2"));
    assert_eq!(read(&w, "10.0.0.2").as_deref(), Some("2"));
    assert_eq!(read(&w, "198.18.0.13").as_deref(), Some("3"));
    assert_eq!(
        read(&w, "10.9.9.9"),
        None,
        "{:?} {:?}",
        w.watcher.ipmap,
        w.watcher.logs
    );
    assert!(w.watcher.logs.iter().any(|l| l.contains("198.18.0.12")));
    // Every guest can read the map, none can write it.
    let mut c2 = Conn::new(&w.model, 2);
    assert_eq!(
        c2.directory(IPMAP_DIR).unwrap().len(),
        4,
        "{:?}",
        c2.directory(IPMAP_DIR)
    );
    // The node names are the addresses with `-` for `.` (xenstored refuses `.`).
    let mut names = c2.directory(IPMAP_DIR).unwrap();
    names.sort();
    assert_eq!(
        names,
        ["10-0-0-2", "198-18-0-11", "198-18-0-12", "198-18-0-13"]
    );
    assert_eq!(c2.read(&format!("{IPMAP_DIR}/198-18-0-11")).unwrap(), b"1");
    assert!(is_acces(
        c2.write(&format!("{IPMAP_DIR}/198-18-0-11"), b"2")
    ));
    assert!(is_acces(c2.rm(&format!("{IPMAP_DIR}/198-18-0-11"))));
    // Domain 2 dies: its entries go.
    w.destroy(2);
    assert_eq!(read(&w, "10.0.0.2"), None);
    // ...and an address nobody else claims any more goes to the guest that publishes it.
    assert_eq!(read(&w, "198.18.0.12").as_deref(), Some("3"));
    assert_eq!(read(&w, "198.18.0.11").as_deref(), Some("1"));
}

#[test]
fn ipmap_rules() {
    let (map, conflicts) = compute_ipmap(
        &[
            (1, vec![[1, 1, 1, 1]]),
            (2, vec![[1, 1, 1, 1], [2, 2, 2, 2]]),
        ],
        &[
            (3, vec![[2, 2, 2, 2], [3, 3, 3, 3]]),
            (2, vec![[2, 2, 2, 2]]),
        ],
    );
    assert_eq!(map.get(&[1, 1, 1, 1]), None, "two backends: nobody");
    assert_eq!(map.get(&[2, 2, 2, 2]), Some(&2));
    assert_eq!(map.get(&[3, 3, 3, 3]), Some(&3));
    assert_eq!(conflicts.len(), 2);
}

trait Connected {
    fn is_connected_to(&self, peer: u16) -> bool;
}

impl Connected for model::Guest {
    fn is_connected_to(&self, peer: u16) -> bool {
        self.state(peer) == State::Connected
    }
}
