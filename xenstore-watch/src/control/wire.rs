// SPDX-License-Identifier: GPL-2.0
//! YASMIN per-pair control channel: message codec and shared-page layouts.
//!
//! This file is compiled twice: into the kernel module
//! (`#[path = "../xenstore-watch/src/control/wire.rs"] mod wire;`) and into the userspace
//! `xenstore-watch` crate (tests, fuzzing). It uses `core` only: no allocation, no `std`, no
//! crates, no crate-level attributes, no `unsafe`. Decoding never panics on any input.
//! The normative description is `xenstore-watch/PROTOCOL.md`.
//!
//! Every message is a fixed 8-byte header followed by a fixed-size body (per type):
//!
//! | offset | size | field     | meaning |
//! |--------|------|-----------|---------|
//! | 0      | 1    | `version` | [`VERSION`] (1) |
//! | 1      | 1    | `type`    | [`MsgType`] |
//! | 2      | 2    | `len`     | total length, header included, little-endian; `HEADER_LEN..=MAX_MSG_LEN` |
//! | 4      | 4    | reserved  | zero |
//!
//! All integers are little-endian. In version 1 the length of every type is exact
//! ([`MsgType::wire_len`]); any other length is rejected.

use core::fmt;

/// Message format version carried in every header.
pub const VERSION: u8 = 1;
/// Header size.
pub const HEADER_LEN: usize = 8;
/// Upper bound of any message's `len`, now and in later versions (framing bound).
pub const MAX_MSG_LEN: usize = 256;
/// Largest message of version 1 (HELLO / HELLO_ACK).
pub const MAX_V1_LEN: usize = HEADER_LEN + 32;

/// Page size of the shared pages (Xen x86).
pub const PAGE_SIZE: usize = 4096;
/// Largest number of data pages of one per-socket ring direction (2 MiB).
pub const MAX_RING_PAGES: u16 = 512;

/// `SHUTDOWN` mode bit: the sender will receive no more (`SHUT_RD`).
pub const SHUTDOWN_RCV: u32 = 1;
/// `SHUTDOWN` mode bit: the sender will send no more (`SHUT_WR`).
pub const SHUTDOWN_SEND: u32 = 2;

// ---------------------------------------------------------------------------------------
// Control page: one granted page, two rings (ring crate layout, header + data apart).
// ---------------------------------------------------------------------------------------

/// Offset of the control page header (magic, version); written once by the offerer.
pub const CTRL_OFF_MAGIC: usize = 0x000;
/// Offset of the control layout version (`u16`).
pub const CTRL_OFF_VERSION: usize = 0x004;
/// `"YSMC"` little-endian.
pub const CTRL_MAGIC: u32 = 0x434d_5359;
/// Layout version of the control page.
pub const CTRL_VERSION: u16 = 1;
/// Ring header (`ring::HEADER_USED` = 0x100 bytes) of the offerer -> acceptor ring.
pub const CTRL_O2A_HDR: usize = 0x100;
/// Ring header of the acceptor -> offerer ring.
pub const CTRL_A2O_HDR: usize = 0x200;
/// Data area of the offerer -> acceptor ring.
pub const CTRL_O2A_DATA: usize = 0x800;
/// Data area of the acceptor -> offerer ring.
pub const CTRL_A2O_DATA: usize = 0xC00;
/// Size of each control ring's data area (power of two; holds 4 maximal messages).
pub const CTRL_RING_SIZE: usize = 0x400;

// ---------------------------------------------------------------------------------------
// Ring directory page: one per per-socket ring direction.
// ---------------------------------------------------------------------------------------

/// Ring header (`ring::HEADER_USED` bytes) of this direction's ring.
pub const DIR_OFF_RING_HDR: usize = 0x000;
/// `u32` magic.
pub const DIR_OFF_MAGIC: usize = 0x100;
/// `u16` layout version.
pub const DIR_OFF_VERSION: usize = 0x104;
/// `u16` number of data pages.
pub const DIR_OFF_NPAGES: usize = 0x106;
/// First grant reference (`u32` each, `npages` of them).
pub const DIR_OFF_GREFS: usize = 0x800;
/// `"YSRD"` little-endian.
pub const DIR_MAGIC: u32 = 0x4452_5359;
/// Layout version of the directory page.
pub const DIR_VERSION: u16 = 1;

/// Why a directory page is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirError {
    /// The slice is not one page.
    BadPage,
    BadMagic,
    BadVersion,
    /// `npages` differs from the count negotiated in CONNECT/ACCEPT.
    CountMismatch,
    /// The negotiated count is not a power of two in `1..=MAX_RING_PAGES`.
    BadCount,
}

/// Whether `n` is a valid data page count (power of two, `1..=512`).
pub const fn valid_ring_pages(n: u16) -> bool {
    n != 0 && n <= MAX_RING_PAGES && n.is_power_of_two()
}

/// Writes the directory header and `grefs` into `page` (the granting side, before granting).
pub fn dir_write(page: &mut [u8], grefs: &[u32]) -> Result<(), DirError> {
    if page.len() != PAGE_SIZE {
        return Err(DirError::BadPage);
    }
    let n = match u16::try_from(grefs.len()) {
        Ok(n) if valid_ring_pages(n) => n,
        _ => return Err(DirError::BadCount),
    };
    put_u32(page, DIR_OFF_MAGIC, DIR_MAGIC);
    put_u16(page, DIR_OFF_VERSION, DIR_VERSION);
    put_u16(page, DIR_OFF_NPAGES, n);
    let mut i = 0;
    while i < grefs.len() {
        put_u32(page, DIR_OFF_GREFS + 4 * i, grefs[i]);
        i += 1;
    }
    Ok(())
}

/// Reads a peer's directory page (a private copy of it: the peer may change the shared one).
/// `expected` is the page count from CONNECT/ACCEPT; the page's own count must equal it and
/// exactly `expected` references are copied into `out[..expected]`.
pub fn dir_read(page: &[u8], expected: u16, out: &mut [u32]) -> Result<usize, DirError> {
    if page.len() != PAGE_SIZE {
        return Err(DirError::BadPage);
    }
    if !valid_ring_pages(expected) || out.len() < expected as usize {
        return Err(DirError::BadCount);
    }
    if get_u32(page, DIR_OFF_MAGIC) != DIR_MAGIC {
        return Err(DirError::BadMagic);
    }
    if get_u16(page, DIR_OFF_VERSION) != DIR_VERSION {
        return Err(DirError::BadVersion);
    }
    if get_u16(page, DIR_OFF_NPAGES) != expected {
        return Err(DirError::CountMismatch);
    }
    let n = expected as usize;
    let mut i = 0;
    while i < n {
        out[i] = get_u32(page, DIR_OFF_GREFS + 4 * i);
        i += 1;
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------------------

/// Message types. Numbers are the wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    Hello = 1,
    HelloAck = 2,
    Ping = 3,
    Pong = 4,
    Goodbye = 5,
    Connect = 16,
    Accept = 17,
    Reset = 18,
    Shutdown = 19,
    Close = 20,
}

impl MsgType {
    /// From the wire value.
    pub const fn from_u8(v: u8) -> Option<MsgType> {
        Some(match v {
            1 => MsgType::Hello,
            2 => MsgType::HelloAck,
            3 => MsgType::Ping,
            4 => MsgType::Pong,
            5 => MsgType::Goodbye,
            16 => MsgType::Connect,
            17 => MsgType::Accept,
            18 => MsgType::Reset,
            19 => MsgType::Shutdown,
            20 => MsgType::Close,
            _ => return None,
        })
    }

    /// Exact total length (header + body) in version 1.
    pub const fn wire_len(self) -> usize {
        HEADER_LEN
            + match self {
                MsgType::Hello | MsgType::HelloAck => 32,
                MsgType::Ping | MsgType::Pong => 8,
                MsgType::Goodbye => 8,
                MsgType::Connect => 28,
                MsgType::Accept => 24,
                MsgType::Reset => 20,
                MsgType::Shutdown => 20,
                MsgType::Close => 16,
            }
    }
}

/// Pair-level greeting (acceptor sends HELLO, offerer answers HELLO_ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Lowest and highest message version the sender speaks.
    pub min_version: u8,
    pub max_version: u8,
    pub sender_domid: u16,
    pub receiver_domid: u16,
    /// Largest per-socket ring (data pages) the sender accepts to map.
    pub max_ring_pages: u16,
    /// Sender's generation (from its `gen` node), nonzero.
    pub sender_gen: u64,
    /// The receiver's generation as the sender knows it (0: unknown).
    pub receiver_gen: u64,
    /// Feature bits; none defined in version 1 (must be 0).
    pub features: u32,
}

/// One direction of a per-socket ring: its directory page and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingRef {
    /// Grant reference of the directory page.
    pub dir_gref: u32,
    /// Number of data pages (power of two, `1..=512`).
    pub pages: u16,
}

/// Identifies a connection: ports as seen by the sender, and the connector's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId {
    /// The sender's vsock port.
    pub src_port: u32,
    /// The receiver's vsock port.
    pub dst_port: u32,
    /// Chosen by the connecting side, unique while the pair channel lives; echoed by all
    /// later messages of the connection (in both directions).
    pub token: u64,
}

impl ConnId {
    /// The same connection as the other side names it (ports swapped): what an answer
    /// to a message carrying `self` carries.
    pub const fn reversed(self) -> ConnId {
        ConnId {
            src_port: self.dst_port,
            dst_port: self.src_port,
            token: self.token,
        }
    }
}

/// A control-channel message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    Hello(Hello),
    HelloAck(Hello),
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// The pair channel is being torn down; `reason` is informative.
    Goodbye {
        reason: u32,
    },
    /// Connect: the connector's ring (connector -> acceptor) and the event channel port the
    /// connector allocated (unbound, for the acceptor's domain). `seqpacket`: a
    /// SOCK_SEQPACKET connection (records, `ring/src/record.rs`), else SOCK_STREAM; the
    /// acceptor's listener must be of the same type.
    Connect {
        id: ConnId,
        ring: RingRef,
        evtchn: u32,
        seqpacket: bool,
    },
    /// Accept: the acceptor's ring (acceptor -> connector).
    Accept {
        id: ConnId,
        ring: RingRef,
    },
    /// Refuse a CONNECT, or abort a connection.
    Reset {
        id: ConnId,
        reason: u32,
    },
    /// `mode`: [`SHUTDOWN_RCV`] | [`SHUTDOWN_SEND`], nonzero, no other bits.
    Shutdown {
        id: ConnId,
        mode: u32,
    },
    /// The sender released the socket; its grants are about to be revoked.
    Close {
        id: ConnId,
    },
}

/// CONNECT flag (in the ring reference's last `u16`): a SOCK_SEQPACKET connection.
pub const CONNECT_SEQPACKET: u16 = 1;

/// RESET reasons.
pub const RESET_NO_LISTENER: u32 = 1;
pub const RESET_BAD_RING: u32 = 2;
pub const RESET_NO_MEMORY: u32 = 3;
pub const RESET_BACKLOG: u32 = 4;
pub const RESET_PROTOCOL: u32 = 5;
pub const RESET_PEER_GONE: u32 = 6;
/// The acceptor is at a resource limit (connections, grants or mappings): the connector
/// reports `ECONNREFUSED`.
pub const RESET_LIMIT: u32 = 7;
/// The connector gave up (its `connect()` timed out or was interrupted): the acceptor
/// drops the child it made for that CONNECT.
pub const RESET_CANCELLED: u32 = 8;

/// Why bytes are not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than the header's `len`: wait for more.
    Truncated,
    /// Header version is not [`VERSION`].
    BadVersion(u8),
    /// `len` below the header size or above [`MAX_MSG_LEN`]: the stream cannot be re-framed.
    BadLength(u16),
    /// Unknown message type (the frame is well formed; `len` bytes may be skipped).
    UnknownType(u8),
    /// `len` is not the exact length of the type in this version.
    WrongLength { ty: u8, len: u16 },
    /// A reserved field is not zero, a count or a flag is out of range.
    BadField(&'static str),
}

impl DecodeError {
    /// Whether the framing is broken (the reader can no longer find message boundaries;
    /// the pair channel must be reset) as opposed to one bad message of known length.
    pub const fn is_fatal(self) -> bool {
        matches!(self, DecodeError::BadVersion(_) | DecodeError::BadLength(_))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated message"),
            DecodeError::BadVersion(v) => write!(f, "unsupported message version {v}"),
            DecodeError::BadLength(l) => write!(f, "message length {l} out of bounds"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::WrongLength { ty, len } => {
                write!(f, "message type {ty} with wrong length {len}")
            }
            DecodeError::BadField(w) => write!(f, "invalid field: {w}"),
        }
    }
}

/// A validated header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub ty: u8,
    /// Total length, `HEADER_LEN..=MAX_MSG_LEN`.
    pub len: usize,
}

/// Reads and checks the header at the start of `buf` (framing only: the type is not
/// checked, so a reader can skip a frame of unknown type).
pub fn peek_header(buf: &[u8]) -> Result<Header, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let version = buf[0];
    let ty = buf[1];
    let len = get_u16(buf, 2);
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    if (len as usize) < HEADER_LEN || len as usize > MAX_MSG_LEN {
        return Err(DecodeError::BadLength(len));
    }
    Ok(Header {
        version,
        ty,
        len: len as usize,
    })
}

impl Msg {
    /// The message's type.
    pub const fn ty(&self) -> MsgType {
        match self {
            Msg::Hello(_) => MsgType::Hello,
            Msg::HelloAck(_) => MsgType::HelloAck,
            Msg::Ping { .. } => MsgType::Ping,
            Msg::Pong { .. } => MsgType::Pong,
            Msg::Goodbye { .. } => MsgType::Goodbye,
            Msg::Connect { .. } => MsgType::Connect,
            Msg::Accept { .. } => MsgType::Accept,
            Msg::Reset { .. } => MsgType::Reset,
            Msg::Shutdown { .. } => MsgType::Shutdown,
            Msg::Close { .. } => MsgType::Close,
        }
    }

    /// Encoded length.
    pub const fn len(&self) -> usize {
        self.ty().wire_len()
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Encodes into `out[..self.len()]`; `None` if `out` is too small or a field is out of
    /// range (so nothing invalid is ever sent).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let n = self.len();
        if out.len() < n || !self.fields_valid() {
            return None;
        }
        let b = &mut out[..n];
        b.fill(0);
        b[0] = VERSION;
        b[1] = self.ty() as u8;
        put_u16(b, 2, n as u16);
        let body = HEADER_LEN;
        match *self {
            Msg::Hello(h) | Msg::HelloAck(h) => {
                b[body] = h.min_version;
                b[body + 1] = h.max_version;
                put_u16(b, body + 2, h.sender_domid);
                put_u16(b, body + 4, h.receiver_domid);
                put_u16(b, body + 6, h.max_ring_pages);
                put_u64(b, body + 8, h.sender_gen);
                put_u64(b, body + 16, h.receiver_gen);
                put_u32(b, body + 24, h.features);
                // body + 28: reserved u32
            }
            Msg::Ping { nonce } | Msg::Pong { nonce } => put_u64(b, body, nonce),
            Msg::Goodbye { reason } => put_u32(b, body, reason),
            Msg::Connect {
                id,
                ring,
                evtchn,
                seqpacket,
            } => {
                put_id(b, id);
                put_ring(b, body + 16, ring);
                if seqpacket {
                    put_u16(b, body + 22, CONNECT_SEQPACKET);
                }
                put_u32(b, body + 24, evtchn);
            }
            Msg::Accept { id, ring } => {
                put_id(b, id);
                put_ring(b, body + 16, ring);
            }
            Msg::Reset { id, reason } => {
                put_id(b, id);
                put_u32(b, body + 16, reason);
            }
            Msg::Shutdown { id, mode } => {
                put_id(b, id);
                put_u32(b, body + 16, mode);
            }
            Msg::Close { id } => put_id(b, id),
        }
        Some(n)
    }

    fn fields_valid(&self) -> bool {
        match *self {
            Msg::Hello(h) | Msg::HelloAck(h) => hello_valid(&h),
            Msg::Connect { ring, .. } | Msg::Accept { ring, .. } => valid_ring_pages(ring.pages),
            Msg::Shutdown { mode, .. } => shutdown_mode_valid(mode),
            _ => true,
        }
    }

    /// Decodes the message at the start of `buf`; returns it and its length. Bytes after
    /// it are left alone.
    pub fn decode(buf: &[u8]) -> Result<(Msg, usize), DecodeError> {
        let h = peek_header(buf)?;
        let ty = MsgType::from_u8(h.ty).ok_or(DecodeError::UnknownType(h.ty))?;
        if h.len != ty.wire_len() {
            return Err(DecodeError::WrongLength {
                ty: h.ty,
                len: h.len as u16,
            });
        }
        if buf.len() < h.len {
            return Err(DecodeError::Truncated);
        }
        let b = &buf[..h.len];
        if get_u32(b, 4) != 0 {
            return Err(DecodeError::BadField("header reserved"));
        }
        let body = HEADER_LEN;
        let msg = match ty {
            MsgType::Hello | MsgType::HelloAck => {
                let hello = Hello {
                    min_version: b[body],
                    max_version: b[body + 1],
                    sender_domid: get_u16(b, body + 2),
                    receiver_domid: get_u16(b, body + 4),
                    max_ring_pages: get_u16(b, body + 6),
                    sender_gen: get_u64(b, body + 8),
                    receiver_gen: get_u64(b, body + 16),
                    features: get_u32(b, body + 24),
                };
                if get_u32(b, body + 28) != 0 {
                    return Err(DecodeError::BadField("hello reserved"));
                }
                if !hello_valid(&hello) {
                    return Err(DecodeError::BadField("hello"));
                }
                if ty == MsgType::Hello {
                    Msg::Hello(hello)
                } else {
                    Msg::HelloAck(hello)
                }
            }
            MsgType::Ping => Msg::Ping {
                nonce: get_u64(b, body),
            },
            MsgType::Pong => Msg::Pong {
                nonce: get_u64(b, body),
            },
            MsgType::Goodbye => {
                if get_u32(b, body + 4) != 0 {
                    return Err(DecodeError::BadField("goodbye reserved"));
                }
                Msg::Goodbye {
                    reason: get_u32(b, body),
                }
            }
            MsgType::Connect => {
                let flags = get_u16(b, body + 22);
                if flags & !CONNECT_SEQPACKET != 0 {
                    return Err(DecodeError::BadField("connect flags"));
                }
                Msg::Connect {
                    id: get_id(b),
                    ring: get_ring(b, body + 16)?,
                    evtchn: get_u32(b, body + 24),
                    seqpacket: flags & CONNECT_SEQPACKET != 0,
                }
            }
            MsgType::Accept => {
                if get_u16(b, body + 22) != 0 {
                    return Err(DecodeError::BadField("ring reserved"));
                }
                Msg::Accept {
                    id: get_id(b),
                    ring: get_ring(b, body + 16)?,
                }
            }
            MsgType::Reset => Msg::Reset {
                id: get_id(b),
                reason: get_u32(b, body + 16),
            },
            MsgType::Shutdown => {
                let mode = get_u32(b, body + 16);
                if !shutdown_mode_valid(mode) {
                    return Err(DecodeError::BadField("shutdown mode"));
                }
                Msg::Shutdown {
                    id: get_id(b),
                    mode,
                }
            }
            MsgType::Close => Msg::Close { id: get_id(b) },
        };
        Ok((msg, h.len))
    }
}

fn hello_valid(h: &Hello) -> bool {
    h.min_version != 0
        && h.min_version <= h.max_version
        && valid_ring_pages(h.max_ring_pages)
        && h.sender_gen != 0
        && h.features == 0
}

const fn shutdown_mode_valid(mode: u32) -> bool {
    mode != 0 && mode & !(SHUTDOWN_RCV | SHUTDOWN_SEND) == 0
}

fn put_id(b: &mut [u8], id: ConnId) {
    put_u32(b, HEADER_LEN, id.src_port);
    put_u32(b, HEADER_LEN + 4, id.dst_port);
    put_u64(b, HEADER_LEN + 8, id.token);
}

fn get_id(b: &[u8]) -> ConnId {
    ConnId {
        src_port: get_u32(b, HEADER_LEN),
        dst_port: get_u32(b, HEADER_LEN + 4),
        token: get_u64(b, HEADER_LEN + 8),
    }
}

fn put_ring(b: &mut [u8], off: usize, r: RingRef) {
    put_u32(b, off, r.dir_gref);
    put_u16(b, off + 4, r.pages);
    // off + 6: CONNECT's flags, reserved in ACCEPT (written by the caller)
}

fn get_ring(b: &[u8], off: usize) -> Result<RingRef, DecodeError> {
    let r = RingRef {
        dir_gref: get_u32(b, off),
        pages: get_u16(b, off + 4),
    };
    if !valid_ring_pages(r.pages) {
        return Err(DecodeError::BadField("ring pages"));
    }
    Ok(r)
}

// Bounds-checked little-endian accessors: out-of-range reads give 0 and writes are
// dropped (callers only use offsets inside checked lengths; this keeps panics impossible).

fn get_u16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    let lo = get_u32(b, off) as u64;
    let hi = get_u32(b, off.wrapping_add(4)) as u64;
    lo | (hi << 32)
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(2)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(4)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    put_u32(b, off, v as u32);
    put_u32(b, off.wrapping_add(4), (v >> 32) as u32);
}
