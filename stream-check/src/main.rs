// SPDX-License-Identifier: GPL-2.0
//! yasmin-stream-check: end-to-end integrity checks of a byte-stream transport.
//!
//! `serve` runs the passive side; every connection starts with a 17-byte request
//! (`mode u8, seed u64 LE, len u64 LE`) that says what to do:
//! * `duplex`: both sides send `len` pseudo-random bytes (generated from the seed, written
//!   in random-sized pieces) while reading the other's, concurrently; each side checks
//!   every byte against the generator and prints the SHA-256 of what it sent and received;
//! * `digest`: the client sends `len` bytes and shuts down its write side; the server
//!   answers with the SHA-256 of what it read, which the client compares with its own.
//!
//! Client commands: `duplex` (one connection, both directions at once), `multi` (many
//! concurrent `digest` connections), `cycles` (sequential `digest` connections),
//! `connect-retry` (`digest` connections whose first `connect()` gave up), `burst`
//! (connections opened at the same instant, connect times reported).
//! Output: one `key=value` line per result, and the exit status says pass or fail.

mod bad_buffers;
mod burst;
mod connect_retry;

use clap::{Parser, Subcommand};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};
use yasmin_endpoint::{errno_of, Addr, Conn, Listener, SockOpts};

const MODE_DUPLEX: u8 = 1;
const MODE_DIGEST: u8 = 2;
/// Read after a pause: the header's seed field gives the pause in milliseconds; the
/// stream itself is that of seed 0. The server logs what it received (the client has
/// closed by then, so the digest goes nowhere).
const MODE_LATE: u8 = 3;
/// Largest single read or write the random sizes pick.
const MAX_IO: usize = 256 * 1024;
/// Connect timeout for vsock: the kernel's default is 2 s, which many connections set up
/// at once on an emulated CPU can exceed; the checker tests integrity, not set-up time.
const VSOCK_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    name = "yasmin-stream-check",
    about = "Byte-stream integrity checks over AF_VSOCK, TCP or Unix sockets"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GiveUpArg {
    Timeout,
    Signal,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve connections (one thread each) until `--connections` have been served.
    Serve {
        /// `vsock:PORT`, `tcp:IP:PORT` or `unix:/path`.
        #[arg(long)]
        listen: String,
        #[arg(long, default_value_t = u64::MAX)]
        connections: u64,
        /// The listener's buffer size, which accepted sockets inherit (vsock: the ring
        /// size this side produces).
        #[arg(long)]
        buffer_size: Option<u64>,
    },
    /// One connection, `--bytes` each way at the same time.
    Duplex {
        /// `vsock:CID:PORT`, `tcp:IP:PORT` or `unix:/path`.
        #[arg(long)]
        connect: String,
        #[arg(long)]
        bytes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// `--conns` concurrent connections, each sending a random amount up to `--max-bytes`.
    Multi {
        #[arg(long)]
        connect: String,
        #[arg(long)]
        conns: u64,
        #[arg(long)]
        max_bytes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Calls with buffers the kernel cannot copy (NULL, half-mapped) on one connection:
    /// each must fail with EFAULT or return a short count at once.
    BadBuffers {
        #[arg(long)]
        connect: String,
        /// Accept any prompt error, not only EFAULT (for reference transports).
        #[arg(long)]
        any_error: bool,
    },
    /// `--count` connections one after the other, each a 1-byte digest round trip and a
    /// close, timed; fails if any takes longer than `--max-ms`.
    Latency {
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 5)]
        count: u64,
        #[arg(long, default_value_t = 1000)]
        max_ms: u64,
    },
    /// Opens connections and keeps them open until one fails or `--max` are open; prints
    /// how many opened, how many work (a 1-byte digest each) and the first error's errno,
    /// holds them `--hold-secs`, closes all. Fails if an open one does not work.
    Fill {
        #[arg(long)]
        connect: String,
        #[arg(long)]
        max: u64,
        #[arg(long, default_value_t = 0)]
        hold_secs: u64,
        /// Only open them (the server waits for a request that never comes).
        #[arg(long)]
        no_check: bool,
    },
    /// `--count` sockets, each with a first `connect()` made to give up (`--give-up
    /// timeout`: a one-jiffy vsock connect timeout; `signal`: SIGALRM after 1 ms) and,
    /// if it did, a second one on the same socket; each connection then does a 4 KiB
    /// digest round trip. Fails if any does not work, or if no first attempt gave up.
    ConnectRetry {
        /// `vsock:CID:PORT`.
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 20)]
        count: u64,
        #[arg(long, value_enum)]
        give_up: GiveUpArg,
    },
    /// This guest's vsock CID as applications see it: `ioctl_cid=` from
    /// IOCTL_VM_SOCKETS_GET_LOCAL_CID, and with `--listen`, `getsockname_cid=` of one
    /// accepted connection (after a restore or migration both must show the new CID).
    /// `--connect` opens such a connection (and closes it).
    LocalCid {
        /// `vsock:PORT`: accept one connection and report its local address.
        #[arg(long, conflicts_with = "connect")]
        listen: Option<String>,
        /// `vsock:CID:PORT` of a `local-cid --listen` to connect to.
        #[arg(long)]
        connect: Option<String>,
    },
    /// SO_LINGER: connects to a `serve` that starts reading only after `--server-delay-ms`,
    /// sets SO_LINGER on with `--linger-ms` (rounded up to whole seconds, the option's
    /// unit), sends `--bytes` (they must fit the buffers, so that only close() waits),
    /// closes, and prints `close_ms=` (how long close() blocked). The server logs whether
    /// every byte still arrived.
    Linger {
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 65536)]
        bytes: u64,
        #[arg(long)]
        linger_ms: u64,
        #[arg(long)]
        server_delay_ms: u64,
    },
    /// The peer of the connected socket on descriptor `--fd` as this program sees it
    /// (`getpeername`, which an `LD_PRELOAD` library may answer) and the family the kernel
    /// has (a raw system call): one line, `peer=FAMILY:ADDRESS:PORT real=FAMILY`, written
    /// to that same socket (an inetd-style program started with the connection as its
    /// standard input and output) and to stderr.
    PeerName {
        #[arg(long, default_value_t = 0)]
        fd: i32,
    },
    /// `--conns` connections opened at the same instant (a barrier), each timed and then
    /// a 1-byte digest round trip; prints connect p50/p99/max and failures by errno.
    /// The kernel's default vsock connect timeout (2 s) applies unless
    /// `--connect-timeout-ms` says otherwise. Fails if any connection failed.
    Burst {
        #[arg(long)]
        connect: String,
        #[arg(long)]
        conns: u64,
        #[arg(long)]
        connect_timeout_ms: Option<u64>,
        /// SO_VM_SOCKETS_BUFFER_SIZE (vsock: the ring size), SO_SNDBUF/SO_RCVBUF (TCP).
        #[arg(long)]
        buffer_size: Option<u64>,
    },
    /// `--count` connections one after the other, each sending `--bytes`.
    ///
    /// Under the preload library (a dynamic build) this is the unmodified TCP program
    /// whose connections the library moves: `--paths` prints, for each connection, the
    /// family its socket really has (asked of the kernel, past any interposer) and how
    /// long its `connect()` took.
    Cycles {
        #[arg(long)]
        connect: String,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        bytes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Pause between connections.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Stop (before the next connection) once this file exists.
        #[arg(long)]
        stop_file: Option<std::path::PathBuf>,
        /// One line per connection: `cycle=I path=vsock|tcp|unix connect_ms=M ok=0|1`.
        #[arg(long)]
        paths: bool,
    },
}

/// The byte stream of `seed`: pseudo-random and reproducible on both sides whatever the
/// read and write sizes (bytes come from fixed-size blocks of the generator).
struct Stream {
    rng: SmallRng,
    block: Vec<u8>,
    pos: usize,
}

impl Stream {
    const BLOCK: usize = 64 * 1024;

    fn new(seed: u64) -> Self {
        Stream {
            rng: SmallRng::seed_from_u64(seed),
            block: vec![0; Self::BLOCK],
            pos: Self::BLOCK,
        }
    }

    fn fill(&mut self, mut buf: &mut [u8]) {
        while !buf.is_empty() {
            if self.pos == Self::BLOCK {
                self.rng.fill_bytes(&mut self.block);
                self.pos = 0;
            }
            let n = buf.len().min(Self::BLOCK - self.pos);
            buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
            self.pos += n;
            buf = &mut buf[n..];
        }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `len` bytes of stream `seed` in random-sized writes; returns their SHA-256.
fn send_stream(
    w: &mut impl Write,
    seed: u64,
    len: u64,
    sizes: &mut SmallRng,
) -> io::Result<[u8; 32]> {
    let mut gen = Stream::new(seed);
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; MAX_IO];
    let mut left = len;
    while left > 0 {
        let n = sizes.gen_range(1..=MAX_IO).min(left as usize);
        gen.fill(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        sha.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(sha.finalize().into())
}

/// Reads until EOF in random-sized reads, checking every byte against stream `seed` if
/// given; returns (bytes, SHA-256).
fn recv_stream(
    r: &mut impl Read,
    seed: Option<u64>,
    sizes: &mut SmallRng,
) -> io::Result<(u64, [u8; 32])> {
    let mut gen = seed.map(Stream::new);
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; MAX_IO];
    let mut want = vec![0u8; MAX_IO];
    let mut total = 0u64;
    loop {
        let n = sizes.gen_range(1..=MAX_IO);
        let got = r.read(&mut buf[..n])?;
        if got == 0 {
            break;
        }
        if let Some(g) = gen.as_mut() {
            g.fill(&mut want[..got]);
            if buf[..got] != want[..got] {
                let at = buf[..got]
                    .iter()
                    .zip(&want[..got])
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt byte at stream offset {}", total + at as u64),
                ));
            }
        }
        sha.update(&buf[..got]);
        total += got as u64;
    }
    Ok((total, sha.finalize().into()))
}

/// Connects without read or write timeouts: a slow peer is not a failure here.
fn connect_to(addr: &Addr) -> io::Result<Conn> {
    let opts = SockOpts {
        vsock_connect_timeout: Some(VSOCK_CONNECT_TIMEOUT),
        ..SockOpts::default()
    };
    Conn::connect(addr, &opts)
}

fn request(c: &mut Conn, mode: u8, seed: u64, len: u64) -> io::Result<()> {
    let mut h = [0u8; 17];
    h[0] = mode;
    h[1..9].copy_from_slice(&seed.to_le_bytes());
    h[9..17].copy_from_slice(&len.to_le_bytes());
    c.write_all(&h)
}

/// Both directions at once on `c`: we send stream `tx_seed`, expect stream `rx_seed` of
/// `len` bytes. Prints sums; returns whether everything matched.
fn duplex(c: Conn, tx_seed: u64, rx_seed: u64, len: u64, who: &str) -> io::Result<bool> {
    let mut w = c.try_clone()?;
    let start = Instant::now();
    let writer = thread::spawn(move || -> io::Result<[u8; 32]> {
        let mut sizes = SmallRng::seed_from_u64(tx_seed ^ 0x5157);
        let d = send_stream(&mut w, tx_seed, len, &mut sizes)?;
        w.shutdown(Shutdown::Write)?;
        Ok(d)
    });
    let mut r = c;
    let mut sizes = SmallRng::seed_from_u64(rx_seed ^ 0xabcd);
    let rx = recv_stream(&mut r, Some(rx_seed), &mut sizes);
    if rx.is_err() {
        // Unblock our writer (and the peer): nobody reads this connection any more.
        let _ = r.shutdown(Shutdown::Both);
    }
    let tx = writer
        .join()
        .map_err(|_| io::Error::other("writer panicked"))?;
    let secs = start.elapsed().as_secs_f64();
    // Report both directions' errors (a reset shows on the reader, the writer may see
    // EPIPE first).
    if let Err(e) = &tx {
        println!("{who}_send_error={e}");
    }
    if let Err(e) = &rx {
        println!("{who}_receive_error={e}");
    }
    let tx = tx?;
    let (got, rx_sum) = rx?;
    println!("{who}_sent_bytes={len}");
    println!("{who}_sent_sha256={}", hex(&tx));
    println!("{who}_received_bytes={got}");
    println!("{who}_received_sha256={}", hex(&rx_sum));
    println!("{who}_seconds={secs:.3}");
    Ok(got == len)
}

fn serve_one(mut c: Conn) -> io::Result<()> {
    let mut h = [0u8; 17];
    c.read_exact(&mut h)?;
    let seed = u64::from_le_bytes(h[1..9].try_into().expect("8 bytes"));
    let len = u64::from_le_bytes(h[9..17].try_into().expect("8 bytes"));
    match h[0] {
        MODE_DUPLEX => {
            if !duplex(c, seed.wrapping_add(1), seed, len, "server")? {
                eprintln!("duplex: short stream");
            }
            Ok(())
        }
        MODE_DIGEST => {
            let mut sizes = SmallRng::seed_from_u64(seed ^ 0x77);
            let (_, sum) = recv_stream(&mut c, None, &mut sizes)?;
            c.write_all(&sum)?;
            Ok(())
        }
        MODE_LATE => {
            thread::sleep(Duration::from_millis(seed.min(600_000)));
            let mut sizes = SmallRng::seed_from_u64(0x77);
            // Every byte is checked against the stream as it arrives.
            let (n, _) = recv_stream(&mut c, Some(0), &mut sizes)?;
            eprintln!(
                "late read after {seed} ms: {n} of {len} bytes, intact={}",
                n == len
            );
            Ok(())
        }
        m => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown mode {m}"),
        )),
    }
}

/// One `digest` connection: send `len` bytes of `seed`, compare the server's SHA-256.
fn digest_conn(addr: &Addr, seed: u64, len: u64) -> io::Result<bool> {
    digest_on(connect_to(addr)?, seed, len)
}

/// A `digest` round trip on the connection `c`.
fn digest_on(mut c: Conn, seed: u64, len: u64) -> io::Result<bool> {
    request(&mut c, MODE_DIGEST, seed, len)?;
    let mut sizes = SmallRng::seed_from_u64(seed ^ 0x99);
    let sent = send_stream(&mut c, seed, len, &mut sizes)?;
    c.shutdown(Shutdown::Write)?;
    let mut back = [0u8; 32];
    c.read_exact(&mut back)?;
    Ok(back == sent)
}

fn run(cli: Cli) -> io::Result<bool> {
    match cli.cmd {
        Cmd::Serve {
            listen,
            connections,
            buffer_size,
        } => {
            let opts = SockOpts {
                buffer_size,
                ..SockOpts::default()
            };
            let l = Listener::bind(&Addr::parse(&listen)?, &opts)?;
            println!("listening={listen}");
            let mut handles = Vec::new();
            for _ in 0..connections {
                let (c, _peer) = l.accept()?;
                handles.push(thread::spawn(move || {
                    if let Err(e) = serve_one(c) {
                        eprintln!("connection failed: {e}");
                    }
                }));
                handles.retain(|h| !h.is_finished());
            }
            for h in handles {
                let _ = h.join();
            }
            Ok(true)
        }
        Cmd::Duplex {
            connect,
            bytes,
            seed,
        } => {
            let mut c = connect_to(&Addr::parse(&connect)?)?;
            request(&mut c, MODE_DUPLEX, seed, bytes)?;
            duplex(c, seed, seed.wrapping_add(1), bytes, "client")
        }
        Cmd::Multi {
            connect,
            conns,
            max_bytes,
            seed,
        } => {
            let addr = Addr::parse(&connect)?;
            let mut rng = SmallRng::seed_from_u64(seed);
            let jobs: Vec<_> = (0..conns)
                .map(|i| {
                    let addr = addr.clone();
                    let len = rng.gen_range(0..=max_bytes);
                    let s = seed.wrapping_mul(1000).wrapping_add(i);
                    thread::spawn(move || digest_conn(&addr, s, len))
                })
                .collect();
            let mut ok = 0;
            for j in jobs {
                match j.join().map_err(|_| io::Error::other("thread panicked"))? {
                    Ok(true) => ok += 1,
                    Ok(false) => eprintln!("checksum mismatch"),
                    Err(e) => eprintln!("connection failed: {e}"),
                }
            }
            println!("connections={conns}");
            println!("checksums_equal={ok}");
            Ok(ok == conns)
        }
        Cmd::BadBuffers { connect, any_error } => {
            let mut c = connect_to(&Addr::parse(&connect)?)?;
            // The server streams to us (duplex) while our sends go nowhere useful.
            request(&mut c, MODE_DUPLEX, 1, 1 << 30)?;
            bad_buffers::run(c.as_raw_fd(), any_error)
        }
        Cmd::Latency {
            connect,
            count,
            max_ms,
        } => {
            let addr = Addr::parse(&connect)?;
            let mut times = Vec::new();
            for i in 0..count {
                let t = Instant::now();
                let ok = digest_conn(&addr, i, 1)?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                println!("connection_{i}_ms={ms:.1} ok={ok}");
                if !ok {
                    return Ok(false);
                }
                times.push(ms);
            }
            times.sort_by(f64::total_cmp);
            let max = times.last().copied().unwrap_or(0.0);
            println!(
                "p50_ms={:.1}",
                times.get(times.len() / 2).copied().unwrap_or(0.0)
            );
            println!("max_ms={max:.1}");
            Ok(max <= max_ms as f64)
        }
        Cmd::Fill {
            connect,
            max,
            hold_secs,
            no_check,
        } => {
            let addr = Addr::parse(&connect)?;
            let mut open = Vec::new();
            let mut first_error = None;
            while (open.len() as u64) < max {
                match connect_to(&addr) {
                    Ok(c) => open.push(c),
                    Err(e) => {
                        first_error = Some(e);
                        break;
                    }
                }
            }
            println!("opened={}", open.len());
            // Each one works: a 1-byte digest round trip (the server reads the request).
            let mut works = 0;
            for (i, c) in open.iter_mut().enumerate().filter(|_| !no_check) {
                let mut one = || -> io::Result<bool> {
                    request(c, MODE_DIGEST, i as u64, 1)?;
                    let mut sizes = SmallRng::seed_from_u64(i as u64 ^ 0x99);
                    let sent = send_stream(c, i as u64, 1, &mut sizes)?;
                    c.shutdown(Shutdown::Write)?;
                    let mut back = [0u8; 32];
                    c.read_exact(&mut back)?;
                    Ok(back == sent)
                };
                match one() {
                    Ok(true) => works += 1,
                    Ok(false) => eprintln!("connection {i}: checksum mismatch"),
                    Err(e) => eprintln!("connection {i}: {e}"),
                }
            }
            println!("works={works}");
            match &first_error {
                Some(e) => println!("first_errno={} error={e}", errno_of(e).unwrap_or(0)),
                None => println!("first_errno=0"),
            }
            thread::sleep(Duration::from_secs(hold_secs));
            let all = no_check || works == open.len();
            drop(open);
            Ok(all)
        }
        Cmd::Linger {
            connect,
            bytes,
            linger_ms,
            server_delay_ms,
        } => {
            let mut c = connect_to(&Addr::parse(&connect)?)?;
            let lg = libc::linger {
                l_onoff: 1,
                l_linger: linger_ms.div_ceil(1000) as libc::c_int,
            };
            // SAFETY: a linger struct and its size.
            let r = unsafe {
                libc::setsockopt(
                    c.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&lg as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            request(&mut c, MODE_LATE, server_delay_ms, bytes)?;
            let mut sizes = SmallRng::seed_from_u64(0x55);
            send_stream(&mut c, 0, bytes, &mut sizes)?;
            let t = Instant::now();
            drop(c);
            println!("close_ms={}", t.elapsed().as_millis());
            Ok(true)
        }
        Cmd::PeerName { fd } => {
            let line = format!("peer={} real={}\n", shown_peer(fd), real_family(fd));
            eprint!("{line}");
            // SAFETY: writing a buffer of its length to a descriptor we were given.
            let n = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
            Ok(n == line.len() as isize)
        }
        Cmd::LocalCid { listen, connect } => {
            println!("ioctl_cid={}", vsock::get_local_cid()?);
            if let Some(l) = listen {
                let l = Listener::bind(&Addr::parse(&l)?, &SockOpts::default())?;
                match l.accept()? {
                    (Conn::Vsock(s), peer) => {
                        println!("getsockname_cid={}", s.local_addr()?.cid());
                        println!("peer={peer}");
                    }
                    _ => return Err(io::Error::other("--listen: a vsock: address")),
                }
            }
            if let Some(c) = connect {
                connect_to(&Addr::parse(&c)?)?;
            }
            Ok(true)
        }
        Cmd::ConnectRetry {
            connect,
            count,
            give_up,
        } => {
            let Addr::Vsock { cid, port } = Addr::parse(&connect)? else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "connect-retry: a vsock:CID:PORT address",
                ));
            };
            let how = match give_up {
                GiveUpArg::Timeout => connect_retry::GiveUp::Timeout,
                GiveUpArg::Signal => connect_retry::GiveUp::Signal,
            };
            let (mut gave_up, mut ok) = (0, 0);
            for i in 0..count {
                let r = connect_retry::connect_retrying(cid, port, how, VSOCK_CONNECT_TIMEOUT)
                    .and_then(|o| {
                        if let Some(e) = o.first_errno {
                            gave_up += 1;
                            if i == 0 {
                                println!("first_errno={}", io::Error::from_raw_os_error(e));
                            }
                        }
                        digest_on(o.conn, i, 4096)
                    });
                match r {
                    Ok(true) => ok += 1,
                    Ok(false) => eprintln!("socket {i}: checksum mismatch"),
                    Err(e) => eprintln!("socket {i}: {e}"),
                }
            }
            println!("sockets={count}");
            println!("first_attempt_gave_up={gave_up}");
            println!("connections_ok={ok}");
            Ok(ok == count && gave_up > 0)
        }
        Cmd::Burst {
            connect,
            conns,
            connect_timeout_ms,
            buffer_size,
        } => burst::run(
            &Addr::parse(&connect)?,
            conns,
            connect_timeout_ms,
            buffer_size,
        ),
        Cmd::Cycles {
            connect,
            count,
            bytes,
            seed,
            interval_ms,
            stop_file,
            paths,
        } => {
            let addr = Addr::parse(&connect)?;
            let start = Instant::now();
            let (mut done, mut ok) = (0, 0);
            let mut via = std::collections::BTreeMap::<&str, u64>::new();
            let mut connect_us = 0u128;
            for i in 0..count {
                if stop_file.as_ref().is_some_and(|f| f.exists()) {
                    break;
                }
                if i > 0 && interval_ms > 0 {
                    thread::sleep(Duration::from_millis(interval_ms));
                }
                done += 1;
                let t = Instant::now();
                let c = connect_to(&addr);
                let took = t.elapsed();
                connect_us += took.as_micros();
                let path = c.as_ref().map_or("none", |c| real_family(c.as_raw_fd()));
                *via.entry(path).or_default() += 1;
                let good = match c.and_then(|c| digest_on(c, seed.wrapping_add(i), bytes)) {
                    Ok(true) => true,
                    Ok(false) => {
                        eprintln!("cycle {i}: checksum mismatch");
                        false
                    }
                    Err(e) => {
                        eprintln!("cycle {i}: {e}");
                        false
                    }
                };
                ok += u64::from(good);
                if paths {
                    println!(
                        "cycle={i} path={path} connect_ms={:.3} ok={}",
                        took.as_secs_f64() * 1000.0,
                        u8::from(good)
                    );
                }
            }
            println!("cycles={done}");
            println!("cycles_ok={ok}");
            for (path, n) in &via {
                println!("via_{path}={n}");
            }
            if done > 0 {
                println!(
                    "connect_ms_mean={:.3}",
                    connect_us as f64 / done as f64 / 1000.0
                );
            }
            println!("seconds={:.3}", start.elapsed().as_secs_f64());
            Ok(ok == done)
        }
    }
}

/// `getpeername` of `fd` through libc (so through any `LD_PRELOAD` library), as
/// `inet:A.B.C.D:PORT`, `vsock:CID:PORT` or the errno.
fn shown_peer(fd: std::os::fd::RawFd) -> String {
    // SAFETY: sockaddr_storage is plain data.
    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: a buffer and its length for getpeername to fill.
    let r = unsafe {
        libc::getpeername(
            fd,
            (&mut sa as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return format!("error:{}", io::Error::last_os_error());
    }
    match libc::c_int::from(sa.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel (or the library) wrote a sockaddr_in.
            let a = unsafe { *(&sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            format!("inet:{ip}:{}", u16::from_be(a.sin_port))
        }
        libc::AF_VSOCK => {
            // SAFETY: a sockaddr_vm.
            let a = unsafe { *(&sa as *const libc::sockaddr_storage).cast::<libc::sockaddr_vm>() };
            format!("vsock:{}:{}", a.svm_cid, a.svm_port)
        }
        f => format!("family{f}"),
    }
}

/// The address family of socket `fd` as the kernel has it (a raw `getsockname` system
/// call, which no `LD_PRELOAD` library sees), as a path name.
fn real_family(fd: std::os::fd::RawFd) -> &'static str {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: a buffer and its length for the kernel to fill.
    let r = unsafe { libc::syscall(libc::SYS_getsockname, fd, buf.as_mut_ptr(), &mut len) };
    if r != 0 || len < 2 {
        return "unknown";
    }
    match libc::c_int::from(u16::from_ne_bytes([buf[0], buf[1]])) {
        libc::AF_VSOCK => "vsock",
        libc::AF_INET | libc::AF_INET6 => "tcp",
        libc::AF_UNIX => "unix",
        _ => "other",
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("yasmin-stream-check: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_does_not_depend_on_chunking() {
        let mut a = Stream::new(7);
        let mut whole = vec![0u8; 300_000];
        a.fill(&mut whole);
        let mut b = Stream::new(7);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut at = 0;
        while at < whole.len() {
            let n = rng.gen_range(1..=70_000).min(whole.len() - at);
            let mut part = vec![0u8; n];
            b.fill(&mut part);
            assert_eq!(part, whole[at..at + n]);
            at += n;
        }
    }

    #[test]
    fn send_and_recv_agree() {
        let mut wire = Vec::new();
        let mut sizes = SmallRng::seed_from_u64(3);
        let sent = send_stream(&mut wire, 9, 1_000_000, &mut sizes).unwrap();
        let (n, got) = recv_stream(&mut wire.as_slice(), Some(9), &mut sizes).unwrap();
        assert_eq!((n, got), (1_000_000, sent));
        wire[123_456] ^= 1;
        let err = recv_stream(&mut wire.as_slice(), Some(9), &mut sizes).unwrap_err();
        assert!(err.to_string().contains("offset 123456"), "{err}");
    }
}
