//! `yasmin-xs`: a small XenStore command-line client for dom0 and busybox guests.
//!
//! Exit status: 0 success, 1 node not found or timeout, 2 any other error.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use xenstore_watch::xs::{Errno, Error, Perm, XsClient, XsTransport};

#[derive(Parser)]
#[command(
    name = "yasmin-xs",
    version,
    about = "XenStore client (xenstored socket in dom0, /dev/xen/xenbus in a guest)",
    after_help = "Relative paths resolve to the caller's home, /local/domain/<domid>.\n\
                  $XENSTORED_PATH overrides the socket/device to use.\n\
                  Exit status: 0 ok, 1 not found or timeout, 2 other error."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a node's value.
    Read { path: String },
    /// Set a node's value (creating it and missing parents).
    Write { path: String, value: String },
    /// List a node's children, one per line.
    Ls { path: String },
    /// Print "name=value" for each child of a node that has a readable value (one round
    /// trip per child, in one process: a process start is costly in an emulated guest).
    ReadDir { path: String },
    /// Remove a node and everything below it.
    Rm { path: String },
    /// Create a node with an empty value.
    Mkdir { path: String },
    /// Print a node's permissions (owner entry first), e.g. "n0 r1".
    GetPerms { path: String },
    /// Set a node's permissions: owner/default entry first, then grants (n0 r1 b2 ...).
    SetPerms {
        path: String,
        #[arg(required = true, num_args = 1.., value_parser = parse_perm)]
        perms: Vec<Perm>,
    },
    /// Watch a path and print "path token" per event (the first fires at once).
    Watch {
        path: String,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds (exit 1 if --count events were not seen).
        #[arg(long, value_parser = parse_secs)]
        timeout: Option<Duration>,
        /// The watch token.
        #[arg(long, default_value = "yasmin-xs")]
        token: String,
    },
    /// Wait until a node exists and is readable, then print its value.
    Wait {
        path: String,
        /// Give up after this many seconds (exit 1).
        #[arg(long, value_parser = parse_secs)]
        timeout: Option<Duration>,
    },
    /// Print this domain's id (the relative node "domid").
    Domid,
}

fn parse_perm(s: &str) -> Result<Perm, String> {
    s.parse::<Perm>().map_err(|e| e.to_string())
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} is not a valid duration"))
}

/// How a command ended, besides success.
enum Fail {
    /// Not found or timed out: exit 1.
    Soft(String),
    /// Anything else: exit 2.
    Hard(String),
}

fn fail(what: &str, e: Error) -> Fail {
    let msg = format!("{what}: {e}");
    if e.is_not_found() {
        Fail::Soft(msg)
    } else {
        Fail::Hard(msg)
    }
}

fn out(bytes: &[u8]) -> Result<(), Fail> {
    let mut o = io::stdout().lock();
    o.write_all(bytes)
        .and_then(|()| o.flush())
        .map_err(|e| Fail::Hard(format!("stdout: {e}")))
}

fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

fn left_until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

fn run(cmd: Cmd) -> Result<(), Fail> {
    let mut c = XsTransport::open()
        .map(XsClient::new)
        .map_err(|e| Fail::Hard(e.to_string()))?;
    match cmd {
        Cmd::Read { path } => {
            let mut v = c.read(&path).map_err(|e| fail(&path, e))?;
            v.push(b'\n');
            out(&v)
        }
        Cmd::Write { path, value } => c.write(&path, value).map_err(|e| fail(&path, e)),
        Cmd::Ls { path } => {
            let names = c.directory(&path).map_err(|e| fail(&path, e))?;
            let text: String = names.iter().map(|n| format!("{n}\n")).collect();
            out(text.as_bytes())
        }
        Cmd::ReadDir { path } => {
            let names = c.directory(&path).map_err(|e| fail(&path, e))?;
            let mut text = Vec::new();
            for n in names {
                let child = format!("{}/{n}", path.trim_end_matches('/'));
                match c.read(&child) {
                    Ok(v) => {
                        text.extend_from_slice(format!("{n}=").as_bytes());
                        text.extend_from_slice(&v);
                        text.push(b'\n');
                    }
                    // Removed since the listing: not part of the answer.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(fail(&child, e)),
                }
            }
            out(&text)
        }
        Cmd::Rm { path } => c.rm(&path).map_err(|e| fail(&path, e)),
        Cmd::Mkdir { path } => c.mkdir(&path).map_err(|e| fail(&path, e)),
        Cmd::GetPerms { path } => {
            let perms = c.get_perms(&path).map_err(|e| fail(&path, e))?;
            let words: Vec<String> = perms.iter().map(Perm::to_string).collect();
            out(format!("{}\n", words.join(" ")).as_bytes())
        }
        Cmd::SetPerms { path, perms } => c.set_perms(&path, &perms).map_err(|e| fail(&path, e)),
        Cmd::Watch {
            path,
            count,
            timeout,
            token,
        } => {
            c.watch(&path, &token).map_err(|e| fail(&path, e))?;
            let deadline = deadline_of(timeout);
            let mut seen = 0u64;
            while count.is_none_or(|n| seen < n) {
                match c.wait_event(left_until(deadline)) {
                    Ok(Some(ev)) => {
                        seen += 1;
                        out(format!("{} {}\n", ev.path, ev.token).as_bytes())?;
                    }
                    Ok(None) if count.is_some() => {
                        return Err(Fail::Soft(format!(
                            "{path}: timeout after {seen} of {} events",
                            count.unwrap_or(0)
                        )))
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(fail(&path, e)),
                }
            }
            Ok(())
        }
        Cmd::Wait { path, timeout } => wait(&mut c, &path, timeout),
        Cmd::Domid => {
            let mut v = c.read("domid").map_err(|e| fail("domid", e))?;
            v.push(b'\n');
            out(&v)
        }
    }
}

/// Waits for `path` to become readable. A watch wakes it up at once; a re-read every
/// second covers events the guest may not be sent (no read permission yet) and
/// xenstoreds that refuse the watch.
fn wait(c: &mut XsClient<XsTransport>, path: &str, timeout: Option<Duration>) -> Result<(), Fail> {
    const RECHECK: Duration = Duration::from_secs(1);
    let deadline = deadline_of(timeout);
    let token = format!("yasmin-xs-wait-{}", std::process::id());
    let watching = match c.watch(path, &token) {
        Ok(()) => true,
        Err(Error::Xs(_)) => false,
        Err(e) => return Err(fail(path, e)),
    };
    loop {
        match c.read(path) {
            Ok(mut v) => {
                v.push(b'\n');
                return out(&v);
            }
            Err(Error::Xs(Errno::NoEnt | Errno::Acces)) => {}
            Err(e) => return Err(fail(path, e)),
        }
        let slice = match left_until(deadline) {
            Some(left) if left.is_zero() => {
                return Err(Fail::Soft(format!("{path}: timeout waiting for the node")))
            }
            Some(left) => left.min(RECHECK),
            None => RECHECK,
        };
        if watching {
            if c.wait_event(Some(slice))
                .map_err(|e| fail(path, e))?
                .is_some()
            {
                // One read covers every event already queued.
                while c
                    .wait_event(Some(Duration::ZERO))
                    .map_err(|e| fail(path, e))?
                    .is_some()
                {}
            }
        } else {
            std::thread::sleep(slice);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Soft(m)) => {
            eprintln!("yasmin-xs: {m}");
            ExitCode::from(1)
        }
        Err(Fail::Hard(m)) => {
            eprintln!("yasmin-xs: {m}");
            ExitCode::from(2)
        }
    }
}
