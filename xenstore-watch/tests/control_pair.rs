//! The pair state machine on its own: targeted cases and random event sequences.

use proptest::prelude::*;
use xenstore_watch::control::pair::*;
use xenstore_watch::control::paths::{Kind, Offer, Req, ValueError};
use xenstore_watch::control::wire::{Hello, Msg};

fn hello(from: u16, to: u16, gen: u64, peer_gen: u64) -> Hello {
    Hello {
        min_version: 1,
        max_version: 1,
        sender_domid: from,
        receiver_domid: to,
        max_ring_pages: 512,
        sender_gen: gen,
        receiver_gen: peer_gen,
        features: 0,
    }
}

const CH: Channel = Channel { gref: 7, evtchn: 9 };

fn offered() -> Pair {
    let mut p = Pair::new(1, 2, 10);
    p.handle(Event::Connect, 0);
    p.handle(Event::Allocated(Some(CH)), 0);
    assert_eq!(p.state(), State::Offered);
    p
}

#[test]
fn roles() {
    assert_eq!(role(1, 2), Role::Offerer);
    assert_eq!(role(2, 1), Role::Acceptor);
    assert_eq!(role(0, 7), Role::Offerer);
}

#[test]
fn offerer_handshake() {
    let mut p = offered();
    let a = p.handle(Event::Received(Msg::Hello(hello(2, 1, 20, 10))), 5);
    assert!(a.contains(&Action::Up));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Send(Msg::HelloAck(_)))));
    assert_eq!(p.state(), State::Connected);
    assert_eq!(p.peer_gen(), Some(20));
    // PING is answered.
    let a = p.handle(Event::Received(Msg::Ping { nonce: 3 }), 6);
    assert!(a.contains(&Action::Send(Msg::Pong { nonce: 3 })));
}

#[test]
fn hello_from_the_wrong_domain_or_for_another_incarnation_resets() {
    for h in [
        hello(3, 1, 20, 0),  // another sender
        hello(2, 5, 20, 0),  // another receiver
        hello(2, 1, 20, 11), // addressed to our previous incarnation
    ] {
        let mut p = offered();
        let a = p.handle(Event::Received(Msg::Hello(h)), 1);
        assert_eq!(p.state(), State::Idle, "{h:?}");
        assert!(a.contains(&Action::Teardown(CH)));
        assert!(a.contains(&Action::Remove(Kind::Offer)));
        assert!(a.contains(&Action::Down));
    }
    // A version range we do not speak.
    let mut p = offered();
    let mut h = hello(2, 1, 20, 0);
    h.min_version = 2;
    h.max_version = 3;
    let a = p.handle(Event::Received(Msg::Hello(h)), 1);
    assert!(a.contains(&Action::Log(LogKind::Version)));
    assert_eq!(p.state(), State::Idle);
}

#[test]
fn acceptor_checks_generations() {
    let mut p = Pair::new(2, 1, 20);
    let a = p.handle(Event::Notify(Ok(10)), 0);
    assert!(a.contains(&Action::Remove(Kind::Notify)));
    assert!(a.contains(&Action::Read(Kind::Offer)));
    // An offer with another generation than dom0 vouched for: ignored.
    let bad = Offer {
        gen: 11,
        peer_gen: 0,
        gref: 7,
        evtchn: 9,
    };
    let a = p.handle(Event::OfferRead(Ok(bad)), 0);
    assert!(a.contains(&Action::Log(LogKind::GenMismatch {
        expected: 10,
        found: 11
    })));
    assert_eq!(p.state(), State::Idle);
    // An offer for an earlier incarnation of us: ignored.
    let stale = Offer {
        gen: 10,
        peer_gen: 19,
        gref: 7,
        evtchn: 9,
    };
    let a = p.handle(Event::OfferRead(Ok(stale)), 0);
    assert!(a.contains(&Action::Log(LogKind::NotForUs { found: 19 })));
    // The right one.
    let good = Offer {
        gen: 10,
        peer_gen: 20,
        gref: 7,
        evtchn: 9,
    };
    let a = p.handle(Event::OfferRead(Ok(good)), 0);
    assert!(a.contains(&Action::MapChannel(CH)));
    let a = p.handle(Event::Mapped(true), 0);
    assert!(a.contains(&Action::Remove(Kind::Req)));
    assert!(a.contains(&Action::Send(Msg::Hello(hello(2, 1, 20, 10)))));
    let a = p.handle(Event::Received(Msg::HelloAck(hello(1, 2, 10, 20))), 0);
    assert!(a.contains(&Action::Up));
    assert!(p.is_connected());
    // Malformed/unreadable offers later change nothing.
    for e in [
        NodeError::Malformed(ValueError::Syntax),
        NodeError::Unreadable,
    ] {
        p.handle(Event::Notify(Ok(10)), 0);
        let a = p.handle(Event::OfferRead(Err(e)), 0);
        assert!(!a.contains(&Action::ResetSockets));
        assert!(p.is_connected());
    }
    // Withdrawn offer: the channel is gone.
    let a = p.handle(Event::OfferRead(Err(NodeError::Missing)), 0);
    assert!(a.contains(&Action::ResetSockets));
    assert!(a.contains(&Action::Teardown(CH)));
    assert_eq!(p.state(), State::Idle);
}

#[test]
fn gone_for_an_older_incarnation_is_only_acknowledged() {
    let mut p = offered();
    p.handle(Event::Received(Msg::Hello(hello(2, 1, 20, 10))), 0);
    let a = p.handle(Event::Gone(Ok(19)), 0);
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![Action::Remove(Kind::Gone)]
    );
    assert!(p.is_connected());
    let a = p.handle(Event::Gone(Ok(20)), 0);
    assert!(a.contains(&Action::ResetSockets));
    assert_eq!(p.state(), State::Idle);
    assert_eq!(p.peer_gen(), None);
}

#[test]
fn request_while_connected_means_the_peer_lost_the_channel() {
    let mut p = offered();
    p.handle(Event::Received(Msg::Hello(hello(2, 1, 20, 10))), 0);
    let a = p.handle(
        Event::ReqRead(Ok(Req {
            gen: 20,
            peer_gen: 10,
        })),
        0,
    );
    assert!(a.contains(&Action::ResetSockets));
    assert!(a.contains(&Action::AllocChannel));
    assert_eq!(p.state(), State::Allocating);
}

#[test]
fn stale_allocation_is_given_back() {
    let mut p = Pair::new(1, 2, 10);
    let a = p.handle(Event::Allocated(Some(CH)), 0);
    assert_eq!(a.iter().collect::<Vec<_>>(), vec![Action::Teardown(CH)]);
}

#[test]
fn rate_limit() {
    let mut l = RateLimit::new();
    let n = (0..100).filter(|_| l.allow(0)).count();
    assert_eq!(n, LOG_BURST as usize);
    assert!(l.allow(LOG_INTERVAL_MS));
    assert!(!l.allow(LOG_INTERVAL_MS));
    assert_eq!(l.suppressed, 96);
}

fn arb_event() -> impl Strategy<Value = Event> {
    let node_err = prop_oneof![
        Just(NodeError::Missing),
        Just(NodeError::Unreadable),
        Just(NodeError::Malformed(ValueError::Syntax)),
    ];
    let gen = prop_oneof![Just(10u64), Just(20), Just(21), 1u64..5];
    let gen_r = prop_oneof![gen.clone().prop_map(Ok), node_err.clone().prop_map(Err)];
    let offer = (
        gen.clone(),
        prop_oneof![Just(0u64), Just(10), Just(20), Just(9)],
        1u32..4,
    )
        .prop_map(|(g, pg, x)| Offer {
            gen: g,
            peer_gen: pg,
            gref: x,
            evtchn: x,
        });
    let req = (gen.clone(), prop_oneof![Just(0u64), Just(10), Just(20)]).prop_map(|(g, pg)| Req {
        gen: g,
        peer_gen: pg,
    });
    let hello = (
        1u16..4,
        1u16..4,
        gen.clone(),
        prop_oneof![Just(0u64), Just(10), Just(20)],
    )
        .prop_map(|(f, t, g, pg)| hello(f, t, g, pg));
    prop_oneof![
        Just(Event::Connect),
        gen_r.clone().prop_map(Event::Notify),
        gen_r.prop_map(Event::Gone),
        prop_oneof![offer.prop_map(Ok), node_err.clone().prop_map(Err)].prop_map(Event::OfferRead),
        prop_oneof![req.prop_map(Ok), node_err.prop_map(Err)].prop_map(Event::ReqRead),
        prop_oneof![
            Just(None),
            (1u32..4).prop_map(|x| Some(Channel { gref: x, evtchn: x }))
        ]
        .prop_map(Event::Allocated),
        any::<bool>().prop_map(Event::Mapped),
        hello.clone().prop_map(|h| Event::Received(Msg::Hello(h))),
        hello.prop_map(|h| Event::Received(Msg::HelloAck(h))),
        Just(Event::Received(Msg::Goodbye { reason: 1 })),
        Just(Event::Received(Msg::Ping { nonce: 1 })),
        Just(Event::ChannelBroken),
        Just(Event::Tick),
        Just(Event::Shutdown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any sequence of events: no panic, no overflow, and the invariants hold.
    #[test]
    fn random_event_sequences(
        lower in any::<bool>(),
        evs in proptest::collection::vec((arb_event(), 0u64..4000), 0..60),
    ) {
        let mut p = if lower { Pair::new(1, 2, 10) } else { Pair::new(2, 1, 20) };
        let mut now = 0;
        let mut ups = 0i32;
        for (ev, dt) in evs {
            now += dt;
            let a = p.handle(ev, now);
            prop_assert!(!a.overflow);
            for x in a.iter() {
                match x {
                    Action::Up => ups = 1,
                    Action::Down => ups = 0,
                    _ => {}
                }
            }
            match p.state() {
                State::Idle => {
                    prop_assert!(p.channel().is_none());
                    prop_assert!(p.deadline().is_none());
                }
                State::Connected => {
                    prop_assert!(p.channel().is_some());
                    prop_assert!(p.deadline().is_none());
                    prop_assert!(p.peer_gen().is_some());
                    prop_assert_eq!(ups, 1);
                }
                State::Offered | State::Mapping | State::HelloSent => {
                    prop_assert!(p.channel().is_some());
                    prop_assert!(p.deadline().is_some());
                }
                State::Requested | State::Allocating => prop_assert!(p.deadline().is_some()),
            }
            if let Some(d) = p.deadline() {
                prop_assert!(d <= now + HANDSHAKE_TIMEOUT_MS);
            }
        }
    }
}
