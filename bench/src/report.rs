// SPDX-License-Identifier: GPL-2.0
//! Choosing records for each plot and the ratio table (kept apart from the plotting
//! itself so it is tested without plotters and builds in the static benchmark).
//!
//! Repeated measurements of the same point are reduced to their median.

use crate::record::Record;
use crate::size::format_size;
use std::collections::BTreeMap;
use std::fmt::Write;

pub const YASMIN: &str = "yasmin";
/// The denominators of the stream ratio columns, in table order.
pub const RATIO_PEERS: [&str; 5] = ["tcp-netfront", "unix", "vsock-loopback", "vchan", "memcpy"];
/// The system-call floor: write(2) of each message size to /dev/null in the client's guest.
pub const FLOOR: &str = "write-devnull";
/// The denominator of the latency ratio column.
pub const LATENCY_PEER: &str = "tcp-netfront";

/// Points of one curve, sorted by x.
pub type Points = Vec<(u64, f64)>;

/// The most common `ring_size` of yasmin stream records (the larger on a tie).
pub fn default_ring(records: &[Record]) -> Option<u64> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for r in records {
        if r.transport == YASMIN && r.kind == "stream" {
            if let Some(ring) = r.ring_size {
                *counts.entry(ring).or_default() += 1;
            }
        }
    }
    // max_by_key returns the last maximum, i.e. the largest ring among ties.
    counts
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(ring, _)| ring)
}

fn at_ring(r: &Record, ring: Option<u64>) -> bool {
    r.ring_size.is_none() || r.ring_size == ring
}

/// Stream records comparable with the `send` curves (memcpy's `copy` and the system-call
/// floor's `syscall` included).
fn is_send(r: &Record) -> bool {
    r.kind == "stream" && matches!(r.direction.as_str(), "send" | "copy" | "syscall")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The records of the headline comparison: one connection, at the default ring (records
/// of other transports carry no ring).
fn headline(records: &[Record]) -> impl Iterator<Item = &Record> {
    let ring = default_ring(records);
    records
        .iter()
        .filter(move |r| r.connections == 1 && at_ring(r, ring))
}

/// Gathers `(curve, x, y)` triples: every y measured at each x of each curve.
fn gather<K: Ord>(
    items: impl Iterator<Item = (K, u64, f64)>,
) -> BTreeMap<K, BTreeMap<u64, Vec<f64>>> {
    let mut m: BTreeMap<K, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for (k, x, y) in items {
        m.entry(k).or_default().entry(x).or_default().push(y);
    }
    m
}

/// Groups `(curve, x, y)` triples into curves of median-reduced points.
fn group<K: Ord>(items: impl Iterator<Item = (K, u64, f64)>) -> BTreeMap<K, Points> {
    gather(items)
        .into_iter()
        .map(|(k, pts)| (k, pts.into_iter().map(|(x, ys)| (x, median(ys))).collect()))
        .collect()
}

/// Send throughput (MB/s) vs message size per transport: one connection, default ring.
pub fn throughput_series(records: &[Record]) -> BTreeMap<String, Points> {
    group(
        headline(records)
            .filter(|r| is_send(r))
            .filter_map(|r| Some((r.transport.clone(), r.msg_size, r.throughput_mb_s?))),
    )
}

/// p50 and p99 latency (us) vs message size per transport: one connection, default ring.
pub fn latency_series(records: &[Record]) -> (BTreeMap<String, Points>, BTreeMap<String, Points>) {
    let sel = || headline(records).filter(|r| r.kind == "latency");
    (
        group(sel().filter_map(|r| Some((r.transport.clone(), r.msg_size, r.p50_us?)))),
        group(sel().filter_map(|r| Some((r.transport.clone(), r.msg_size, r.p99_us?)))),
    )
}

/// The percentile ladder (`[percentile, us]`) of `msg_size`-byte latency per transport:
/// the last such record of each (ladders cannot be merged).
pub fn cdf_series(records: &[Record], msg_size: u64) -> BTreeMap<String, Vec<[f64; 2]>> {
    headline(records)
        .filter(|r| r.kind == "latency" && r.msg_size == msg_size)
        .filter_map(|r| Some((r.transport.clone(), r.percentiles.clone()?)))
        .collect()
}

/// yasmin send throughput vs ring size, one curve per message size.
pub fn ring_series(records: &[Record]) -> BTreeMap<u64, Points> {
    group(
        records
            .iter()
            .filter(|r| r.transport == YASMIN && is_send(r) && r.connections == 1)
            .filter_map(|r| Some((r.msg_size, r.ring_size?, r.throughput_mb_s?))),
    )
}

/// Send throughput vs connection count per transport, at the message size measured
/// with the most (transport, connections) pairs (the larger on a tie).
pub fn connections_series(records: &[Record]) -> Option<(u64, BTreeMap<String, Points>)> {
    let ring = default_ring(records);
    let sel: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == "stream" && r.direction == "send" && at_ring(r, ring))
        .collect();
    let mut pairs: BTreeMap<u64, std::collections::BTreeSet<(&str, u32)>> = BTreeMap::new();
    for r in &sel {
        pairs
            .entry(r.msg_size)
            .or_default()
            .insert((&r.transport, r.connections));
    }
    let (size, _) = pairs.into_iter().max_by_key(|(_, s)| s.len())?;
    let series = group(sel.iter().filter(|r| r.msg_size == size).filter_map(|r| {
        Some((
            r.transport.clone(),
            u64::from(r.connections),
            r.throughput_mb_s?,
        ))
    }));
    Some((size, series))
}

/// One message size of the ratio table.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRow {
    pub msg_size: u64,
    /// yasmin / peer stream throughput, in [`RATIO_PEERS`] order.
    pub stream: Vec<Option<f64>>,
    /// yasmin p50 / tcp-netfront p50 (below 1: yasmin is faster).
    pub latency_p50: Option<f64>,
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 && n.is_finite() && d.is_finite() => Some(n / d),
        _ => None,
    }
}

fn lookup(series: &BTreeMap<String, Points>, transport: &str, size: u64) -> Option<f64> {
    let pts = series.get(transport)?;
    pts.iter().find(|(x, _)| *x == size).map(|(_, y)| *y)
}

/// Ratios at every message size that any selected stream or latency record has.
pub fn ratio_rows(records: &[Record]) -> Vec<RatioRow> {
    let tput = throughput_series(records);
    let (p50, _) = latency_series(records);
    let mut sizes: Vec<u64> = tput
        .values()
        .chain(p50.values())
        .flat_map(|pts| pts.iter().map(|(x, _)| *x))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
        .into_iter()
        .map(|size| RatioRow {
            msg_size: size,
            stream: RATIO_PEERS
                .iter()
                .map(|peer| ratio(lookup(&tput, YASMIN, size), lookup(&tput, peer, size)))
                .collect(),
            latency_p50: ratio(lookup(&p50, YASMIN, size), lookup(&p50, LATENCY_PEER, size)),
        })
        .collect()
}

/// One figure measured over several rounds: its median and range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// How many rounds (or runs) it comes from.
    pub n: usize,
}

impl Spread {
    fn of(v: Vec<f64>) -> Option<Spread> {
        let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        let min = v.iter().copied().reduce(f64::min)?;
        let max = v.iter().copied().reduce(f64::max)?;
        let n = v.len();
        Some(Spread {
            median: median(v),
            min,
            max,
            n,
        })
    }

    /// (max - min) / median: the range as a share of the median.
    pub fn relative_range(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// Send throughput per transport and message size (1 connection, default ring): the
/// spread over every run of that point (the rounds of an interleaved series).
pub fn throughput_spread(records: &[Record]) -> BTreeMap<String, BTreeMap<u64, Spread>> {
    gather(
        headline(records)
            .filter(|r| is_send(r))
            .filter_map(|r| Some((r.transport.clone(), r.msg_size, r.throughput_mb_s?))),
    )
    .into_iter()
    .map(|(t, pts)| {
        let pts = pts
            .into_iter()
            .filter_map(|(x, ys)| Some((x, Spread::of(ys)?)))
            .collect();
        (t, pts)
    })
    .collect()
}

/// A figure of yasmin's and of `peer`'s, per round and message size (1 connection,
/// default ring).
fn by_round(records: &[Record], transport: &str, latency: bool) -> BTreeMap<(u64, u32), f64> {
    headline(records)
        .filter(|r| r.transport == transport)
        .filter(|r| {
            if latency {
                r.kind == "latency"
            } else {
                is_send(r)
            }
        })
        .filter_map(|r| {
            let y = if latency { r.p50_us } else { r.throughput_mb_s }?;
            Some(((r.msg_size, r.round?), y))
        })
        .collect()
}

/// Ratios taken within each round (interleaved series): yasmin's send throughput over
/// `peer`'s, or with `latency` yasmin's p50 round trip over `peer`'s, one per round that
/// measured both at a size; their spread per message size.
pub fn round_ratios(records: &[Record], peer: &str, latency: bool) -> BTreeMap<u64, Spread> {
    let ours = by_round(records, YASMIN, latency);
    let theirs = by_round(records, peer, latency);
    let mut per_size: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (key, y) in &ours {
        if let Some(r) = ratio(Some(*y), theirs.get(key).copied()) {
            per_size.entry(key.0).or_default().push(r);
        }
    }
    per_size
        .into_iter()
        .filter_map(|(size, v)| Some((size, Spread::of(v)?)))
        .collect()
}

fn spread_cell(s: Option<&Spread>) -> String {
    s.map_or_else(
        || "n/a".to_string(),
        |s| format!("{:.2} [{:.2}-{:.2}] ({})", s.median, s.min, s.max, s.n),
    )
}

/// The per-round table: ratios within each round, as median [min-max] (rounds).
fn round_markdown(records: &[Record], s: &mut String) {
    let columns: Vec<(String, BTreeMap<u64, Spread>)> = RATIO_PEERS
        .iter()
        .filter(|p| **p != "memcpy")
        .map(|p| (format!("{YASMIN} / {p}"), round_ratios(records, p, false)))
        .chain(core::iter::once((
            format!("p50 latency {YASMIN} / {LATENCY_PEER}"),
            round_ratios(records, LATENCY_PEER, true),
        )))
        .collect();
    let mut sizes: Vec<u64> = columns
        .iter()
        .flat_map(|(_, m)| m.keys().copied())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Per round\n\nEach ratio is taken between the two transports' runs of the same \
         round (the transports run one after the other, round after round), then reduced \
         to median [lowest-highest] (rounds).\n"
    );
    s.push_str("| msg size |");
    for (name, _) in &columns {
        let _ = write!(s, " {name} |");
    }
    s.push_str("\n|---:|");
    s.push_str(&"---:|".repeat(columns.len()));
    s.push('\n');
    for size in sizes {
        let _ = write!(s, "| {} |", format_size(size));
        for (_, m) in &columns {
            let _ = write!(s, " {} |", spread_cell(m.get(&size)));
        }
        s.push('\n');
    }
}

/// What one unit of work cost a transport, median over its runs: per MB delivered
/// (stream, send) or per round trip (latency), in the client's guest.
#[derive(Clone, Debug, PartialEq)]
pub struct CostRow {
    pub transport: String,
    /// `stream` (per MB) or `latency` (per round trip).
    pub kind: String,
    pub msg_size: u64,
    pub ctxt: Option<f64>,
    pub intr: Option<f64>,
    pub signals: Option<f64>,
}

/// Units of work per second of a record: MB/s, or round trips per second.
fn units_per_s(r: &Record) -> Option<f64> {
    let u = if r.kind == "latency" {
        r.count? as f64 / r.duration_s
    } else {
        r.throughput_mb_s?
    };
    (u > 0.0 && u.is_finite()).then_some(u)
}

/// Cost rows (1 connection, default ring) for every transport and size with counters.
pub fn cost_rows(records: &[Record]) -> Vec<CostRow> {
    type Key = (String, String, u64);
    let mut m: BTreeMap<Key, [Vec<f64>; 3]> = BTreeMap::new();
    for r in
        headline(records).filter(|r| r.kind == "latency" || (is_send(r) && r.direction == "send"))
    {
        let (Some(secs), Some(units)) = (r.counted_s, units_per_s(r)) else {
            continue;
        };
        if secs <= 0.0 {
            continue;
        }
        let e = m
            .entry((r.transport.clone(), r.kind.clone(), r.msg_size))
            .or_default();
        for (v, c) in e.iter_mut().zip([r.ctxt, r.intr, r.yasmin_signals]) {
            if let Some(c) = c {
                v.push(c as f64 / secs / units);
            }
        }
    }
    m.into_iter()
        .map(|((transport, kind, msg_size), [c, i, sg])| {
            let med = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
            CostRow {
                transport,
                kind,
                msg_size,
                ctxt: med(c),
                intr: med(i),
                signals: med(sg),
            }
        })
        .collect()
}

/// `costs.md`: the cost rows as two tables (stream per MB, latency per round trip).
pub fn cost_markdown(records: &[Record]) -> String {
    let rows = cost_rows(records);
    let mut s = String::from(
        "# yasmin-bench costs\n\nGuest-wide counters of the client's guest over each run \
         (connect to close, warm-up included), per unit of work, median over the runs: \
         context switches and interrupts (/proc/stat), and YASMIN's event-channel signals \
         sent plus received (each a hypercall on the sending side; 0 for the other \
         transports unless YASMIN traffic ran beside them). 1 connection, default ring.\n",
    );
    for (kind, unit) in [("stream", "per MB"), ("latency", "per round trip")] {
        let _ = writeln!(
            s,
            "\n## {kind} ({unit})\n\n| transport | msg size | context switches | interrupts | yasmin signals |\n|---|---:|---:|---:|---:|"
        );
        let mut any = false;
        for r in rows.iter().filter(|r| r.kind == kind) {
            any = true;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.transport,
                format_size(r.msg_size),
                cell(r.ctxt),
                cell(r.intr),
                cell(r.signals)
            );
        }
        if !any {
            s.push_str("\n(no records with counters)\n");
        }
    }
    s
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"))
}

pub fn ratio_markdown(records: &[Record]) -> String {
    let rows = ratio_rows(records);
    let ring = default_ring(records).map_or_else(|| "not recorded".to_string(), format_size);
    let mut s = String::new();
    s.push_str("# yasmin-bench ratios\n\n");
    let _ = writeln!(
        s,
        "Stream columns: yasmin send throughput divided by the other transport's \
         (1 connection, yasmin ring size {ring}; above 1: yasmin moves more). \
         Latency column: yasmin p50 round trip divided by {LATENCY_PEER}'s \
         (below 1: yasmin is faster). n/a: a transport was not measured at that size.\n"
    );
    s.push_str("| msg size |");
    for peer in RATIO_PEERS {
        let _ = write!(s, " {YASMIN} / {peer} |");
    }
    let _ = writeln!(s, " p50 latency {YASMIN} / {LATENCY_PEER} |");
    s.push_str("|---:|");
    s.push_str(&"---:|".repeat(RATIO_PEERS.len() + 1));
    s.push('\n');
    for row in &rows {
        let _ = write!(s, "| {} |", format_size(row.msg_size));
        for v in &row.stream {
            let _ = write!(s, " {} |", cell(*v));
        }
        let _ = writeln!(s, " {} |", cell(row.latency_p50));
    }
    if rows.is_empty() {
        s.push_str("\n(no matching records)\n");
    }
    round_markdown(records, &mut s);
    floor_markdown(records, &mut s);
    s
}

/// One message size against the system-call floor.
#[derive(Debug, PartialEq)]
pub struct FloorRow {
    pub msg_size: u64,
    /// write(2) to /dev/null, MB/s.
    pub floor: f64,
    /// yasmin's and tcp-netfront's send throughput as a fraction of the floor.
    pub yasmin: Option<f64>,
    pub tcp: Option<f64>,
    /// floor / tcp-netfront: the yasmin/netfront ratio a send costing nothing beyond its
    /// system call would reach.
    pub ceiling: Option<f64>,
}

/// Stream throughput against the system-call floor at every size the floor was measured.
pub fn floor_rows(records: &[Record]) -> Vec<FloorRow> {
    let tput = throughput_series(records);
    let Some(floor) = tput.get(FLOOR) else {
        return Vec::new();
    };
    floor
        .iter()
        .map(|&(size, f)| FloorRow {
            msg_size: size,
            floor: f,
            yasmin: ratio(lookup(&tput, YASMIN, size), Some(f)),
            tcp: ratio(lookup(&tput, LATENCY_PEER, size), Some(f)),
            ceiling: ratio(Some(f), lookup(&tput, LATENCY_PEER, size)),
        })
        .collect()
}

fn floor_markdown(records: &[Record], s: &mut String) {
    let rows = floor_rows(records);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## The system-call floor\n\nwrite(2) of each message size to /dev/null in the \
         client's guest: the cost of the system call alone, under every socket's send. \
         Fractions: a transport's send throughput over the floor's. Ceiling: floor / \
         {LATENCY_PEER}, the {YASMIN}/{LATENCY_PEER} ratio a send that cost nothing beyond \
         its system call would reach.\n"
    );
    let _ = writeln!(
        s,
        "| msg size | floor MB/s | {YASMIN} / floor | {LATENCY_PEER} / floor | ceiling |"
    );
    s.push_str("|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} | {} |",
            format_size(r.msg_size),
            r.floor,
            cell(r.yasmin),
            cell(r.tcp),
            cell(r.ceiling)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(t: &str, size: u64, mbs: f64, ring: Option<u64>, conns: u32) -> Record {
        Record {
            transport: t.into(),
            kind: "stream".into(),
            direction: if t == "memcpy" { "copy" } else { "send" }.into(),
            msg_size: size,
            ring_size: ring,
            connections: conns,
            duration_s: 1.0,
            throughput_mb_s: Some(mbs),
            bytes: Some((mbs * 1e6) as u64),
            ..Record::default()
        }
    }

    fn latency(t: &str, size: u64, p50: f64) -> Record {
        Record {
            transport: t.into(),
            kind: "latency".into(),
            direction: "pingpong".into(),
            msg_size: size,
            connections: 1,
            duration_s: 1.0,
            p50_us: Some(p50),
            p99_us: Some(p50 * 2.0),
            ..Record::default()
        }
    }

    fn sample() -> Vec<Record> {
        vec![
            stream("yasmin", 1, 10.0, Some(65536), 1),
            stream("yasmin", 1, 30.0, Some(65536), 1), // median with the above: 20
            stream("yasmin", 4096, 800.0, Some(65536), 1),
            stream("yasmin", 4096, 999.0, Some(4096), 1), // other ring: not in ratios
            stream("yasmin", 4096, 1500.0, Some(65536), 2), // 2 connections: not in ratios
            stream("tcp-netfront", 1, 5.0, None, 1),
            stream("tcp-netfront", 4096, 400.0, None, 1),
            stream("unix", 4096, 1600.0, None, 1),
            stream("memcpy", 1, 200.0, None, 1),
            stream("memcpy", 4096, 8000.0, None, 1),
            // tcp-netfront recv: a different direction, ignored.
            Record {
                direction: "recv".into(),
                ..stream("tcp-netfront", 4096, 1.0, None, 1)
            },
            latency("yasmin", 1, 30.0),
            latency("tcp-netfront", 1, 60.0),
            latency("yasmin", 64, 40.0),
        ]
    }

    #[test]
    fn picks_default_ring() {
        assert_eq!(default_ring(&sample()), Some(65536));
        assert_eq!(default_ring(&[]), None);
        let tie = [
            stream("yasmin", 1, 1.0, Some(4096), 1),
            stream("yasmin", 1, 1.0, Some(8192), 1),
        ];
        assert_eq!(default_ring(&tie), Some(8192));
    }

    #[test]
    fn computes_ratios_with_missing_transports() {
        let rows = ratio_rows(&sample());
        assert_eq!(rows.len(), 3);
        let (r1, r64, r4k) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!(r1.msg_size, 1);
        // tcp-netfront, unix, vsock-loopback, vchan, memcpy
        assert_eq!(r1.stream, vec![Some(4.0), None, None, None, Some(0.1)]);
        assert_eq!(r1.latency_p50, Some(0.5));
        assert_eq!(r64.msg_size, 64);
        assert_eq!(r64.stream, vec![None; 5]);
        assert_eq!(r64.latency_p50, None);
        assert_eq!(r4k.msg_size, 4096);
        assert_eq!(
            r4k.stream,
            vec![Some(2.0), Some(0.5), None, None, Some(0.1)]
        );
        assert_eq!(r4k.latency_p50, None);
    }

    #[test]
    fn renders_markdown() {
        let md = ratio_markdown(&sample());
        assert!(
            md.contains("| msg size | yasmin / tcp-netfront | yasmin / unix |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 | 4.00 | n/a | n/a | n/a | 0.10 | 0.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| 4K | 2.00 | 0.50 | n/a | n/a | 0.10 | n/a |"),
            "{md}"
        );
        assert!(md.contains("ring size 64K"), "{md}");
        assert!(ratio_markdown(&[]).contains("no matching records"));
    }

    fn in_round(mut r: Record, round: u32) -> Record {
        r.round = Some(round);
        r
    }

    #[test]
    fn ratios_are_taken_within_rounds() {
        // Round 2 is twice as fast for both: within each round the ratio is 2.
        let recs = vec![
            in_round(stream("yasmin", 64, 20.0, Some(65536), 1), 1),
            in_round(stream("tcp-netfront", 64, 10.0, None, 1), 1),
            in_round(stream("yasmin", 64, 40.0, Some(65536), 1), 2),
            in_round(stream("tcp-netfront", 64, 20.0, None, 1), 2),
            in_round(stream("yasmin", 64, 33.0, Some(65536), 1), 3), // tcp missing in round 3
            in_round(latency("yasmin", 1, 30.0), 1),
            in_round(latency("tcp-netfront", 1, 60.0), 1),
            in_round(latency("yasmin", 1, 10.0), 2),
            in_round(latency("tcp-netfront", 1, 40.0), 2),
        ];
        let r = round_ratios(&recs, "tcp-netfront", false);
        assert_eq!(
            r[&64],
            Spread {
                median: 2.0,
                min: 2.0,
                max: 2.0,
                n: 2
            }
        );
        let l = round_ratios(&recs, "tcp-netfront", true);
        assert_eq!(l[&1].n, 2);
        assert_eq!((l[&1].min, l[&1].max), (0.25, 0.5));
        assert_eq!(l[&1].median, 0.375);
        let t = throughput_spread(&recs);
        let y = t["yasmin"][&64];
        assert_eq!((y.min, y.median, y.max, y.n), (20.0, 33.0, 40.0, 3));
        assert!((y.relative_range() - 20.0 / 33.0).abs() < 1e-12);
        let md = ratio_markdown(&recs);
        assert!(md.contains("## Per round"), "{md}");
        assert!(md.contains("| 64 | 2.00 [2.00-2.00] (2) |"), "{md}");
        // Records without rounds: no per-round table.
        assert!(!ratio_markdown(&sample()).contains("Per round"));
    }

    #[test]
    fn costs_per_unit_of_work() {
        let mut a = stream("yasmin", 64, 10.0, Some(65536), 1); // 10 MB/s
        a.counted_s = Some(2.0);
        a.ctxt = Some(400); // 200/s over 10 MB/s: 20 per MB
        a.intr = Some(100);
        a.yasmin_signals = Some(60);
        let mut b = stream("tcp-netfront", 64, 5.0, None, 1);
        b.counted_s = Some(1.0);
        b.ctxt = Some(50); // 10 per MB
        let mut l = latency("yasmin", 1, 30.0);
        l.count = Some(1000); // 1000 round trips per second (duration 1 s)
        l.counted_s = Some(2.0);
        l.ctxt = Some(8000); // 4 per round trip
        let none = stream("unix", 64, 5.0, None, 1); // no counters: no row
        let rows = cost_rows(&[a, b, l, none]);
        assert_eq!(rows.len(), 3);
        let y = rows
            .iter()
            .find(|r| r.transport == "yasmin" && r.kind == "stream")
            .unwrap();
        assert_eq!(
            (y.ctxt, y.intr, y.signals),
            (Some(20.0), Some(5.0), Some(3.0))
        );
        let t = rows.iter().find(|r| r.transport == "tcp-netfront").unwrap();
        assert_eq!((t.ctxt, t.intr), (Some(10.0), None));
        let yl = rows.iter().find(|r| r.kind == "latency").unwrap();
        assert_eq!(yl.ctxt, Some(4.0));
        let md = cost_markdown(&rows_records());
        assert!(md.contains("no records with counters"), "{md}");
    }

    fn rows_records() -> Vec<Record> {
        sample()
    }

    #[test]
    fn selects_plot_series() {
        let recs = sample();
        let t = throughput_series(&recs);
        assert_eq!(t["yasmin"], vec![(1, 20.0), (4096, 800.0)]);
        assert!(t.contains_key("memcpy"));
        let ring = ring_series(&recs);
        assert_eq!(ring[&4096], vec![(4096, 999.0), (65536, 800.0)]);
        let (size, conns) = connections_series(&recs).unwrap();
        assert_eq!(size, 4096);
        assert_eq!(conns["yasmin"], vec![(1, 800.0), (2, 1500.0)]);
        let (p50, p99) = latency_series(&recs);
        assert_eq!(p50["yasmin"], vec![(1, 30.0), (64, 40.0)]);
        assert_eq!(p99["tcp-netfront"], vec![(1, 120.0)]);
    }

    #[test]
    fn floor_rows_compare_with_the_system_call() {
        let mut floor = stream(FLOOR, 64, 40.0, None, 1);
        floor.direction = "syscall".into();
        let recs = vec![
            floor,
            stream(YASMIN, 64, 20.0, Some(65536), 1),
            stream("tcp-netfront", 64, 10.0, None, 1),
            stream(YASMIN, 4096, 300.0, Some(65536), 1),
        ];
        let rows = floor_rows(&recs);
        assert_eq!(
            rows,
            vec![FloorRow {
                msg_size: 64,
                floor: 40.0,
                yasmin: Some(0.5),
                tcp: Some(0.25),
                ceiling: Some(4.0),
            }]
        );
        let md = ratio_markdown(&recs);
        assert!(md.contains("## The system-call floor"));
        assert!(md.contains("| 64 | 40.0 | 0.50 | 0.25 | 4.00 |"), "{md}");
        // No floor measured: no section.
        assert!(!ratio_markdown(&recs[1..]).contains("system-call floor"));
    }
}
