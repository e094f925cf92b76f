//! An in-memory fake xenstored for tests: enough of the real daemon's behaviour (relative
//! paths, parents created on write, permissions, watches with their initial event, events
//! queued before the reply, transactions with injectable EAGAIN) to exercise the client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use xenstore_watch::xs::wire::{self, Message, MsgType, HEADER_LEN};
use xenstore_watch::xs::{Perm, PermKind, XsClient};

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Vec<Perm>,
}

type Writer = Arc<Mutex<UnixStream>>;

struct WatchReg {
    conn: usize,
    given: String,
    abs: String,
    token: String,
    domid: u16,
    out: Writer,
}

/// The shared state of the fake daemon.
pub struct Store {
    pub nodes: BTreeMap<String, Node>,
    watches: Vec<WatchReg>,
    open_tx: Vec<u32>,
    next_tx: u32,
    /// The next this many commits fail with EAGAIN.
    pub fail_commits: u32,
    pub commits: u32,
    pub aborts: u32,
    /// (tx id, type) of every request, in order.
    pub log: Vec<(u32, MsgType)>,
}

pub type Shared = Arc<Mutex<Store>>;

impl Store {
    pub fn new() -> Shared {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_string(),
            Node {
                value: Vec::new(),
                perms: vec![Perm::new(0, PermKind::None)],
            },
        );
        Arc::new(Mutex::new(Store {
            nodes,
            watches: Vec::new(),
            open_tx: Vec::new(),
            next_tx: 1,
            fail_commits: 0,
            commits: 0,
            aborts: 0,
            log: Vec::new(),
        }))
    }

    /// Creates or replaces a node (and missing parents) as dom0 would.
    pub fn put(&mut self, path: &str, value: &str, perms: &[Perm]) {
        self.create(path, 0);
        let n = self.nodes.get_mut(path).unwrap();
        n.value = value.as_bytes().to_vec();
        if !perms.is_empty() {
            n.perms = perms.to_vec();
        }
    }

    fn create(&mut self, abs: &str, creator: u16) {
        if self.nodes.contains_key(abs) {
            return;
        }
        let parent = parent_of(abs);
        self.create(&parent, creator);
        let mut perms = self.nodes[&parent].perms.clone();
        if creator != 0 {
            perms[0].domid = creator;
        }
        self.nodes.insert(
            abs.to_string(),
            Node {
                value: Vec::new(),
                perms,
            },
        );
    }

    fn can(&self, abs: &str, domid: u16, write: bool) -> bool {
        let Some(n) = self.nodes.get(abs) else {
            return true;
        };
        if domid == 0 || n.perms[0].domid == domid {
            return true;
        }
        let kind = n
            .perms
            .iter()
            .skip(1)
            .find(|p| p.domid == domid)
            .map(|p| p.kind)
            .unwrap_or(n.perms[0].kind);
        match kind {
            PermKind::Both => true,
            PermKind::Read => !write,
            PermKind::Write => write,
            PermKind::None => false,
        }
    }

    fn children(&self, abs: &str) -> Vec<String> {
        let prefix = if abs == "/" {
            "/".to_string()
        } else {
            format!("{abs}/")
        };
        self.nodes
            .keys()
            .filter(|k| k.len() > prefix.len() && k.starts_with(&prefix))
            .map(|k| k[prefix.len()..].to_string())
            .filter(|rest| !rest.contains('/'))
            .collect()
    }

    /// Events for a change of `abs` (and, for rm, of what was below it).
    fn fire(&self, abs: &str, subtree: bool) -> Vec<(Writer, Message)> {
        let mut out = Vec::new();
        for w in &self.watches {
            let hit = is_under(abs, &w.abs) || (subtree && is_under(&w.abs, abs));
            if !hit {
                continue;
            }
            let shown = if w.given.starts_with('/') {
                abs.to_string()
            } else {
                let home = format!("/local/domain/{}/", w.domid);
                abs.strip_prefix(&home).unwrap_or(abs).to_string()
            };
            let payload = wire::join_nul([shown.as_str(), w.token.as_str()]);
            out.push((
                w.out.clone(),
                Message::new(MsgType::WatchEvent, 0, 0, payload),
            ));
        }
        out
    }
}

fn parent_of(abs: &str) -> String {
    match abs.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => abs[..i].to_string(),
    }
}

fn is_under(p: &str, ancestor: &str) -> bool {
    p == ancestor
        || ancestor == "/"
        || (p.starts_with(ancestor) && p.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// Serves one connection until it closes.
pub fn serve(stream: UnixStream, store: Shared, domid: u16) {
    static NEXT_CONN: AtomicUsize = AtomicUsize::new(1);
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let out: Writer = Arc::new(Mutex::new(stream.try_clone().unwrap()));
    let mut input = stream;
    loop {
        let mut hdr = [0u8; HEADER_LEN];
        if input.read_exact(&mut hdr).is_err() {
            break;
        }
        let h = wire::Header::parse(&hdr).expect("client sent a bad header");
        let mut payload = vec![0u8; h.len as usize];
        if input.read_exact(&mut payload).is_err() {
            break;
        }
        let req = Message::new(h.ty, h.req_id, h.tx_id, payload);
        let sends = handle(&store, conn, domid, &out, &req);
        for (w, m) in sends {
            let _ = w.lock().unwrap().write_all(&m.encode().unwrap());
        }
    }
    store.lock().unwrap().watches.retain(|w| w.conn != conn);
}

fn err(req: &Message, name: &str) -> Message {
    Message::new(
        MsgType::Error,
        req.req_id,
        req.tx_id,
        wire::join_nul([name]),
    )
}

fn handle(
    store: &Shared,
    conn: usize,
    domid: u16,
    out: &Writer,
    req: &Message,
) -> Vec<(Writer, Message)> {
    let mut s = store.lock().unwrap();
    s.log.push((req.tx_id, req.ty));
    let parts = wire::split_nul(&req.payload);
    let arg = |i: usize| -> String {
        parts
            .get(i)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let abs = |p: &str| -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/local/domain/{domid}/{p}")
        }
    };
    let reply = |payload: Vec<u8>| Message::new(req.ty, req.req_id, req.tx_id, payload);
    let ok = || reply(b"OK\0".to_vec());
    let mut sends: Vec<(Writer, Message)> = Vec::new();

    if req.tx_id != 0 && !s.open_tx.contains(&req.tx_id) {
        return vec![(out.clone(), err(req, "ENOENT"))];
    }
    let msg = match req.ty {
        MsgType::Read | MsgType::Directory | MsgType::GetPerms => {
            let p = abs(&arg(0));
            match s.nodes.get(&p) {
                None => err(req, "ENOENT"),
                Some(_) if !s.can(&p, domid, false) => err(req, "EACCES"),
                Some(n) => match req.ty {
                    MsgType::Read => reply(n.value.clone()),
                    MsgType::Directory => reply(wire::join_nul(s.children(&p))),
                    _ => reply(wire::join_nul(n.perms.iter().map(|p| p.to_string()))),
                },
            }
        }
        MsgType::Write | MsgType::Mkdir => {
            let (path, value) = match req.payload.iter().position(|&b| b == 0) {
                Some(i) => (
                    String::from_utf8_lossy(&req.payload[..i]).into_owned(),
                    req.payload[i + 1..].to_vec(),
                ),
                None => (String::from_utf8_lossy(&req.payload).into_owned(), vec![]),
            };
            let p = abs(&path);
            let target = if s.nodes.contains_key(&p) {
                p.clone()
            } else {
                parent_of(&p)
            };
            if !s.can(&target, domid, true) {
                err(req, "EACCES")
            } else if req.ty == MsgType::Mkdir && s.nodes.contains_key(&p) {
                ok()
            } else {
                s.create(&p, domid);
                if req.ty == MsgType::Write {
                    s.nodes.get_mut(&p).unwrap().value = value;
                }
                sends.extend(s.fire(&p, false));
                ok()
            }
        }
        MsgType::Rm => {
            let p = abs(&arg(0));
            if p == "/" {
                err(req, "EINVAL")
            } else if !s.nodes.contains_key(&p) {
                if s.nodes.contains_key(&parent_of(&p)) {
                    ok()
                } else {
                    err(req, "ENOENT")
                }
            } else if !s.can(&p, domid, true) {
                err(req, "EACCES")
            } else {
                s.nodes.retain(|k, _| !is_under(k, &p));
                sends.extend(s.fire(&p, true));
                ok()
            }
        }
        MsgType::SetPerms => {
            let p = abs(&arg(0));
            let perms: Result<Vec<Perm>, _> =
                parts.iter().skip(1).map(|b| Perm::parse(b)).collect();
            match (s.nodes.contains_key(&p), perms) {
                (false, _) => err(req, "ENOENT"),
                (_, Err(_)) => err(req, "EINVAL"),
                (_, Ok(v)) if v.is_empty() => err(req, "EINVAL"),
                (true, Ok(_)) if domid != 0 && s.nodes[&p].perms[0].domid != domid => {
                    err(req, "EPERM")
                }
                (true, Ok(v)) => {
                    s.nodes.get_mut(&p).unwrap().perms = v;
                    sends.extend(s.fire(&p, false));
                    ok()
                }
            }
        }
        MsgType::Watch => {
            let (given, token) = (arg(0), arg(1));
            let p = abs(&given);
            s.watches.push(WatchReg {
                conn,
                given: given.clone(),
                abs: p,
                token: token.clone(),
                domid,
                out: out.clone(),
            });
            // Like xenstored: the ack, then the initial event for the watched path.
            sends.push((out.clone(), ok()));
            let ev = wire::join_nul([given.as_str(), token.as_str()]);
            sends.push((out.clone(), Message::new(MsgType::WatchEvent, 0, 0, ev)));
            return sends;
        }
        MsgType::Unwatch => {
            let (given, token) = (arg(0), arg(1));
            let before = s.watches.len();
            s.watches
                .retain(|w| !(w.conn == conn && w.given == given && w.token == token));
            if s.watches.len() == before {
                err(req, "ENOENT")
            } else {
                ok()
            }
        }
        MsgType::TransactionStart => {
            let id = s.next_tx;
            s.next_tx += 1;
            s.open_tx.push(id);
            reply(format!("{id}\0").into_bytes())
        }
        MsgType::TransactionEnd => {
            s.open_tx.retain(|&t| t != req.tx_id);
            match arg(0).as_str() {
                "T" if s.fail_commits > 0 => {
                    s.fail_commits -= 1;
                    err(req, "EAGAIN")
                }
                "T" => {
                    s.commits += 1;
                    ok()
                }
                "F" => {
                    s.aborts += 1;
                    ok()
                }
                _ => err(req, "EINVAL"),
            }
        }
        MsgType::GetDomainPath => reply(format!("/local/domain/{}\0", arg(0)).into_bytes()),
        _ => err(req, "ENOSYS"),
    };
    sends.push((out.clone(), msg));
    sends
}

/// A client connected to a fresh fake daemon thread, as domain `domid`.
pub fn pair(store: &Shared, domid: u16) -> XsClient<UnixStream> {
    let (a, b) = UnixStream::pair().unwrap();
    let st = store.clone();
    thread::spawn(move || serve(b, st, domid));
    XsClient::new(a)
}

/// A fake daemon listening on a fresh socket path (one thread per connection).
pub fn listen(store: &Shared, domid: u16) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "yasmin-xs-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let l = UnixListener::bind(&path).unwrap();
    let st = store.clone();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { break };
            let st = st.clone();
            thread::spawn(move || serve(c, st, domid));
        }
    });
    path
}

/// A peer that answers with exactly these bytes after reading one request, then closes
/// (`keep_open`: only once the client has closed its end).
pub fn scripted(replies: Vec<u8>, keep_open: bool) -> XsClient<UnixStream> {
    let (a, mut b) = UnixStream::pair().unwrap();
    thread::spawn(move || {
        let mut hdr = [0u8; HEADER_LEN];
        if b.read_exact(&mut hdr).is_ok() {
            let h = wire::Header::parse(&hdr).unwrap();
            let mut p = vec![0u8; h.len as usize];
            let _ = b.read_exact(&mut p);
            let _ = b.write_all(&replies);
        }
        if keep_open {
            let _ = io::copy(&mut b, &mut io::sink());
        }
    });
    XsClient::new(a)
}
