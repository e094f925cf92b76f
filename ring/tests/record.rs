// SPDX-License-Identifier: GPL-2.0
//! SEQPACKET records (`record.rs`): random sends, receives and peeks (with faulting copies
//! on both sides) against a queue-of-messages model, on contiguous and paged rings; and a
//! hostile producer that writes arbitrary bytes where record headers belong.
#![cfg(not(loom))]

mod common;

use common::HeapRing;
use proptest::prelude::*;
use ring::record::{self, Head, Sent};
use ring::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    /// Send a record of `len` bytes; the copy stops after `fault` bytes if set.
    Send {
        len: usize,
        eor: bool,
        fault: Option<usize>,
    },
    /// Receive into a buffer of `max` bytes; the copy stops after `fault` bytes if set.
    Recv {
        max: usize,
        fault: Option<usize>,
    },
    Peek {
        max: usize,
    },
}

fn op(size: usize) -> impl Strategy<Value = Op> {
    let len = prop_oneof![0..=size + 8, 1..=8usize];
    let fault = proptest::option::weighted(0.15, 0..=size);
    prop_oneof![
        3 => (len, any::<bool>(), fault.clone()).prop_map(|(len, eor, fault)| Op::Send { len, eor, fault }),
        3 => (0..=size + 8, fault).prop_map(|(max, fault)| Op::Recv { max, fault }),
        1 => (0..=size + 8).prop_map(|max| Op::Peek { max }),
    ]
}

/// A copy-in callback producing `src` (stopping after `fault` bytes, if set).
fn source<'a>(src: &'a [u8], fault: Option<usize>) -> impl FnMut(*mut u8, usize) -> usize + 'a {
    let mut pos = 0usize;
    move |dst, n| {
        let stop = fault.unwrap_or(usize::MAX).min(src.len());
        let k = n.min(stop.saturating_sub(pos));
        // SAFETY: `src[pos..pos + k]` is in bounds (`pos + k <= stop <= len`); `dst` is
        // valid for `n >= k` bytes of writes (callback contract) and cannot overlap `src`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().add(pos), dst, k) };
        pos += k;
        k
    }
}

/// A copy-out callback appending to `out` (stopping after `fault` bytes, if set).
fn sink(out: &mut Vec<u8>, fault: Option<usize>) -> impl FnMut(*const u8, usize) -> usize + '_ {
    move |src, n| {
        let k = n.min(fault.unwrap_or(usize::MAX).saturating_sub(out.len()));
        // SAFETY: `src` is valid for reads of `n >= k` bytes (callback contract).
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(src, k) });
        k
    }
}

fn run(size_log2: u32, page_log2: Option<u32>, ops: Vec<Op>) {
    let size = 1usize << size_log2;
    let mem = HeapRing::new(size);
    let mut pages = Vec::new();
    let r = match page_log2 {
        Some(p) => mem.paged_region(1 << p.min(size_log2), &mut pages),
        None => mem.region(),
    };
    let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
    let mut model: VecDeque<(Vec<u8>, bool)> = VecDeque::new();
    let used = |m: &VecDeque<(Vec<u8>, bool)>| {
        m.iter()
            .map(|(d, _)| record::HEADER + d.len())
            .sum::<usize>()
    };
    let mut n = 0u8;
    for op in ops {
        match op {
            Op::Send { len, eor, fault } => {
                let data: Vec<u8> = (0..len).map(|i| n.wrapping_add(i as u8)).collect();
                n = n.wrapping_add(1);
                let got = record::send(&mut p, len, eor, source(&data, fault)).unwrap();
                let free = size - used(&model);
                let want = if len == 0 || len > record::max_len(size) {
                    Sent::BadLength
                } else if record::HEADER + len > free {
                    Sent::NoRoom {
                        need: record::HEADER + len,
                    }
                } else if fault.is_some_and(|f| f < len) {
                    Sent::Fault
                } else {
                    model.push_back((data, eor));
                    match got {
                        Sent::Written(t) => {
                            assert_eq!(t.bytes, record::HEADER + len);
                            got
                        }
                        _ => Sent::Written(Transfer::default()),
                    }
                };
                assert_eq!(got, want);
                assert_eq!(
                    p.unsent().unwrap(),
                    used(&model),
                    "a failed send published bytes"
                );
            }
            Op::Recv { max, fault } => {
                let mut out = Vec::new();
                let got = record::recv(&mut c, max, sink(&mut out, fault)).unwrap();
                match model.pop_front() {
                    None => assert_eq!(got, None),
                    Some((data, eor)) => {
                        let got = got.expect("a whole record is in the ring");
                        assert_eq!(
                            got.head,
                            Head {
                                len: data.len(),
                                eor
                            }
                        );
                        let want = max.min(data.len()).min(fault.unwrap_or(usize::MAX));
                        assert_eq!(got.copied, want);
                        assert_eq!(out, data[..want]);
                        assert_eq!(got.transfer.bytes, record::HEADER + data.len());
                    }
                }
            }
            Op::Peek { max } => {
                let mut out = Vec::new();
                let got = record::peek(&mut c, max, sink(&mut out, None)).unwrap();
                match model.front() {
                    None => assert_eq!(got, None),
                    Some((data, eor)) => {
                        let (head, copied) = got.expect("a whole record is in the ring");
                        assert_eq!(
                            head,
                            Head {
                                len: data.len(),
                                eor: *eor
                            }
                        );
                        assert_eq!(copied, max.min(data.len()));
                        assert_eq!(out, data[..copied]);
                    }
                }
            }
        }
        assert_eq!(c.readable().unwrap(), used(&model));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn records_match_the_model(
        size_log2 in 3u32..=9,
        page_log2 in proptest::option::of(2u32..=6),
        ops in proptest::collection::vec(op(512), 1..120),
    ) {
        run(size_log2, page_log2, ops);
    }

    /// Arbitrary bytes where the records belong (a hostile producer): every receive either
    /// returns a record whose header is valid for this ring, or fails as corrupt, and then
    /// stays failed. Nothing panics, nothing reads outside the ring.
    #[test]
    fn hostile_headers_reset_never_misread(
        size_log2 in 3u32..=8,
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        maxes in proptest::collection::vec(0usize..300, 1..40),
    ) {
        let size = 1usize << size_log2;
        let mem = HeapRing::new(size);
        let r = mem.region();
        let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
        let mut fed = 0;
        let mut corrupt = false;
        for max in maxes {
            if fed < bytes.len() {
                fed += p.write_slice(&bytes[fed..]).unwrap().bytes;
            }
            let mut out = Vec::new();
            match record::recv(&mut c, max, sink(&mut out, None)) {
                Err(RingError::Corrupt) => corrupt = true,
                Err(e) => panic!("unexpected {e:?}"),
                Ok(got) => {
                    prop_assert!(!corrupt, "a poisoned consumer recovered");
                    if let Some(got) = got {
                        prop_assert!(got.head.len >= 1 && got.head.len <= record::max_len(size));
                        prop_assert_eq!(got.copied, max.min(got.head.len));
                        prop_assert_eq!(out.len(), got.copied);
                    }
                }
            }
        }
    }
}

#[test]
fn a_record_fills_the_ring_exactly() {
    let size = 64;
    let mem = HeapRing::new(size);
    let r = mem.region();
    let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
    let data = [7u8; 60];
    assert_eq!(record::max_len(size), 60);
    assert!(matches!(
        record::send(&mut p, 61, false, source(&data, None)),
        Ok(Sent::BadLength)
    ));
    assert!(matches!(
        record::send(&mut p, 60, true, source(&data, None)),
        Ok(Sent::Written(_))
    ));
    assert_eq!(
        record::send(&mut p, 1, false, source(&data, None)),
        Ok(Sent::NoRoom { need: 5 })
    );
    let mut out = Vec::new();
    let got = record::recv(&mut c, 10, sink(&mut out, None))
        .unwrap()
        .unwrap();
    assert_eq!((got.head, got.copied), (Head { len: 60, eor: true }, 10));
    assert_eq!(
        c.readable().unwrap(),
        0,
        "the truncated rest is consumed too"
    );
}

#[test]
fn zero_and_oversized_headers_are_corrupt() {
    for bad in [0u32, 61, 0x7fff_ffff, record::FLAG_EOR] {
        let mem = HeapRing::new(64);
        let r = mem.region();
        let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
        let _ = p.write_slice(&bad.to_le_bytes()).unwrap();
        assert_eq!(
            record::head(&mut c),
            Err(RingError::Corrupt),
            "header {bad:#x}"
        );
        assert_eq!(c.readable(), Err(RingError::Corrupt), "poisoned for good");
    }
}

#[test]
fn a_partial_record_is_not_readable() {
    let mem = HeapRing::new(64);
    let r = mem.region();
    let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
    // Header announcing 10 bytes, only 3 of them there yet.
    let _ = p.write_slice(&10u32.to_le_bytes()).unwrap();
    let _ = p.write_slice(&[1, 2, 3]).unwrap();
    assert_eq!(record::head(&mut c), Ok(None));
    let _ = p.write_slice(&[4, 5, 6, 7, 8, 9, 10]).unwrap();
    assert_eq!(
        record::head(&mut c),
        Ok(Some(Head {
            len: 10,
            eor: false
        }))
    );
}
