// SPDX-License-Identifier: GPL-2.0
//! yasmin-bench: throughput and latency of a byte-stream transport (see README.md).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use yasmin_bench::net::Addr;
use yasmin_bench::proto::{Mode, MAX_MSG_SIZE};
use yasmin_bench::run::{self, ClientConfig, Kind, MemcpyConfig, ServerConfig};
use yasmin_bench::size::{parse_size, parse_size_list};

const DEFAULT_STREAM_SIZES: &str = "1,64,1K,4K,16K,64K,256K,1M,4M";
const DEFAULT_LATENCY_SIZES: &str = "1,64,1K,4K,16K,64K";

#[derive(Parser)]
#[command(
    name = "yasmin-bench",
    about = "Throughput and latency of AF_VSOCK, TCP and Unix stream sockets and Xen libvchan, the same way for each"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Stream,
    Latency,
}

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    /// Client sends, the server counts.
    Send,
    /// Server sends, the client counts.
    Recv,
    /// Both send; both directions are counted and added.
    Duplex,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve benchmark connections (one thread each) until killed, or with --once until
    /// the end of one client run.
    Server {
        /// vsock:CID:PORT (CID `any` or 4294967295 to accept from any), tcp:IP:PORT,
        /// unix:/path or vchan:CLIENT_DOMID:BASE (BASE a XenStore path of this domain that
        /// the client's domain can read, e.g. /local/domain/<self>/data/yasmin-bench-vchan;
        /// needs the vchan feature).
        #[arg(long)]
        listen: String,
        /// Exit when a client run ends.
        #[arg(long)]
        once: bool,
        /// Socket buffer size set on the listening socket (inherited by connections);
        /// for vsock SO_VM_SOCKETS_BUFFER_SIZE, else SO_SNDBUF/SO_RCVBUF; for vchan the
        /// size of each ring [vchan default: 64K; libxenvchan rounds it up, max 1M].
        #[arg(long, value_parser = size_arg)]
        buffer_size: Option<u64>,
        /// Pin the connection threads to this CPU.
        #[arg(long)]
        pin: Option<usize>,
        /// Seconds added to a connection's warm-up + duration for its socket timeouts.
        #[arg(long, default_value_t = run::SLACK.as_secs_f64())]
        timeout_slack: f64,
    },
    /// Measure against a server.
    Client {
        /// vsock:CID:PORT, tcp:IP:PORT, unix:/path or vchan:SERVER_DOMID:BASE (the
        /// server's BASE; needs the vchan feature).
        #[arg(long)]
        connect: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Stream direction, as seen from the client.
        #[arg(long, value_enum, default_value = "send")]
        direction: DirectionArg,
        /// Comma-separated message sizes (1, 64, 4K, 1M...), one record each.
        /// [default: stream 1,64,1K,4K,16K,64K,256K,1M,4M; latency 1,64,1K,4K,16K,64K]
        #[arg(long)]
        msg_sizes: Option<String>,
        /// Measured seconds per message size (warm-up excluded).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Seconds of warm-up before measuring.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Parallel connections.
        #[arg(long, default_value_t = 1)]
        connections: u32,
        /// Set before connect: vsock SO_VM_SOCKETS_BUFFER_SIZE (selects the YASMIN ring
        /// size), tcp/unix SO_SNDBUF and SO_RCVBUF; ignored for vchan (the server's
        /// --buffer-size sets its rings).
        #[arg(long, value_parser = size_arg)]
        buffer_size: Option<u64>,
        /// Name of the transport in the records (yasmin, tcp-netfront, unix,
        /// vsock-loopback, vchan...) [default: the address family].
        #[arg(long)]
        transport_label: Option<String>,
        /// Ring size to record (a label; --buffer-size is what sets it).
        #[arg(long, value_parser = size_arg)]
        ring_size: Option<u64>,
        /// Append the JSON Lines records to this file (they are printed to stdout too).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Pin the benchmark threads to this CPU.
        #[arg(long)]
        pin: Option<usize>,
        /// Do not tell the server that the run is over (keeps a --once server up).
        #[arg(long)]
        no_quit: bool,
        /// Round number to record (interleaved series: every transport once per round).
        #[arg(long)]
        round: Option<u32>,
        /// Seconds added to warm-up + duration for connect, read and write timeouts: a
        /// run that stalls longer fails.
        #[arg(long, default_value_t = run::SLACK.as_secs_f64())]
        timeout_slack: f64,
    },
    /// Single-thread memcpy bandwidth between two buffers of each size: the ceiling.
    Memcpy {
        #[arg(long, default_value = DEFAULT_STREAM_SIZES)]
        msg_sizes: String,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
        #[arg(long, default_value = "memcpy")]
        transport_label: String,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        pin: Option<usize>,
        /// write(2) each buffer to this file instead (`/dev/null`: the system call's own
        /// cost, the floor under any socket's send of that size; direction `syscall`).
        #[arg(long)]
        sink: Option<PathBuf>,
        /// Round number to record (as for `client`).
        #[arg(long)]
        round: Option<u32>,
    },
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| format!("{e:#}"))
}

fn seconds(what: &str, s: f64, allow_zero: bool) -> Result<Duration> {
    let d = Duration::try_from_secs_f64(s).with_context(|| format!("bad {what} {s}"))?;
    if d.is_zero() && !allow_zero {
        bail!("{what} must be positive");
    }
    // Keeps deadlines and timeouts far from overflow.
    if d > Duration::from_secs(7 * 24 * 3600) {
        bail!("{what} {s} s is too long");
    }
    Ok(d)
}

fn sizes(list: &str) -> Result<Vec<u64>> {
    let v = parse_size_list(list)?;
    if let Some(bad) = v.iter().find(|&&s| s == 0 || s > MAX_MSG_SIZE) {
        bail!("message size {bad} out of range 1..={MAX_MSG_SIZE}");
    }
    Ok(v)
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Server {
            listen,
            once,
            buffer_size,
            pin,
            timeout_slack,
        } => run::serve(&ServerConfig {
            listen: Addr::parse(&listen)?,
            once,
            buffer_size,
            pin,
            slack: seconds("--timeout-slack", timeout_slack, false)?,
        }),
        Cmd::Client {
            connect,
            kind,
            direction,
            msg_sizes,
            duration,
            warmup,
            connections,
            buffer_size,
            transport_label,
            ring_size,
            json,
            pin,
            no_quit,
            round,
            timeout_slack,
        } => {
            let addr = Addr::parse(&connect)?;
            let kind = match kind {
                KindArg::Stream => Kind::Stream,
                KindArg::Latency => Kind::Latency,
            };
            let default_sizes = match kind {
                Kind::Stream => DEFAULT_STREAM_SIZES,
                Kind::Latency => DEFAULT_LATENCY_SIZES,
            };
            if !(1..=1024).contains(&connections) {
                bail!("--connections must be 1..=1024");
            }
            let label = transport_label.unwrap_or_else(|| {
                match &addr {
                    Addr::Socket(a) => a.scheme(),
                    Addr::Vchan { .. } => "vchan",
                }
                .to_string()
            });
            let cfg = ClientConfig {
                addr,
                kind,
                direction: match direction {
                    DirectionArg::Send => Mode::StreamSend,
                    DirectionArg::Recv => Mode::StreamRecv,
                    DirectionArg::Duplex => Mode::Duplex,
                },
                msg_sizes: sizes(msg_sizes.as_deref().unwrap_or(default_sizes))?,
                duration: seconds("--duration", duration, false)?,
                warmup: seconds("--warmup", warmup, true)?,
                connections,
                buffer_size,
                label,
                ring_size,
                json,
                pin,
                send_quit: !no_quit,
                round,
                slack: seconds("--timeout-slack", timeout_slack, false)?,
            };
            run::run_client(&cfg).map(drop)
        }
        Cmd::Memcpy {
            msg_sizes,
            duration,
            warmup,
            transport_label,
            json,
            pin,
            sink,
            round,
        } => run::run_memcpy(&MemcpyConfig {
            msg_sizes: sizes(&msg_sizes)?,
            duration: seconds("--duration", duration, false)?,
            warmup: seconds("--warmup", warmup, true)?,
            label: transport_label,
            json,
            pin,
            sink,
            round,
        })
        .map(drop),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yasmin-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
