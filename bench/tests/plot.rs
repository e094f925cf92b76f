// SPDX-License-Identifier: GPL-2.0
//! Runs `yasmin-bench-plot` on hand-made records.

mod common;

use common::assert_success;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the plotting tool on `input`, writing into `out_dir`.
fn plot(input: &Path, out_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yasmin-bench-plot"))
        .args([
            "--input",
            input.to_str().unwrap(),
            "--out-dir",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[test]
fn writes_every_chart_and_the_ratio_table() {
    let dir = std::env::temp_dir().join(format!("yasmin-bench-plot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("results.json");
    let mut lines = Vec::new();
    let ladder: Vec<[f64; 2]> = [
        0., 10., 20., 30., 40., 50., 60., 70., 80., 90., 95., 99., 99.9, 100.,
    ]
    .iter()
    .map(|&p| [p, 5.0 + p])
    .collect();
    for (t, ring, scale) in [
        ("yasmin", Some(65536), 3.0),
        ("yasmin", Some(16384), 2.0),
        ("tcp-netfront", None, 1.0),
    ] {
        for size in [1u64, 4096, 1 << 20] {
            for conns in [1, 2] {
                lines.push(serde_json::json!({
                    "transport": t, "kind": "stream", "direction": "send", "msg_size": size,
                    "ring_size": ring, "connections": conns, "duration_s": 1.0,
                    "throughput_mb_s": scale * size as f64 / 100.0 * conns as f64, "bytes": 1,
                }));
            }
            lines.push(serde_json::json!({
                "transport": t, "kind": "latency", "direction": "pingpong", "msg_size": size,
                "ring_size": ring, "connections": 1, "duration_s": 1.0,
                "p50_us": 10.0 / scale, "p90_us": 12.0, "p99_us": 20.0, "p999_us": 30.0,
                "max_us": 40.0, "count": 100, "percentiles": ladder,
            }));
        }
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let out_dir = dir.join("out");
    let out = plot(&input, &out_dir);
    assert_success(&out);
    for f in [
        "throughput",
        "latency",
        "latency-cdf",
        "ring-size",
        "connections",
    ] {
        let svg = std::fs::read_to_string(out_dir.join(format!("{f}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("yasmin"), "{f}.svg");
        assert!(!svg.contains("(no data)"), "{f}.svg has no data");
    }
    let md = std::fs::read_to_string(out_dir.join("ratios.md")).unwrap();
    // yasmin at the default (most common) ring 64K is 3x tcp-netfront; no unix records.
    assert!(
        md.contains("| 4K | 3.00 | n/a | n/a | n/a | n/a | 0.33 |"),
        "{md}"
    );

    // An empty input still yields every file, marked as empty.
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let out = plot(&empty, &out_dir);
    assert!(out.status.success());
    let svg = std::fs::read_to_string(out_dir.join("throughput.svg")).unwrap();
    assert!(svg.contains("(no data)"));

    // A damaged line is a clear error.
    std::fs::write(&empty, "{\"transport\": 1}\n").unwrap();
    let out = plot(&empty, &out_dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}
