//! The control-channel codec, directory pages and XenStore schema values.

use proptest::prelude::*;
use xenstore_watch::control::paths::{
    self, cid_to_domid, domid_to_cid, parse_gen, parse_ipv4, parse_path, Kind, Offer, Parsed, Req,
    ValueError,
};
use xenstore_watch::control::wire::*;

fn id() -> ConnId {
    ConnId {
        src_port: 1234,
        dst_port: 0xdead_beef,
        token: 0x0102_0304_0506_0708,
    }
}

fn hello() -> Hello {
    Hello {
        min_version: 1,
        max_version: 1,
        sender_domid: 2,
        receiver_domid: 1,
        max_ring_pages: 512,
        sender_gen: 77,
        receiver_gen: 0,
        features: 0,
    }
}

fn all_msgs() -> Vec<Msg> {
    let ring = RingRef {
        dir_gref: 99,
        pages: 128,
    };
    vec![
        Msg::Hello(hello()),
        Msg::HelloAck(hello()),
        Msg::Ping { nonce: 5 },
        Msg::Pong { nonce: u64::MAX },
        Msg::Goodbye { reason: 3 },
        Msg::Connect {
            id: id(),
            ring,
            evtchn: 17,
            seqpacket: false,
        },
        Msg::Accept {
            id: id(),
            ring: RingRef {
                dir_gref: 1,
                pages: 512,
            },
        },
        Msg::Reset {
            id: id(),
            reason: RESET_NO_LISTENER,
        },
        Msg::Shutdown {
            id: id(),
            mode: SHUTDOWN_RCV | SHUTDOWN_SEND,
        },
        Msg::Close { id: id() },
        Msg::Connect {
            id: id(),
            ring,
            evtchn: 18,
            seqpacket: true,
        },
    ]
}

fn enc(m: &Msg) -> Vec<u8> {
    let mut b = [0u8; MAX_MSG_LEN];
    let n = m.encode(&mut b).expect("encodes");
    b[..n].to_vec()
}

#[test]
fn round_trip_every_type() {
    for m in all_msgs() {
        let b = enc(&m);
        assert_eq!(b.len(), m.ty().wire_len());
        assert!(b.len() <= MAX_V1_LEN);
        const { assert!(MAX_V1_LEN <= MAX_MSG_LEN) };
        assert_eq!(peek_header(&b).unwrap().len, b.len());
        assert_eq!(Msg::decode(&b), Ok((m, b.len())), "{m:?}");
        // Trailing bytes (the next message) are left alone.
        let mut two = b.clone();
        two.extend_from_slice(&b);
        assert_eq!(Msg::decode(&two), Ok((m, b.len())));
    }
}

#[test]
fn sizes_are_documented() {
    let sizes: Vec<(u8, usize)> = all_msgs().iter().map(|m| (m.ty() as u8, m.len())).collect();
    assert_eq!(
        sizes,
        vec![
            (1, 40),
            (2, 40),
            (3, 16),
            (4, 16),
            (5, 16),
            (16, 36),
            (17, 32),
            (18, 28),
            (19, 28),
            (20, 24),
            (16, 36)
        ]
    );
}

#[test]
fn truncated_is_incomplete() {
    for m in all_msgs() {
        let b = enc(&m);
        for cut in 0..b.len() {
            assert_eq!(
                Msg::decode(&b[..cut]),
                Err(DecodeError::Truncated),
                "{m:?} {cut}"
            );
        }
    }
}

#[test]
fn bad_version() {
    for m in all_msgs() {
        let mut b = enc(&m);
        for v in [0u8, 2, 255] {
            b[0] = v;
            let e = Msg::decode(&b).unwrap_err();
            assert_eq!(e, DecodeError::BadVersion(v));
            assert!(e.is_fatal());
        }
    }
}

#[test]
fn bad_length_is_fatal() {
    let mut b = enc(&Msg::Ping { nonce: 1 });
    for len in [0u16, 7, 257, 4096, u16::MAX] {
        b[2..4].copy_from_slice(&len.to_le_bytes());
        let e = Msg::decode(&b).unwrap_err();
        assert_eq!(e, DecodeError::BadLength(len));
        assert!(e.is_fatal());
    }
}

#[test]
fn wrong_length_for_type() {
    // A well-framed message of known type with another length: skippable, not fatal.
    let mut b = enc(&Msg::Close { id: id() });
    b.resize(64, 0);
    b[2..4].copy_from_slice(&64u16.to_le_bytes());
    let e = Msg::decode(&b).unwrap_err();
    assert_eq!(e, DecodeError::WrongLength { ty: 20, len: 64 });
    assert!(!e.is_fatal());
}

#[test]
fn unknown_type() {
    for t in [0u8, 6, 15, 21, 255] {
        let mut b = enc(&Msg::Ping { nonce: 1 });
        b[1] = t;
        let e = Msg::decode(&b).unwrap_err();
        assert_eq!(e, DecodeError::UnknownType(t));
        assert!(!e.is_fatal());
        // The frame can still be skipped.
        assert_eq!(peek_header(&b).unwrap().len, 16);
    }
}

#[test]
fn bad_fields() {
    // Reserved header word.
    let mut b = enc(&Msg::Ping { nonce: 1 });
    b[5] = 1;
    assert!(matches!(Msg::decode(&b), Err(DecodeError::BadField(_))));
    // Ring page counts: zero, not a power of two, above 512.
    for pages in [0u16, 3, 1024, u16::MAX] {
        let mut b = enc(&all_msgs()[5]);
        b[8 + 20..8 + 22].copy_from_slice(&pages.to_le_bytes());
        assert!(
            matches!(Msg::decode(&b), Err(DecodeError::BadField(_))),
            "{pages}"
        );
        let mut b = enc(&all_msgs()[6]);
        b[8 + 20..8 + 22].copy_from_slice(&pages.to_le_bytes());
        assert!(
            matches!(Msg::decode(&b), Err(DecodeError::BadField(_))),
            "{pages}"
        );
    }
    // CONNECT flags: only SEQPACKET is defined; ACCEPT's same field is reserved.
    let seq = enc(all_msgs().last().unwrap());
    assert_eq!(u16::from_le_bytes([seq[30], seq[31]]), CONNECT_SEQPACKET);
    assert_eq!(
        enc(&all_msgs()[5])[30..32],
        [0, 0],
        "a stream CONNECT has no flag"
    );
    for flags in [2u16, 0x8000, 3] {
        let mut b = seq.clone();
        b[30..32].copy_from_slice(&flags.to_le_bytes());
        assert!(
            matches!(Msg::decode(&b), Err(DecodeError::BadField(_))),
            "{flags}"
        );
    }
    let mut b = enc(&all_msgs()[6]);
    b[30] = 1;
    assert!(matches!(Msg::decode(&b), Err(DecodeError::BadField(_))));
    // Shutdown mode: none, unknown bit.
    for mode in [0u32, 4, 0x8000_0001] {
        let mut b = enc(&all_msgs()[8]);
        b[24..28].copy_from_slice(&mode.to_le_bytes());
        assert!(
            matches!(Msg::decode(&b), Err(DecodeError::BadField(_))),
            "{mode}"
        );
    }
    // HELLO: min > max, zero generation, features, bad max_ring_pages.
    for f in [
        |h: &mut Hello| h.min_version = 2,
        |h: &mut Hello| h.min_version = 0,
        |h: &mut Hello| h.sender_gen = 0,
        |h: &mut Hello| h.features = 1,
        |h: &mut Hello| h.max_ring_pages = 0,
        |h: &mut Hello| h.max_ring_pages = 513,
    ] {
        let mut h = hello();
        f(&mut h);
        // The encoder refuses to produce it...
        assert_eq!(Msg::Hello(h).encode(&mut [0u8; 64]), None);
        // ...and the decoder refuses it when forged.
        let mut b = enc(&Msg::Hello(hello()));
        b[8] = h.min_version;
        b[9] = h.max_version;
        b[14..16].copy_from_slice(&h.max_ring_pages.to_le_bytes());
        b[16..24].copy_from_slice(&h.sender_gen.to_le_bytes());
        b[32..36].copy_from_slice(&h.features.to_le_bytes());
        assert!(matches!(Msg::decode(&b), Err(DecodeError::BadField(_))));
    }
    // Encoding into a too-small buffer.
    assert_eq!(Msg::Ping { nonce: 1 }.encode(&mut [0u8; 15]), None);
}

#[test]
fn directory_page() {
    let mut page = vec![0u8; PAGE_SIZE];
    let grefs: Vec<u32> = (1000..1512).collect();
    dir_write(&mut page, &grefs).unwrap();
    let mut out = [0u32; 512];
    assert_eq!(dir_read(&page, 512, &mut out), Ok(512));
    assert_eq!(&out[..], &grefs[..]);
    // The count must equal the negotiated one; never read beyond it.
    assert_eq!(dir_read(&page, 256, &mut out), Err(DirError::CountMismatch));
    assert_eq!(dir_read(&page, 3, &mut out), Err(DirError::BadCount));
    assert_eq!(dir_read(&page, 1024, &mut out), Err(DirError::BadCount));
    assert_eq!(
        dir_read(&page, 512, &mut out[..10]),
        Err(DirError::BadCount)
    );
    assert_eq!(
        dir_read(&page[..100], 512, &mut out),
        Err(DirError::BadPage)
    );
    let mut bad = page.clone();
    bad[DIR_OFF_NPAGES..DIR_OFF_NPAGES + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(dir_read(&bad, 512, &mut out), Err(DirError::CountMismatch));
    let mut bad = page.clone();
    bad[DIR_OFF_MAGIC] ^= 1;
    assert_eq!(dir_read(&bad, 512, &mut out), Err(DirError::BadMagic));
    let mut bad = page.clone();
    bad[DIR_OFF_VERSION] = 9;
    assert_eq!(dir_read(&bad, 512, &mut out), Err(DirError::BadVersion));
    // Writing: counts that are not a power of two or too large are refused.
    assert_eq!(dir_write(&mut page, &[1, 2, 3]), Err(DirError::BadCount));
    assert_eq!(dir_write(&mut page, &[0; 1024]), Err(DirError::BadCount));
    assert_eq!(dir_write(&mut page, &[]), Err(DirError::BadCount));
    // The layout fits a page: 512 grefs end exactly at the page end.
    assert_eq!(DIR_OFF_GREFS + 4 * MAX_RING_PAGES as usize, PAGE_SIZE);
    // Control page: both rings fit, do not overlap, and hold 4 maximal messages each.
    const { assert!(CTRL_O2A_HDR + 0x100 <= CTRL_A2O_HDR && CTRL_A2O_HDR + 0x100 <= CTRL_O2A_DATA) };
    assert_eq!(CTRL_O2A_DATA + CTRL_RING_SIZE, CTRL_A2O_DATA);
    assert_eq!(CTRL_A2O_DATA + CTRL_RING_SIZE, PAGE_SIZE);
    const { assert!(CTRL_RING_SIZE.is_power_of_two() && CTRL_RING_SIZE >= 4 * MAX_MSG_LEN) };
}

#[test]
fn schema_paths() {
    assert_eq!(paths::root(3).as_str(), "/local/domain/3/data/yasmin");
    assert_eq!(
        paths::peer_node(32751, Kind::Notify, 32751).as_str(),
        "/local/domain/32751/data/yasmin/notify/32751"
    );
    for (d, k, p) in [(1, Kind::Offer, 2), (7, Kind::Req, 0), (0, Kind::Gone, 9)] {
        let s = paths::peer_node(d, k, p);
        assert_eq!(
            parse_path(s.as_bytes()),
            Some(Parsed::Peer {
                dom: d,
                kind: k,
                peer: p
            })
        );
    }
    assert_eq!(
        parse_path(b"/local/domain/4/data/yasmin"),
        Some(Parsed::Root { dom: 4 })
    );
    assert_eq!(
        parse_path(b"/local/domain/4/data/yasmin/gen"),
        Some(Parsed::Gen { dom: 4 })
    );
    assert_eq!(
        parse_path(paths::up_node(4).as_bytes()),
        Some(Parsed::Up { dom: 4 })
    );
    assert_eq!(parse_path(b"/local/domain/4/data/yasmin/up/1"), None);
    assert_eq!(
        parse_path(b"/local/domain/4/data/yasmin/notify"),
        Some(Parsed::KindDir {
            dom: 4,
            kind: Kind::Notify
        })
    );
    for bad in [
        &b"/local/domain/4/data/yasminx"[..],
        b"/local/domain/04/data/yasmin",
        b"/local/domain/32752/data/yasmin",
        b"/local/domain/4/data/yasmin/offer/2/x",
        b"/local/domain/4/data/yasmin/offer/-1",
        b"/local/domain/4/data/yasmin/other/1",
        b"/local/domain/4/data/yasmin/offer/",
        b"/local/domain//data/yasmin",
        b"local/domain/4/data/yasmin",
        b"",
    ] {
        assert_eq!(parse_path(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(domid_to_cid(0), Some(2));
    assert_eq!(domid_to_cid(0x7FF0), None);
    assert_eq!(cid_to_domid(3), Some(1));
    assert_eq!(cid_to_domid(1), None);
    assert_eq!(cid_to_domid(0x7FF0 + 2), None);
}

#[test]
fn node_values() {
    let o = Offer {
        gen: 5,
        peer_gen: 0,
        gref: 8,
        evtchn: 42,
    };
    assert_eq!(o.format().as_str(), "1 5 0 8 42");
    assert_eq!(Offer::parse(o.format().as_bytes()), Ok(o));
    let r = Req {
        gen: u64::MAX,
        peer_gen: 3,
    };
    assert_eq!(Req::parse(r.format().as_bytes()), Ok(r));
    for (bad, err) in [
        (&b"2 5 0 8 42"[..], ValueError::Version),
        (b"1 0 0 8 42", ValueError::Range),
        (b"1 5 0 8 0", ValueError::Range),
        (b"1 5 0 4294967296 1", ValueError::Range),
        (b"1 5 0 8", ValueError::Syntax),
        (b"1 5 0 8 42 7", ValueError::Syntax),
        (b"1  5 0 8 42", ValueError::Syntax),
        (b"1 5 0 8 42 ", ValueError::Syntax),
        (b"1 05 0 8 42", ValueError::Syntax),
        (b"1 +5 0 8 42", ValueError::Syntax),
        (b"1 99999999999999999999 0 8 42", ValueError::Syntax),
        (b"", ValueError::Syntax),
    ] {
        assert_eq!(
            Offer::parse(bad),
            Err(err),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(Offer::parse(&[b'1'; 200]), Err(ValueError::TooLong));
    assert_eq!(Req::parse(b"1 0 3"), Err(ValueError::Range));
    assert_eq!(parse_gen(b"17"), Some(17));
    assert_eq!(parse_gen(b"0"), None);
    assert_eq!(parse_gen(b"17\n"), None);
    assert_eq!(parse_ipv4(b"198.18.0.11"), Some([198, 18, 0, 11]));
    for bad in [
        &b"198.18.0"[..],
        b"198.18.0.256",
        b"1.2.3.4.5",
        b"01.2.3.4",
        b"1..3.4",
    ] {
        assert_eq!(parse_ipv4(bad), None);
    }
}

fn arb_msg() -> impl Strategy<Value = Msg> {
    let id = (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(s, d, t)| ConnId {
        src_port: s,
        dst_port: d,
        token: t,
    });
    let ring = (any::<u32>(), 0u32..10).prop_map(|(g, p)| RingRef {
        dir_gref: g,
        pages: 1 << p,
    });
    let hello = (any::<u16>(), any::<u16>(), 1u64.., any::<u64>(), 0u32..10).prop_map(
        |(s, r, sg, rg, p)| Hello {
            min_version: 1,
            max_version: 1,
            sender_domid: s,
            receiver_domid: r,
            max_ring_pages: 1 << p,
            sender_gen: sg,
            receiver_gen: rg,
            features: 0,
        },
    );
    prop_oneof![
        hello.clone().prop_map(Msg::Hello),
        hello.prop_map(Msg::HelloAck),
        any::<u64>().prop_map(|n| Msg::Ping { nonce: n }),
        any::<u64>().prop_map(|n| Msg::Pong { nonce: n }),
        any::<u32>().prop_map(|r| Msg::Goodbye { reason: r }),
        (id.clone(), ring.clone(), any::<u32>(), any::<bool>()).prop_map(
            |(id, ring, evtchn, seqpacket)| Msg::Connect {
                id,
                ring,
                evtchn,
                seqpacket
            }
        ),
        (id.clone(), ring).prop_map(|(id, ring)| Msg::Accept { id, ring }),
        (id.clone(), any::<u32>()).prop_map(|(id, reason)| Msg::Reset { id, reason }),
        (id.clone(), 1u32..4).prop_map(|(id, mode)| Msg::Shutdown { id, mode }),
        id.prop_map(|id| Msg::Close { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Decoding arbitrary bytes never panics; what decodes re-encodes to the same bytes.
    #[test]
    fn decode_arbitrary_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = peek_header(&bytes);
        if let Ok((m, n)) = Msg::decode(&bytes) {
            prop_assert!(n <= bytes.len() && n <= MAX_MSG_LEN);
            let mut out = [0u8; MAX_MSG_LEN];
            let k = m.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..k], &bytes[..n]);
        }
        let mut grefs = [0u32; 512];
        let mut page = bytes.clone();
        page.resize(PAGE_SIZE, 0);
        for pages in [1u16, 512, 3] {
            if let Ok(k) = dir_read(&page, pages, &mut grefs) {
                prop_assert_eq!(k, pages as usize);
            }
        }
        let _ = Offer::parse(&bytes);
        let _ = Req::parse(&bytes);
        let _ = parse_path(&bytes);
        let _ = parse_ipv4(&bytes);
    }

    /// Headers that look valid (right version, plausible length) with random bodies.
    #[test]
    fn decode_valid_headers(ty in any::<u8>(), len in 0u16..300, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut b = vec![VERSION, ty];
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&body);
        if let Ok((m, n)) = Msg::decode(&b) {
            prop_assert_eq!(n, len as usize);
            prop_assert_eq!(m.ty() as u8, ty);
        }
    }

    #[test]
    fn round_trip_arbitrary(m in arb_msg()) {
        let mut out = [0u8; MAX_MSG_LEN];
        let n = m.encode(&mut out).unwrap();
        prop_assert_eq!(Msg::decode(&out[..n]), Ok((m, n)));
    }
}

#[test]
fn reversed_id_swaps_ports_keeps_token() {
    let r = id().reversed();
    assert_eq!(
        (r.src_port, r.dst_port, r.token),
        (id().dst_port, id().src_port, id().token)
    );
    assert_eq!(r.reversed(), id());
}
