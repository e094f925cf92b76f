//! Control-channel frames, directory pages, XenStore values and the pair state machine on
//! arbitrary input: nothing may panic, and what decodes must re-encode identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenstore_watch::control::pair::{Event, NodeError, Pair};
use xenstore_watch::control::paths::{
    parse_gen, parse_ipmap_name, parse_ipv4, parse_path, Offer, Req,
};
use xenstore_watch::control::wire::{dir_read, peek_header, Msg, MAX_MSG_LEN, PAGE_SIZE};

fuzz_target!(|data: &[u8]| {
    // A byte stream of frames, read the way a control-ring reader does.
    let mut rest = data;
    let mut pair_lo = Pair::new(1, 2, 10);
    let mut pair_hi = Pair::new(2, 1, 20);
    let mut now = 0u64;
    while !rest.is_empty() {
        match Msg::decode(rest) {
            Ok((m, n)) => {
                let mut out = [0u8; MAX_MSG_LEN];
                let k = m.encode(&mut out).expect("decoded message re-encodes");
                assert_eq!(&out[..k], &rest[..n]);
                now += 100;
                let _ = pair_lo.handle(Event::Received(m), now);
                let _ = pair_hi.handle(Event::Received(m), now);
                rest = &rest[n..];
            }
            Err(e) if e.is_fatal() => break,
            Err(_) => match peek_header(rest) {
                Ok(h) if h.len <= rest.len() => rest = &rest[h.len..],
                _ => break,
            },
        }
    }
    let mut grefs = [0u32; 512];
    let mut page = data.to_vec();
    page.resize(PAGE_SIZE, 0);
    let _ = dir_read(&page, 512, &mut grefs);
    let _ = dir_read(&page, 1, &mut grefs);
    // XenStore values straight into the state machine.
    let offer = Offer::parse(data).map_err(NodeError::Malformed);
    let req = Req::parse(data).map_err(NodeError::Malformed);
    let gen = parse_gen(data).ok_or(NodeError::Unreadable);
    for ev in [
        Event::Notify(gen),
        Event::OfferRead(offer),
        Event::ReqRead(req),
        Event::Gone(gen),
        Event::Tick,
    ] {
        now += 5000;
        assert!(!pair_lo.handle(ev, now).overflow);
        assert!(!pair_hi.handle(ev, now).overflow);
    }
    let _ = parse_path(data);
    let _ = parse_ipv4(data);
    let _ = parse_ipmap_name(data);
});
