// SPDX-License-Identifier: GPL-2.0
//! The wire protocol between client and server.
//!
//! Each connection starts with a 32-byte [`Header`] from the client saying what to do.
//! After the data phase the client half-closes; the server drains to EOF, stops its own
//! sender, then writes a 32-byte [`Report`] (what it received in its measurement window)
//! as the very last bytes of its stream and half-closes. All integers are little-endian.

use anyhow::{bail, Result};
use std::time::Duration;

pub const HEADER_LEN: usize = 32;
pub const REPORT_LEN: usize = 32;
const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"YBH1");
const REPORT_MAGIC: u32 = u32::from_le_bytes(*b"YBR1");
/// Largest message a server agrees to allocate for.
pub const MAX_MSG_SIZE: u64 = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Client sends, server receives (and counts).
    StreamSend = 1,
    /// Server sends, client receives (and counts).
    StreamRecv = 2,
    /// Both send and both count what they receive.
    Duplex = 3,
    /// Client sends `msg_size` bytes, server echoes them, repeat.
    PingPong = 4,
    /// End of a client run: a `--once` server exits.
    Quit = 5,
}

impl Mode {
    fn from_u8(v: u8) -> Option<Mode> {
        Some(match v {
            1 => Mode::StreamSend,
            2 => Mode::StreamRecv,
            3 => Mode::Duplex,
            4 => Mode::PingPong,
            5 => Mode::Quit,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::StreamSend => "stream-send",
            Mode::StreamRecv => "stream-recv",
            Mode::Duplex => "duplex",
            Mode::PingPong => "pingpong",
            Mode::Quit => "quit",
        }
    }

    /// Whether the client sends a data stream.
    pub fn client_sends(self) -> bool {
        matches!(self, Mode::StreamSend | Mode::Duplex)
    }

    /// Whether the server sends a data stream.
    pub fn server_sends(self) -> bool {
        matches!(self, Mode::StreamRecv | Mode::Duplex)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub mode: Mode,
    pub msg_size: u64,
    pub warmup: Duration,
    pub duration: Duration,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        b[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        b[4] = self.mode as u8;
        b[8..16].copy_from_slice(&self.msg_size.to_le_bytes());
        b[16..24].copy_from_slice(&nanos(self.warmup).to_le_bytes());
        b[24..32].copy_from_slice(&nanos(self.duration).to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header> {
        if u32_at(b, 0) != HEADER_MAGIC {
            bail!("not a yasmin-bench client (bad header magic)");
        }
        let Some(mode) = Mode::from_u8(b[4]) else {
            bail!("unknown mode {} in header", b[4]);
        };
        let msg_size = u64_at(b, 8);
        if mode != Mode::Quit && !(1..=MAX_MSG_SIZE).contains(&msg_size) {
            bail!("message size {msg_size} out of range 1..={MAX_MSG_SIZE}");
        }
        Ok(Header {
            mode,
            msg_size,
            warmup: Duration::from_nanos(u64_at(b, 16)),
            duration: Duration::from_nanos(u64_at(b, 24)),
        })
    }
}

/// What one side received in its measurement window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes received inside the window.
    pub bytes: u64,
    /// Length of the window.
    pub elapsed: Duration,
    /// All bytes received on the connection, warm-up and drain included.
    pub total: u64,
}

impl Report {
    pub fn encode(&self) -> [u8; REPORT_LEN] {
        let mut b = [0; REPORT_LEN];
        b[0..4].copy_from_slice(&REPORT_MAGIC.to_le_bytes());
        b[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        b[16..24].copy_from_slice(&nanos(self.elapsed).to_le_bytes());
        b[24..32].copy_from_slice(&self.total.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Report> {
        if b.len() != REPORT_LEN || u32_at(b, 0) != REPORT_MAGIC {
            bail!(
                "the server's report is missing or damaged ({} trailing bytes): \
                 did the server stop early?",
                b.len()
            );
        }
        Ok(Report {
            bytes: u64_at(b, 8),
            elapsed: Duration::from_nanos(u64_at(b, 16)),
            total: u64_at(b, 24),
        })
    }

    /// Bytes per second in the window (0 for an empty window).
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes as f64 / s
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            mode: Mode::Duplex,
            msg_size: 4 << 20,
            warmup: Duration::from_millis(100),
            duration: Duration::from_secs(3),
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        let mut bad = h.encode();
        bad[4] = 99;
        assert!(Header::decode(&bad).is_err());
        let mut bad = h.encode();
        bad[0] = 0;
        assert!(Header::decode(&bad).is_err());
        let big = Header {
            msg_size: MAX_MSG_SIZE + 1,
            ..h
        };
        assert!(Header::decode(&big.encode()).is_err());
    }

    #[test]
    fn report_round_trips() {
        let r = Report {
            bytes: 123,
            elapsed: Duration::from_micros(5),
            total: 456,
        };
        assert_eq!(Report::decode(&r.encode()).unwrap(), r);
        assert!(Report::decode(&r.encode()[1..]).is_err());
        assert!(Report::decode(&[0; REPORT_LEN]).is_err());
        assert_eq!(Report::default().rate(), 0.0);
    }
}
