// SPDX-License-Identifier: GPL-2.0
//! The passive side of every case: listeners on `port` (STREAM), `port + 1` (SEQPACKET),
//! `port + 2` (STREAM, 64 KiB buffer) and `port + 3` (STREAM, accepted only on request).
//! Each connection opens with a header, `<what> <nonce> [args]\n` (SEQPACKET: the first
//! record), that says what this side does.

use crate::sock::{self, PAGE};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const STREAM: u32 = 0;
pub const SEQPACKET: u32 = 1;
pub const SMALL: u32 = 2;
pub const DEFERRED: u32 = 3;
/// Buffer of the `SMALL` listener (and so of its children): smaller than any default.
pub const SMALL_BUF: u64 = 64 * 1024;

#[derive(Default)]
struct Shared {
    /// Connections seen per nonce (headers that arrived).
    seen: Mutex<HashMap<u64, u32>>,
}

/// Serves until killed.
pub fn serve(port: u32) -> io::Result<()> {
    let shared = Arc::new(Shared::default());
    let deferred = Arc::new(sock::listen(libc::SOCK_STREAM, port + DEFERRED, None)?);
    let mut handles = Vec::new();
    for (off, ty, buf) in [
        (STREAM, libc::SOCK_STREAM, None),
        (SEQPACKET, libc::SOCK_SEQPACKET, None),
        (SMALL, libc::SOCK_STREAM, Some(SMALL_BUF)),
    ] {
        let l = sock::listen(ty, port + off, buf)?;
        let (shared, deferred) = (shared.clone(), deferred.clone());
        handles.push(thread::spawn(move || loop {
            match sock::accept(&l) {
                Ok(c) => {
                    let (shared, deferred) = (shared.clone(), deferred.clone());
                    thread::spawn(move || {
                        if let Err(e) = serve_one(c, ty, &shared, &deferred) {
                            println!("# server: {e}");
                        }
                    });
                }
                Err(e) => {
                    println!("# server: accept: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    println!("serving on ports {port}..{}", port + DEFERRED);
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

fn header(c: &OwnedFd, ty: libc::c_int) -> io::Result<String> {
    if ty == libc::SOCK_SEQPACKET {
        let mut b = [0u8; 256];
        let (r, _) = sock::recvmsg(c, &mut b, 0);
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = String::from_utf8_lossy(&b[..r as usize]);
        Ok(s.trim_end().to_string())
    } else {
        sock::recv_line(c)
    }
}

/// Reads until EOF (or an error); the byte count.
fn drain(c: &OwnedFd) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let r = sock::recv_raw(c.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 0);
        if r <= 0 {
            if r < 0 && sock::errno() == libc::EINTR {
                continue;
            }
            return n;
        }
        n += r as usize;
    }
}

fn reply(c: &OwnedFd, s: &str) -> io::Result<()> {
    sock::send_all(c, format!("{s}\n").as_bytes())
}

fn serve_one(c: OwnedFd, ty: libc::c_int, shared: &Shared, deferred: &OwnedFd) -> io::Result<()> {
    let h = header(&c, ty)?;
    let mut words = h.split_whitespace();
    let what = words.next().unwrap_or("");
    let nonce: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let args: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or(0);
    *shared
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(nonce)
        .or_default() += 1;
    match what {
        // Read everything, then say how much.
        "sink" => {
            let n = drain(&c);
            reply(&c, &format!("got={n}"))
        }
        // Wait `arg0` ms before reading, then read everything, then say how much.
        "hold" => {
            thread::sleep(Duration::from_millis(arg(0)));
            let n = drain(&c);
            reply(&c, &format!("got={n}"))
        }
        // Send `arg0` pattern bytes (seed `arg1`), then wait for the client's close.
        "send" => {
            sock::send_all(&c, &sock::pattern_buf(arg(1) as u8, arg(0) as usize))?;
            drain(&c);
            Ok(())
        }
        // Send `arg0` pattern bytes and close at once.
        "send-close" => sock::send_all(&c, &sock::pattern_buf(arg(1) as u8, arg(0) as usize)),
        // Two halves of `arg0` bytes, `arg1` ms apart.
        "send-split" => {
            let data = sock::pattern_buf(0, arg(0) as usize);
            let (a, b) = data.split_at(data.len() / 2);
            sock::send_all(&c, a)?;
            thread::sleep(Duration::from_millis(arg(1)));
            sock::send_all(&c, b)?;
            drain(&c);
            Ok(())
        }
        // SO_VM_SOCKETS_BUFFER_SIZE on the accepted socket, then echo what comes.
        "setsockopt-accepted" => {
            let set = match sock::set_u64(&c, sock::SO_VM_SOCKETS_BUFFER_SIZE, 32 * PAGE as u64) {
                Ok(()) => "ok".to_string(),
                Err(e) => sock::errno_name(e.raw_os_error().unwrap_or(0)),
            };
            let get = sock::get_u64(&c, sock::SO_VM_SOCKETS_BUFFER_SIZE)
                .map_or_else(|e| e.to_string(), |v| v.to_string());
            reply(&c, &format!("set={set} get={get}"))?;
            let data = sock::recv_upto(&c, 1000)?;
            sock::send_all(&c, &data)?;
            drain(&c);
            Ok(())
        }
        // Accept one connection from the deferred listener (queued there earlier and
        // maybe closed since), and say what a read on it returns.
        "accept-deferred" => {
            let got = if sock::poll(deferred, libc::POLLIN, 3000) {
                let d = sock::accept(deferred)?;
                sock::set_recv_timeout(&d, Duration::from_secs(2))?;
                let mut b = [0u8; 16];
                sock::outcome(sock::recv_raw(d.as_raw_fd(), b.as_mut_ptr(), b.len(), 0))
            } else {
                "none".to_string()
            };
            reply(&c, &format!("accepted-recv={got}"))
        }
        // How many connections carried the nonce `arg0`.
        "stats" => {
            let n = shared
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&arg(0))
                .copied()
                .unwrap_or(0);
            reply(&c, &format!("seen={n}"))
        }
        // SEQPACKET: receive records until EOF; reply `len:eor` for each.
        "records" => {
            let mut buf = vec![0u8; 2 * 1024 * 1024];
            let mut out = Vec::new();
            let mut intact = true;
            loop {
                let (r, fl) = sock::recvmsg(&c, &mut buf, 0);
                if r <= 0 {
                    break;
                }
                let n = r as usize;
                intact &= buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == sock::pattern(n as u8, i));
                out.push(format!("{n}:{}", u8::from(fl & libc::MSG_EOR != 0)));
            }
            // Waits until the client's send side is done (it shut down writing).
            let summary = format!("{} intact={intact}", out.join(","));
            send_record(&c, summary.as_bytes())
        }
        // SEQPACKET: hold `arg0` ms, then count records until EOF.
        "drain-records" => {
            thread::sleep(Duration::from_millis(arg(0)));
            let mut buf = vec![0u8; 2 * 1024 * 1024];
            let (mut n, mut intact) = (0, true);
            loop {
                let (r, _) = sock::recvmsg(&c, &mut buf, 0);
                if r <= 0 {
                    break;
                }
                intact &= r as usize == PAGE
                    && buf[..PAGE]
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == sock::pattern(n as u8, i));
                n += 1;
            }
            send_record(&c, format!("records={n} intact={intact}").as_bytes())
        }
        // SEQPACKET: send records of the listed sizes (EOR on odd positions), wait EOF.
        "send-records" => {
            for (i, &len) in args.iter().enumerate() {
                let data = sock::pattern_buf(len as u8, len as usize);
                let flags = if i % 2 == 1 { libc::MSG_EOR } else { 0 };
                if sock::send_raw(c.as_raw_fd(), data.as_ptr(), data.len(), flags) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            drain(&c);
            Ok(())
        }
        // SEQPACKET: one record of `arg0` bytes, then close.
        "send-record-close" => send_record(&c, &sock::pattern_buf(arg(0) as u8, arg(0) as usize)),
        other => reply(&c, &format!("unknown case {other}")),
    }
}

fn send_record(c: &OwnedFd, data: &[u8]) -> io::Result<()> {
    if sock::send_raw(c.as_raw_fd(), data.as_ptr(), data.len(), 0) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
