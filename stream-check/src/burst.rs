// SPDX-License-Identifier: GPL-2.0
//! `burst`: many connections opened at the same instant, as an RPC client pool or a
//! service mesh does on start. Each thread waits at a barrier, then times its
//! `connect()` (the kernel's default vsock connect timeout, 2 s, unless told otherwise)
//! and does a 1-byte digest round trip. Prints the connect times' p50, p99 and max and
//! the failures by errno; passes when every connection worked.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use yasmin_endpoint::{errno_name, Addr, Conn, SockOpts};

/// What one connection saw: its connect time, and the error that ended it, if any.
struct Outcome {
    connect_ms: f64,
    error: Option<String>,
}

/// The value at quantile `q` (0..=1) of sorted `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn one(addr: &Addr, opts: &SockOpts, i: u64, go: &Barrier) -> Outcome {
    go.wait();
    let t = Instant::now();
    let c = Conn::connect(addr, opts);
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    let error = match c.and_then(|c| {
        c.set_timeout(Some(Duration::from_secs(60)))?;
        crate::digest_on(c, i, 1)
    }) {
        Ok(true) => None,
        Ok(false) => Some("checksum".into()),
        Err(e) => Some(errno_name(&e)),
    };
    Outcome { connect_ms, error }
}

/// Runs the burst; returns whether every connection worked.
pub fn run(
    addr: &Addr,
    conns: u64,
    connect_timeout_ms: Option<u64>,
    buffer_size: Option<u64>,
) -> io::Result<bool> {
    let opts = SockOpts {
        buffer_size,
        vsock_connect_timeout: connect_timeout_ms.map(Duration::from_millis),
        timeout: connect_timeout_ms.map(Duration::from_millis),
        ..SockOpts::default()
    };
    let go = Arc::new(Barrier::new(conns as usize + 1));
    let start_all = Instant::now();
    let mut handles = Vec::new();
    for i in 0..conns {
        let (addr, opts, go) = (addr.clone(), opts.clone(), go.clone());
        handles.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || one(&addr, &opts, i, &go))?,
        );
    }
    go.wait();
    let t0 = Instant::now();
    let mut times = Vec::new();
    let mut failed = BTreeMap::<String, u64>::new();
    for h in handles {
        let o = h
            .join()
            .map_err(|_| io::Error::other("a connection thread panicked"))?;
        times.push(o.connect_ms);
        if let Some(e) = o.error {
            *failed.entry(e).or_default() += 1;
        }
    }
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    times.sort_by(f64::total_cmp);
    let nfailed: u64 = failed.values().sum();
    println!("conns={conns}");
    println!("ok={}", conns - nfailed);
    println!("failed={nfailed}");
    for (e, n) in &failed {
        println!("failed_{e}={n}");
    }
    println!("connect_p50_ms={:.1}", quantile(&times, 0.5));
    println!("connect_p99_ms={:.1}", quantile(&times, 0.99));
    println!("connect_max_ms={:.1}", quantile(&times, 1.0));
    println!("wall_ms={wall_ms:.1}");
    println!(
        "threads_ready_ms={:.1}",
        (t0 - start_all).as_secs_f64() * 1000.0
    );
    Ok(nfailed == 0)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
