//! The IPv4 map (address -> domid) and the routing decision made from it.
//!
//! Three sources, all parsed here (the I/O is in `source.rs`):
//! * `$YASMIN_PRELOAD_MAP`: `198.18.0.11=1,198.18.0.12=2` (commas or white space);
//! * `$YASMIN_PRELOAD_MAP_FILE`: lines `198.18.0.11 1`, `#` starts a comment;
//! * XenStore: `/local/domain/0/data/yasmin-watch/ipmap/<a-b-c-d>` = `<domid>`, published
//!   by the dom0 watcher (`xenstore-watch/PROTOCOL.md` §1.5).
//!
//! Addresses and domids are parsed as strictly as the watcher writes them (decimal, no
//! leading zeros). An address given to two different domids is dropped, as the watcher
//! does with conflicting claims.

use std::collections::BTreeMap;

use xenstore_watch::control::paths;

/// IPv4 address -> domain id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpMap {
    by_ip: BTreeMap<[u8; 4], u16>,
}

impl IpMap {
    pub fn new() -> IpMap {
        IpMap::default()
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// The domain `ip` belongs to.
    pub fn get(&self, ip: [u8; 4]) -> Option<u16> {
        self.by_ip.get(&ip).copied()
    }

    /// The addresses of domain `d`, in ascending order.
    pub fn ips_of(&self, d: u16) -> impl Iterator<Item = [u8; 4]> + '_ {
        self.by_ip
            .iter()
            .filter(move |(_, &v)| v == d)
            .map(|(&ip, _)| ip)
    }

    /// All entries, in address order.
    pub fn iter(&self) -> impl Iterator<Item = ([u8; 4], u16)> + '_ {
        self.by_ip.iter().map(|(&ip, &d)| (ip, d))
    }

    /// Builds a map from entries, dropping (and reporting) addresses claimed by two
    /// different domains.
    pub fn from_entries(
        entries: impl IntoIterator<Item = ([u8; 4], u16)>,
        errors: &mut Vec<String>,
    ) -> IpMap {
        let mut by_ip = BTreeMap::new();
        let mut conflicts = Vec::new();
        for (ip, d) in entries {
            match by_ip.insert(ip, d) {
                Some(old) if old != d => conflicts.push(ip),
                _ => {}
            }
        }
        conflicts.sort_unstable();
        conflicts.dedup();
        for ip in conflicts {
            by_ip.remove(&ip);
            let [a, b, c, e] = ip;
            errors.push(format!("{a}.{b}.{c}.{e} is given to two domains; ignored"));
        }
        IpMap { by_ip }
    }

    /// Parses `$YASMIN_PRELOAD_MAP`: `ip=domid` items separated by commas or white space.
    pub fn parse_env(s: &str, errors: &mut Vec<String>) -> IpMap {
        let mut entries = Vec::new();
        for item in s
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|i| !i.is_empty())
        {
            match item.split_once('=').and_then(|(ip, d)| entry(ip, d)) {
                Some(e) => entries.push(e),
                None => errors.push(format!("map entry {item:?} is not ip=domid; ignored")),
            }
        }
        IpMap::from_entries(entries, errors)
    }

    /// Parses a map file: one `ip domid` per line, `#` comments, blank lines.
    pub fn parse_file(text: &str, errors: &mut Vec<String>) -> IpMap {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut f = line.split_ascii_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some(ip), Some(d), None) if entry(ip, d).is_some() => {
                    entries.extend(entry(ip, d));
                }
                _ => errors.push(format!(
                    "map file line {}: {line:?} is not \"ip domid\"; ignored",
                    n + 1
                )),
            }
        }
        IpMap::from_entries(entries, errors)
    }

    /// Builds the map from XenStore `ipmap` children: (node name `a-b-c-d`, value).
    pub fn from_xenstore<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        nodes: impl IntoIterator<Item = (N, V)>,
        errors: &mut Vec<String>,
    ) -> IpMap {
        let mut entries = Vec::new();
        for (name, value) in nodes {
            let (name, value) = (name.as_ref(), value.as_ref());
            let ip = paths::parse_ipmap_name(name);
            let d = parse_domid(value);
            match (ip, d) {
                (Some(ip), Some(d)) => entries.push((ip, d)),
                _ => errors.push(format!(
                    "ipmap/{} = {:?} is malformed; ignored",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value)
                )),
            }
        }
        IpMap::from_entries(entries, errors)
    }
}

/// A domain id as XenStore or the environment write it (trailing NUL or newline
/// tolerated), below the reserved range.
pub fn parse_domid(v: &[u8]) -> Option<u16> {
    let v = v.strip_suffix(b"\0").unwrap_or(v);
    let v = v.strip_suffix(b"\n").unwrap_or(v);
    paths::parse_domid(v).filter(|&d| paths::valid_domid(u32::from(d)))
}

fn entry(ip: &str, d: &str) -> Option<([u8; 4], u16)> {
    Some((
        paths::parse_ipv4(ip.trim().as_bytes())?,
        parse_domid(d.trim().as_bytes())?,
    ))
}

/// CID of domain `d` (domid + 2; dom0 is CID 2).
pub fn cid_of(d: u16) -> Option<u32> {
    paths::domid_to_cid(d)
}

/// Domain of a CID.
pub fn domid_of(cid: u32) -> Option<u16> {
    paths::cid_to_domid(cid)
}

/// Where a connection to an address goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Over vsock to this domain.
    Vsock { domid: u16, cid: u32 },
    /// Ordinary TCP, and why.
    Tcp(&'static str),
}

/// The map together with what we know about ourselves.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub map: &'a IpMap,
    /// Our domain id, if known (environment or XenStore `domid`).
    pub self_domid: Option<u16>,
    /// Our interfaces' IPv4 addresses.
    pub local: &'a [[u8; 4]],
}

impl View<'_> {
    /// Our domain id: the known one, else the domain the map gives one of our interface
    /// addresses to.
    pub fn own_domid(&self) -> Option<u16> {
        self.self_domid
            .or_else(|| self.local.iter().find_map(|&ip| self.map.get(ip)))
    }

    /// Whether the map gives `ip` to our domain: the address other guests reach us at,
    /// so a listener bound to it also listens on vsock. (An interface address the map
    /// does not know, loopback above all, is not: no guest would come over vsock for it,
    /// and a loopback-only service must not become reachable from other domains.)
    pub fn is_mapped_to_self(&self, ip: [u8; 4]) -> bool {
        matches!((self.map.get(ip), self.own_domid()), (Some(d), Some(s)) if d == s)
    }

    /// The routing decision for a connection to `ip`.
    pub fn route(&self, ip: [u8; 4]) -> Route {
        if ip == [0, 0, 0, 0] || ip == [255, 255, 255, 255] || (ip[0] & 0xf0) == 224 {
            return Route::Tcp("not a unicast address");
        }
        if self.local.contains(&ip) {
            return Route::Tcp("own address");
        }
        let Some(d) = self.map.get(ip) else {
            return Route::Tcp("not co-located");
        };
        if Some(d) == self.own_domid() {
            return Route::Tcp("own domain");
        }
        match cid_of(d) {
            Some(cid) => Route::Vsock { domid: d, cid },
            None => Route::Tcp("invalid domid"),
        }
    }

    /// An address of domain `d` (the lowest), for showing a vsock peer as IPv4.
    pub fn ip_of(&self, d: u16) -> Option<[u8; 4]> {
        self.map.ips_of(d).next()
    }

    /// Our address as seen by `peer`: one of our mapped addresses, preferring one in the
    /// peer's /24, else an interface address that is not loopback.
    pub fn own_ip(&self, peer: [u8; 4]) -> Option<[u8; 4]> {
        let mine: Vec<[u8; 4]> = match self.own_domid() {
            Some(s) => self.map.ips_of(s).collect(),
            None => Vec::new(),
        };
        mine.iter()
            .find(|ip| ip[..3] == peer[..3])
            .or(mine.first())
            .or_else(|| self.local.iter().find(|ip| ip[0] != 127))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_string() {
        let mut e = Vec::new();
        let m = IpMap::parse_env("198.18.0.11=1,198.18.0.12=2", &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get([198, 18, 0, 11]), Some(1));
        assert_eq!(m.get([198, 18, 0, 12]), Some(2));
        assert_eq!(m.get([198, 18, 0, 13]), None);

        let m = IpMap::parse_env(" 10.0.0.1=3 , 10.0.0.2=4\n10.0.0.3=0,,", &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(m.len(), 3);
        assert_eq!(m.get([10, 0, 0, 3]), Some(0));
    }

    #[test]
    fn env_string_errors() {
        let mut e = Vec::new();
        let m = IpMap::parse_env(
            "10.0.0.1=3,10.0.0.01=4,10.0.0.2,10.0.0.3=x,10.0.0.4=32752,300.0.0.1=1,10.0.0.5=5",
            &mut e,
        );
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m.get([10, 0, 0, 1]), Some(3));
        assert_eq!(m.get([10, 0, 0, 5]), Some(5));
        // leading zero, no '=', bad domid, reserved domid (0x7FF0), bad octet
        assert_eq!(e.len(), 5, "{e:?}");
    }

    #[test]
    fn conflicting_claims_are_dropped() {
        let mut e = Vec::new();
        let m = IpMap::parse_env("10.0.0.1=3,10.0.0.1=3,10.0.0.2=4,10.0.0.2=5", &mut e);
        assert_eq!(
            m.get([10, 0, 0, 1]),
            Some(3),
            "a repeated identical entry is fine"
        );
        assert_eq!(m.get([10, 0, 0, 2]), None);
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn file_lines() {
        let mut e = Vec::new();
        let text = "# map\n198.18.0.11 1\n\n  198.18.0.12\t2  # guest 2\nbogus\n1.2.3.4 5 6\n";
        let m = IpMap::parse_file(text, &mut e);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get([198, 18, 0, 12]), Some(2));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("line 5"), "{e:?}");
    }

    #[test]
    fn xenstore_node_names() {
        let mut e = Vec::new();
        let m = IpMap::from_xenstore(
            [
                ("198-18-0-11", &b"3"[..]),
                ("198-18-0-12", b"4\0"),
                ("198.18.0.13", b"5"),
                ("198-18-0-014", b"6"),
                ("198-18-0-15", b"-1"),
                ("198-18-0-16", b""),
            ],
            &mut e,
        );
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m.get([198, 18, 0, 11]), Some(3));
        assert_eq!(m.get([198, 18, 0, 12]), Some(4));
        assert_eq!(e.len(), 4, "{e:?}");
        // the watcher's own formatter round-trips
        let name = paths::ipmap_name([10, 1, 2, 3]);
        assert_eq!(
            paths::parse_ipmap_name(name.as_bytes()),
            Some([10, 1, 2, 3])
        );
    }

    #[test]
    fn cid_mapping() {
        assert_eq!(cid_of(0), Some(2), "dom0 is CID 2");
        assert_eq!(cid_of(1), Some(3));
        assert_eq!(cid_of(5), Some(7));
        assert_eq!(cid_of(0x7FF0), None);
        assert_eq!(domid_of(7), Some(5));
        assert_eq!(domid_of(2), Some(0));
        assert_eq!(domid_of(1), None);
        assert_eq!(domid_of(u32::MAX), None);
    }

    fn map() -> IpMap {
        IpMap::parse_env(
            "198.18.0.11=1,198.18.0.12=2,198.18.0.13=3,10.9.0.1=1",
            &mut Vec::new(),
        )
    }

    #[test]
    fn routing() {
        let m = map();
        let v = View {
            map: &m,
            self_domid: Some(1),
            local: &[[127, 0, 0, 1], [198, 18, 0, 11]],
        };
        assert_eq!(v.route([198, 18, 0, 12]), Route::Vsock { domid: 2, cid: 4 });
        assert_eq!(v.route([198, 18, 0, 13]), Route::Vsock { domid: 3, cid: 5 });
        assert_eq!(v.route([198, 18, 0, 11]), Route::Tcp("own address"));
        assert_eq!(v.route([10, 9, 0, 1]), Route::Tcp("own domain"));
        assert_eq!(v.route([127, 0, 0, 1]), Route::Tcp("own address"));
        assert_eq!(v.route([8, 8, 8, 8]), Route::Tcp("not co-located"));
        assert_eq!(v.route([0, 0, 0, 0]), Route::Tcp("not a unicast address"));
        assert_eq!(v.route([224, 0, 0, 1]), Route::Tcp("not a unicast address"));
    }

    #[test]
    fn own_domid_inferred_from_interfaces() {
        let m = map();
        let v = View {
            map: &m,
            self_domid: None,
            local: &[[127, 0, 0, 1], [198, 18, 0, 12]],
        };
        assert_eq!(v.own_domid(), Some(2));
        assert_eq!(v.route([198, 18, 0, 11]), Route::Vsock { domid: 1, cid: 3 });
        assert!(v.is_mapped_to_self([198, 18, 0, 12]));
        assert!(!v.is_mapped_to_self([198, 18, 0, 11]));
        assert!(
            !v.is_mapped_to_self([127, 0, 0, 1]),
            "loopback never listens on vsock"
        );
        let nobody = View {
            map: &m,
            self_domid: None,
            local: &[[127, 0, 0, 1]],
        };
        assert_eq!(nobody.own_domid(), None);
        assert_eq!(
            nobody.route([198, 18, 0, 11]),
            Route::Vsock { domid: 1, cid: 3 }
        );
    }

    #[test]
    fn reverse_mapping() {
        let m = map();
        let v = View {
            map: &m,
            self_domid: Some(1),
            local: &[[127, 0, 0, 1]],
        };
        assert_eq!(v.ip_of(2), Some([198, 18, 0, 12]));
        assert_eq!(v.ip_of(1), Some([10, 9, 0, 1]), "lowest address");
        assert_eq!(v.ip_of(9), None);
        // our address towards a peer: same /24 first
        assert_eq!(v.own_ip([198, 18, 0, 12]), Some([198, 18, 0, 11]));
        assert_eq!(v.own_ip([10, 9, 0, 7]), Some([10, 9, 0, 1]));
        assert_eq!(v.own_ip([8, 8, 8, 8]), Some([10, 9, 0, 1]));
        let unknown = View {
            map: &m,
            self_domid: None,
            local: &[[127, 0, 0, 1], [192, 168, 1, 5]],
        };
        assert_eq!(unknown.own_ip([198, 18, 0, 12]), Some([192, 168, 1, 5]));
    }
}
