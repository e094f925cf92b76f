// SPDX-License-Identifier: GPL-2.0
//! Ring throughput benchmark (not a test).
//!
//! Two threads (producer, consumer) move messages through one ring in userspace, polling
//! (no sleeping), and the result is compared with a single thread doing one `memcpy` per
//! message with the same sizes: message-sized blocks copied from a message-sized source into
//! a ring-sized destination, cycling through it (i.e. one side's copy with the same
//! footprint). The ring does two copies per byte (in and out) on two cores, so 1.0x means
//! the pipeline fully hides the second copy and the cross-core transfer.
//!
//! `cargo bench -p ring --bench throughput -- [--ms 120] [--json PATH] [--msg 65536 --ring 524288]`
//! prints a markdown table and writes JSON (default `target/ring-bench.json`). Not meant for
//! `--cfg loom` builds (it compiles there, but the header would be misinterpreted).

#[path = "../tests/common/mod.rs"]
mod common;

use clap::Parser;
use common::HeapRing;
use ring::{Consumer, Producer};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "YASMIN ring throughput vs single-threaded memcpy")]
struct Args {
    /// Measurement time per point and per side (ring run and memcpy run), milliseconds.
    #[arg(long, default_value_t = 120)]
    ms: u64,
    /// Message sizes in bytes (default 64 B .. 1 MiB, powers of 4).
    #[arg(long, value_delimiter = ',')]
    msg: Vec<usize>,
    /// Ring data sizes in bytes (default 4 KiB .. 2 MiB).
    #[arg(long, value_delimiter = ',')]
    ring: Vec<usize>,
    /// Where to write the JSON results (default: the workspace's `target/ring-bench.json`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/ring-bench.json"))]
    json: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Busy-polling wait step: spin, but yield the CPU now and then so that a descheduled peer
/// thread (e.g. other load on a 2-CPU machine) can run.
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins % 1024 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// Bytes per second moved through a ring of `ring` bytes in `msg`-byte messages.
fn ring_run(msg: usize, ring: usize, dur: Duration) -> f64 {
    let mem = Arc::new(HeapRing::new(ring));
    let region = mem.region();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (stop, _mem) = (stop.clone(), mem.clone());
        std::thread::spawn(move || {
            let src: Vec<u8> = (0..msg).map(|i| i as u8).collect();
            let mut p = Producer::new(region);
            let mut spins = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut off = 0;
                while off < msg {
                    let t = p.write_slice(&src[off..]).expect("corrupt");
                    off += t.bytes;
                    if t.bytes == 0 {
                        backoff(&mut spins);
                    } else {
                        spins = 0;
                    }
                }
            }
            let _ = p.close();
        })
    };
    let mut c = Consumer::new(region);
    let mut dst = vec![0u8; msg];
    let mut bytes = 0u64;
    let mut warm = true;
    let mut t0 = Instant::now();
    let mut polls = 0u32;
    let mut spins = 0u32;
    loop {
        let t = c.read_slice(&mut dst).expect("corrupt");
        if t.bytes > 0 {
            black_box(&dst);
            bytes += t.bytes as u64;
            polls += 1;
            if polls >= 64 {
                polls = 0;
                let el = t0.elapsed();
                if warm && el >= dur / 4 {
                    // Warm-up done (caches, page faults): start measuring.
                    warm = false;
                    bytes = 0;
                    t0 = Instant::now();
                } else if !warm && el >= dur {
                    break;
                }
            }
            spins = 0;
        } else if c.at_eof().expect("corrupt") {
            break;
        } else {
            backoff(&mut spins);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Drain so the producer can finish its last message and close.
    while !c.at_eof().expect("corrupt") {
        let _ = c.read_slice(&mut dst);
    }
    producer.join().expect("producer");
    bytes as f64 / secs
}

/// Bytes per second of one thread copying `msg`-byte blocks into a `ring`-byte buffer.
fn memcpy_run(msg: usize, ring: usize, dur: Duration) -> f64 {
    let src: Vec<u8> = (0..msg).map(|i| i as u8).collect();
    let mut dst = vec![0u8; ring.max(msg)];
    let mut off = 0usize;
    let mut copy = |off: &mut usize| {
        // Same segmentation as the ring: wrap at the end of the destination.
        let mut done = 0;
        while done < msg {
            let n = (msg - done).min(dst.len() - *off);
            dst[*off..*off + n].copy_from_slice(&src[done..done + n]);
            done += n;
            *off = (*off + n) % dst.len();
        }
        black_box(&mut dst);
    };
    let warm = Instant::now();
    while warm.elapsed() < dur / 4 {
        copy(&mut off);
    }
    let t0 = Instant::now();
    let mut bytes = 0u64;
    loop {
        for _ in 0..64 {
            copy(&mut off);
        }
        bytes += 64 * msg as u64;
        if t0.elapsed() >= dur {
            break;
        }
    }
    bytes as f64 / t0.elapsed().as_secs_f64()
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn main() {
    let mut args = Args::parse();
    if args.msg.is_empty() {
        args.msg = vec![
            64,
            256,
            1 << 10,
            4 << 10,
            16 << 10,
            64 << 10,
            256 << 10,
            1 << 20,
        ];
    }
    if args.ring.is_empty() {
        args.ring = vec![4 << 10, 16 << 10, 64 << 10, 512 << 10, 2 << 20];
    }
    let dur = Duration::from_millis(args.ms);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let start = Instant::now();
    let mut points = Vec::new();
    println!(
        "ring throughput / single-threaded memcpy throughput ({cpus} CPUs, {} ms per point)\n",
        args.ms
    );
    let mut header = String::from("| message \\ ring |");
    let mut sep = String::from("|---|");
    for &r in &args.ring {
        header += &format!(" {} |", human(r));
        sep += "---|";
    }
    println!("{header}\n{sep}");
    for &m in &args.msg {
        let mut line = format!("| {} |", human(m));
        for &r in &args.ring {
            let base = memcpy_run(m, r, dur);
            let thr = ring_run(m, r, dur);
            let ratio = thr / base;
            line += &format!(" {ratio:.2}x ({:.1} GB/s) |", thr / 1e9);
            points.push(serde_json::json!({
                "msg_bytes": m,
                "ring_bytes": r,
                "ring_bytes_per_sec": thr,
                "memcpy_bytes_per_sec": base,
                "ratio": ratio,
            }));
        }
        println!("{line}");
    }
    let target = points
        .iter()
        .find(|p| p["msg_bytes"] == 64 << 10 && p["ring_bytes"] == 512 << 10)
        .map(|p| p["ratio"].as_f64().unwrap_or(0.0));
    if let Some(t) = target {
        println!("\ntarget point (64 KiB messages, 512 KiB ring): {t:.2}x memcpy (goal >= 0.90x)");
    }
    let doc = serde_json::json!({
        "cpus": cpus,
        "ms_per_point": args.ms,
        "baseline": "single thread, memcpy of msg-sized blocks into a ring-sized buffer",
        "points": points,
        "target_ratio_64k_msg_512k_ring": target,
        "elapsed_sec": start.elapsed().as_secs_f64(),
    });
    if let Some(dir) = std::path::Path::new(&args.json).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&doc).expect("json"),
    ) {
        Ok(()) => println!(
            "JSON: {} ({:.0} s)",
            args.json,
            start.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("cannot write {}: {e}", args.json),
    }
}
