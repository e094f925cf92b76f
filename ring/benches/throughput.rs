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
//! A second baseline, measured in the same run with the same polling loops, is a two-thread
//! "cross-core handoff" with no ring logic ([`Handoff`]): the same buffer cut into
//! message-sized slots, one slot counter per side published Release / read Acquire, no
//! validation, no fence, no wake-up bits. It is the floor for moving bytes between two cores
//! with two copies; ring / handoff near 1.0x means the ring adds no cost of its own.
//!
//! `cargo bench -p ring --bench throughput -- [--ms 120] [--json PATH] [--msg 65536 --ring 524288]`
//! prints a markdown table and writes JSON (default `target/ring-bench.json`). Not meant for
//! `--cfg loom` builds (it compiles there, but the header would be misinterpreted).

#[path = "../tests/common/mod.rs"]
mod common;

use clap::Parser;
use common::HeapRing;
use ring::{Consumer, Producer, FLAG_CLOSED, OFF_CONS, OFF_PROD, OFF_PROD_FLAGS};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "YASMIN ring throughput vs single-threaded memcpy and a two-thread handoff")]
struct Args {
    /// Measurement time per point and per run (ring, memcpy, handoff), milliseconds.
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

/// Producer side of a two-thread byte pipe under test.
trait Tx: Send + 'static {
    /// Sends a prefix of `src` (non-empty); returns its length, 0 if there is no room now.
    fn send(&mut self, src: &[u8]) -> usize;
    /// End of stream.
    fn finish(&mut self);
}

/// Consumer side of a two-thread byte pipe under test.
trait Rx {
    /// Receives up to `dst.len()` bytes; returns how many, 0 if nothing is there now.
    fn recv(&mut self, dst: &mut [u8]) -> usize;
    /// The producer finished and everything it sent has been received.
    fn finished(&mut self) -> bool;
}

/// Ring producer (keeps the memory alive).
struct RingTx {
    p: Producer,
    _mem: Arc<HeapRing>,
}
/// Ring consumer (also keeps the memory alive: the producer thread may end first).
struct RingRx {
    c: Consumer,
    _mem: Arc<HeapRing>,
}

impl Tx for RingTx {
    fn send(&mut self, src: &[u8]) -> usize {
        self.p.write_slice(src).expect("corrupt").bytes
    }
    fn finish(&mut self) {
        let _ = self.p.close();
    }
}

impl Rx for RingRx {
    fn recv(&mut self, dst: &mut [u8]) -> usize {
        self.c.read_slice(dst).expect("corrupt").bytes
    }
    fn finished(&mut self) -> bool {
        self.c.at_eof().expect("corrupt")
    }
}

/// Cross-core handoff with no ring logic: the same allocation as the ring (header page, then
/// `ring` data bytes), the data area cut into `nslots` slots of `slot` bytes. The producer
/// copies a chunk into the next free slot and publishes a slot counter (Release store in the
/// `prod` word); the consumer waits for it (Acquire), copies the chunk out and publishes its
/// own counter in the `cons` word (another cache line). No index validation, no fence, no
/// wake-up bits: the floor for moving bytes between two cores with two copies.
struct Handoff {
    mem: Arc<HeapRing>,
    slot: usize,
    nslots: u32,
    /// Our own counter (slots produced or consumed).
    mine: u32,
    /// Last seen peer counter.
    seen: u32,
    /// Consumer only: position in the current message (chunk lengths follow from it).
    pos: usize,
    msg: usize,
}

impl Handoff {
    /// Producer and consumer ends for `msg`-byte messages through `ring` bytes. Slots are
    /// message-sized, but at most half the buffer so that the two sides can overlap.
    fn pair(msg: usize, ring: usize) -> (Handoff, Handoff) {
        let mem = Arc::new(HeapRing::new(ring));
        let _ = mem.region(); // zeroes the header words
        let slot = msg.min((ring / 2).max(1));
        let nslots = u32::try_from(ring / slot).expect("slots");
        let end = |mem| Handoff {
            mem,
            slot,
            nslots,
            mine: 0,
            seen: 0,
            pos: 0,
            msg,
        };
        (end(mem.clone()), end(mem))
    }

    fn slot_ptr(&self) -> *mut u8 {
        let i = (self.mine % self.nslots) as usize;
        self.mem.data_ptr().wrapping_add(i * self.slot)
    }
}

impl Tx for Handoff {
    fn send(&mut self, src: &[u8]) -> usize {
        if self.mine.wrapping_sub(self.seen) == self.nslots {
            self.seen = self.mem.word(OFF_CONS).load(Ordering::Acquire);
            if self.mine.wrapping_sub(self.seen) == self.nslots {
                return 0;
            }
        }
        let n = src.len().min(self.slot);
        // SAFETY: the slot lies in the data area and is free: the consumer finished reading
        // it before publishing the counter we loaded with Acquire.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.slot_ptr(), n) };
        self.mine = self.mine.wrapping_add(1);
        self.mem.word(OFF_PROD).store(self.mine, Ordering::Release);
        n
    }
    fn finish(&mut self) {
        self.mem
            .word(OFF_PROD_FLAGS)
            .store(FLAG_CLOSED, Ordering::Release);
    }
}

impl Rx for Handoff {
    fn recv(&mut self, dst: &mut [u8]) -> usize {
        if self.seen == self.mine {
            self.seen = self.mem.word(OFF_PROD).load(Ordering::Acquire);
            if self.seen == self.mine {
                return 0;
            }
        }
        let n = (self.msg - self.pos).min(self.slot);
        let out = &mut dst[self.pos..];
        let n = n.min(out.len());
        // SAFETY: the slot lies in the data area and was published (Release/Acquire) by the
        // producer, which does not touch it again until we publish our counter.
        unsafe { std::ptr::copy_nonoverlapping(self.slot_ptr(), out.as_mut_ptr(), n) };
        self.pos = (self.pos + n) % self.msg;
        self.mine = self.mine.wrapping_add(1);
        self.mem.word(OFF_CONS).store(self.mine, Ordering::Release);
        n
    }
    fn finished(&mut self) -> bool {
        let closed = self.mem.word(OFF_PROD_FLAGS).load(Ordering::Acquire) & FLAG_CLOSED != 0;
        closed && self.mem.word(OFF_PROD).load(Ordering::Acquire) == self.mine
    }
}

/// Bytes per second moved from a producer thread (`msg`-byte messages, sent in as many
/// pieces as `tx` accepts) to this thread (receiving into a `msg`-byte buffer), measured for
/// `dur` after a `dur / 4` warm-up. Both sides busy-poll with `backoff`.
fn pipe_run<T: Tx, R: Rx>(mut tx: T, mut rx: R, msg: usize, dur: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let src: Vec<u8> = (0..msg).map(|i| i as u8).collect();
            let mut spins = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut off = 0;
                while off < msg {
                    let n = tx.send(&src[off..]);
                    off += n;
                    if n == 0 {
                        backoff(&mut spins);
                    } else {
                        spins = 0;
                    }
                }
            }
            tx.finish();
        })
    };
    let mut dst = vec![0u8; msg];
    let mut bytes = 0u64;
    let mut warm = true;
    let mut t0 = Instant::now();
    let mut polls = 0u32;
    let mut spins = 0u32;
    loop {
        let n = rx.recv(&mut dst);
        if n > 0 {
            black_box(&dst);
            bytes += n as u64;
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
        } else if rx.finished() {
            break;
        } else {
            backoff(&mut spins);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Drain so the producer can finish its last message and close.
    while !rx.finished() {
        let _ = rx.recv(&mut dst);
    }
    producer.join().expect("producer");
    bytes as f64 / secs
}

/// Bytes per second moved through a ring of `ring` bytes in `msg`-byte messages.
fn ring_run(msg: usize, ring: usize, dur: Duration) -> f64 {
    let mem = Arc::new(HeapRing::new(ring));
    let region = mem.region();
    pipe_run(
        RingTx {
            p: Producer::new(region),
            _mem: mem.clone(),
        },
        RingRx {
            c: Consumer::new(region),
            _mem: mem,
        },
        msg,
        dur,
    )
}

/// Bytes per second of the cross-core handoff baseline (see [`Handoff`]).
fn handoff_run(msg: usize, ring: usize, dur: Duration) -> f64 {
    let (tx, rx) = Handoff::pair(msg, ring);
    pipe_run(tx, rx, msg, dur)
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
    let mut header = String::from("| message \\ ring |");
    let mut sep = String::from("|---|");
    for &r in &args.ring {
        header += &format!(" {} |", human(r));
        sep += "---|";
    }
    let (mut t_memcpy, mut t_handoff) = (Vec::new(), Vec::new());
    for &m in &args.msg {
        let mut l_memcpy = format!("| {} |", human(m));
        let mut l_handoff = l_memcpy.clone();
        for &r in &args.ring {
            let base = memcpy_run(m, r, dur);
            let hand = handoff_run(m, r, dur);
            let thr = ring_run(m, r, dur);
            let (ratio, ratio_h) = (thr / base, thr / hand);
            eprintln!(
                "{} msg, {} ring: ring {:.2} GB/s, memcpy {:.2} GB/s, handoff {:.2} GB/s",
                human(m),
                human(r),
                thr / 1e9,
                base / 1e9,
                hand / 1e9
            );
            l_memcpy += &format!(" {ratio:.2}x ({:.1} GB/s) |", thr / 1e9);
            l_handoff += &format!(" {ratio_h:.2}x ({:.1} GB/s) |", hand / 1e9);
            points.push(serde_json::json!({
                "msg_bytes": m,
                "ring_bytes": r,
                "ring_bytes_per_sec": thr,
                "memcpy_bytes_per_sec": base,
                "handoff_bytes_per_sec": hand,
                "ratio": ratio,
                "ratio_handoff": ratio_h,
            }));
        }
        t_memcpy.push(l_memcpy);
        t_handoff.push(l_handoff);
    }
    println!(
        "\nring / single-threaded memcpy: ratio (ring throughput) ({cpus} CPUs, {} ms per point)\n",
        args.ms
    );
    println!("{header}\n{sep}\n{}", t_memcpy.join("\n"));
    println!(
        "\nring / two-thread cross-core handoff (no ring logic): ratio (handoff throughput)\n"
    );
    println!("{header}\n{sep}\n{}", t_handoff.join("\n"));
    let at = |key: &str| {
        points
            .iter()
            .find(|p| p["msg_bytes"] == 64 << 10 && p["ring_bytes"] == 512 << 10)
            .map(|p| p[key].as_f64().unwrap_or(0.0))
    };
    let (target, target_h) = (at("ratio"), at("ratio_handoff"));
    if let (Some(t), Some(h)) = (target, target_h) {
        println!(
            "\ntarget point (64 KiB messages, 512 KiB ring): {t:.2}x memcpy (goal >= 0.90x), \
             {h:.2}x handoff"
        );
    }
    let doc = serde_json::json!({
        "cpus": cpus,
        "ms_per_point": args.ms,
        "baseline": "single thread, memcpy of msg-sized blocks into a ring-sized buffer",
        "baseline_handoff": "two threads, msg-sized slots (at most half the buffer) in a ring-sized buffer, slot counters published Release/Acquire, no ring logic",
        "points": points,
        "target_ratio_64k_msg_512k_ring": target,
        "target_ratio_handoff_64k_msg_512k_ring": target_h,
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
