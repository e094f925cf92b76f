// SPDX-License-Identifier: GPL-2.0
//! One result as a JSON Lines record (see README.md for the fields).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Percentiles of the latency ladder written into `percentiles`.
pub const LADDER: [f64; 14] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.9, 100.0,
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `--transport-label`: yasmin, tcp-netfront, unix, vsock-loopback, vchan, memcpy...
    pub transport: String,
    /// `stream` or `latency`.
    pub kind: String,
    /// `send`, `recv`, `duplex` (stream), `pingpong` (latency) or `copy` (memcpy).
    pub direction: String,
    pub msg_size: u64,
    /// `--ring-size`, a label (null when not given).
    pub ring_size: Option<u64>,
    /// `--buffer-size` as set on the socket (null when not given).
    #[serde(default)]
    pub buffer_size: Option<u64>,
    pub connections: u32,
    /// Requested measurement time (warm-up excluded).
    pub duration_s: f64,
    #[serde(default)]
    pub warmup_s: f64,
    /// Measured window (mean over connections and directions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_mb_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `[percentile, us]` pairs at [`LADDER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<Vec<[f64; 2]>>,
    /// Where the client connected (null for memcpy).
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub pin: Option<usize>,
    /// Seconds since the Unix epoch when the record was written.
    #[serde(default)]
    pub unix_time: u64,
    /// `--round`: the round of an interleaved series (every transport once per round),
    /// so that ratios are taken between runs of the same round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Guest-wide counters over the run (`costs`: connect to close, warm-up included):
    /// context switches and interrupts of the client's guest, YASMIN's event-channel
    /// signals there (sent + received), and the seconds they were counted over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctxt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yasmin_signals: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_s: Option<f64>,
}

impl Record {
    /// Prints the record to stdout and appends it to `json` (if given) as one line.
    pub fn emit(&self, json: Option<&Path>) -> Result<()> {
        let line = serde_json::to_string(self).context("serialising record")?;
        println!("{line}");
        if let Some(path) = json {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            // One write per line so concurrent appenders do not interleave.
            f.write_all(format!("{line}\n").as_bytes())
                .with_context(|| format!("appending to {}", path.display()))?;
        }
        Ok(())
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads a JSON Lines file of records (blank lines are skipped).
pub fn load(path: &Path) -> Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_lines(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_lines(text: &str) -> Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_record_shape() {
        let r = Record {
            transport: "yasmin".into(),
            kind: "stream".into(),
            direction: "send".into(),
            msg_size: 4096,
            connections: 2,
            duration_s: 1.0,
            throughput_mb_s: Some(12.5),
            bytes: Some(12_500_000),
            ..Record::default()
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let o = v.as_object().unwrap();
        for k in [
            "transport",
            "kind",
            "direction",
            "msg_size",
            "ring_size",
            "connections",
            "duration_s",
            "throughput_mb_s",
            "bytes",
        ] {
            assert!(o.contains_key(k), "{k} missing in {v}");
        }
        // ring_size is always present, null when not given.
        assert!(o["ring_size"].is_null());
        assert!(!o.contains_key("p50_us"));
        assert_eq!(o["throughput_mb_s"], 12.5);
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn latency_record_shape() {
        let r = Record {
            transport: "tcp-netfront".into(),
            kind: "latency".into(),
            direction: "pingpong".into(),
            msg_size: 1,
            ring_size: Some(65536),
            connections: 1,
            p50_us: Some(10.0),
            p90_us: Some(11.0),
            p99_us: Some(12.0),
            p999_us: Some(13.0),
            max_us: Some(14.0),
            count: Some(1000),
            percentiles: Some(LADDER.iter().map(|&p| [p, p]).collect()),
            ..Record::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "count"] {
            assert!(v[k].is_number(), "{k} in {v}");
        }
        assert_eq!(v["ring_size"], 65536);
        assert_eq!(v["percentiles"].as_array().unwrap().len(), LADDER.len());
        assert!(!line.contains('\n'));
        assert_eq!(
            parse_lines(&format!("{line}\n\n{line}\n")).unwrap().len(),
            2
        );
        assert!(parse_lines("{}\n").is_err());
    }
}
