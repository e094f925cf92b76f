//! `yasmin-watch`: the YASMIN control-domain watcher (run in dom0). See `PROTOCOL.md`.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use xenstore_watch::watcher::Watcher;
use xenstore_watch::xs::XsClient;

/// Prepares the guests' YASMIN XenStore areas, relays offer notices, cleans up after
/// dead domains and publishes the IPv4 -> domid map. Logs to stderr.
#[derive(Parser, Debug)]
#[command(name = "yasmin-watch", version)]
struct Args {
    /// Scan once (prepare areas, clean up, publish the map) and exit.
    #[arg(long)]
    once: bool,
    /// Stay in the foreground (the default; accepted for systemd/init scripts).
    #[arg(long)]
    foreground: bool,
    /// Rescan every SECS seconds even without events (0: never).
    #[arg(long, default_value_t = 30)]
    rescan: u64,
}

fn flush(w: &mut Watcher) {
    for line in w.logs.drain(..) {
        eprintln!("yasmin-watch: {line}");
    }
}

fn run(args: &Args) -> Result<(), xenstore_watch::xs::Error> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() << 16)
        .unwrap_or(1);
    let mut xs = XsClient::open()?;
    let mut w = Watcher::new(seed);
    let started = Instant::now();
    let r = w.start(&mut xs);
    flush(&mut w);
    r?;
    if args.once {
        return Ok(());
    }
    let mut last_scan = Instant::now();
    loop {
        let timeout = (args.rescan > 0).then(|| Duration::from_secs(args.rescan));
        if let Some(ev) = xs.wait_event(timeout)? {
            let now = started.elapsed().as_millis() as u64;
            if let Err(e) = w.on_event(&mut xs, &ev.path, &ev.token, now) {
                // One failed operation (a domain vanishing under us) is not fatal;
                // a broken connection is, and shows up on the next wait.
                eprintln!("yasmin-watch: {} ({}): {e}", ev.path, ev.token);
            }
        }
        if args.rescan > 0 && last_scan.elapsed() >= Duration::from_secs(args.rescan) {
            if let Err(e) = w.scan(&mut xs) {
                eprintln!("yasmin-watch: rescan: {e}");
            }
            last_scan = Instant::now();
        }
        flush(&mut w);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = args.foreground;
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yasmin-watch: {e}");
            ExitCode::from(2)
        }
    }
}
