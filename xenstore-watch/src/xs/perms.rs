//! XenStore node permissions: `n0`, `r1`, `w2`, `b3`.
//!
//! A node's permission list is a sequence of entries; the first names the owner and the
//! access every domain not listed gets, the following ones grant access to one domain
//! each. Dom0 (and the owner) may always read and write.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// The access an entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermKind {
    /// `n`: no access.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl PermKind {
    pub const fn letter(self) -> char {
        match self {
            PermKind::None => 'n',
            PermKind::Read => 'r',
            PermKind::Write => 'w',
            PermKind::Both => 'b',
        }
    }

    pub const fn from_letter(c: u8) -> Option<PermKind> {
        match c {
            b'n' => Some(PermKind::None),
            b'r' => Some(PermKind::Read),
            b'w' => Some(PermKind::Write),
            b'b' => Some(PermKind::Both),
            _ => None,
        }
    }
}

/// One permission entry: a domain and its access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    pub domid: u16,
    pub kind: PermKind,
}

impl Perm {
    pub const fn new(domid: u16, kind: PermKind) -> Perm {
        Perm { domid, kind }
    }
}

/// Why a permission string is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermParseError(pub String);

impl fmt::Display for PermParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid permission {:?} (expected n|r|w|b followed by a domain id, e.g. r1)",
            self.0
        )
    }
}

impl Perm {
    /// Parses the wire form (`b"r1"`).
    pub fn parse(bytes: &[u8]) -> Result<Perm, PermParseError> {
        let err = || PermParseError(String::from_utf8_lossy(bytes).into_owned());
        let (&letter, digits) = bytes.split_first().ok_or_else(err)?;
        let kind = PermKind::from_letter(letter).ok_or_else(err)?;
        if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        let domid = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        let domid = u16::try_from(domid).map_err(|_| err())?;
        Ok(Perm { domid, kind })
    }
}

impl FromStr for Perm {
    type Err = PermParseError;

    fn from_str(s: &str) -> Result<Perm, PermParseError> {
        Perm::parse(s.as_bytes())
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.letter(), self.domid)
    }
}

/// The `XS_SET_PERMS` payload: `path\0perm\0perm\0...`.
pub fn set_perms_payload(path: &str, perms: &[Perm]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    for p in perms {
        out.extend_from_slice(alloc::format!("{p}").as_bytes());
        out.push(0);
    }
    out
}

/// Parses an `XS_GET_PERMS` reply (`"n0\0r1\0"`).
pub fn parse_perms(payload: &[u8]) -> Result<Vec<Perm>, PermParseError> {
    crate::xs::wire::split_nul(payload)
        .into_iter()
        .map(Perm::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn parse_and_format() {
        assert_eq!("n0".parse(), Ok(Perm::new(0, PermKind::None)));
        assert_eq!("r1".parse(), Ok(Perm::new(1, PermKind::Read)));
        assert_eq!("w65535".parse(), Ok(Perm::new(65535, PermKind::Write)));
        assert_eq!("b32".parse::<Perm>().unwrap().to_string(), "b32");
        for bad in [
            "", "r", "x1", "r-1", "r65536", "r1a", "R1", "r 1", "r123456",
        ] {
            assert!(bad.parse::<Perm>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn payloads() {
        let perms = [Perm::new(0, PermKind::None), Perm::new(3, PermKind::Both)];
        assert_eq!(set_perms_payload("/a", &perms), b"/a\0n0\0b3\0".to_vec());
        assert_eq!(parse_perms(b"n0\0b3\0").unwrap(), perms.to_vec());
        assert_eq!(parse_perms(b"").unwrap(), vec![]);
        assert!(parse_perms(b"n0\0zz\0").is_err());
    }
}
