// SPDX-License-Identifier: GPL-2.0
//! The wire protocol between client and server.
//!
//! Each connection starts with a 32-byte [`Header`] from the client saying what to do.
//! No end of a run depends on EOF or on a half-close (some relays, such as Xen's
//! `vchan-socket-proxy`, do not pass a half-close on): each side ends its own stream with
//! a 32-byte trailer at a message boundary — the client with an end marker
//! ([`end_marker`]), the server with its [`Report`] (what it received in its measurement
//! window) — and a side closes its socket once it has sent its trailer and read the
//! peer's. Data bytes are all [`CLIENT_FILL`] or [`SERVER_FILL`], and no trailer starts
//! with either, so a [`Framer`] finds a trailer by looking at the first byte of each
//! message. All integers are little-endian. README.md, "Wire protocol", has the details.

use anyhow::{bail, Result};
use std::io;
use std::time::Duration;

pub const HEADER_LEN: usize = 32;
pub const REPORT_LEN: usize = 32;
const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"YBH1");
const REPORT_MAGIC: u32 = u32::from_le_bytes(*b"YBR1");
const END_MAGIC: u32 = u32::from_le_bytes(*b"YBE1");
/// Length of every trailer (end marker or report).
pub const TRAILER_LEN: usize = 32;
/// Every data byte the client sends (stream data and ping-pong requests).
pub const CLIENT_FILL: u8 = 0xa5;
/// Every data byte the server sends (stream data; ping-pong echoes are the client's).
pub const SERVER_FILL: u8 = 0x5a;
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

/// The client's trailer: it will send nothing more on this connection.
pub fn end_marker() -> [u8; TRAILER_LEN] {
    let mut b = [0; TRAILER_LEN];
    b[0..4].copy_from_slice(&END_MAGIC.to_le_bytes());
    b
}

pub fn is_end_marker(b: &[u8]) -> bool {
    b.len() == TRAILER_LEN && u32_at(b, 0) == END_MAGIC
}

/// Splits a peer's stream into data and its trailer. The data is whole messages of
/// `msg_size` bytes, every byte `fill`; the trailer starts at a message boundary, with a
/// magic whose first byte (`Y`) is neither fill, so one byte per message is looked at.
#[derive(Debug)]
pub struct Framer {
    msg_size: usize,
    fill: u8,
    data: u64,
    started: bool,
    trailer: Vec<u8>,
}

impl Framer {
    pub fn new(msg_size: u64, fill: u8) -> Framer {
        Framer {
            msg_size: usize::try_from(msg_size).unwrap_or(usize::MAX).max(1),
            fill,
            data: 0,
            started: false,
            trailer: Vec::with_capacity(TRAILER_LEN),
        }
    }

    /// Takes the next bytes read from the peer; returns how many of them are data.
    /// Bytes past a complete trailer are an error.
    pub fn feed(&mut self, chunk: &[u8]) -> io::Result<usize> {
        if self.started {
            self.push_trailer(chunk)?;
            return Ok(0);
        }
        let size = self.msg_size as u64;
        // Index in `chunk` of the first message boundary.
        let first = ((size - self.data % size) % size) as usize;
        let at = (first..chunk.len())
            .step_by(self.msg_size)
            .find(|&i| chunk[i] != self.fill);
        match at {
            None => {
                self.data += chunk.len() as u64;
                Ok(chunk.len())
            }
            Some(i) => {
                self.data += i as u64;
                self.started = true;
                self.push_trailer(&chunk[i..])?;
                Ok(i)
            }
        }
    }

    fn push_trailer(&mut self, b: &[u8]) -> io::Result<()> {
        if self.trailer.len() + b.len() > TRAILER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected bytes after the end of the peer's stream",
            ));
        }
        self.trailer.extend_from_slice(b);
        Ok(())
    }

    /// Whether the trailer has begun (the peer's data is over).
    pub fn ended(&self) -> bool {
        self.started
    }

    /// Whether the whole trailer has been read.
    pub fn complete(&self) -> bool {
        self.trailer.len() == TRAILER_LEN
    }

    /// How many trailer bytes are still to come (`TRAILER_LEN` before it has begun).
    pub fn missing(&self) -> usize {
        TRAILER_LEN - self.trailer.len()
    }

    pub fn trailer(&self) -> &[u8] {
        &self.trailer
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
    fn framer_finds_the_trailer_at_a_message_boundary() {
        let mut f = Framer::new(4, CLIENT_FILL);
        assert_eq!(f.feed(&[CLIENT_FILL; 6]).unwrap(), 6);
        assert!(!f.ended());
        // The boundary is at index 2 of the next chunk.
        let mut chunk = vec![CLIENT_FILL; 2];
        chunk.extend_from_slice(&end_marker()[..10]);
        assert_eq!(f.feed(&chunk).unwrap(), 2);
        assert!(f.ended() && !f.complete());
        assert_eq!(f.missing(), TRAILER_LEN - 10);
        assert_eq!(f.feed(&end_marker()[10..]).unwrap(), 0);
        assert!(f.complete() && is_end_marker(f.trailer()));
        assert!(f.feed(&[0]).is_err());
        // A non-fill byte inside a message is data; one-byte messages look at every byte.
        let mut f = Framer::new(4, SERVER_FILL);
        assert_eq!(f.feed(&[SERVER_FILL, 1, 2, 3]).unwrap(), 4);
        let mut f = Framer::new(1, SERVER_FILL);
        let mut chunk = vec![SERVER_FILL; 3];
        chunk.extend_from_slice(&Report::default().encode());
        assert_eq!(f.feed(&chunk).unwrap(), 3);
        assert_eq!(Report::decode(f.trailer()).unwrap(), Report::default());
        assert!(!is_end_marker(f.trailer()));
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
