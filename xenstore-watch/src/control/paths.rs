// SPDX-License-Identifier: GPL-2.0
//! YASMIN XenStore schema: node paths and node values, formatted into fixed buffers and
//! parsed strictly.
//!
//! Compiled into the kernel module (`#[path = ".../control/paths.rs"]`) and the userspace
//! crate: `core` only, no allocation, no `unsafe`, never panics on any input.
//! See `xenstore-watch/PROTOCOL.md` for who writes what with which permissions.
//!
//! With `Y(d)` = `/local/domain/<d>/data/yasmin`:
//!
//! | node | written by | perms | value |
//! |------|-----------|-------|-------|
//! | `Y(d)` | watcher (dom0) | `n<d>` | empty |
//! | `Y(d)/gen` | watcher | `n<d>` (inherited) | `<gen>` |
//! | `Y(d)/notify/<p>` | watcher | `n<d>` (inherited) | `<gen of p>` |
//! | `Y(d)/gone/<p>` | watcher | `n<d>` (inherited) | `<gen of p>` |
//! | `Y(d)/offer/<p>` | d (lower domid of the pair) | `n<d> r<p>` | `1 <gen d> <gen p or 0> <gref> <evtchn>` |
//! | `Y(d)/req/<p>` | d (higher domid of the pair) | `n<d> r<p>` | `1 <gen d> <gen p or 0>` |
//! | `Y(d)/ipv4` | d (optional) | `n<d>` | `a.b.c.d[ a.b.c.d]...` |
//! | `/local/domain/0/data/yasmin-watch/ipmap/<a-b-c-d>` | watcher | `r0` | `<domid>` |
//!
//! Node names may hold only what C xenstored accepts in a path: ASCII letters, digits and
//! `-/_@`. An IPv4 address is therefore keyed with `-` for `.` ([`ipmap_name`],
//! [`ipmap_node`], [`parse_ipmap_name`]): `ipmap/198-18-0-11` = `3`.

use core::fmt::{self, Write};

/// Domain ids at or above this are reserved by Xen (`DOMID_FIRST_RESERVED`).
pub const DOMID_FIRST_RESERVED: u16 = 0x7FF0;
/// Offset between a domain id and its vsock CID (`CID = domid + 2`).
pub const CID_OFFSET: u32 = 2;
/// Longest path this schema produces (`/local/domain/32751/data/yasmin/notify/32751` is 44).
pub const PATH_MAX: usize = 96;
/// Longest node value this schema produces or accepts.
pub const VALUE_MAX: usize = 80;
/// Offer/req value format version.
pub const NODE_VERSION: u32 = 1;
/// The watcher's own directory (apart from dom0's `Y(0)`, so dom0 can be an endpoint too).
pub const WATCH_ROOT: &str = "/local/domain/0/data/yasmin-watch";
/// Directory of the IPv4 map; its children are named by [`ipmap_name`].
pub const IPMAP_DIR: &str = "/local/domain/0/data/yasmin-watch/ipmap";
/// Dom0-only counter the watcher draws generations from.
pub const GEN_COUNTER: &str = "/local/domain/0/data/yasmin-watch/next-gen";

/// Whether `d` is a normal domain id.
pub const fn valid_domid(d: u32) -> bool {
    d < DOMID_FIRST_RESERVED as u32
}

/// The vsock CID of a domain.
pub const fn domid_to_cid(d: u16) -> Option<u32> {
    if valid_domid(d as u32) {
        Some(d as u32 + CID_OFFSET)
    } else {
        None
    }
}

/// The domain of a vsock CID.
pub const fn cid_to_domid(cid: u32) -> Option<u16> {
    match cid.checked_sub(CID_OFFSET) {
        Some(d) if valid_domid(d) => Some(d as u16),
        _ => None,
    }
}

/// A fixed-capacity string buffer (no allocation). Writes that do not fit fail.
#[derive(Clone, Copy)]
pub struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Buf {
            bytes: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, with whole `str`s, so this is always UTF-8.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Buf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialEq for Buf<N> {
    fn eq(&self, o: &Self) -> bool {
        self.as_bytes() == o.as_bytes()
    }
}

/// A formatted path.
pub type PathBuf = Buf<PATH_MAX>;
/// A formatted node value.
pub type ValueBuf = Buf<VALUE_MAX>;

/// The per-peer node kinds under `Y(d)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Notify,
    Gone,
    Offer,
    Req,
}

impl Kind {
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Notify => "notify",
            Kind::Gone => "gone",
            Kind::Offer => "offer",
            Kind::Req => "req",
        }
    }

    fn from_name(s: &[u8]) -> Option<Kind> {
        match s {
            b"notify" => Some(Kind::Notify),
            b"gone" => Some(Kind::Gone),
            b"offer" => Some(Kind::Offer),
            b"req" => Some(Kind::Req),
            _ => None,
        }
    }
}

fn fmt_path(args: fmt::Arguments<'_>) -> PathBuf {
    let mut p = PathBuf::new();
    // Every path of the schema fits PATH_MAX for any u16 domid.
    let _ = p.write_fmt(args);
    p
}

/// `Y(d)`.
pub fn root(d: u16) -> PathBuf {
    fmt_path(format_args!("/local/domain/{d}/data/yasmin"))
}

/// `Y(d)/<kind>` (the directory the guest watches for notify and gone).
pub fn kind_dir(d: u16, kind: Kind) -> PathBuf {
    fmt_path(format_args!(
        "/local/domain/{d}/data/yasmin/{}",
        kind.name()
    ))
}

/// `Y(d)/<kind>/<p>`.
pub fn peer_node(d: u16, kind: Kind, p: u16) -> PathBuf {
    fmt_path(format_args!(
        "/local/domain/{d}/data/yasmin/{}/{p}",
        kind.name()
    ))
}

/// `Y(d)/gen`.
pub fn gen_node(d: u16) -> PathBuf {
    fmt_path(format_args!("/local/domain/{d}/data/yasmin/gen"))
}

/// `Y(d)/up`: written by d's module (value: d's generation) once it watches its
/// `notify` and `gone`, removed when it unloads. The watcher relays offers and requests
/// only to a peer that is up.
pub fn up_node(d: u16) -> PathBuf {
    fmt_path(format_args!("/local/domain/{d}/data/yasmin/up"))
}

/// `Y(d)/ipv4`.
pub fn ipv4_node(d: u16) -> PathBuf {
    fmt_path(format_args!("/local/domain/{d}/data/yasmin/ipv4"))
}

/// A path of the schema, as found in a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `Y(d)` itself.
    Root { dom: u16 },
    /// `Y(d)/<kind>` (the directory).
    KindDir { dom: u16, kind: Kind },
    /// `Y(d)/<kind>/<p>`.
    Peer { dom: u16, kind: Kind, peer: u16 },
    /// `Y(d)/gen`.
    Gen { dom: u16 },
    /// `Y(d)/up`.
    Up { dom: u16 },
    /// `Y(d)/ipv4`.
    Ipv4 { dom: u16 },
}

/// Parses a path of the schema; anything else (deeper, unknown names, bad numbers) is
/// `None`.
pub fn parse_path(path: &[u8]) -> Option<Parsed> {
    let rest = path.strip_prefix(b"/local/domain/")?;
    let (dom, rest) = split_seg(rest);
    let dom = parse_domid(dom)?;
    let rest = rest?.strip_prefix(b"data/yasmin")?;
    if rest.is_empty() {
        return Some(Parsed::Root { dom });
    }
    let rest = rest.strip_prefix(b"/")?;
    let (name, rest) = split_seg(rest);
    match (name, rest) {
        (b"gen", None) => return Some(Parsed::Gen { dom }),
        (b"up", None) => return Some(Parsed::Up { dom }),
        (b"ipv4", None) => return Some(Parsed::Ipv4 { dom }),
        _ => {}
    }
    let kind = Kind::from_name(name)?;
    let rest = match rest {
        None => return Some(Parsed::KindDir { dom, kind }),
        Some(r) => r,
    };
    let (peer, more) = split_seg(rest);
    if more.is_some() {
        return None;
    }
    let peer = parse_domid(peer)?;
    Some(Parsed::Peer { dom, kind, peer })
}

fn split_seg(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&c| c == b'/') {
        Some(i) => (&s[..i], s.get(i + 1..)),
        None => (s, None),
    }
}

/// Strict decimal: 1..=20 ASCII digits, no sign, no leading zero (except "0"), no overflow.
pub fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// A domain id in decimal, below [`DOMID_FIRST_RESERVED`].
pub fn parse_domid(s: &[u8]) -> Option<u16> {
    let v = parse_dec(s)?;
    if v < DOMID_FIRST_RESERVED as u64 {
        Some(v as u16)
    } else {
        None
    }
}

/// A generation (nonzero u64) in decimal; the value of `gen`, `notify/<p>`, `gone/<p>`.
pub fn parse_gen(s: &[u8]) -> Option<u64> {
    if s.len() > VALUE_MAX {
        return None;
    }
    parse_dec(s).filter(|&g| g != 0)
}

/// Generation value of a `gone/<p>` notice meaning "there is no domain p" (the watcher's
/// answer to an offer or request for a domain it does not know).
pub const GEN_NO_SUCH_DOMAIN: u64 = 0;

/// Parses a `gone/<p>` value: a generation, or [`GEN_NO_SUCH_DOMAIN`].
pub fn parse_gone(s: &[u8]) -> Option<u64> {
    if s.len() > VALUE_MAX {
        return None;
    }
    parse_dec(s)
}

/// Formats a generation value.
pub fn fmt_gen(gen: u64) -> ValueBuf {
    let mut v = ValueBuf::new();
    let _ = write!(v, "{gen}");
    v
}

/// The value of `Y(d)/offer/<p>`: the control channel the lower domid offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Offerer's generation (must equal the dom0-vouched one in the reader's `notify`).
    pub gen: u64,
    /// The reader's generation as the offerer knows it (0: unknown).
    pub peer_gen: u64,
    /// Grant reference of the control page.
    pub gref: u32,
    /// Unbound event channel port allocated for the reader.
    pub evtchn: u32,
}

/// The value of `Y(d)/req/<p>`: the higher domid asks the lower one to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    pub gen: u64,
    pub peer_gen: u64,
}

/// Why a node value is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueError {
    TooLong,
    /// Wrong number of fields, bad number, bad separator.
    Syntax,
    /// Version field is not [`NODE_VERSION`].
    Version,
    /// A generation is 0 where it must not be, a number is out of range.
    Range,
}

/// Splits `s` on single spaces into exactly `N` fields.
fn fields<const N: usize>(s: &[u8]) -> Result<[&[u8]; N], ValueError> {
    if s.len() > VALUE_MAX {
        return Err(ValueError::TooLong);
    }
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    for f in s.split(|&c| c == b' ') {
        if n == N || f.is_empty() {
            return Err(ValueError::Syntax);
        }
        out[n] = f;
        n += 1;
    }
    if n != N {
        return Err(ValueError::Syntax);
    }
    Ok(out)
}

fn num(s: &[u8]) -> Result<u64, ValueError> {
    parse_dec(s).ok_or(ValueError::Syntax)
}

fn num32(s: &[u8]) -> Result<u32, ValueError> {
    u32::try_from(num(s)?).map_err(|_| ValueError::Range)
}

impl Offer {
    pub fn parse(s: &[u8]) -> Result<Offer, ValueError> {
        let [v, gen, peer_gen, gref, evtchn] = fields::<5>(s)?;
        if num(v)? != NODE_VERSION as u64 {
            return Err(ValueError::Version);
        }
        let o = Offer {
            gen: num(gen)?,
            peer_gen: num(peer_gen)?,
            gref: num32(gref)?,
            evtchn: num32(evtchn)?,
        };
        if o.gen == 0 || o.evtchn == 0 {
            return Err(ValueError::Range);
        }
        Ok(o)
    }

    pub fn format(&self) -> ValueBuf {
        let mut v = ValueBuf::new();
        let _ = write!(
            v,
            "{NODE_VERSION} {} {} {} {}",
            self.gen, self.peer_gen, self.gref, self.evtchn
        );
        v
    }
}

impl Req {
    pub fn parse(s: &[u8]) -> Result<Req, ValueError> {
        let [v, gen, peer_gen] = fields::<3>(s)?;
        if num(v)? != NODE_VERSION as u64 {
            return Err(ValueError::Version);
        }
        let r = Req {
            gen: num(gen)?,
            peer_gen: num(peer_gen)?,
        };
        if r.gen == 0 {
            return Err(ValueError::Range);
        }
        Ok(r)
    }

    pub fn format(&self) -> ValueBuf {
        let mut v = ValueBuf::new();
        let _ = write!(v, "{NODE_VERSION} {} {}", self.gen, self.peer_gen);
        v
    }
}

/// Strict dotted-quad IPv4 (`198.18.0.11`): four decimal octets, no leading zeros.
pub fn parse_ipv4(s: &[u8]) -> Option<[u8; 4]> {
    parse_quad(s, b'.')
}

/// Separator of the octets in an `ipmap` node name (`.` is not allowed in XenStore paths).
pub const IPMAP_SEP: u8 = b'-';
/// Longest `ipmap` node name (`255-255-255-255`).
pub const IPMAP_NAME_MAX: usize = 15;
/// A formatted `ipmap` node name.
pub type IpmapName = Buf<IPMAP_NAME_MAX>;

/// The name of the `ipmap` node of `ip`: the dotted quad with `-` for `.`
/// (`[198, 18, 0, 11]` -> `198-18-0-11`).
pub fn ipmap_name(ip: [u8; 4]) -> IpmapName {
    let mut n = IpmapName::new();
    // At most 4 * 3 digits + 3 separators = IPMAP_NAME_MAX.
    let _ = write!(n, "{}-{}-{}-{}", ip[0], ip[1], ip[2], ip[3]);
    n
}

/// `/local/domain/0/data/yasmin-watch/ipmap/<a-b-c-d>` (at most 55 bytes).
pub fn ipmap_node(ip: [u8; 4]) -> PathBuf {
    fmt_path(format_args!("{IPMAP_DIR}/{}", ipmap_name(ip).as_str()))
}

/// Parses an `ipmap` node name (`198-18-0-11`), as strictly as [`parse_ipv4`]; the
/// inverse of [`ipmap_name`].
pub fn parse_ipmap_name(s: &[u8]) -> Option<[u8; 4]> {
    parse_quad(s, IPMAP_SEP)
}

/// Four decimal octets separated by `sep`, no leading zeros.
fn parse_quad(s: &[u8], sep: u8) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in s.split(|&c| c == sep) {
        if n == 4 || part.len() > 3 {
            return None;
        }
        let v = parse_dec(part)?;
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    if n == 4 {
        Some(out)
    } else {
        None
    }
}
