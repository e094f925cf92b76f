//! The wire codec: round trips, malformed input, and a property test that no input
//! makes the decoders panic.

use proptest::prelude::*;
use xenstore_watch::xs::perms::{parse_perms, set_perms_payload};
use xenstore_watch::xs::wire::{
    split_nul, DecodeError, EncodeError, Header, Message, MsgType, HEADER_LEN, PAYLOAD_MAX,
};
use xenstore_watch::xs::{Perm, PermKind, WatchEvent};

#[test]
fn roundtrip_every_known_type() {
    for n in (0..=23).chain([0xffff, u32::MAX]) {
        let m = Message::new(
            MsgType::from_u32(n),
            n ^ 0x55,
            7,
            format!("p{n}\0").into_bytes(),
        );
        let b = m.encode().unwrap();
        assert_eq!(b.len(), HEADER_LEN + m.payload.len());
        assert_eq!(Message::decode(&b).unwrap(), m);
        assert_eq!(MsgType::from_u32(n).to_u32(), n);
    }
}

#[test]
fn max_payload_roundtrips_and_one_more_is_refused() {
    let m = Message::new(MsgType::Write, 1, 0, vec![b'x'; PAYLOAD_MAX]);
    let b = m.encode().unwrap();
    assert_eq!(Message::decode(&b).unwrap(), m);
    let m = Message::new(MsgType::Write, 1, 0, vec![b'x'; PAYLOAD_MAX + 1]);
    assert_eq!(
        m.encode(),
        Err(EncodeError::PayloadTooLarge {
            len: PAYLOAD_MAX + 1
        })
    );
}

#[test]
fn truncated_header() {
    let b = Message::new(MsgType::Read, 1, 0, b"/a\0".to_vec())
        .encode()
        .unwrap();
    for cut in 0..HEADER_LEN {
        let e = Message::decode(&b[..cut]).unwrap_err();
        assert_eq!(e, DecodeError::TruncatedHeader { got: cut });
        assert!(e.is_incomplete());
    }
}

#[test]
fn truncated_payload() {
    let b = Message::new(MsgType::Read, 1, 0, b"/abc\0".to_vec())
        .encode()
        .unwrap();
    for cut in HEADER_LEN..b.len() {
        let e = Message::decode(&b[..cut]).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TruncatedPayload {
                expected: 5,
                got: cut - HEADER_LEN
            }
        );
        assert!(e.is_incomplete());
    }
}

#[test]
fn length_over_max_is_refused_from_the_header_alone() {
    for len in [PAYLOAD_MAX as u32 + 1, 65536, u32::MAX] {
        let h = Header {
            ty: MsgType::Read,
            req_id: 0,
            tx_id: 0,
            len,
        };
        let e = Message::decode(&h.to_bytes()).unwrap_err();
        assert_eq!(e, DecodeError::PayloadTooLarge { len });
        assert!(!e.is_incomplete());
    }
}

#[test]
fn trailing_bytes_and_prefix_decoding() {
    let mut b = Message::new(MsgType::Read, 1, 0, b"a".to_vec())
        .encode()
        .unwrap();
    let one = b.len();
    b.extend(
        Message::new(MsgType::Rm, 2, 3, b"bb\0".to_vec())
            .encode()
            .unwrap(),
    );
    assert_eq!(
        Message::decode(&b).unwrap_err(),
        DecodeError::TrailingBytes {
            extra: b.len() - one
        }
    );
    let (m1, used) = Message::decode_prefix(&b).unwrap();
    assert_eq!((m1.ty, used), (MsgType::Read, one));
    let (m2, used2) = Message::decode_prefix(&b[used..]).unwrap();
    assert_eq!(
        (m2.ty, m2.req_id, m2.tx_id, used + used2),
        (MsgType::Rm, 2, 3, b.len())
    );
}

#[test]
fn unknown_types_decode_gracefully() {
    let mut b = Message::new(MsgType::Read, 1, 0, vec![]).encode().unwrap();
    b[0..4].copy_from_slice(&20u32.to_le_bytes());
    assert_eq!(Message::decode(&b).unwrap().ty, MsgType::Unknown(20));
}

#[test]
fn watch_event_payloads() {
    assert_eq!(
        WatchEvent::parse(b"/a/b\0tok\0"),
        Some(WatchEvent {
            path: "/a/b".into(),
            token: "tok".into()
        })
    );
    assert_eq!(WatchEvent::parse(b"/a\0"), None);
    assert_eq!(WatchEvent::parse(b""), None);
    assert_eq!(WatchEvent::parse(b"/a\0t").unwrap().token, "t");
}

#[test]
fn perms_roundtrip() {
    let perms = [
        Perm::new(0, PermKind::None),
        Perm::new(1, PermKind::Read),
        Perm::new(2, PermKind::Write),
        Perm::new(65535, PermKind::Both),
    ];
    let payload = set_perms_payload("/p", &perms);
    assert_eq!(payload, b"/p\0n0\0r1\0w2\0b65535\0");
    let list = &payload[3..];
    assert_eq!(parse_perms(list).unwrap(), perms);
}

fn any_type() -> impl Strategy<Value = MsgType> {
    prop_oneof![
        (0u32..=24).prop_map(MsgType::from_u32),
        any::<u32>().prop_map(MsgType::from_u32)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let _ = Message::decode(&bytes);
        if let Ok((m, used)) = Message::decode_prefix(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert!(m.payload.len() <= PAYLOAD_MAX);
            prop_assert_eq!(&m.encode().unwrap()[..], &bytes[..used]);
        }
        let _ = Header::parse(&bytes);
        let _ = split_nul(&bytes);
        let _ = parse_perms(&bytes);
        let _ = WatchEvent::parse(&bytes);
        let _ = Perm::parse(&bytes);
    }

    #[test]
    fn header_with_arbitrary_fields_never_panics(
        words in proptest::array::uniform4(any::<u32>()),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = Vec::new();
        for w in words { b.extend_from_slice(&w.to_le_bytes()); }
        b.extend_from_slice(&tail);
        match Message::decode_prefix(&b) {
            Ok((m, _)) => prop_assert_eq!(m.payload.len() as u32, words[3]),
            Err(DecodeError::PayloadTooLarge { len }) => prop_assert!(len as usize > PAYLOAD_MAX),
            Err(e) => prop_assert!(e.is_incomplete()),
        }
    }

    #[test]
    fn encode_decode_roundtrip(
        ty in any_type(),
        req_id in any::<u32>(),
        tx_id in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..=PAYLOAD_MAX),
    ) {
        let m = Message::new(ty, req_id, tx_id, payload);
        let b = m.encode().unwrap();
        prop_assert_eq!(Message::decode(&b).unwrap(), m);
    }

    #[test]
    fn perm_roundtrip(domid in any::<u16>(), k in 0usize..4) {
        let kind = [PermKind::None, PermKind::Read, PermKind::Write, PermKind::Both][k];
        let p = Perm::new(domid, kind);
        prop_assert_eq!(p.to_string().parse::<Perm>().unwrap(), p);
    }
}
