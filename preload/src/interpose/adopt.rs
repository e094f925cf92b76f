//! At load: takes back what the library of the image before `exec` left in this process
//! (see `inherit.rs`): dual listeners and vsock connections made for TCP sockets.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use libc::c_int;

use super::listen::sock_name;
use super::sys::{self, KeepErrno};
use crate::addr::{self, V4};
use crate::inherit;
use crate::map;
use crate::opts::EmuOpts;
use crate::route;
use crate::source;
use crate::table::{self, Entry, Hidden, Listener, Vsock};

/// Scans our descriptors and records the inherited ones we recognise.
pub fn adopt_inherited() {
    let _e = KeepErrno::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let mut vsock_conns = Vec::new();
    // One listener's numbers (dups) share its hidden listeners, closed once.
    let mut seen: Vec<Arc<Hidden>> = Vec::new();
    for ent in dir.flatten() {
        let Some(fd) = ent
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<c_int>().ok())
        else {
            continue;
        };
        let Ok(target) = std::fs::read_link(ent.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target == "anon_inode:[eventpoll]" {
            adopt_listener(fd, &mut seen);
        } else if target.starts_with("socket:") && is_connected_vsock(fd) {
            vsock_conns.push(fd);
        }
    }
    if !vsock_conns.is_empty() {
        adopt_connections(&vsock_conns);
    }
}

fn domain(fd: c_int) -> Option<c_int> {
    sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).ok()
}

fn listening(fd: c_int) -> bool {
    sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Ok(1)
}

fn stream(fd: c_int) -> bool {
    sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) == Ok(libc::SOCK_STREAM)
}

/// Whether `m` is still the file it was registered as, under the same number.
fn same_file(m: &inherit::Member) -> bool {
    table::ident(m.tfd).is_some_and(|(_, ino)| ino == m.ino)
}

/// Records the epoll instance `epfd` as a dual listener if it is one (`seen`: the
/// hidden listeners of those found so far).
fn adopt_listener(epfd: c_int, seen: &mut Vec<Arc<Hidden>>) {
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")) else {
        return;
    };
    let Some((t, v)) = inherit::dual_listener(&inherit::epoll_members(&info)) else {
        return;
    };
    if !(same_file(&t) && same_file(&v)) {
        return;
    }
    let (tcp, vsock) = (t.tfd, v.tfd);
    let family = domain(tcp);
    let tcp_ok =
        matches!(family, Some(libc::AF_INET | libc::AF_INET6)) && stream(tcp) && listening(tcp);
    let vsock_ok = domain(vsock) == Some(libc::AF_VSOCK) && stream(vsock) && listening(vsock);
    if !(tcp_ok && vsock_ok) {
        return;
    }
    let (Some(here), Ok((_, vport))) = (sock_name(tcp), sys::vsock_name(vsock, false)) else {
        return;
    };
    let port = here.port();
    if u32::from(port) != vport {
        return;
    }
    let local_ip = match here {
        addr::Inet::V4(v) | addr::Inet::Mapped(v) if v.ip != [0; 4] => Some(v.ip),
        _ => None,
    };
    let hidden = match seen.iter().find(|h| (h.tcp, h.vsock) == (tcp, vsock)) {
        Some(h) => h.clone(),
        None => {
            let h = Arc::new(Hidden {
                tcp,
                vsock,
                turn: AtomicU32::new(0),
            });
            seen.push(h.clone());
            h
        }
    };
    let listener = Listener {
        hidden: hidden.clone(),
        family: family.unwrap_or(libc::AF_INET),
        local_ip,
        port,
        emu: EmuOpts::default(),
        buf: Default::default(),
        inherit: Vec::new(),
    };
    table::insert(epfd, Entry::Listener(listener));
    sys::follow_cloexec(&hidden);
    plog!("inherited listener on fd {epfd}: tcp + vsock port {port}");
}

fn is_connected_vsock(fd: c_int) -> bool {
    domain(fd) == Some(libc::AF_VSOCK) && stream(fd) && sys::vsock_name(fd, true).is_ok()
}

/// Records the connected vsock sockets `fds` whose peer is a domain the map knows as
/// TCP connections (AF_INET), as they were shown before the exec.
fn adopt_connections(fds: &[c_int]) {
    let snap = source::current();
    let view = snap.view();
    for &fd in fds {
        let Ok((cid, port)) = sys::vsock_name(fd, true) else {
            continue;
        };
        let Some(ip) = map::domid_of(cid).and_then(|d| view.ip_of(d)) else {
            continue; // not a co-located guest we know: a vsock socket of the program's own
        };
        let peer = V4 {
            ip,
            port: addr::fold_port(port),
        };
        let v = Vsock {
            family: libc::AF_INET,
            peer,
            local_ip: route::local_ip(None, &view, ip),
            emu: EmuOpts::default(),
            buf: Default::default(),
        };
        table::insert(fd, Entry::Vsock(v));
        plog!("inherited connection on fd {fd}: vsock CID {cid} port {port} as {peer}");
    }
}
