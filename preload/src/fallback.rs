//! The fallback memory: destinations whose vsock connect failed recently, so that the
//! next connects to them go straight to TCP instead of paying the failed attempt again.
//!
//! A failed vsock attempt (nothing listens on that vsock port, the peer has no YASMIN,
//! the peer's module went away, the handshake timed out) falls back to TCP on the same
//! descriptor; the destination is remembered here for the configured time to live. The
//! key includes the CID the map gave: when the destination comes back as a new domain
//! (a restart, a restore), its new CID is tried at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;

use crate::sync::ForkMutex;

/// A destination as the program named it, and where the map sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub ip: [u8; 4],
    pub port: u16,
    pub cid: u32,
}

/// What a remembered failure says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Miss {
    /// The vsock attempt's errno.
    pub errno: c_int,
    /// How long ago it failed.
    pub age: Duration,
}

/// Entries at most: the oldest go first (a program that connects to thousands of
/// failing destinations pays the attempt again, nothing worse).
pub const CAPACITY: usize = 256;

/// The remembered failures, oldest first.
#[derive(Debug, Default)]
pub struct Memory {
    entries: Vec<(Key, Instant, c_int)>,
}

impl Memory {
    pub const fn new() -> Self {
        Memory {
            entries: Vec::new(),
        }
    }

    /// The failure remembered for `k` that is younger than `ttl` at `now` (older ones
    /// are dropped on the way).
    pub fn lookup(&mut self, k: Key, now: Instant, ttl: Duration) -> Option<Miss> {
        self.entries
            .retain(|&(_, at, _)| now.saturating_duration_since(at) < ttl);
        self.entries
            .iter()
            .find(|(key, _, _)| *key == k)
            .map(|&(_, at, errno)| Miss {
                errno,
                age: now.saturating_duration_since(at),
            })
    }

    /// Remembers that the vsock attempt to `k` failed with `errno` at `now`.
    pub fn record(&mut self, k: Key, errno: c_int, now: Instant) {
        self.entries.retain(|(key, _, _)| *key != k);
        if self.entries.len() >= CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push((k, now, errno));
    }

    /// Forgets `k` (a vsock connection to it worked).
    pub fn forget(&mut self, k: Key) {
        self.entries.retain(|(key, _, _)| *key != k);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

pub(crate) static MEMORY: ForkMutex<Memory> = ForkMutex::new(Memory::new());

/// Whether anything was ever recorded: a process that never fell back never takes the
/// lock on its connects.
static USED: AtomicBool = AtomicBool::new(false);

/// The failure remembered for `k` within `ttl`, if any.
pub fn recent(k: Key, ttl: Duration) -> Option<Miss> {
    if ttl.is_zero() || !USED.load(Ordering::Acquire) {
        return None;
    }
    MEMORY.lock().lookup(k, Instant::now(), ttl)
}

/// Remembers a failed vsock attempt to `k` (nothing if `ttl` is zero: no memory).
pub fn remember(k: Key, errno: c_int, ttl: Duration) {
    if ttl.is_zero() {
        return;
    }
    USED.store(true, Ordering::Release);
    MEMORY.lock().record(k, errno, Instant::now());
}

/// Forgets `k` after a vsock connection to it worked.
pub fn worked(k: Key) {
    if USED.load(Ordering::Acquire) {
        MEMORY.lock().forget(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn key(port: u16, cid: u32) -> Key {
        Key {
            ip: [198, 18, 0, 12],
            port,
            cid,
        }
    }

    #[test]
    fn remembered_until_the_ttl_passes() {
        let t0 = Instant::now();
        let mut m = Memory::new();
        assert_eq!(m.lookup(key(80, 4), t0, TTL), None);
        m.record(key(80, 4), libc::ECONNREFUSED, t0);
        let hit = m
            .lookup(key(80, 4), t0 + Duration::from_secs(3), TTL)
            .unwrap();
        assert_eq!(hit.errno, libc::ECONNREFUSED);
        assert_eq!(hit.age, Duration::from_secs(3));
        assert_eq!(m.lookup(key(80, 4), t0 + TTL, TTL), None);
        assert_eq!(m.len(), 0, "expired entries are dropped");
    }

    #[test]
    fn the_key_is_ip_port_and_cid() {
        let t0 = Instant::now();
        let mut m = Memory::new();
        m.record(key(80, 4), libc::ETIMEDOUT, t0);
        assert_eq!(m.lookup(key(81, 4), t0, TTL), None, "another port");
        assert_eq!(
            m.lookup(key(80, 5), t0, TTL),
            None,
            "the same address, a new domain"
        );
        let other = Key {
            ip: [198, 18, 0, 13],
            ..key(80, 4)
        };
        assert_eq!(m.lookup(other, t0, TTL), None, "another address");
        assert!(m.lookup(key(80, 4), t0, TTL).is_some());
    }

    #[test]
    fn a_success_forgets_and_a_new_failure_restarts_the_clock() {
        let t0 = Instant::now();
        let mut m = Memory::new();
        m.record(key(80, 4), libc::ECONNREFUSED, t0);
        m.record(key(80, 4), libc::ECONNRESET, t0 + Duration::from_secs(8));
        let hit = m
            .lookup(key(80, 4), t0 + Duration::from_secs(12), TTL)
            .unwrap();
        assert_eq!((hit.errno, m.len()), (libc::ECONNRESET, 1));
        m.forget(key(80, 4));
        assert_eq!(
            m.lookup(key(80, 4), t0 + Duration::from_secs(12), TTL),
            None
        );
    }

    #[test]
    fn bounded() {
        let t0 = Instant::now();
        let mut m = Memory::new();
        for p in 0..(CAPACITY as u16 + 10) {
            m.record(key(p, 4), libc::ECONNREFUSED, t0);
        }
        assert_eq!(m.len(), CAPACITY);
        assert_eq!(m.lookup(key(0, 4), t0, TTL), None, "the oldest went first");
        assert!(m.lookup(key(CAPACITY as u16 + 9, 4), t0, TTL).is_some());
    }
}
