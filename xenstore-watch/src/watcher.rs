//! The control-domain watcher (`yasmin-watch`): prepares each domain's YASMIN area,
//! relays "look at my offer" notices between guests, tells survivors when a domain dies,
//! and publishes the IPv4 -> domid map. See `PROTOCOL.md`.
//!
//! The logic is written against the [`Store`] trait, which [`XsClient`] implements for
//! the real xenstored and the tests implement with an in-memory model of C xenstored's
//! permission and watch rules.

use std::collections::{BTreeMap, BTreeSet};

use crate::control::pair::RateLimit;
use crate::control::paths::{
    self, ipmap_node, parse_domid, parse_gen, parse_ipmap_name, parse_ipv4, parse_path, Kind,
    Parsed, GEN_COUNTER, IPMAP_DIR, WATCH_ROOT,
};
use crate::xs::{Errno, Error, MsgType, Perm, PermKind, Result, Transport, XsClient};

/// Where the watcher keeps its own per-domain records (`<gen> <vm path>`), dom0 only.
pub const DOM_RECORDS: &str = "/local/domain/0/data/yasmin-watch/dom";
/// Watch tokens.
pub const TOKEN_INTRODUCE: &str = "yasmin:introduce";
pub const TOKEN_RELEASE: &str = "yasmin:release";
pub const TOKEN_VIF: &str = "yasmin:vif";
/// Prefix of the per-domain watch token (`yasmin:dom:<d>`).
pub const TOKEN_DOM: &str = "yasmin:dom:";
/// Toolstack-owned vif backends: `<VIF_BACKEND>/<domid>/<devid>/ip`.
pub const VIF_BACKEND: &str = "/local/domain/0/backend/vif";
/// At most this many addresses are taken from one `ipv4`/`ip` value.
pub const MAX_IPS_PER_VALUE: usize = 8;

/// The XenStore operations the watcher needs. `ENOENT` is `Err(Error::Xs(Errno::NoEnt))`.
pub trait Store {
    fn read(&mut self, path: &str) -> Result<Vec<u8>>;
    fn write(&mut self, path: &str, value: &[u8]) -> Result<()>;
    fn mkdir(&mut self, path: &str) -> Result<()>;
    fn rm(&mut self, path: &str) -> Result<()>;
    fn directory(&mut self, path: &str) -> Result<Vec<String>>;
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()>;
    fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>>;
    fn watch(&mut self, path: &str, token: &str) -> Result<()>;
    fn unwatch(&mut self, path: &str, token: &str) -> Result<()>;
    /// `XS_IS_DOMAIN_INTRODUCED`.
    fn is_introduced(&mut self, domid: u16) -> Result<bool>;
}

impl<T: Transport> Store for XsClient<T> {
    fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        XsClient::read(self, path)
    }
    fn write(&mut self, path: &str, value: &[u8]) -> Result<()> {
        XsClient::write(self, path, value)
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        XsClient::mkdir(self, path)
    }
    fn rm(&mut self, path: &str) -> Result<()> {
        XsClient::rm(self, path)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        XsClient::directory(self, path)
    }
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()> {
        XsClient::set_perms(self, path, perms)
    }
    fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>> {
        XsClient::get_perms(self, path)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        XsClient::watch(self, path, token)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        XsClient::unwatch(self, path, token)
    }
    fn is_introduced(&mut self, domid: u16) -> Result<bool> {
        let r = self.request(
            MsgType::IsDomainIntroduced,
            0,
            format!("{domid}\0").into_bytes(),
        )?;
        Ok(r.first() == Some(&b'T'))
    }
}

fn rm_quiet(xs: &mut impl Store, path: &str) -> Result<()> {
    match xs.rm(path) {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

fn read_opt(xs: &mut impl Store, path: &str) -> Result<Option<Vec<u8>>> {
    match xs.read(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn dir_opt(xs: &mut impl Store, path: &str) -> Result<Vec<String>> {
    match xs.directory(path) {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        r => r,
    }
}

/// What the watcher knows about a live domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomInfo {
    pub gen: u64,
    /// The toolstack's `/local/domain/<d>/vm` value (identifies the VM behind the domid).
    pub vm: String,
}

/// Parses a whitespace-separated list of IPv4 addresses (at most [`MAX_IPS_PER_VALUE`]).
pub fn parse_ip_list(v: &[u8]) -> Vec<[u8; 4]> {
    v.split(|c| c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .take(MAX_IPS_PER_VALUE)
        .filter_map(parse_ipv4)
        .collect()
}

/// Formats an address as a dotted quad (for log lines; the `ipmap` node is named by
/// [`paths::ipmap_name`], since xenstored refuses `.` in paths).
pub fn fmt_ip(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// Builds the IPv4 map. An address claimed by a toolstack backend (`backend`) belongs to
/// that domain; if two backends claim it, nobody gets it. A guest-published address
/// (`guest`) is used only if no backend claims it and no other guest publishes it too.
/// Returns the map and a description of each conflict.
pub fn compute_ipmap(
    backend: &[(u16, Vec<[u8; 4]>)],
    guest: &[(u16, Vec<[u8; 4]>)],
) -> (BTreeMap<[u8; 4], u16>, Vec<String>) {
    fn claims(src: &[(u16, Vec<[u8; 4]>)]) -> BTreeMap<[u8; 4], BTreeSet<u16>> {
        let mut m: BTreeMap<[u8; 4], BTreeSet<u16>> = BTreeMap::new();
        for (d, ips) in src {
            for ip in ips {
                m.entry(*ip).or_default().insert(*d);
            }
        }
        m
    }
    let b = claims(backend);
    let g = claims(guest);
    let mut map = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (ip, doms) in &b {
        if doms.len() == 1 {
            map.insert(*ip, *doms.iter().next().unwrap_or(&0));
        } else {
            conflicts.push(format!(
                "{} claimed by the backends of domains {doms:?}: left out",
                fmt_ip(*ip)
            ));
        }
    }
    for (ip, doms) in &g {
        if let Some(owners) = b.get(ip) {
            let others: BTreeSet<u16> = doms.difference(owners).copied().collect();
            if !others.is_empty() {
                conflicts.push(format!(
                    "{} published by domains {others:?} but assigned by the toolstack to {owners:?}: ignored",
                    fmt_ip(*ip)
                ));
            }
            continue;
        }
        if doms.len() == 1 {
            map.insert(*ip, *doms.iter().next().unwrap_or(&0));
        } else {
            conflicts.push(format!(
                "{} published by domains {doms:?}: left out",
                fmt_ip(*ip)
            ));
        }
    }
    (map, conflicts)
}

/// The watcher's state.
#[derive(Debug)]
pub struct Watcher {
    /// Live domains with a prepared area.
    pub domains: BTreeMap<u16, DomInfo>,
    /// `(a, b)`: `a` published an offer or request for `b` (so `b` hears when `a` dies and
    /// `a` hears when `b` dies).
    pub contacts: BTreeSet<(u16, u16)>,
    /// The published IPv4 map.
    pub ipmap: BTreeMap<[u8; 4], u16>,
    /// Log lines not yet printed (the daemon drains them to stderr).
    pub logs: Vec<String>,
    limits: BTreeMap<u16, RateLimit>,
    seed: u64,
    now_ms: u64,
}

impl Watcher {
    /// `seed` is the first generation if xenstore has no counter yet (the daemon uses the
    /// wall clock, so generations from a restarted xenstored do not repeat old ones).
    pub fn new(seed: u64) -> Self {
        Watcher {
            domains: BTreeMap::new(),
            contacts: BTreeSet::new(),
            ipmap: BTreeMap::new(),
            logs: Vec::new(),
            limits: BTreeMap::new(),
            seed: seed.max(1),
            now_ms: 0,
        }
    }

    fn log(&mut self, msg: String) {
        self.logs.push(msg);
    }

    /// A log line caused by domain `d` (rate-limited per domain).
    fn log_dom(&mut self, d: u16, msg: String) {
        let now = self.now_ms;
        if self.limits.entry(d).or_default().allow(now) {
            self.logs.push(msg);
        }
    }

    /// Sets up dom0's area and the global watches, then scans the domains.
    pub fn start(&mut self, xs: &mut impl Store) -> Result<()> {
        xs.mkdir(WATCH_ROOT)?;
        xs.set_perms(WATCH_ROOT, &[Perm::new(0, PermKind::None)])?;
        xs.mkdir(DOM_RECORDS)?;
        xs.set_perms(DOM_RECORDS, &[Perm::new(0, PermKind::None)])?;
        xs.mkdir(IPMAP_DIR)?;
        // World-readable, dom0-writable (see PROTOCOL.md, "IPv4 map").
        xs.set_perms(IPMAP_DIR, &[Perm::new(0, PermKind::Read)])?;
        // Adopt the map a previous watcher published (the next refresh corrects it); drop
        // anything that is not an entry.
        for name in dir_opt(xs, IPMAP_DIR)? {
            let path = format!("{IPMAP_DIR}/{name}");
            let ip = parse_ipmap_name(name.as_bytes());
            let dom = match read_opt(xs, &path) {
                Ok(v) => v.and_then(|v| parse_domid(&v)),
                Err(e) => {
                    self.log(format!("ipmap: {path}: {e}"));
                    continue;
                }
            };
            match (ip, dom) {
                (Some(ip), Some(d)) => {
                    self.ipmap.insert(ip, d);
                }
                _ => {
                    if let Err(e) = rm_quiet(xs, &path) {
                        self.log(format!("ipmap: removing {path} failed: {e}"));
                    }
                }
            }
        }
        xs.watch("@introduceDomain", TOKEN_INTRODUCE)?;
        xs.watch("@releaseDomain", TOKEN_RELEASE)?;
        xs.watch(VIF_BACKEND, TOKEN_VIF)?;
        self.scan(xs)
    }

    fn next_gen(&mut self, xs: &mut impl Store) -> Result<u64> {
        let cur = read_opt(xs, GEN_COUNTER)?
            .and_then(|v| parse_gen(&v))
            .unwrap_or(self.seed);
        xs.write(GEN_COUNTER, cur.saturating_add(1).to_string().as_bytes())?;
        Ok(cur)
    }

    /// Compares the live domains with the known ones: prepares new ones (and new
    /// incarnations of a reused domid), cleans up dead ones, republishes the IPv4 map.
    pub fn scan(&mut self, xs: &mut impl Store) -> Result<()> {
        let mut live = BTreeSet::new();
        for name in dir_opt(xs, "/local/domain")? {
            let Some(d) = parse_domid(name.as_bytes()) else {
                continue;
            };
            match xs.is_introduced(d) {
                Ok(true) => {
                    live.insert(d);
                }
                Ok(false) => {}
                Err(e) => self.log(format!("domain {d}: is-introduced failed: {e}")),
            }
        }
        let dead: Vec<u16> = self
            .domains
            .keys()
            .filter(|d| !live.contains(d))
            .copied()
            .collect();
        // One domain's failure must not keep the others from being handled: log, go on.
        for d in dead {
            if let Err(e) = self.domain_died(xs, d) {
                self.log(format!("domain {d}: cleaning up after it failed: {e}"));
            }
        }
        for d in live {
            if let Err(e) = self.prepare(xs, d) {
                // A domain being torn down while we look is normal; anything else is logged.
                self.log(format!("domain {d}: preparing YASMIN area failed: {e}"));
            }
        }
        self.refresh_ipmap(xs)
    }

    /// Makes sure the area of live domain `d` is prepared for its current incarnation.
    fn prepare(&mut self, xs: &mut impl Store, d: u16) -> Result<()> {
        let vm = read_opt(xs, &format!("/local/domain/{d}/vm"))?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let own_gen = read_opt(xs, paths::gen_node(d).as_str())?.and_then(|v| parse_gen(&v));
        let record = read_opt(xs, &format!("{DOM_RECORDS}/{d}"))?.and_then(|v| {
            let s = String::from_utf8_lossy(&v).into_owned();
            let (g, vm) = s.split_once(' ').unwrap_or((&s, ""));
            parse_gen(g.as_bytes()).map(|g| DomInfo {
                gen: g,
                vm: vm.to_string(),
            })
        });
        // Same incarnation iff dom0's record matches the VM and the area still holds it
        // (the toolstack removes /local/domain/<d> when a domain is destroyed).
        let same = match &record {
            Some(r) => r.vm == vm && own_gen == Some(r.gen),
            None => false,
        };
        if same {
            if let Some(r) = record {
                if !self.domains.contains_key(&d) {
                    xs.watch(paths::root(d).as_str(), &format!("{TOKEN_DOM}{d}"))?;
                    self.log(format!("domain {d}: adopted (generation {})", r.gen));
                    self.domains.insert(d, r);
                }
            }
            return Ok(());
        }
        if self.domains.contains_key(&d) {
            // We missed the death of the previous domain with this id.
            self.domain_died(xs, d)?;
        }
        let gen = self.next_gen(xs)?;
        let root = paths::root(d);
        rm_quiet(xs, root.as_str())?;
        xs.mkdir(root.as_str())?;
        xs.set_perms(root.as_str(), &[Perm::new(d, PermKind::None)])?;
        // Children created by dom0 inherit `n<d>`: owned by d, readable by nobody else.
        xs.mkdir(paths::kind_dir(d, Kind::Notify).as_str())?;
        xs.mkdir(paths::kind_dir(d, Kind::Gone).as_str())?;
        xs.write(
            &format!("{DOM_RECORDS}/{d}"),
            format!("{gen} {vm}").as_bytes(),
        )?;
        // Written last: a guest waiting for `gen` finds the whole area ready.
        xs.write(paths::gen_node(d).as_str(), gen.to_string().as_bytes())?;
        xs.watch(root.as_str(), &format!("{TOKEN_DOM}{d}"))?;
        self.log(format!("domain {d}: prepared (generation {gen})"));
        self.domains.insert(d, DomInfo { gen, vm });
        Ok(())
    }

    /// Cleans up after dead domain `d` and tells the domains that were in contact with it.
    fn domain_died(&mut self, xs: &mut impl Store, d: u16) -> Result<()> {
        let Some(info) = self.domains.remove(&d) else {
            return Ok(());
        };
        let peers: BTreeSet<u16> = self
            .contacts
            .iter()
            .filter_map(|&(a, b)| {
                if a == d {
                    Some(b)
                } else if b == d {
                    Some(a)
                } else {
                    None
                }
            })
            .filter(|p| *p != d)
            .collect();
        self.contacts.retain(|&(a, b)| a != d && b != d);
        for p in peers {
            if !self.domains.contains_key(&p) {
                continue;
            }
            let r = rm_quiet(xs, paths::peer_node(p, Kind::Notify, d).as_str()).and_then(|_| {
                xs.write(
                    paths::peer_node(p, Kind::Gone, d).as_str(),
                    info.gen.to_string().as_bytes(),
                )
            });
            if let Err(e) = r {
                self.log(format!(
                    "domain {p}: telling it domain {d} died failed: {e}"
                ));
            }
        }
        let _ = xs.unwatch(paths::root(d).as_str(), &format!("{TOKEN_DOM}{d}"));
        rm_quiet(xs, paths::root(d).as_str())?;
        rm_quiet(xs, &format!("{DOM_RECORDS}/{d}"))?;
        self.limits.remove(&d);
        self.log(format!("domain {d}: gone (generation {})", info.gen));
        Ok(())
    }

    /// Whether live domain `p`'s module is loaded: `Y(p)/up` holds p's generation.
    fn is_up(&mut self, xs: &mut impl Store, p: u16) -> Result<bool> {
        let Some(gen) = self.domains.get(&p).map(|i| i.gen) else {
            return Ok(false);
        };
        let up = read_opt(xs, paths::up_node(p).as_str())?.and_then(|v| parse_gen(&v));
        Ok(up == Some(gen))
    }

    /// Handles one watch event. `now_ms` drives the per-domain log rate limit.
    pub fn on_event(
        &mut self,
        xs: &mut impl Store,
        path: &str,
        token: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.now_ms = now_ms;
        match token {
            TOKEN_INTRODUCE | TOKEN_RELEASE => self.scan(xs),
            TOKEN_VIF => self.refresh_ipmap(xs),
            t => match t
                .strip_prefix(TOKEN_DOM)
                .and_then(|d| d.parse::<u16>().ok())
            {
                Some(d) => self.on_dom_event(xs, d, path),
                None => Ok(()),
            },
        }
    }

    fn on_dom_event(&mut self, xs: &mut impl Store, d: u16, path: &str) -> Result<()> {
        let Some(gen) = self.domains.get(&d).map(|i| i.gen) else {
            return Ok(());
        };
        match parse_path(path.as_bytes()) {
            Some(Parsed::Peer {
                dom,
                kind: Kind::Offer | Kind::Req,
                peer,
            }) if dom == d => {
                let why = if peer == d || !self.domains.contains_key(&peer) {
                    Some("no such peer domain")
                } else if !self.is_up(xs, peer)? {
                    Some("peer has no YASMIN loaded")
                } else {
                    None
                };
                if let Some(why) = why {
                    // Tell d at once (a `gone` of generation 0), so that a connect to a
                    // domain that does not exist or does not run YASMIN fails now
                    // instead of timing out. (A removal needs no answer.)
                    let exists = read_opt(xs, path)?.is_some();
                    if exists {
                        self.log_dom(d, format!("domain {d}: {path}: {why}, not relayed"));
                    }
                    if peer != d && exists {
                        let gone = paths::peer_node(d, Kind::Gone, peer);
                        let zero = paths::GEN_NO_SUCH_DOMAIN.to_string();
                        if let Err(e) = xs.write(gone.as_str(), zero.as_bytes()) {
                            self.log(format!(
                                "domain {d}: telling it {peer} does not exist failed: {e}"
                            ));
                        }
                    }
                    return Ok(());
                }
                self.contacts.insert((d, peer));
                // The node must be readable by exactly its peer: `n<d> r<peer>`. A guest
                // kernel cannot set permissions (Linux's xenbus has no call for it), so the
                // watcher does it, before the notify, whatever the guest set. Only when they
                // differ: setting them fires this watch again.
                let want = [
                    Perm::new(d, PermKind::None),
                    Perm::new(peer, PermKind::Read),
                ];
                match xs.get_perms(path) {
                    Ok(p) if p == want => {}
                    Ok(_) => {
                        if let Err(e) = xs.set_perms(path, &want) {
                            self.log_dom(d, format!("domain {d}: {path}: set perms failed: {e}"));
                            return Ok(());
                        }
                    }
                    Err(_) => {} // removed: the peer re-reads and finds it gone
                }
                // Relay on every change (creation, update, removal): the peer re-reads.
                let r = xs.write(
                    paths::peer_node(peer, Kind::Notify, d).as_str(),
                    gen.to_string().as_bytes(),
                );
                if let Err(e) = r {
                    if matches!(e, Error::Xs(Errno::NoEnt) | Error::Xs(Errno::Acces)) {
                        return Ok(());
                    }
                    self.log(format!("domain {peer}: notify from {d} failed: {e}"));
                }
                Ok(())
            }
            Some(Parsed::Ipv4 { dom }) if dom == d => self.refresh_ipmap(xs),
            _ => Ok(()),
        }
    }

    /// Recomputes the IPv4 map from the vif backends and the guests' `ipv4` nodes and
    /// writes the difference. A failed read, write or removal is logged and skipped (the
    /// entry is retried on the next refresh); it does not stop the other entries.
    pub fn refresh_ipmap(&mut self, xs: &mut impl Store) -> Result<()> {
        let mut backend = Vec::new();
        let mut guest = Vec::new();
        let doms: Vec<u16> = self.domains.keys().copied().collect();
        for d in doms {
            let mut ips = Vec::new();
            let devs = match dir_opt(xs, &format!("{VIF_BACKEND}/{d}")) {
                Ok(v) => v,
                Err(e) => {
                    self.log_dom(d, format!("ipmap: {VIF_BACKEND}/{d}: {e}"));
                    Vec::new()
                }
            };
            for dev in devs {
                let path = format!("{VIF_BACKEND}/{d}/{dev}/ip");
                match read_opt(xs, &path) {
                    Ok(Some(v)) => ips.extend(parse_ip_list(&v)),
                    Ok(None) => {}
                    Err(e) => self.log_dom(d, format!("ipmap: {path}: {e}")),
                }
            }
            backend.push((d, ips));
            match read_opt(xs, paths::ipv4_node(d).as_str()) {
                Ok(Some(v)) => guest.push((d, parse_ip_list(&v))),
                Ok(None) => {}
                Err(e) => self.log_dom(d, format!("ipmap: {}: {e}", paths::ipv4_node(d).as_str())),
            }
        }
        let (map, conflicts) = compute_ipmap(&backend, &guest);
        for c in conflicts {
            self.log_dom(0, format!("ipmap: {c}"));
        }
        let stale: Vec<([u8; 4], u16)> = self
            .ipmap
            .iter()
            .filter(|(ip, _)| !map.contains_key(*ip))
            .map(|(ip, d)| (*ip, *d))
            .collect();
        for (ip, d) in stale {
            let node = ipmap_node(ip);
            match rm_quiet(xs, node.as_str()) {
                Ok(()) => {
                    self.ipmap.remove(&ip);
                }
                Err(e) => self.log_dom(
                    d,
                    format!(
                        "ipmap: removing {} ({}) failed: {e}",
                        node.as_str(),
                        fmt_ip(ip)
                    ),
                ),
            }
        }
        for (ip, d) in map {
            if self.ipmap.get(&ip) == Some(&d) {
                continue;
            }
            let node = ipmap_node(ip);
            match xs.write(node.as_str(), d.to_string().as_bytes()) {
                Ok(()) => {
                    self.ipmap.insert(ip, d);
                }
                Err(e) => self.log_dom(
                    d,
                    format!(
                        "ipmap: writing {} ({} -> domain {d}) failed: {e}",
                        node.as_str(),
                        fmt_ip(ip)
                    ),
                ),
            }
        }
        Ok(())
    }
}
