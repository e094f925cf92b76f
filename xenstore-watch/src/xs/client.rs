//! A blocking XenStore client over any [`Transport`].

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use super::error::{Errno, Error, Result};
use super::perms::{self, Perm};
use super::transport::{Transport, XsTransport};
use super::wire::{self, Message, MsgType, HEADER_LEN, PAYLOAD_MAX};

/// How often [`XsClient::transaction`] retries a transaction that ended in `EAGAIN`.
pub const DEFAULT_TX_RETRIES: u32 = 32;

/// A watch firing: the path that changed (under the watched one) and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

impl WatchEvent {
    /// Parses an `XS_WATCH_EVENT` payload `path\0token\0` (later fields are ignored).
    pub fn parse(payload: &[u8]) -> Option<WatchEvent> {
        let parts = wire::split_nul(payload);
        match parts.as_slice() {
            [path, token, ..] => Some(WatchEvent {
                path: lossy(path),
                token: lossy(token),
            }),
            _ => None,
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_str(what: &str, s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::InvalidArgument(format!("{what} {s:?} contains NUL")));
    }
    Ok(())
}

/// A connection to xenstored.
///
/// One request is outstanding at a time. Watch events that arrive while waiting for a
/// reply are queued and handed out by [`XsClient::wait_event`].
#[derive(Debug)]
pub struct XsClient<T: Transport> {
    io: T,
    rx: Vec<u8>,
    events: VecDeque<WatchEvent>,
    next_req_id: u32,
}

impl XsClient<XsTransport> {
    /// Connects through the first transport that works: `$XENSTORED_PATH`,
    /// `/run/xenstored/socket`, `/var/run/xenstored/socket`, `/dev/xen/xenbus`.
    pub fn open() -> Result<Self> {
        XsTransport::open().map(XsClient::new)
    }
}

impl<T: Transport> XsClient<T> {
    /// A client over an already connected transport.
    pub fn new(io: T) -> Self {
        XsClient {
            io,
            rx: Vec::new(),
            events: VecDeque::new(),
            next_req_id: 1,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.io
    }

    /// Gives the transport back (queued events and unread bytes are dropped).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Watch events received and not yet taken by [`XsClient::wait_event`].
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Sends one request and returns the payload of its reply; `XS_ERROR` becomes
    /// [`Error::Xs`]. Watch events read on the way are queued.
    pub fn request(&mut self, ty: MsgType, tx_id: u32, payload: Vec<u8>) -> Result<Vec<u8>> {
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1);
        let bytes = Message::new(ty, req_id, tx_id, payload)
            .encode()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        // One buffer, one write_all: the xenbus device takes whole messages.
        self.io.write_all(&bytes)?;
        self.io.flush()?;
        loop {
            let Some(msg) = self.recv(None)? else {
                continue;
            };
            match msg.ty {
                MsgType::WatchEvent => self.queue_event(&msg),
                _ if msg.req_id != req_id => {
                    return Err(Error::Protocol(format!(
                        "reply with request id {} while waiting for {req_id} ({:?})",
                        msg.req_id, msg.ty
                    )))
                }
                MsgType::Error => {
                    let name = lossy(wire::nul_str(&msg.payload));
                    return Err(Error::Xs(Errno::from_name(&name)));
                }
                t if t == ty => return Ok(msg.payload),
                t => {
                    return Err(Error::Protocol(format!(
                        "reply of type {t:?} to a {ty:?} request"
                    )))
                }
            }
        }
    }

    fn queue_event(&mut self, msg: &Message) {
        // A malformed event cannot be delivered to anyone; it is dropped.
        if let Some(ev) = WatchEvent::parse(&msg.payload) {
            self.events.push_back(ev);
        }
    }

    /// Next whole message; `Ok(None)` once `deadline` passes (never without one).
    fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Message>> {
        loop {
            match Message::decode_prefix(&self.rx) {
                Ok((msg, used)) => {
                    self.rx.drain(..used);
                    return Ok(Some(msg));
                }
                Err(e) if e.is_incomplete() => {}
                Err(e) => return Err(Error::Protocol(e.to_string())),
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if !self.io.wait_readable(Some(left))? {
                    return Ok(None);
                }
            }
            let mut chunk = [0u8; HEADER_LEN + PAYLOAD_MAX];
            let n = loop {
                match self.io.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if n == 0 {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xenstore connection closed",
                )));
            }
            self.rx.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next watch event: a queued one, or one that arrives within `timeout`
    /// (`None`: wait without limit). `Ok(None)` when the timeout passes.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        // No timeout, or one too large to add to the clock, is no limit.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let Some(msg) = self.recv(deadline)? else {
                return Ok(None);
            };
            match msg.ty {
                MsgType::WatchEvent => {
                    if let Some(ev) = WatchEvent::parse(&msg.payload) {
                        return Ok(Some(ev));
                    }
                }
                t => {
                    return Err(Error::Protocol(format!(
                        "unsolicited message of type {t:?} (request id {})",
                        msg.req_id
                    )))
                }
            }
        }
    }

    fn ok_reply(reply: &[u8]) -> Result<()> {
        // xenstored answers "OK\0"; the content carries no information.
        let _ = reply;
        Ok(())
    }

    fn do_read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        check_str("path", path)?;
        // The reply is the value's bytes exactly, without a terminator.
        self.request(MsgType::Read, tx, wire::join_nul([path]))
    }

    fn do_write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        check_str("path", path)?;
        let r = self.request(MsgType::Write, tx, wire::write_payload(path, value))?;
        Self::ok_reply(&r)
    }

    fn do_directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        check_str("path", path)?;
        let r = self.request(MsgType::Directory, tx, wire::join_nul([path]))?;
        Ok(wire::split_nul(&r).into_iter().map(lossy).collect())
    }

    fn do_simple(&mut self, ty: MsgType, tx: u32, path: &str) -> Result<()> {
        check_str("path", path)?;
        let r = self.request(ty, tx, wire::join_nul([path]))?;
        Self::ok_reply(&r)
    }

    fn do_get_perms(&mut self, tx: u32, path: &str) -> Result<Vec<Perm>> {
        check_str("path", path)?;
        let r = self.request(MsgType::GetPerms, tx, wire::join_nul([path]))?;
        perms::parse_perms(&r).map_err(|e| Error::Protocol(e.to_string()))
    }

    fn do_set_perms(&mut self, tx: u32, path: &str, perms: &[Perm]) -> Result<()> {
        check_str("path", path)?;
        if perms.is_empty() {
            return Err(Error::InvalidArgument(
                "set_perms needs at least the owner entry".into(),
            ));
        }
        let r = self.request(MsgType::SetPerms, tx, perms::set_perms_payload(path, perms))?;
        Self::ok_reply(&r)
    }

    fn do_exists(&mut self, tx: u32, path: &str) -> Result<bool> {
        match self.do_read(tx, path) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `XS_READ`: the node's value, byte for byte.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.do_read(0, path)
    }

    /// `XS_READ`, the value as UTF-8 (invalid UTF-8 is a protocol error).
    pub fn read_string(&mut self, path: &str) -> Result<String> {
        let v = self.read(path)?;
        String::from_utf8(v).map_err(|_| Error::Protocol(format!("{path}: value is not UTF-8")))
    }

    /// `XS_WRITE`: creates the node (and missing parents) or replaces its value.
    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.do_write(0, path, value.as_ref())
    }

    /// `XS_DIRECTORY`: the names of the node's children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.do_directory(0, path)
    }

    /// `XS_MKDIR`: creates the node with an empty value (no error if it exists).
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.do_simple(MsgType::Mkdir, 0, path)
    }

    /// `XS_RM`: removes the node and everything below it.
    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.do_simple(MsgType::Rm, 0, path)
    }

    /// `XS_GET_PERMS`: owner entry first, then the per-domain grants.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>> {
        self.do_get_perms(0, path)
    }

    /// `XS_SET_PERMS`: `perms[0]` is the owner and the default access.
    pub fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()> {
        self.do_set_perms(0, path, perms)
    }

    /// Whether the node can be read (`ENOENT` is `false`, other errors are errors).
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        self.do_exists(0, path)
    }

    /// `XS_WATCH`: events for `path` and everything below it carry `token`. xenstored
    /// fires one event for `path` itself right after the watch is set.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        check_str("path", path)?;
        check_str("token", token)?;
        let r = self.request(MsgType::Watch, 0, wire::join_nul([path, token]))?;
        Self::ok_reply(&r)
    }

    /// `XS_UNWATCH`: removes the watch; events already queued stay queued.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<()> {
        check_str("path", path)?;
        check_str("token", token)?;
        let r = self.request(MsgType::Unwatch, 0, wire::join_nul([path, token]))?;
        Self::ok_reply(&r)
    }

    /// `XS_GET_DOMAIN_PATH`: the home of a domain (`/local/domain/<domid>`).
    pub fn get_domain_path(&mut self, domid: u32) -> Result<String> {
        let r = self.request(
            MsgType::GetDomainPath,
            0,
            wire::join_nul([domid.to_string()]),
        )?;
        Ok(lossy(wire::nul_str(&r)))
    }

    /// `XS_TRANSACTION_START`: a new transaction id.
    pub fn transaction_start(&mut self) -> Result<u32> {
        let r = self.request(MsgType::TransactionStart, 0, vec![0])?;
        let s = lossy(wire::nul_str(&r));
        match s.parse::<u32>() {
            Ok(id) if id != 0 => Ok(id),
            _ => Err(Error::Protocol(format!("bad transaction id {s:?}"))),
        }
    }

    /// `XS_TRANSACTION_END`: commits (`commit`) or aborts. A commit that conflicted with
    /// another writer fails with `EAGAIN` ([`Error::is_again`]).
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<()> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        let r = self.request(MsgType::TransactionEnd, tx, arg.to_vec())?;
        Self::ok_reply(&r)
    }

    /// Runs `f` in a transaction and commits it, starting again (up to
    /// [`DEFAULT_TX_RETRIES`] times) while xenstored answers `EAGAIN`. An error from `f`
    /// aborts the transaction and is returned (an `EAGAIN` from `f` is retried too).
    pub fn transaction<R>(
        &mut self,
        f: impl FnMut(&mut Transaction<'_, T>) -> Result<R>,
    ) -> Result<R> {
        self.transaction_with_retries(DEFAULT_TX_RETRIES, f)
    }

    /// [`XsClient::transaction`] with a chosen number of retries.
    pub fn transaction_with_retries<R>(
        &mut self,
        retries: u32,
        mut f: impl FnMut(&mut Transaction<'_, T>) -> Result<R>,
    ) -> Result<R> {
        let mut attempt = 0;
        loop {
            let id = self.transaction_start()?;
            let result = f(&mut Transaction { client: self, id });
            let outcome = match result {
                Ok(v) => self.transaction_end(id, true).map(|()| v),
                Err(e) => {
                    // The abort's own failure would hide the real error.
                    let _ = self.transaction_end(id, false);
                    Err(e)
                }
            };
            match outcome {
                Err(e) if e.is_again() && attempt < retries => attempt += 1,
                other => return other,
            }
        }
    }
}

/// Operations inside a transaction (see [`XsClient::transaction`]).
pub struct Transaction<'a, T: Transport> {
    client: &'a mut XsClient<T>,
    id: u32,
}

impl<T: Transport> Transaction<'_, T> {
    /// The transaction id.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.client.do_read(self.id, path)
    }

    pub fn write(&mut self, path: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.client.do_write(self.id, path, value.as_ref())
    }

    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.client.do_directory(self.id, path)
    }

    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        self.client.do_simple(MsgType::Mkdir, self.id, path)
    }

    pub fn rm(&mut self, path: &str) -> Result<()> {
        self.client.do_simple(MsgType::Rm, self.id, path)
    }

    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>> {
        self.client.do_get_perms(self.id, path)
    }

    pub fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<()> {
        self.client.do_set_perms(self.id, path, perms)
    }

    pub fn exists(&mut self, path: &str) -> Result<bool> {
        self.client.do_exists(self.id, path)
    }
}
