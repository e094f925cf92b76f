//! Where the map comes from, and the cache that keeps it at most one second old.
//!
//! Read on demand (connect, listen, accept of a vsock connection), never by a thread of
//! our own: if the cached view is older than [`REFRESH`], the calling thread reloads it
//! (other threads meanwhile use the previous view, if there is one). A failed reload
//! keeps the previous map, so a xenstored restart does not send everything back to TCP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xenstore_watch::control::paths::IPMAP_DIR;
use xenstore_watch::xs::{XsClient, XsTransport};

use crate::config::config;
use crate::map::{self, IpMap, View};
use crate::sync::ForkMutex;

/// Maximum age of the map.
pub const REFRESH: Duration = Duration::from_secs(1);
/// A reload taking longer than this is presumed dead (its thread hung, or forked away).
const RELOAD_STALE: Duration = Duration::from_secs(10);
/// XenStore socket timeouts (dom0); the guest device cannot time out.
const XS_TIMEOUT: Duration = Duration::from_secs(2);

/// What we know, as of one reload.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub map: Arc<IpMap>,
    pub self_domid: Option<u16>,
    pub local: Arc<Vec<[u8; 4]>>,
}

impl Snapshot {
    pub fn view(&self) -> View<'_> {
        View {
            map: &self.map,
            self_domid: self.self_domid,
            local: &self.local,
        }
    }
}

pub struct Cache {
    snap: Option<Snapshot>,
    at: Option<Instant>,
    /// (pid, start) of a reload in progress.
    busy: Option<(u32, Instant)>,
    /// Description of the last map logged, to log only changes.
    last_desc: String,
}

pub static CACHE: ForkMutex<Cache> = ForkMutex::new(Cache {
    snap: None,
    at: None,
    busy: None,
    last_desc: String::new(),
});

/// The current view, reloaded first if it is too old.
pub fn current() -> Snapshot {
    let now = Instant::now();
    let pid = std::process::id();
    let prev = {
        let mut c = CACHE.lock();
        let fresh = c.at.is_some_and(|at| now.duration_since(at) < REFRESH);
        let reloading = c
            .busy
            .is_some_and(|(p, t)| p == pid && now.duration_since(t) < RELOAD_STALE);
        // While another thread reloads, use the previous view; with none yet, load too
        // (a duplicate load is harmless, an empty map would send the connection to TCP).
        if fresh || (reloading && c.snap.is_some()) {
            return c.snap.clone().unwrap_or_default();
        }
        c.busy = Some((pid, now));
        c.snap.clone()
    };
    let (snap, desc) = load(prev.as_ref());
    let mut c = CACHE.lock();
    c.snap = Some(snap.clone());
    c.at = Some(Instant::now());
    c.busy = None;
    if desc != c.last_desc {
        plog!("{desc}");
        c.last_desc = desc;
    }
    snap
}

fn load(prev: Option<&Snapshot>) -> (Snapshot, String) {
    let cfg = config();
    let mut errors = Vec::new();
    let mut xs: Option<XsClient<XsTransport>> = None;
    let mut xs_error = None;
    let (map, from) = if let Some(m) = &cfg.map_env {
        (Some(m.clone()), "YASMIN_PRELOAD_MAP".to_string())
    } else if let Some(p) = &cfg.map_file {
        match std::fs::read_to_string(p) {
            Ok(t) => (
                Some(IpMap::parse_file(&t, &mut errors)),
                p.display().to_string(),
            ),
            Err(e) => {
                errors.push(format!("{}: {e}", p.display()));
                (None, p.display().to_string())
            }
        }
    } else {
        match open_xs().and_then(|mut c| {
            let m = read_ipmap(&mut c, &mut errors);
            xs = Some(c);
            m
        }) {
            Ok(m) => (Some(m), "xenstore".to_string()),
            Err(e) => {
                xs_error = Some(e);
                (None, "xenstore".to_string())
            }
        }
    };
    let self_domid = cfg.self_domid.or_else(|| {
        if xs.is_none() && xs_error.is_none() {
            xs = open_xs().ok();
        }
        let c = xs.as_mut()?;
        map::parse_domid(&c.read("domid").ok()?)
    });
    let kept = map.is_none();
    let map = match (map, prev) {
        (Some(m), _) => Arc::new(m),
        (None, Some(p)) => p.map.clone(),
        (None, None) => Arc::new(IpMap::new()),
    };
    let local = Arc::new(local_ipv4());
    let snap = Snapshot {
        map,
        self_domid,
        local,
    };
    let mut desc = format!(
        "map from {from}: {} entr{}, own domid {}",
        snap.map.len(),
        if snap.map.len() == 1 { "y" } else { "ies" },
        match snap.view().own_domid() {
            Some(d) => d.to_string(),
            None => "unknown".into(),
        }
    );
    if let Some(e) = xs_error {
        desc.push_str(&format!(" (xenstore: {e})"));
    }
    if kept && prev.is_some() {
        desc.push_str(" (kept the previous map)");
    }
    for e in errors {
        desc.push_str(&format!("; {e}"));
    }
    (snap, desc)
}

fn open_xs() -> Result<XsClient<XsTransport>, String> {
    let c = XsClient::open().map_err(|e| e.to_string())?;
    if let XsTransport::Socket(s, _) = c.transport() {
        let _ = s.set_read_timeout(Some(XS_TIMEOUT));
        let _ = s.set_write_timeout(Some(XS_TIMEOUT));
    }
    Ok(c)
}

fn read_ipmap(c: &mut XsClient<XsTransport>, errors: &mut Vec<String>) -> Result<IpMap, String> {
    let names = match c.directory(IPMAP_DIR) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(format!("{IPMAP_DIR}: {e}")),
    };
    let mut nodes = Vec::with_capacity(names.len());
    for n in names {
        match c.read(&format!("{IPMAP_DIR}/{n}")) {
            Ok(v) => nodes.push((n, v)),
            // Removed between the listing and the read.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(format!("{IPMAP_DIR}/{n}: {e}")),
        }
    }
    Ok(IpMap::from_xenstore(nodes, errors))
}

/// The IPv4 addresses of our interfaces.
fn local_ipv4() -> Vec<[u8; 4]> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs/freeifaddrs as documented; each ifa_addr checked before use.
    unsafe {
        let mut head: *mut libc::ifaddrs = core::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && c_int_from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = sin.sin_addr.s_addr.to_ne_bytes();
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

fn c_int_from(f: libc::sa_family_t) -> libc::c_int {
    libc::c_int::from(f)
}
