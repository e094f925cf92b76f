// SPDX-License-Identifier: GPL-2.0
//! The measurements: server, stream and latency clients, memcpy.
//!
//! Every transport goes through exactly this code (blocking `read`/`write` of whole
//! messages on one thread per direction), so only the transport differs between runs.
//!
//! Stream timing is done by each receiver: its window opens `warmup` after its first
//! byte and closes at the first read `duration` later (or at EOF). The client stops
//! sending `GRACE` after the server's window should have closed, so send-mode windows
//! are normally full length; the server's window is reported back in the [`Report`].

use crate::net::{pin_to_cpu, Addr, Conn, Listener, SockOpts};
use crate::proto::{Header, Mode, Report, HEADER_LEN, REPORT_LEN};
use crate::record::{now_unix, Record, LADDER};
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Default for what is added to warm-up + duration for every socket timeout: a stalled
/// run fails after this.
pub const SLACK: Duration = Duration::from_secs(30);
/// How long a server waits for a new connection's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The client sends this much longer than the receiver's window needs.
const GRACE: Duration = Duration::from_millis(250);
/// Buffer for draining after the measurement (fast whatever the message size).
const DRAIN_BUF: usize = 256 * 1024;

fn io_timeout(h: &Header, slack: Duration) -> Duration {
    h.warmup + h.duration + slack
}

/// Names timeouts (EAGAIN from SO_RCVTIMEO/SO_SNDTIMEO) as such.
fn io_err(e: io::Error, what: &str, timeout: Duration) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            anyhow!(
                "{what}: timed out (nothing moved for {:.1} s)",
                timeout.as_secs_f64()
            )
        }
        _ => anyhow!("{what}: {e}"),
    }
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return res,
        }
    }
}

/// Reads with `buf` until the receiver's window closes or EOF; returns the window and
/// whether EOF was seen.
pub fn receive_window(
    r: &mut impl Read,
    buf: &mut [u8],
    warmup: Duration,
    duration: Duration,
) -> io::Result<(Report, bool)> {
    let mut total = 0u64;
    let mut first: Option<Instant> = None;
    let mut window: Option<(Instant, u64)> = None;
    let mut last = Instant::now();
    loop {
        let n = read_some(r, buf)?;
        let now = Instant::now();
        if n == 0 {
            let rep = match window {
                Some((ws, wb)) => Report {
                    bytes: total - wb,
                    elapsed: last.saturating_duration_since(ws),
                    total,
                },
                None => Report {
                    total,
                    ..Report::default()
                },
            };
            return Ok((rep, true));
        }
        total += n as u64;
        last = now;
        let f = *first.get_or_insert(now);
        match window {
            None if now.duration_since(f) >= warmup => window = Some((now, total)),
            Some((ws, wb)) if now.duration_since(ws) >= duration => {
                let rep = Report {
                    bytes: total - wb,
                    elapsed: now.duration_since(ws),
                    total,
                };
                return Ok((rep, false));
            }
            _ => {}
        }
    }
}

/// Reads to EOF, returning the byte count and the last `REPORT_LEN` bytes.
fn drain_tail(r: &mut impl Read) -> io::Result<(u64, Vec<u8>)> {
    let mut buf = vec![0u8; DRAIN_BUF];
    let mut tail = Vec::with_capacity(2 * REPORT_LEN);
    let mut total = 0u64;
    loop {
        let n = read_some(r, &mut buf)?;
        if n == 0 {
            return Ok((total, tail));
        }
        total += n as u64;
        tail.extend_from_slice(&buf[n.saturating_sub(REPORT_LEN)..n]);
        let excess = tail.len().saturating_sub(REPORT_LEN);
        tail.drain(..excess);
    }
}

/// Writes `msg` over and over until `stop` says so; returns the bytes written.
fn send_until(w: &mut impl Write, msg: &[u8], stop: impl Fn() -> bool) -> io::Result<u64> {
    let mut sent = 0u64;
    while !stop() {
        w.write_all(msg)?;
        sent += msg.len() as u64;
    }
    Ok(sent)
}

fn maybe_pin(pin: Option<usize>) -> Result<()> {
    pin.map_or(Ok(()), pin_to_cpu)
}

fn join<T>(h: thread::JoinHandle<Result<T>>) -> Result<T> {
    h.join().map_err(|_| anyhow!("worker thread panicked"))?
}

// ---------------------------------------------------------------------------------
// Server

pub struct ServerConfig {
    pub listen: Addr,
    pub once: bool,
    pub buffer_size: Option<u64>,
    pub pin: Option<usize>,
    pub slack: Duration,
}

pub fn serve(cfg: &ServerConfig) -> Result<()> {
    let opts = SockOpts {
        buffer_size: cfg.buffer_size,
        ..SockOpts::default()
    };
    let listener = Listener::bind(&cfg.listen, &opts)?;
    eprintln!("yasmin-bench server: listening on {}", cfg.listen);
    let mut workers: Vec<thread::JoinHandle<()>> = Vec::new();
    loop {
        let (mut conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and the like pass; keep serving rather than spin.
                eprintln!("yasmin-bench server: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // The header is read here, not in the worker, so that `--once` sees the Quit;
        // clients send it straight after connecting.
        let header = match read_header(&mut conn) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("yasmin-bench server: {peer}: {e:#}");
                continue;
            }
        };
        if header.mode == Mode::Quit {
            if cfg.once {
                break;
            }
            continue;
        }
        workers.retain(|w| !w.is_finished());
        let (pin, timeout) = (cfg.pin, io_timeout(&header, cfg.slack));
        workers.push(thread::spawn(move || {
            let res = maybe_pin(pin).and_then(|()| serve_conn(conn, header, pin, timeout));
            match res {
                Ok(rep) if header.mode.client_sends() => eprintln!(
                    "yasmin-bench server: {peer}: {} {} B: received {} B in {:.3} s ({:.2} MB/s)",
                    header.mode.name(),
                    header.msg_size,
                    rep.bytes,
                    rep.elapsed.as_secs_f64(),
                    rep.rate() / 1e6
                ),
                Ok(_) => {}
                Err(e) => eprintln!("yasmin-bench server: {peer}: {e:#}"),
            }
        }));
    }
    for w in workers {
        // A panicking worker has already printed its message.
        let _ = w.join();
    }
    Ok(())
}

fn read_header(conn: &mut Conn) -> Result<Header> {
    conn.set_timeout(Some(HEADER_TIMEOUT))
        .context("setting timeout")?;
    let mut b = [0u8; HEADER_LEN];
    conn.read_exact(&mut b)
        .map_err(|e| io_err(e, "reading header", HEADER_TIMEOUT))?;
    Header::decode(&b)
}

/// Serves one connection after its header; returns what the server received.
fn serve_conn(mut conn: Conn, h: Header, pin: Option<usize>, timeout: Duration) -> Result<Report> {
    conn.apply(&SockOpts {
        timeout: Some(timeout),
        // Echoes must leave at once, as the client's requests do.
        nodelay: h.mode == Mode::PingPong,
        ..SockOpts::default()
    })
    .context("setting socket options")?;
    let size = h.msg_size as usize;
    let report = if h.mode == Mode::PingPong {
        let mut buf = vec![0u8; size];
        let mut total = 0u64;
        while read_message(&mut conn, &mut buf).map_err(|e| io_err(e, "reading", timeout))? {
            conn.write_all(&buf)
                .map_err(|e| io_err(e, "writing", timeout))?;
            total += size as u64;
        }
        Report {
            total,
            ..Report::default()
        }
    } else {
        serve_stream(&mut conn, h, pin, timeout)?
    };
    conn.write_all(&report.encode())
        .map_err(|e| io_err(e, "writing report", timeout))?;
    conn.shutdown(Shutdown::Write)
        .map_err(|e| io_err(e, "shutdown", timeout))?;
    Ok(report)
}

/// Reads one whole message; `false` on EOF at a message boundary.
fn read_message(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let n = read_some(r, buf)?;
    if n == 0 {
        return Ok(false);
    }
    r.read_exact(&mut buf[n..])?;
    Ok(true)
}

fn serve_stream(
    conn: &mut Conn,
    h: Header,
    pin: Option<usize>,
    timeout: Duration,
) -> Result<Report> {
    let size = h.msg_size as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = if h.mode.server_sends() {
        let mut w = conn.try_clone().context("cloning socket")?;
        let stop = stop.clone();
        Some(thread::spawn(move || -> Result<u64> {
            maybe_pin(pin)?;
            let msg = vec![0x5a; size];
            send_until(&mut w, &msg, || stop.load(Ordering::Relaxed))
                .map_err(|e| io_err(e, "sending", timeout))
        }))
    } else {
        None
    };
    let received = (|| -> Result<Report> {
        let (mut rep, eof) = if h.mode.client_sends() {
            let mut buf = vec![0u8; size];
            receive_window(conn, &mut buf, h.warmup, h.duration)
                .map_err(|e| io_err(e, "receiving", timeout))?
        } else {
            (Report::default(), false)
        };
        if !eof {
            // The client half-closes when it is done; that is our cue to stop sending.
            let (n, _) = drain_tail(conn).map_err(|e| io_err(e, "draining", timeout))?;
            rep.total += n;
        }
        Ok(rep)
    })();
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        if received.is_err() {
            // Unblock a writer stuck on a client that went away.
            let _ = conn.shutdown(Shutdown::Both);
        }
        join(w)?;
    }
    received
}

// ---------------------------------------------------------------------------------
// Client

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Latency,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub addr: Addr,
    pub kind: Kind,
    /// StreamSend, StreamRecv or Duplex for stream runs (ignored for latency).
    pub direction: Mode,
    pub msg_sizes: Vec<u64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    pub buffer_size: Option<u64>,
    pub label: String,
    pub ring_size: Option<u64>,
    pub json: Option<PathBuf>,
    pub pin: Option<usize>,
    /// Tell the server the run is over (a `--once` server then exits).
    pub send_quit: bool,
    pub slack: Duration,
}

/// Runs every message size in turn, emitting one record each.
pub fn run_client(cfg: &ClientConfig) -> Result<Vec<Record>> {
    let mut reached = false;
    let res = cfg
        .msg_sizes
        .iter()
        .map(|&size| {
            let rec = run_one(cfg, size, &mut reached)
                .with_context(|| format!("{} B messages to {}", size, cfg.addr))?;
            rec.emit(cfg.json.as_deref())?;
            Ok(rec)
        })
        .collect::<Result<Vec<_>>>();
    if cfg.send_quit && reached {
        // Best effort, also after a failure, so that a `--once` server does not linger.
        if let Err(e) = send_quit(cfg) {
            if res.is_ok() {
                eprintln!("yasmin-bench client: telling the server to quit: {e:#}");
            }
        }
    }
    res
}

fn send_quit(cfg: &ClientConfig) -> Result<()> {
    let opts = SockOpts {
        timeout: Some(Duration::from_secs(5)),
        ..SockOpts::default()
    };
    let mut c = Conn::connect(&cfg.addr, &opts)?;
    let h = Header {
        mode: Mode::Quit,
        msg_size: 0,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
    };
    c.write_all(&h.encode())?;
    Ok(())
}

/// What one client connection measured.
#[derive(Default)]
struct ConnResult {
    /// What the client received in its window (recv, duplex).
    mine: Option<Report>,
    /// What the server received in its window (send, duplex).
    theirs: Option<Report>,
    hist: Option<Histogram<u64>>,
}

/// `reached` is set once a connection has been made (a Quit is then worth sending).
fn run_one(cfg: &ClientConfig, size: u64, reached: &mut bool) -> Result<Record> {
    let mode = match cfg.kind {
        Kind::Stream => cfg.direction,
        Kind::Latency => Mode::PingPong,
    };
    let h = Header {
        mode,
        msg_size: size,
        warmup: cfg.warmup,
        duration: cfg.duration,
    };
    let timeout = io_timeout(&h, cfg.slack);
    let opts = SockOpts {
        buffer_size: cfg.buffer_size,
        nodelay: mode == Mode::PingPong,
        timeout: Some(timeout),
    };
    // All connections are up before any starts: the server starts sending (recv mode)
    // as soon as it has a header, which the warm-up absorbs.
    let mut conns = Vec::with_capacity(cfg.connections as usize);
    for i in 0..cfg.connections {
        let mut c =
            Conn::connect(&cfg.addr, &opts).with_context(|| format!("connection {}", i + 1))?;
        *reached = true;
        c.write_all(&h.encode())
            .map_err(|e| io_err(e, "sending header", timeout))?;
        conns.push(c);
    }
    let pin = cfg.pin;
    let workers: Vec<_> = conns
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                maybe_pin(pin)?;
                if mode == Mode::PingPong {
                    pingpong_conn(c, h, timeout)
                } else {
                    stream_conn(c, h, pin, timeout)
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(workers.len());
    let mut first_err = None;
    for (i, w) in workers.into_iter().enumerate() {
        match join(w) {
            Ok(r) => results.push(r),
            Err(e) => {
                first_err.get_or_insert(e.context(format!("connection {}", i + 1)));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let mut rec = Record {
        transport: cfg.label.clone(),
        kind: match cfg.kind {
            Kind::Stream => "stream",
            Kind::Latency => "latency",
        }
        .to_string(),
        direction: direction_name(mode).to_string(),
        msg_size: size,
        ring_size: cfg.ring_size,
        buffer_size: cfg.buffer_size,
        connections: cfg.connections,
        duration_s: cfg.duration.as_secs_f64(),
        warmup_s: cfg.warmup.as_secs_f64(),
        address: Some(cfg.addr.to_string()),
        pin: cfg.pin,
        unix_time: now_unix(),
        ..Record::default()
    };
    match cfg.kind {
        Kind::Stream => fill_stream(&mut rec, &results)?,
        Kind::Latency => fill_latency(&mut rec, results)?,
    }
    Ok(rec)
}

pub fn direction_name(mode: Mode) -> &'static str {
    match mode {
        Mode::StreamSend => "send",
        Mode::StreamRecv => "recv",
        Mode::Duplex => "duplex",
        Mode::PingPong => "pingpong",
        Mode::Quit => "quit",
    }
}

/// Total throughput is the sum of the receivers' rates (each over its own window).
fn fill_stream(rec: &mut Record, results: &[ConnResult]) -> Result<()> {
    let windows: Vec<&Report> = results
        .iter()
        .flat_map(|r| r.mine.iter().chain(r.theirs.iter()))
        .collect();
    if windows.iter().any(|w| w.bytes == 0 || w.elapsed.is_zero()) {
        bail!("a receiver counted nothing in its measurement window (run too short?)");
    }
    let rate: f64 = windows.iter().map(|w| w.rate()).sum();
    let elapsed: f64 =
        windows.iter().map(|w| w.elapsed.as_secs_f64()).sum::<f64>() / windows.len() as f64;
    rec.throughput_mb_s = Some(rate / 1e6);
    rec.bytes = Some(windows.iter().map(|w| w.bytes).sum());
    rec.elapsed_s = Some(elapsed);
    Ok(())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn fill_latency(rec: &mut Record, results: Vec<ConnResult>) -> Result<()> {
    let mut all = new_histogram()?;
    for r in results {
        if let Some(h) = r.hist {
            all.add(&h)
                .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        }
    }
    if all.is_empty() {
        bail!("no round trip completed after the warm-up (run too short?)");
    }
    let q = |p: f64| us(all.value_at_quantile(p / 100.0));
    rec.p50_us = Some(q(50.0));
    rec.p90_us = Some(q(90.0));
    rec.p99_us = Some(q(99.0));
    rec.p999_us = Some(q(99.9));
    rec.max_us = Some(us(all.max()));
    rec.count = Some(all.len());
    rec.percentiles = Some(
        LADDER
            .iter()
            .map(|&p| {
                let v = if p <= 0.0 {
                    all.min()
                } else if p >= 100.0 {
                    all.max()
                } else {
                    all.value_at_quantile(p / 100.0)
                };
                [p, us(v)]
            })
            .collect(),
    );
    Ok(())
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 ns .. 1 h at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .map_err(|e| anyhow!("creating histogram: {e:?}"))
}

/// Reads the server's trailing report after the client has half-closed.
fn finish(conn: &mut Conn, timeout: Duration) -> Result<Report> {
    let (_, tail) =
        drain_tail(conn).map_err(|e| io_err(e, "reading the server's report", timeout))?;
    Report::decode(&tail)
}

fn stream_conn(
    mut conn: Conn,
    h: Header,
    pin: Option<usize>,
    timeout: Duration,
) -> Result<ConnResult> {
    let size = h.msg_size as usize;
    let writer = if h.mode.client_sends() {
        let mut w = conn.try_clone().context("cloning socket")?;
        let deadline = Instant::now() + h.warmup + h.duration + GRACE;
        Some(thread::spawn(move || -> Result<u64> {
            maybe_pin(pin)?;
            let msg = vec![0xa5; size];
            match send_until(&mut w, &msg, || Instant::now() >= deadline) {
                Ok(n) => {
                    w.shutdown(Shutdown::Write)
                        .map_err(|e| io_err(e, "shutdown", timeout))?;
                    Ok(n)
                }
                Err(e) => {
                    // Wake the reader instead of leaving it to its timeout.
                    let _ = w.shutdown(Shutdown::Both);
                    Err(io_err(e, "sending", timeout))
                }
            }
        }))
    } else {
        None
    };
    let mine = if h.mode.server_sends() {
        let mut buf = vec![0u8; size];
        let (rep, eof) = receive_window(&mut conn, &mut buf, h.warmup, h.duration)
            .map_err(|e| io_err(e, "receiving", timeout))?;
        if eof {
            bail!("the server closed the connection during the measurement");
        }
        Some(rep)
    } else {
        None
    };
    if writer.is_none() {
        // Recv mode: our half-close tells the server to stop sending.
        conn.shutdown(Shutdown::Write)
            .map_err(|e| io_err(e, "shutdown", timeout))?;
    }
    let theirs = finish(&mut conn, timeout);
    if let Some(w) = writer {
        join(w)?;
    }
    let theirs = theirs?;
    Ok(ConnResult {
        mine,
        theirs: h.mode.client_sends().then_some(theirs),
        hist: None,
    })
}

fn pingpong_conn(mut conn: Conn, h: Header, timeout: Duration) -> Result<ConnResult> {
    let mut buf = vec![0xa5; h.msg_size as usize];
    let mut hist = new_histogram()?;
    let start = Instant::now();
    let warm_end = start + h.warmup;
    let end = warm_end + h.duration;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        conn.write_all(&buf)
            .map_err(|e| io_err(e, "sending", timeout))?;
        conn.read_exact(&mut buf)
            .map_err(|e| io_err(e, "receiving", timeout))?;
        if t0 >= warm_end {
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            hist.saturating_record(ns.max(1));
        }
    }
    conn.shutdown(Shutdown::Write)
        .map_err(|e| io_err(e, "shutdown", timeout))?;
    finish(&mut conn, timeout)?;
    Ok(ConnResult {
        hist: Some(hist),
        ..ConnResult::default()
    })
}

// ---------------------------------------------------------------------------------
// memcpy

/// Copies a `size`-byte buffer into another for `warmup` then `duration`; returns the
/// bytes copied in the measured part and its length.
pub fn memcpy_rate(size: usize, warmup: Duration, duration: Duration) -> (u64, Duration) {
    let src = vec![0xa5u8; size];
    let mut dst = vec![0u8; size];
    // Look at the clock about every MiB so that timing does not dominate small copies.
    let batch = (1 << 20) / size.max(1) + 1;
    let mut run = |until: Instant| -> u64 {
        let mut n = 0u64;
        while Instant::now() < until {
            for _ in 0..batch {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            }
            n += (batch * size) as u64;
        }
        n
    };
    run(Instant::now() + warmup);
    let start = Instant::now();
    let bytes = run(start + duration);
    (bytes, start.elapsed())
}

pub struct MemcpyConfig {
    pub msg_sizes: Vec<u64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub label: String,
    pub json: Option<PathBuf>,
    pub pin: Option<usize>,
}

pub fn run_memcpy(cfg: &MemcpyConfig) -> Result<Vec<Record>> {
    maybe_pin(cfg.pin)?;
    let mut out = Vec::new();
    for &size in &cfg.msg_sizes {
        let n = usize::try_from(size).context("size too large")?;
        let (bytes, elapsed) = memcpy_rate(n, cfg.warmup, cfg.duration);
        let rec = Record {
            transport: cfg.label.clone(),
            kind: "stream".into(),
            direction: "copy".into(),
            msg_size: size,
            connections: 1,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            elapsed_s: Some(elapsed.as_secs_f64()),
            throughput_mb_s: Some(bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6),
            bytes: Some(bytes),
            pin: cfg.pin,
            unix_time: now_unix(),
            ..Record::default()
        };
        rec.emit(cfg.json.as_deref())?;
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_after_warmup() {
        // 10 reads of 4 bytes with no delay: a zero warm-up opens the window at the first
        // read, whose bytes are excluded; EOF closes it.
        let data = [1u8; 40];
        let mut r = &data[..];
        let mut buf = [0u8; 4];
        let (rep, eof) =
            receive_window(&mut r, &mut buf, Duration::ZERO, Duration::from_secs(60)).unwrap();
        assert!(eof);
        assert_eq!(rep.total, 40);
        assert_eq!(rep.bytes, 36);
    }

    #[test]
    fn tail_keeps_last_report() {
        let mut data = vec![7u8; 1000];
        let rep = Report {
            bytes: 1,
            elapsed: Duration::from_secs(1),
            total: 2,
        };
        data.extend_from_slice(&rep.encode());
        let (n, tail) = drain_tail(&mut &data[..]).unwrap();
        assert_eq!(n, 1032);
        assert_eq!(Report::decode(&tail).unwrap(), rep);
        // Reads shorter than the report still leave exactly its bytes.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (_, tail) = drain_tail(&mut Dribble(&data)).unwrap();
        assert_eq!(Report::decode(&tail).unwrap(), rep);
    }

    #[test]
    fn memcpy_moves_bytes() {
        let (bytes, elapsed) = memcpy_rate(4096, Duration::ZERO, Duration::from_millis(20));
        assert!(bytes > 0 && elapsed >= Duration::from_millis(20));
    }
}
