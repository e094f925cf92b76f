// SPDX-License-Identifier: GPL-2.0
//! The measurements: server, stream and latency clients, memcpy.
//!
//! Every transport goes through exactly this code (blocking `read`/`write` of whole
//! messages on one thread per direction), so only the transport differs between runs.
//!
//! Stream timing is done by each receiver: its window opens `warmup` after its first
//! byte and closes at the first read `duration` later (or when the peer's data ends).
//! The client stops sending `GRACE` after the server's window should have closed, so
//! send-mode windows are normally full length; the server's window is reported back in
//! the [`Report`]. Nothing waits for EOF or uses a half-close (see [`crate::proto`]):
//! every stream ends with a trailer, and each side drops its socket once it has sent its
//! own trailer and read the peer's.

use crate::costs;
use crate::net::{pin_to_cpu, Addr, Conn, Listener, SockOpts};
use crate::proto::{
    end_marker, is_end_marker, Framer, Header, Mode, Report, CLIENT_FILL, HEADER_LEN, REPORT_LEN,
    SERVER_FILL, TRAILER_LEN,
};
use crate::record::{now_unix, Record, LADDER};
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use std::fs::{File, OpenOptions};
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
/// How long a client waits for the server to acknowledge a Quit.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

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
        io::ErrorKind::UnexpectedEof => {
            anyhow!("{what}: the peer closed the connection before the end of the run")
        }
        _ => anyhow!("{what}: {e}"),
    }
}

fn closed_early() -> io::Error {
    io::Error::from(io::ErrorKind::UnexpectedEof)
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return res,
        }
    }
}

/// Reads with `buf` until the receiver's window closes or the peer's data ends (its
/// trailer begins, see [`Framer`]); returns the window and whether the data ended before
/// the window closed. EOF here is an error: a peer always ends with a trailer.
pub fn receive_window(
    r: &mut impl Read,
    buf: &mut [u8],
    framer: &mut Framer,
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
            return Err(closed_early());
        }
        let data = framer.feed(&buf[..n])?;
        if data > 0 {
            total += data as u64;
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
        if framer.ended() {
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
    }
}

/// Reads (and discards the data) until the peer's trailer is complete, or fails once
/// `deadline` has passed; returns the data bytes read.
fn read_trailer(r: &mut impl Read, framer: &mut Framer, deadline: Instant) -> io::Result<u64> {
    let mut buf = vec![0u8; DRAIN_BUF];
    let mut data = 0u64;
    while !framer.complete() {
        if Instant::now() >= deadline {
            return Err(io::Error::other("the peer did not end its stream in time"));
        }
        // Once the trailer has begun, read no further than its end.
        let want = if framer.ended() {
            framer.missing()
        } else {
            buf.len()
        };
        let n = read_some(r, &mut buf[..want])?;
        if n == 0 {
            return Err(closed_early());
        }
        data += framer.feed(&buf[..n])? as u64;
    }
    Ok(data)
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
            // Acknowledge, then close: the client closes when it has the answer, so the
            // connection ends on both sides without relying on EOF.
            let _ = conn.write_all(&Report::default().encode());
            drop(conn);
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

/// Serves one connection after its header; returns what the server received. The
/// socket is closed on return: by then the client's end marker has been read and the
/// report written, so nothing is left unread on either side.
fn serve_conn(mut conn: Conn, h: Header, pin: Option<usize>, timeout: Duration) -> Result<Report> {
    conn.apply(&SockOpts {
        timeout: Some(timeout),
        // Echoes must leave at once, as the client's requests do.
        nodelay: h.mode == Mode::PingPong,
        ..SockOpts::default()
    })
    .context("setting socket options")?;
    if h.mode == Mode::PingPong {
        serve_pingpong(&mut conn, h, timeout)
    } else {
        serve_stream(&mut conn, h, pin, timeout)
    }
}

/// Echoes requests until the client's end marker (padded to the message size when that
/// is larger), then answers it with the report.
fn serve_pingpong(conn: &mut Conn, h: Header, timeout: Duration) -> Result<Report> {
    let size = h.msg_size as usize;
    let mut buf = vec![0u8; size.max(TRAILER_LEN)];
    let mut total = 0u64;
    loop {
        conn.read_exact(&mut buf[..size])
            .map_err(|e| io_err(e, "reading", timeout))?;
        if buf[0] != CLIENT_FILL {
            if size < TRAILER_LEN {
                conn.read_exact(&mut buf[size..TRAILER_LEN])
                    .map_err(|e| io_err(e, "reading the end marker", timeout))?;
            }
            if !is_end_marker(&buf[..TRAILER_LEN]) {
                bail!("bad request from the client (neither data nor an end marker)");
            }
            break;
        }
        conn.write_all(&buf[..size])
            .map_err(|e| io_err(e, "writing", timeout))?;
        total += size as u64;
    }
    let report = Report {
        total,
        ..Report::default()
    };
    conn.write_all(&report.encode())
        .map_err(|e| io_err(e, "writing report", timeout))?;
    Ok(report)
}

/// Send mode: the report goes out as soon as the window closes (by time), then the rest
/// of the client's data is discarded up to its end marker. Recv and duplex: our sender
/// runs until the client's end marker arrives (the client sends it once its own window
/// has closed), then the report follows our last message.
fn serve_stream(
    conn: &mut Conn,
    h: Header,
    pin: Option<usize>,
    timeout: Duration,
) -> Result<Report> {
    let size = h.msg_size as usize;
    // Nothing on this connection may outlast this, whatever the client does.
    let deadline = Instant::now() + timeout;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = if h.mode.server_sends() {
        let mut w = conn.try_clone().context("cloning socket")?;
        let stop = stop.clone();
        Some(thread::spawn(move || -> Result<u64> {
            maybe_pin(pin)?;
            let msg = vec![SERVER_FILL; size];
            send_until(&mut w, &msg, || {
                stop.load(Ordering::Relaxed) || Instant::now() >= deadline
            })
            .map_err(|e| io_err(e, "sending", timeout))
        }))
    } else {
        None
    };
    let received = (|| -> Result<Report> {
        let mut framer = Framer::new(h.msg_size, CLIENT_FILL);
        let mut rep = if h.mode.client_sends() {
            let mut buf = vec![0u8; size];
            receive_window(conn, &mut buf, &mut framer, h.warmup, h.duration)
                .map_err(|e| io_err(e, "receiving", timeout))?
                .0
        } else {
            Report::default()
        };
        if writer.is_none() {
            // Nobody else writes: the report can go at once. The client reads it while
            // it may still be sending, and we keep reading below, so nobody blocks.
            conn.write_all(&rep.encode())
                .map_err(|e| io_err(e, "writing report", timeout))?;
        }
        rep.total += read_trailer(conn, &mut framer, deadline)
            .map_err(|e| io_err(e, "draining", timeout))?;
        if !is_end_marker(framer.trailer()) {
            bail!("the client's stream did not end with an end marker");
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
        if let Ok(rep) = &received {
            // After our last message, as the trailer of our stream.
            conn.write_all(&rep.encode())
                .map_err(|e| io_err(e, "writing report", timeout))?;
        }
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
    /// Round of an interleaved series, recorded as is.
    pub round: Option<u32>,
    pub slack: Duration,
}

/// Runs every message size in turn, emitting one record each.
pub fn run_client(cfg: &ClientConfig) -> Result<Vec<Record>> {
    let mut reached = false;
    let res = cfg
        .msg_sizes
        .iter()
        .map(|&size| {
            let before = costs::read();
            let mut rec = run_one(cfg, size, &mut reached)
                .with_context(|| format!("{} B messages to {}", size, cfg.addr))?;
            let c = before.until(&costs::read());
            rec.ctxt = c.ctxt;
            rec.intr = c.intr;
            rec.yasmin_signals = c.signals;
            rec.counted_s = Some(c.seconds);
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
        timeout: Some(QUIT_TIMEOUT),
        ..SockOpts::default()
    };
    let mut c = Conn::connect(&cfg.addr, &opts)?;
    let h = Header {
        mode: Mode::Quit,
        msg_size: 0,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
    };
    c.write_all(&h.encode())
        .map_err(|e| io_err(e, "sending quit", QUIT_TIMEOUT))?;
    // Wait for the server's answer before closing, so that the connection is over on
    // both sides when we return (no half-close needed).
    let mut ack = [0u8; REPORT_LEN];
    c.read_exact(&mut ack)
        .map_err(|e| io_err(e, "waiting for the server's answer to quit", QUIT_TIMEOUT))?;
    Report::decode(&ack)?;
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
        ..SockOpts::default()
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
        round: cfg.round,
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

/// Send mode: our sender runs until its deadline, then sends the end marker; the report
/// (written by the server as soon as its window closed) is read meanwhile. Recv mode: the
/// end marker goes out when our window has closed, and the server's data is drained up
/// to its report. Duplex: both, and our sender also waits for our window to close. The
/// socket is dropped (fully closed) once the end marker is sent and the report read.
fn stream_conn(
    mut conn: Conn,
    h: Header,
    pin: Option<usize>,
    timeout: Duration,
) -> Result<ConnResult> {
    let size = h.msg_size as usize;
    let window_done = Arc::new(AtomicBool::new(!h.mode.server_sends()));
    let writer = if h.mode.client_sends() {
        let mut w = conn.try_clone().context("cloning socket")?;
        let deadline = Instant::now() + h.warmup + h.duration + GRACE;
        let window_done = window_done.clone();
        Some(thread::spawn(move || -> Result<u64> {
            maybe_pin(pin)?;
            let msg = vec![CLIENT_FILL; size];
            let sent = send_until(&mut w, &msg, || {
                Instant::now() >= deadline && window_done.load(Ordering::Relaxed)
            })
            .and_then(|n| w.write_all(&end_marker()).map(|()| n));
            sent.map_err(|e| {
                // Wake the reader instead of leaving it to its timeout.
                let _ = w.shutdown(Shutdown::Both);
                io_err(e, "sending", timeout)
            })
        }))
    } else {
        None
    };
    let received = (|| -> Result<(Option<Report>, Report)> {
        let mut framer = Framer::new(h.msg_size, SERVER_FILL);
        let mine = if h.mode.server_sends() {
            let mut buf = vec![0u8; size];
            let (rep, ended) =
                receive_window(&mut conn, &mut buf, &mut framer, h.warmup, h.duration)
                    .map_err(|e| io_err(e, "receiving", timeout))?;
            window_done.store(true, Ordering::Relaxed);
            if ended {
                bail!("the server ended its stream during the measurement");
            }
            Some(rep)
        } else {
            None
        };
        if writer.is_none() {
            // Recv mode: our end marker tells the server to stop sending.
            conn.write_all(&end_marker())
                .map_err(|e| io_err(e, "sending the end marker", timeout))?;
        }
        read_trailer(&mut conn, &mut framer, Instant::now() + timeout)
            .map_err(|e| io_err(e, "reading the server's report", timeout))?;
        Ok((mine, Report::decode(framer.trailer())?))
    })();
    window_done.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        if received.is_err() {
            // Unblock a writer stuck on a server that went away.
            let _ = conn.shutdown(Shutdown::Both);
        }
        join(w)?;
    }
    let (mine, theirs) = received?;
    Ok(ConnResult {
        mine,
        theirs: h.mode.client_sends().then_some(theirs),
        hist: None,
    })
}

/// Round trips until the deadline, then the end marker (padded to the message size),
/// which the server answers with its report; then the socket is dropped.
fn pingpong_conn(mut conn: Conn, h: Header, timeout: Duration) -> Result<ConnResult> {
    let size = h.msg_size as usize;
    let mut buf = vec![CLIENT_FILL; size];
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
    let mut end_msg = end_marker().to_vec();
    end_msg.resize(size.max(TRAILER_LEN), 0);
    conn.write_all(&end_msg)
        .map_err(|e| io_err(e, "sending the end marker", timeout))?;
    let mut rep = [0u8; REPORT_LEN];
    conn.read_exact(&mut rep)
        .map_err(|e| io_err(e, "reading the server's report", timeout))?;
    Report::decode(&rep)?;
    Ok(ConnResult {
        hist: Some(hist),
        ..ConnResult::default()
    })
}

// ---------------------------------------------------------------------------------
// memcpy

/// Copies a `size`-byte buffer into another for `warmup` then `duration` (with a `sink`:
/// writes it there with write(2) instead); returns the bytes copied in the measured part
/// and its length.
pub fn memcpy_rate(
    size: usize,
    warmup: Duration,
    duration: Duration,
    mut sink: Option<&mut File>,
) -> io::Result<(u64, Duration)> {
    let src = vec![0xa5u8; size];
    let mut dst = vec![0u8; size];
    // Look at the clock about every MiB so that timing does not dominate small copies.
    let batch = (1 << 20) / size.max(1) + 1;
    let mut run = |until: Instant| -> io::Result<u64> {
        let mut n = 0u64;
        while Instant::now() < until {
            for _ in 0..batch {
                n += match sink.as_deref_mut() {
                    Some(f) => f.write(black_box(&src))? as u64,
                    None => {
                        dst.copy_from_slice(black_box(&src));
                        black_box(&mut dst);
                        size as u64
                    }
                };
            }
        }
        Ok(n)
    };
    run(Instant::now() + warmup)?;
    let start = Instant::now();
    let bytes = run(start + duration)?;
    Ok((bytes, start.elapsed()))
}

pub struct MemcpyConfig {
    pub msg_sizes: Vec<u64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub label: String,
    pub json: Option<PathBuf>,
    pub pin: Option<usize>,
    /// write(2) each buffer to this file instead of copying it (`/dev/null`: the cost of
    /// the system call alone, the floor under every socket's send).
    pub sink: Option<PathBuf>,
    pub round: Option<u32>,
}

pub fn run_memcpy(cfg: &MemcpyConfig) -> Result<Vec<Record>> {
    maybe_pin(cfg.pin)?;
    let mut sink = match &cfg.sink {
        Some(p) => Some(
            OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for &size in &cfg.msg_sizes {
        let n = usize::try_from(size).context("size too large")?;
        let (bytes, elapsed) = memcpy_rate(n, cfg.warmup, cfg.duration, sink.as_mut())
            .context("writing to the sink")?;
        let rec = Record {
            transport: cfg.label.clone(),
            kind: "stream".into(),
            direction: if sink.is_some() { "syscall" } else { "copy" }.into(),
            round: cfg.round,
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
        // read, whose bytes are excluded; the end marker closes it.
        let mut data = vec![CLIENT_FILL; 40];
        data.extend_from_slice(&end_marker());
        let mut r = &data[..];
        let mut buf = [0u8; 4];
        let mut f = Framer::new(4, CLIENT_FILL);
        let (rep, ended) = receive_window(
            &mut r,
            &mut buf,
            &mut f,
            Duration::ZERO,
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(ended);
        assert_eq!(rep.total, 40);
        assert_eq!(rep.bytes, 36);
        assert_eq!(read_trailer(&mut r, &mut f, far()).unwrap(), 0);
        assert!(is_end_marker(f.trailer()));
        // EOF without a trailer is an error, not the end.
        let data = [CLIENT_FILL; 8];
        let mut f = Framer::new(4, CLIENT_FILL);
        let err = receive_window(
            &mut &data[..],
            &mut buf,
            &mut f,
            Duration::ZERO,
            Duration::MAX,
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn trailer_is_found_after_data() {
        let mut data = vec![SERVER_FILL; 1000];
        let rep = Report {
            bytes: 1,
            elapsed: Duration::from_secs(1),
            total: 2,
        };
        data.extend_from_slice(&rep.encode());
        let mut f = Framer::new(100, SERVER_FILL);
        assert_eq!(read_trailer(&mut &data[..], &mut f, far()).unwrap(), 1000);
        assert_eq!(Report::decode(f.trailer()).unwrap(), rep);
        // Reads shorter than the report still leave exactly its bytes, and nothing past
        // the trailer is read.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        data.extend_from_slice(b"more");
        let mut d = Dribble(&data);
        let mut f = Framer::new(100, SERVER_FILL);
        assert_eq!(read_trailer(&mut d, &mut f, far()).unwrap(), 1000);
        assert_eq!(Report::decode(f.trailer()).unwrap(), rep);
        assert_eq!(d.0, b"more");
        // A truncated trailer, or one still missing at the deadline, is an error.
        let mut f = Framer::new(100, SERVER_FILL);
        assert!(read_trailer(&mut &data[..1010], &mut f, far()).is_err());
        let past = Instant::now();
        let mut f = Framer::new(100, SERVER_FILL);
        assert!(read_trailer(&mut &data[..], &mut f, past).is_err());
    }

    #[test]
    fn memcpy_moves_bytes() {
        let (bytes, elapsed) =
            memcpy_rate(4096, Duration::ZERO, Duration::from_millis(20), None).unwrap();
        assert!(bytes > 0 && elapsed >= Duration::from_millis(20));
        assert_eq!(bytes % 4096, 0);
    }

    #[test]
    fn syscall_floor_writes_to_the_sink() {
        let mut f = OpenOptions::new().write(true).open("/dev/null").unwrap();
        let (bytes, _) =
            memcpy_rate(64, Duration::ZERO, Duration::from_millis(20), Some(&mut f)).unwrap();
        assert!(bytes > 0 && bytes % 64 == 0);
        // A sink that refuses writes fails the run instead of counting nothing.
        let mut ro = std::fs::File::open("/dev/null").unwrap();
        assert!(memcpy_rate(64, Duration::ZERO, Duration::from_millis(5), Some(&mut ro)).is_err());
    }
}
