// SPDX-License-Identifier: GPL-2.0
//! Helpers shared by the `yasmin-bench` integration tests (each test file uses a part).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_yasmin-bench");

/// Asserts that a finished command succeeded, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server child, killed when dropped.
pub struct Server {
    child: Child,
    log: Option<thread::JoinHandle<String>>,
}

impl Server {
    pub fn start(listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["server", "--listen", listen])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn server");
        // Wait for "listening", then keep draining so the server never blocks on stderr.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).expect("server stderr");
        assert!(first.contains("listening on"), "server said {first:?}");
        let log = thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            rest
        });
        Server {
            child,
            log: Some(log),
        }
    }

    /// Waits (bounded) for the server to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON records (one per non-empty line) of a client's output.
pub fn records(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Field `k` of record `r`, which must be a positive number.
pub fn positive(r: &Value, k: &str) -> f64 {
    let v = r[k]
        .as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {r}"));
    assert!(v > 0.0, "{k} = {v} in {r}");
    v
}
