//! An in-memory model of C xenstored's permission and watch rules, and of the Xen grant
//! and event-channel checks, for driving the watcher and several guests' state machines.
//!
//! XenStore rules modelled (Xen 4.17 C xenstored):
//! * a node's perms are `[owner+default, per-domain entries...]`; dom0 bypasses every
//!   check; the owner may read and write; others get their entry, else the default;
//! * a new node inherits its parent's perms, but an unprivileged creator becomes owner;
//!   creating needs write access to the nearest existing ancestor;
//! * `rm` needs write access to the node; `set_perms` needs ownership (or dom0) and an
//!   unprivileged domain cannot give a node away;
//! * a watch fires once when set, then for changes at or below its path (and for its path
//!   when an ancestor is removed), only to watchers that may read the changed node;
//! * `@introduceDomain`/`@releaseDomain` fire only to dom0 (special node perms `n0`);
//! * every path is checked like `is_valid_nodename()` before anything else, failing with
//!   `EINVAL`: only ASCII letters, digits and `-/_@`; no trailing `/` (except `/` itself);
//!   no `//`; at most [`ABS_PATH_MAX`] bytes, and at most [`REL_PATH_MAX`] (the default
//!   `quota-path-max`) after a `/local/domain/<d>/` prefix, or in all without one. A relative path is taken relative to
//!   `/local/domain/<caller>/` (watch events then name the absolute path, unlike
//!   xenstored); a watch on a special `@` node only checks its length.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use xenstore_watch::control::pair::{self, Action, Channel, Event, NodeError, Pair};
use xenstore_watch::control::paths::{self, parse_gen, parse_path, Kind, Offer, Parsed, Req};
use xenstore_watch::control::wire::{peek_header, Msg, MAX_MSG_LEN};
use xenstore_watch::watcher::{Store, Watcher};
use xenstore_watch::xs::{Errno, Error, Perm, PermKind, Result};

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Vec<Perm>,
}

#[derive(Clone, Debug)]
struct WatchReg {
    conn: usize,
    dom: u16,
    path: String,
    token: String,
}

#[derive(Default)]
pub struct Model {
    pub nodes: BTreeMap<String, Node>,
    watches: Vec<WatchReg>,
    queues: BTreeMap<usize, VecDeque<(String, String)>>,
    pub introduced: BTreeSet<u16>,
    next_conn: usize,
    /// Every refused operation: (domain, op, path, errno).
    pub denied: Vec<(u16, &'static str, String, String)>,
}

fn err(e: Errno) -> Error {
    Error::Xs(e)
}

/// `XENSTORE_ABS_PATH_MAX`.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX` (C xenstored's default `quota-path-max`).
pub const REL_PATH_MAX: usize = 2048;

/// C xenstored's `valid_chars()`.
pub fn valid_chars(path: &str) -> bool {
    path.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-/_@".contains(&c))
}

/// C xenstored's `is_valid_nodename()` for an absolute (canonical) path.
pub fn valid_path(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    if path.ends_with('/') && path != "/" {
        return false;
    }
    if path.contains("//") {
        return false;
    }
    if path.len() > ABS_PATH_MAX {
        return false;
    }
    // `sscanf(node, "/local/domain/%5u/%n", ...)`: the quota applies to what follows.
    let local_off = path
        .strip_prefix("/local/domain/")
        .and_then(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let ok = (1..=5).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'/');
            ok.then_some("/local/domain/".len() + digits + 1)
        })
        .unwrap_or(0);
    if path.len() - local_off > REL_PATH_MAX {
        return false;
    }
    valid_chars(path)
}

fn parent(p: &str) -> Option<&str> {
    if p == "/" {
        return None;
    }
    match p.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&p[..i]),
        None => None,
    }
}

/// A relative path is relative to the caller's home.
fn absolute(dom: u16, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/local/domain/{dom}/{path}")
    }
}

/// `a` is `b` or below it.
fn at_or_below(a: &str, b: &str) -> bool {
    a == b || b == "/" || (a.starts_with(b) && a.as_bytes().get(b.len()) == Some(&b'/'))
}

fn access(dom: u16, perms: &[Perm]) -> PermKind {
    if dom == 0 || perms.first().map(|p| p.domid) == Some(dom) {
        return PermKind::Both;
    }
    perms[1..]
        .iter()
        .find(|p| p.domid == dom)
        .or(perms.first())
        .map(|p| p.kind)
        .unwrap_or(PermKind::None)
}

fn can_read(dom: u16, perms: &[Perm]) -> bool {
    matches!(access(dom, perms), PermKind::Read | PermKind::Both)
}

fn can_write(dom: u16, perms: &[Perm]) -> bool {
    matches!(access(dom, perms), PermKind::Write | PermKind::Both)
}

impl Model {
    pub fn new() -> Rc<RefCell<Model>> {
        let mut m = Model::default();
        let n0 = vec![Perm::new(0, PermKind::None)];
        for p in ["/", "/local", "/local/domain"] {
            m.nodes.insert(
                p.into(),
                Node {
                    value: vec![],
                    perms: n0.clone(),
                },
            );
        }
        Rc::new(RefCell::new(m))
    }

    fn deny(&mut self, dom: u16, op: &'static str, path: &str, e: Errno) -> Error {
        self.denied
            .push((dom, op, path.to_string(), e.name().to_string()));
        err(e)
    }

    /// xenstored's `canonicalize()` + `is_valid_nodename()`: the absolute path, or `EINVAL`.
    fn canon(&mut self, dom: u16, op: &'static str, path: &str) -> Result<String> {
        let abs = absolute(dom, path);
        if !valid_path(&abs) {
            return Err(self.deny(dom, op, path, Errno::Inval));
        }
        Ok(abs)
    }

    fn fire(&mut self, path: &str, perms: &[Perm], removed: bool) {
        let regs = self.watches.clone();
        for w in regs {
            let hit = at_or_below(path, &w.path) || (removed && at_or_below(&w.path, path));
            if !hit || path.starts_with('@') || !can_read(w.dom, perms) {
                continue;
            }
            let ev_path = if at_or_below(path, &w.path) {
                path.to_string()
            } else {
                w.path.clone()
            };
            self.queues
                .entry(w.conn)
                .or_default()
                .push_back((ev_path, w.token.clone()));
        }
    }

    fn fire_special(&mut self, name: &str) {
        for w in self.watches.clone() {
            if w.path == name && w.dom == 0 {
                self.queues
                    .entry(w.conn)
                    .or_default()
                    .push_back((name.to_string(), w.token.clone()));
            }
        }
    }

    pub fn read(&mut self, dom: u16, path: &str) -> Result<Vec<u8>> {
        let path = &self.canon(dom, "read", path)?;
        let Some(n) = self.nodes.get(path) else {
            return Err(err(Errno::NoEnt));
        };
        if !can_read(dom, &n.perms) {
            return Err(self.deny(dom, "read", path, Errno::Acces));
        }
        Ok(n.value.clone())
    }

    pub fn write(&mut self, dom: u16, path: &str, value: &[u8]) -> Result<()> {
        let path = &self.canon(dom, "write", path)?;
        if let Some(n) = self.nodes.get(path) {
            if !can_write(dom, &n.perms) {
                return Err(self.deny(dom, "write", path, Errno::Acces));
            }
            let perms = n.perms.clone();
            self.nodes.get_mut(path).unwrap().value = value.to_vec();
            self.fire(path, &perms, false);
            return Ok(());
        }
        // Find the nearest existing ancestor.
        let mut missing = vec![path.to_string()];
        let mut anc = parent(path).ok_or(err(Errno::Inval))?.to_string();
        while !self.nodes.contains_key(&anc) {
            missing.push(anc.clone());
            anc = parent(&anc).ok_or(err(Errno::Inval))?.to_string();
        }
        let mut perms = self.nodes[&anc].perms.clone();
        if !can_write(dom, &perms) {
            return Err(self.deny(dom, "create", path, Errno::Acces));
        }
        if dom != 0 {
            perms[0].domid = dom;
        }
        for p in missing.iter().rev() {
            let v = if p == path { value.to_vec() } else { vec![] };
            self.nodes.insert(
                p.clone(),
                Node {
                    value: v,
                    perms: perms.clone(),
                },
            );
            self.fire(p, &perms, false);
        }
        Ok(())
    }

    pub fn mkdir(&mut self, dom: u16, path: &str) -> Result<()> {
        let path = &self.canon(dom, "mkdir", path)?;
        if self.nodes.contains_key(path) {
            return Ok(());
        }
        self.write(dom, path, b"")
    }

    pub fn rm(&mut self, dom: u16, path: &str) -> Result<()> {
        let path = &self.canon(dom, "rm", path)?;
        let Some(n) = self.nodes.get(path) else {
            return Err(err(Errno::NoEnt));
        };
        if !can_write(dom, &n.perms) {
            return Err(self.deny(dom, "rm", path, Errno::Acces));
        }
        let perms = n.perms.clone();
        let gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| at_or_below(k, path))
            .cloned()
            .collect();
        for k in gone {
            self.nodes.remove(&k);
        }
        self.fire(path, &perms, true);
        Ok(())
    }

    pub fn directory(&mut self, dom: u16, path: &str) -> Result<Vec<String>> {
        let path = &self.canon(dom, "directory", path)?;
        let Some(n) = self.nodes.get(path) else {
            return Err(err(Errno::NoEnt));
        };
        if !can_read(dom, &n.perms) {
            return Err(self.deny(dom, "directory", path, Errno::Acces));
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(self
            .nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    pub fn set_perms(&mut self, dom: u16, path: &str, perms: &[Perm]) -> Result<()> {
        let path = &self.canon(dom, "set_perms", path)?;
        let Some(n) = self.nodes.get(path) else {
            return Err(err(Errno::NoEnt));
        };
        let owner = n.perms[0].domid;
        if dom != 0 && owner != dom {
            return Err(self.deny(dom, "set_perms", path, Errno::Acces));
        }
        if dom != 0 && perms.first().map(|p| p.domid) != Some(owner) {
            return Err(self.deny(dom, "set_perms", path, Errno::Perm));
        }
        let old = n.perms.clone();
        self.nodes.get_mut(path).unwrap().perms = perms.to_vec();
        // Watchers that could read before or after are told.
        self.fire(path, &old, false);
        Ok(())
    }

    pub fn get_perms(&self, path: &str) -> Vec<Perm> {
        self.nodes[path].perms.clone()
    }

    /// `XS_GET_PERMS` as domain `dom` would see it (needs read access).
    pub fn get_perms_as(&mut self, dom: u16, path: &str) -> Result<Vec<Perm>> {
        let path = &self.canon(dom, "get_perms", path)?;
        let Some(n) = self.nodes.get(path) else {
            return Err(err(Errno::NoEnt));
        };
        if !can_read(dom, &n.perms) {
            return Err(self.deny(dom, "get_perms", path, Errno::Acces));
        }
        Ok(n.perms.clone())
    }

    pub fn watch(&mut self, conn: usize, dom: u16, path: &str, token: &str) -> Result<()> {
        let path = &if path.starts_with('@') {
            if path.len() > REL_PATH_MAX {
                return Err(self.deny(dom, "watch", path, Errno::Inval));
            }
            path.to_string()
        } else {
            self.canon(dom, "watch", path)?
        };
        self.watches.push(WatchReg {
            conn,
            dom,
            path: path.to_string(),
            token: token.to_string(),
        });
        // The initial event is sent whatever the permissions.
        self.queues
            .entry(conn)
            .or_default()
            .push_back((path.to_string(), token.to_string()));
        Ok(())
    }

    pub fn unwatch(&mut self, conn: usize, dom: u16, path: &str, token: &str) -> Result<()> {
        let path = &if path.starts_with('@') {
            path.to_string()
        } else {
            absolute(dom, path)
        };
        let before = self.watches.len();
        self.watches
            .retain(|w| !(w.conn == conn && w.path == *path && w.token == token));
        if self.watches.len() == before {
            return Err(err(Errno::NoEnt));
        }
        Ok(())
    }

    pub fn take_event(&mut self, conn: usize) -> Option<(String, String)> {
        self.queues.get_mut(&conn)?.pop_front()
    }

    pub fn pending(&self, conn: usize) -> usize {
        self.queues.get(&conn).map_or(0, VecDeque::len)
    }

    /// What the toolstack does when a domain is created: its home (`n0 r<d>`, the way
    /// libxl makes it), `data` owned by the domain, `vm`, then `XS_INTRODUCE`.
    pub fn introduce(&mut self, d: u16, vm: &str) {
        let home = format!("/local/domain/{d}");
        self.write(0, &home, b"").unwrap();
        self.set_perms(
            0,
            &home,
            &[Perm::new(0, PermKind::None), Perm::new(d, PermKind::Read)],
        )
        .unwrap();
        self.write(0, &format!("{home}/vm"), vm.as_bytes()).unwrap();
        self.write(0, &format!("{home}/data"), b"").unwrap();
        self.set_perms(0, &format!("{home}/data"), &[Perm::new(d, PermKind::None)])
            .unwrap();
        self.introduced.insert(d);
        self.fire_special("@introduceDomain");
    }

    /// A domain dies: xenstored drops its connections and watches and fires
    /// `@releaseDomain`; then the toolstack removes its home.
    pub fn destroy(&mut self, d: u16) {
        self.introduced.remove(&d);
        self.watches.retain(|w| w.dom != d);
        self.fire_special("@releaseDomain");
        let _ = self.rm(0, &format!("/local/domain/{d}"));
    }
}

/// One connection of domain `dom` to the model.
pub struct Conn {
    pub model: Rc<RefCell<Model>>,
    pub dom: u16,
    pub id: usize,
}

impl Conn {
    pub fn new(model: &Rc<RefCell<Model>>, dom: u16) -> Conn {
        let id = {
            let mut m = model.borrow_mut();
            m.next_conn += 1;
            m.next_conn
        };
        Conn {
            model: model.clone(),
            dom,
            id,
        }
    }

    pub fn take_event(&mut self) -> Option<(String, String)> {
        self.model.borrow_mut().take_event(self.id)
    }
}

impl Store for Conn {
    fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.model.borrow_mut().read(self.dom, path)
    }
    fn write(&mut self, path: &str, value: &[u8]) -> Result<()> {
        self.model.borrow_mut().write(self.dom, path, value)
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        self.model.borrow_mut().mkdir(self.dom, path)
    }
    fn rm(&mut self, path: &str) -> Result<()> {
        self.model.borrow_mut().rm(self.dom, path)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.model.borrow_mut().directory(self.dom, path)
    }
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()> {
        self.model.borrow_mut().set_perms(self.dom, path, perms)
    }
    fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>> {
        self.model.borrow_mut().get_perms_as(self.dom, path)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.model
            .borrow_mut()
            .watch(self.id, self.dom, path, token)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        self.model
            .borrow_mut()
            .unwatch(self.id, self.dom, path, token)
    }
    fn is_introduced(&mut self, domid: u16) -> Result<bool> {
        if self.dom != 0 {
            return Err(err(Errno::Acces));
        }
        Ok(self.model.borrow().introduced.contains(&domid))
    }
}

// ---------------------------------------------------------------------------------------
// Xen: grants, event channels, control pages.
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct Page {
    pub owner: u16,
    pub grantee: u16,
    pub revoked: bool,
    pub mapped_by: Option<u16>,
    /// Offerer -> acceptor and acceptor -> offerer byte streams (the two control rings).
    pub o2a: VecDeque<u8>,
    pub a2o: VecDeque<u8>,
}

#[derive(Default, Debug)]
pub struct Xen {
    /// (granter, gref) -> page
    pub pages: BTreeMap<(u16, u32), Page>,
    /// (owner, port) -> remote domain allowed to bind
    pub ports: BTreeMap<(u16, u32), u16>,
    next_gref: u32,
    next_port: u32,
    pub allocations: usize,
}

impl Xen {
    pub fn alloc(&mut self, owner: u16, grantee: u16) -> Channel {
        self.next_gref += 1;
        self.next_port += 1;
        self.allocations += 1;
        let gref = self.next_gref + 100;
        let evtchn = self.next_port + 10;
        self.pages.insert(
            (owner, gref),
            Page {
                owner,
                grantee,
                revoked: false,
                mapped_by: None,
                o2a: VecDeque::new(),
                a2o: VecDeque::new(),
            },
        );
        self.ports.insert((owner, evtchn), grantee);
        Channel { gref, evtchn }
    }

    /// Xen checks: the grant exists, is not revoked, and names the mapping domain.
    pub fn map(&mut self, mapper: u16, granter: u16, ch: Channel) -> bool {
        let port_ok = self.ports.get(&(granter, ch.evtchn)) == Some(&mapper);
        match self.pages.get_mut(&(granter, ch.gref)) {
            Some(p) if !p.revoked && p.grantee == mapper && port_ok => {
                p.mapped_by = Some(mapper);
                true
            }
            _ => false,
        }
    }

    pub fn live_pages(&self) -> usize {
        self.pages.values().filter(|p| !p.revoked).count()
    }
}

// ---------------------------------------------------------------------------------------
// A guest: its XenStore connection, generation and one Pair per peer.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRole {
    Offerer,
    Acceptor,
}

pub struct Guest {
    pub dom: u16,
    pub conn: Conn,
    pub gen: u64,
    pub pairs: BTreeMap<u16, Pair>,
    /// peer -> (granter, gref, role) of the control page in use
    pub links: BTreeMap<u16, (u16, u32, LinkRole)>,
    pub logs: Vec<(u16, pair::LogKind)>,
    pub ups: Vec<u16>,
    pub downs: Vec<u16>,
    pub resets: Vec<u16>,
    /// Paused guests process nothing (a hung or not-yet-loaded module).
    pub paused: bool,
}

fn node_err(e: &Error) -> NodeError {
    if e.is_not_found() {
        NodeError::Missing
    } else {
        NodeError::Unreadable
    }
}

impl Guest {
    /// Loads the module: reads `gen`, watches `notify` and `gone`, writes `up`.
    pub fn load(model: &Rc<RefCell<Model>>, dom: u16) -> Guest {
        let mut conn = Conn::new(model, dom);
        let gen = parse_gen(&conn.read(paths::gen_node(dom).as_str()).expect("gen")).unwrap();
        conn.watch(paths::kind_dir(dom, Kind::Notify).as_str(), "notify")
            .unwrap();
        conn.watch(paths::kind_dir(dom, Kind::Gone).as_str(), "gone")
            .unwrap();
        // Up only once it hears notices: the watcher relays to it from now on.
        conn.write(paths::up_node(dom).as_str(), gen.to_string().as_bytes())
            .unwrap();
        Guest {
            dom,
            conn,
            gen,
            pairs: BTreeMap::new(),
            links: BTreeMap::new(),
            logs: vec![],
            ups: vec![],
            downs: vec![],
            resets: vec![],
            paused: false,
        }
    }

    pub fn pair(&mut self, peer: u16) -> &mut Pair {
        let (dom, gen) = (self.dom, self.gen);
        self.pairs
            .entry(peer)
            .or_insert_with(|| Pair::new(dom, peer, gen))
    }

    pub fn state(&self, peer: u16) -> pair::State {
        self.pairs.get(&peer).map_or(pair::State::Idle, Pair::state)
    }

    /// Feeds one event to the pair with `peer` and carries out the actions.
    pub fn feed(&mut self, xen: &mut Xen, peer: u16, ev: Event, now: u64) {
        let acts = self.pair(peer).handle(ev, now);
        assert!(!acts.overflow, "action list overflow");
        for a in acts.iter() {
            self.exec(xen, peer, a, now);
        }
    }

    fn exec(&mut self, xen: &mut Xen, peer: u16, a: Action, now: u64) {
        let me = self.dom;
        match a {
            Action::Read(kind) => {
                let path = paths::peer_node(peer, kind, me);
                let r = self.conn.read(path.as_str());
                let ev = match kind {
                    Kind::Offer => Event::OfferRead(match r {
                        Ok(v) => Offer::parse(&v).map_err(NodeError::Malformed),
                        Err(e) => Err(node_err(&e)),
                    }),
                    _ => Event::ReqRead(match r {
                        Ok(v) => Req::parse(&v).map_err(NodeError::Malformed),
                        Err(e) => Err(node_err(&e)),
                    }),
                };
                self.feed(xen, peer, ev, now);
            }
            Action::WriteOffer(o) => self.publish(Kind::Offer, peer, o.format().as_bytes()),
            Action::WriteReq(r) => self.publish(Kind::Req, peer, r.format().as_bytes()),
            Action::Remove(kind) => {
                let _ = self.conn.rm(paths::peer_node(me, kind, peer).as_str());
            }
            Action::AllocChannel => {
                let ch = xen.alloc(me, peer);
                self.links.insert(peer, (me, ch.gref, LinkRole::Offerer));
                self.feed(xen, peer, Event::Allocated(Some(ch)), now);
            }
            Action::MapChannel(ch) => {
                let ok = xen.map(me, peer, ch);
                if ok {
                    self.links.insert(peer, (peer, ch.gref, LinkRole::Acceptor));
                }
                self.feed(xen, peer, Event::Mapped(ok), now);
            }
            Action::Teardown(ch) => {
                if let Some((granter, gref, role)) = self.links.remove(&peer) {
                    assert_eq!(gref, ch.gref);
                    if let Some(p) = xen.pages.get_mut(&(granter, gref)) {
                        match role {
                            LinkRole::Offerer => {
                                p.revoked = true;
                                xen.ports.remove(&(me, ch.evtchn));
                            }
                            LinkRole::Acceptor => p.mapped_by = None,
                        }
                    }
                }
            }
            Action::Send(m) => {
                let mut buf = [0u8; MAX_MSG_LEN];
                let n = m.encode(&mut buf).expect("valid message");
                if let Some(&(granter, gref, role)) = self.links.get(&peer) {
                    if let Some(p) = xen.pages.get_mut(&(granter, gref)) {
                        let q = match role {
                            LinkRole::Offerer => &mut p.o2a,
                            LinkRole::Acceptor => &mut p.a2o,
                        };
                        q.extend(&buf[..n]);
                    }
                }
            }
            Action::ResetSockets => self.resets.push(peer),
            Action::Up => self.ups.push(peer),
            Action::Down => self.downs.push(peer),
            Action::Log(k) => self.logs.push((peer, k)),
        }
    }

    /// Writes `Y(self)/<kind>/<peer>` as the kernel module does: without setting
    /// permissions (Linux's xenbus cannot); the watcher makes it `n<self> r<peer>`.
    fn publish(&mut self, kind: Kind, peer: u16, value: &[u8]) {
        let path = paths::peer_node(self.dom, kind, peer);
        self.conn.write(path.as_str(), value).unwrap();
    }

    /// Handles one XenStore watch event.
    pub fn on_watch(&mut self, xen: &mut Xen, path: &str, now: u64) {
        let Some(Parsed::Peer { dom, kind, peer }) = parse_path(path.as_bytes()) else {
            return;
        };
        if dom != self.dom || peer == self.dom || !matches!(kind, Kind::Notify | Kind::Gone) {
            return;
        }
        let v = match self.conn.read(path) {
            Ok(v) if kind == Kind::Gone => paths::parse_gone(&v).ok_or(NodeError::Unreadable),
            Ok(v) => parse_gen(&v).ok_or(NodeError::Unreadable),
            Err(e) => Err(node_err(&e)),
        };
        let ev = if kind == Kind::Notify {
            Event::Notify(v)
        } else {
            Event::Gone(v)
        };
        self.feed(xen, peer, ev, now);
    }

    /// Pulls whole messages from the control ring of the pair with `peer`.
    pub fn on_ring(&mut self, xen: &mut Xen, peer: u16, now: u64) -> bool {
        let Some(&(granter, gref, role)) = self.links.get(&peer) else {
            return false;
        };
        let mut got = false;
        loop {
            let Some(p) = xen.pages.get_mut(&(granter, gref)) else {
                return got;
            };
            let q = match role {
                LinkRole::Offerer => &mut p.a2o,
                LinkRole::Acceptor => &mut p.o2a,
            };
            let bytes: Vec<u8> = q.iter().copied().collect();
            if bytes.is_empty() {
                return got;
            }
            got = true;
            match Msg::decode(&bytes) {
                Ok((m, n)) => {
                    q.drain(..n);
                    self.feed(xen, peer, Event::Received(m), now);
                }
                Err(e) if e.is_fatal() => {
                    q.clear();
                    self.feed(xen, peer, Event::ChannelBroken, now);
                    return got;
                }
                Err(xenstore_watch::control::wire::DecodeError::Truncated) => return got,
                Err(_) => {
                    // A bad message of known length: skip it.
                    let n = peek_header(&bytes).map(|h| h.len).unwrap_or(bytes.len());
                    q.drain(..n.min(bytes.len()));
                    self.logs.push((peer, pair::LogKind::Unexpected));
                }
            }
            if !self.links.contains_key(&peer) {
                return got;
            }
        }
    }
}

/// The whole host: the model, Xen, the watcher in dom0 and the guests.
pub struct World {
    pub model: Rc<RefCell<Model>>,
    pub xen: Xen,
    pub watcher: Watcher,
    pub wconn: Conn,
    pub guests: BTreeMap<u16, Guest>,
    pub now: u64,
    /// A stopped watcher processes no events (crashed, restarting).
    pub watcher_stopped: bool,
}

impl World {
    /// Creates domains `doms` (toolstack), starts the watcher, loads a guest module in each.
    pub fn new(doms: &[u16]) -> World {
        let model = Model::new();
        model.borrow_mut().introduce(0, "");
        for &d in doms {
            model.borrow_mut().introduce(d, &format!("/vm/uuid-{d}"));
        }
        let mut wconn = Conn::new(&model, 0);
        let mut watcher = Watcher::new(1000);
        watcher.start(&mut wconn).unwrap();
        let mut w = World {
            model,
            xen: Xen::default(),
            watcher,
            wconn,
            guests: BTreeMap::new(),
            now: 0,
            watcher_stopped: false,
        };
        w.settle();
        for &d in doms {
            w.load(d);
        }
        w.settle();
        w
    }

    pub fn load(&mut self, d: u16) {
        let g = Guest::load(&self.model, d);
        self.guests.insert(d, g);
    }

    /// Unloads guest `d`'s module as `rmmod` does: `up` removed first (no more relays
    /// to it), then GOODBYE on every pair.
    pub fn unload(&mut self, d: u16) {
        let mut g = self.guests.remove(&d).unwrap();
        let _ = g.conn.rm(paths::up_node(d).as_str());
        let peers: Vec<u16> = g.pairs.keys().copied().collect();
        for p in peers {
            g.feed(&mut self.xen, p, Event::Shutdown, self.now);
        }
        self.settle();
    }

    pub fn guest(&mut self, d: u16) -> &mut Guest {
        self.guests.get_mut(&d).unwrap()
    }

    /// Feeds an event to guest `d`'s pair with `peer`.
    pub fn feed(&mut self, d: u16, peer: u16, ev: Event) {
        let now = self.now;
        let g = self.guests.get_mut(&d).unwrap();
        g.feed(&mut self.xen, peer, ev, now);
    }

    pub fn connect(&mut self, d: u16, peer: u16) {
        self.feed(d, peer, Event::Connect);
    }

    /// Delivers watch events and control messages until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            if !self.watcher_stopped {
                while let Some((path, token)) = self.wconn.take_event() {
                    moved = true;
                    self.watcher
                        .on_event(&mut self.wconn, &path, &token, self.now)
                        .unwrap();
                }
            }
            let doms: Vec<u16> = self.guests.keys().copied().collect();
            for d in doms {
                let g = self.guests.get_mut(&d).unwrap();
                if g.paused {
                    continue;
                }
                while let Some((path, _)) = g.conn.take_event() {
                    moved = true;
                    g.on_watch(&mut self.xen, &path, self.now);
                }
                let peers: Vec<u16> = g.links.keys().copied().collect();
                for p in peers {
                    moved |= g.on_ring(&mut self.xen, p, self.now);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the world does not settle");
    }

    /// Advances the clock and ticks every pair.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        let now = self.now;
        for g in self.guests.values_mut() {
            if g.paused {
                continue;
            }
            let peers: Vec<u16> = g.pairs.keys().copied().collect();
            for p in peers {
                g.feed(&mut self.xen, p, Event::Tick, now);
            }
        }
        self.settle();
    }

    /// Domain `d` dies (its guest object goes away with it).
    pub fn destroy(&mut self, d: u16) {
        self.guests.remove(&d);
        self.model.borrow_mut().destroy(d);
        // Xen tears down the dead domain's mappings and grants.
        for p in self.xen.pages.values_mut() {
            if p.owner == d {
                p.revoked = true;
            }
            if p.mapped_by == Some(d) {
                p.mapped_by = None;
            }
        }
        self.settle();
    }

    pub fn introduce(&mut self, d: u16, vm: &str) {
        self.model.borrow_mut().introduce(d, vm);
        self.settle();
    }

    pub fn connected(&self, a: u16, b: u16) -> bool {
        self.guests[&a].state(b) == pair::State::Connected
            && self.guests[&b].state(a) == pair::State::Connected
    }

    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.model.borrow_mut().read(0, path).ok()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.model.borrow().nodes.contains_key(path)
    }
}
