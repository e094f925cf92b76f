//! The XenStore wire format (`xen/include/public/io/xs_wire.h`), as a pure codec.
//!
//! A message is a 16-byte header of four `u32` (`type`, `req_id`, `tx_id`, `len`) followed
//! by `len` bytes of payload, at most [`PAYLOAD_MAX`]. The header is in the host's byte
//! order (`struct xsd_sockmsg`); Xen's x86 hosts and guests are little-endian, which is what
//! this codec reads and writes.
//!
//! This module uses only `core` and `alloc` (no I/O), never panics on any input, and is the
//! part of the crate a fuzzer or a `no_std` user would take.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Size of the message header in bytes.
pub const HEADER_LEN: usize = 16;
/// `XENSTORE_PAYLOAD_MAX`: the largest payload either side may send.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path xenstored accepts.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest relative path xenstored accepts.
pub const REL_PATH_MAX: usize = 2048;

/// `enum xsd_sockmsg_type`. Values checked against Xen 4.17's `xs_wire.h` (20 was
/// `XS_RESTRICT`, since removed). Unrecognised values decode as [`MsgType::Unknown`], so a
/// newer xenstored cannot make the decoder fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// `XS_CONTROL` (also `XS_DEBUG`) = 0
    Control,
    /// `XS_DIRECTORY` = 1
    Directory,
    /// `XS_READ` = 2
    Read,
    /// `XS_GET_PERMS` = 3
    GetPerms,
    /// `XS_WATCH` = 4
    Watch,
    /// `XS_UNWATCH` = 5
    Unwatch,
    /// `XS_TRANSACTION_START` = 6
    TransactionStart,
    /// `XS_TRANSACTION_END` = 7
    TransactionEnd,
    /// `XS_INTRODUCE` = 8
    Introduce,
    /// `XS_RELEASE` = 9
    Release,
    /// `XS_GET_DOMAIN_PATH` = 10
    GetDomainPath,
    /// `XS_WRITE` = 11
    Write,
    /// `XS_MKDIR` = 12
    Mkdir,
    /// `XS_RM` = 13
    Rm,
    /// `XS_SET_PERMS` = 14
    SetPerms,
    /// `XS_WATCH_EVENT` = 15
    WatchEvent,
    /// `XS_ERROR` = 16
    Error,
    /// `XS_IS_DOMAIN_INTRODUCED` = 17
    IsDomainIntroduced,
    /// `XS_RESUME` = 18
    Resume,
    /// `XS_SET_TARGET` = 19
    SetTarget,
    /// `XS_RESET_WATCHES` = 21
    ResetWatches,
    /// `XS_DIRECTORY_PART` = 22
    DirectoryPart,
    /// Any other value (including 20, the removed `XS_RESTRICT`, and `XS_INVALID` 0xffff).
    Unknown(u32),
}

impl MsgType {
    /// The numeric value on the wire.
    pub const fn to_u32(self) -> u32 {
        match self {
            MsgType::Control => 0,
            MsgType::Directory => 1,
            MsgType::Read => 2,
            MsgType::GetPerms => 3,
            MsgType::Watch => 4,
            MsgType::Unwatch => 5,
            MsgType::TransactionStart => 6,
            MsgType::TransactionEnd => 7,
            MsgType::Introduce => 8,
            MsgType::Release => 9,
            MsgType::GetDomainPath => 10,
            MsgType::Write => 11,
            MsgType::Mkdir => 12,
            MsgType::Rm => 13,
            MsgType::SetPerms => 14,
            MsgType::WatchEvent => 15,
            MsgType::Error => 16,
            MsgType::IsDomainIntroduced => 17,
            MsgType::Resume => 18,
            MsgType::SetTarget => 19,
            MsgType::ResetWatches => 21,
            MsgType::DirectoryPart => 22,
            MsgType::Unknown(v) => v,
        }
    }

    /// The type for a wire value; never fails.
    pub const fn from_u32(v: u32) -> MsgType {
        match v {
            0 => MsgType::Control,
            1 => MsgType::Directory,
            2 => MsgType::Read,
            3 => MsgType::GetPerms,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            8 => MsgType::Introduce,
            9 => MsgType::Release,
            10 => MsgType::GetDomainPath,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            17 => MsgType::IsDomainIntroduced,
            18 => MsgType::Resume,
            19 => MsgType::SetTarget,
            21 => MsgType::ResetWatches,
            22 => MsgType::DirectoryPart,
            v => MsgType::Unknown(v),
        }
    }
}

/// `struct xsd_sockmsg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: MsgType,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    /// Encodes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.ty.to_u32().to_le_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Decodes a header from the start of `buf`; checks `len` against [`PAYLOAD_MAX`].
    pub fn parse(buf: &[u8]) -> Result<Header, DecodeError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(DecodeError::TruncatedHeader { got: buf.len() });
        };
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let header = Header {
            ty: MsgType::from_u32(word(0)),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        };
        if header.len as usize > PAYLOAD_MAX {
            return Err(DecodeError::PayloadTooLarge { len: header.len });
        }
        Ok(header)
    }
}

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 16 bytes.
    TruncatedHeader { got: usize },
    /// The header announces more than [`PAYLOAD_MAX`] bytes: a protocol violation, never
    /// fixed by waiting for more data.
    PayloadTooLarge { len: u32 },
    /// The header announces `len` bytes and fewer follow.
    TruncatedPayload { expected: u32, got: usize },
    /// [`Message::decode`] only: bytes after the end of the message.
    TrailingBytes { extra: usize },
}

impl DecodeError {
    /// True when more bytes could complete the message (a stream reader should read on).
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            DecodeError::TruncatedHeader { .. } | DecodeError::TruncatedPayload { .. }
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TruncatedHeader { got } => {
                write!(f, "truncated header ({got} of {HEADER_LEN} bytes)")
            }
            DecodeError::PayloadTooLarge { len } => {
                write!(f, "payload length {len} exceeds {PAYLOAD_MAX}")
            }
            DecodeError::TruncatedPayload { expected, got } => {
                write!(f, "truncated payload ({got} of {expected} bytes)")
            }
            DecodeError::TrailingBytes { extra } => {
                write!(f, "{extra} bytes after the end of the message")
            }
        }
    }
}

/// Why a message cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload is longer than [`PAYLOAD_MAX`].
    PayloadTooLarge { len: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::PayloadTooLarge { len } => {
                write!(f, "payload of {len} bytes exceeds {PAYLOAD_MAX}")
            }
        }
    }
}

/// A whole message: header fields and payload (`len` is the payload's length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub ty: MsgType,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn new(ty: MsgType, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Message {
        Message {
            ty,
            req_id,
            tx_id,
            payload,
        }
    }

    /// Header plus payload, ready for one `write()` (the kernel's `/dev/xen/xenbus`
    /// wants whole messages).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let len = self.payload.len();
        if len > PAYLOAD_MAX {
            return Err(EncodeError::PayloadTooLarge { len });
        }
        let header = Header {
            ty: self.ty,
            req_id: self.req_id,
            tx_id: self.tx_id,
            len: len as u32,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + len);
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Decodes the message at the start of `buf`, returning it and the bytes it used.
    /// Incomplete input gives an error for which [`DecodeError::is_incomplete`] holds.
    pub fn decode_prefix(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
        let header = Header::parse(buf)?;
        let end = HEADER_LEN + header.len as usize;
        let Some(payload) = buf.get(HEADER_LEN..end) else {
            return Err(DecodeError::TruncatedPayload {
                expected: header.len,
                got: buf.len() - HEADER_LEN,
            });
        };
        let msg = Message {
            ty: header.ty,
            req_id: header.req_id,
            tx_id: header.tx_id,
            payload: payload.to_vec(),
        };
        Ok((msg, end))
    }

    /// Decodes exactly one message; bytes after it are an error.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        let (msg, used) = Message::decode_prefix(buf)?;
        if used != buf.len() {
            return Err(DecodeError::TrailingBytes {
                extra: buf.len() - used,
            });
        }
        Ok(msg)
    }
}

/// A payload of NUL-terminated strings: each part followed by `\0`
/// (`"path\0token\0"`, `"path\0"`, `"n0\0r1\0"`).
pub fn join_nul<I, S>(parts: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_ref());
        out.push(0);
    }
    out
}

/// The `XS_WRITE` payload: `path\0value`, the value's bytes as they are (no terminator).
pub fn write_payload(path: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1 + value.len());
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    out.extend_from_slice(value);
    out
}

/// Splits a NUL-separated list (`"a\0b\0"`); a missing final terminator is tolerated and
/// an empty payload is an empty list.
pub fn split_nul(payload: &[u8]) -> Vec<&[u8]> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.is_empty() && payload.len() <= 1 {
        return Vec::new();
    }
    body.split(|&b| b == 0).collect()
}

/// A single string reply (`"OK\0"`, `"/local/domain/1\0"`): the bytes before the first NUL.
pub fn nul_str(payload: &[u8]) -> &[u8] {
    match payload.iter().position(|&b| b == 0) {
        Some(i) => &payload[..i],
        None => payload,
    }
}

/// Bytes as UTF-8, or `None`.
pub fn utf8(bytes: &[u8]) -> Option<String> {
    core::str::from_utf8(bytes).ok().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn type_numbers_match_xs_wire_h() {
        let expected = [
            (MsgType::Control, 0),
            (MsgType::Directory, 1),
            (MsgType::Read, 2),
            (MsgType::GetPerms, 3),
            (MsgType::Watch, 4),
            (MsgType::Unwatch, 5),
            (MsgType::TransactionStart, 6),
            (MsgType::TransactionEnd, 7),
            (MsgType::Introduce, 8),
            (MsgType::Release, 9),
            (MsgType::GetDomainPath, 10),
            (MsgType::Write, 11),
            (MsgType::Mkdir, 12),
            (MsgType::Rm, 13),
            (MsgType::SetPerms, 14),
            (MsgType::WatchEvent, 15),
            (MsgType::Error, 16),
            (MsgType::IsDomainIntroduced, 17),
            (MsgType::Resume, 18),
            (MsgType::SetTarget, 19),
            (MsgType::ResetWatches, 21),
            (MsgType::DirectoryPart, 22),
        ];
        for (ty, n) in expected {
            assert_eq!(ty.to_u32(), n, "{ty:?}");
            assert_eq!(MsgType::from_u32(n), ty);
        }
        assert_eq!(MsgType::from_u32(20), MsgType::Unknown(20));
        assert_eq!(MsgType::from_u32(0xffff), MsgType::Unknown(0xffff));
    }

    #[test]
    fn header_layout_is_four_le_words() {
        let m = Message::new(MsgType::Read, 0x0102_0304, 7, b"a\0".to_vec());
        let b = m.encode().unwrap();
        assert_eq!(
            b,
            vec![2, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 2, 0, 0, 0, b'a', 0]
        );
    }

    #[test]
    fn split_and_nul_helpers() {
        assert!(split_nul(b"").is_empty());
        assert!(split_nul(b"\0").is_empty());
        assert_eq!(split_nul(b"a\0bc\0"), vec![&b"a"[..], &b"bc"[..]]);
        assert_eq!(split_nul(b"a\0bc"), vec![&b"a"[..], &b"bc"[..]]);
        assert_eq!(split_nul(b"\0\0"), vec![&b""[..], &b""[..]]);
        assert_eq!(nul_str(b"OK\0"), b"OK");
        assert_eq!(nul_str(b"OK"), b"OK");
        assert_eq!(write_payload("a/b", b"v\0x"), b"a/b\0v\0x".to_vec());
        assert_eq!(join_nul(["p", "t"]), b"p\0t\0".to_vec());
    }
}
