//! The per-descriptor table: what we know about each descriptor we manage.
//!
//! A lock-free bitmap says which descriptor numbers have an entry, so the interposed
//! calls on every other descriptor (most `close()`s, all files and pipes, UDP, unix
//! sockets) cost one atomic load and never take the lock. The table is process memory:
//! a `fork()` child inherits it along with the descriptors (see `sync.rs` for the lock).
//!
//! An entry remembers the identity (device, inode) of the file it describes, so an entry
//! left behind by a descriptor closed behind our back (`fclose()` of an `fdopen()`ed
//! socket, a raw `close` system call) is noticed and dropped instead of being applied to
//! whatever file reuses the number.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use libc::c_int;

use crate::addr::{Inet, V4};
use crate::opts::{BufReq, EmuOpts};
use crate::real::real;
use crate::sync::ForkMutex;

/// Descriptors at or above this are never managed.
pub const MAX_FD: usize = 1 << 20;

static BITS: [AtomicU64; MAX_FD / 64] = [const { AtomicU64::new(0) }; MAX_FD / 64];

fn bit(fd: c_int) -> Option<(usize, u64)> {
    let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FD)?;
    Some((i / 64, 1u64 << (i % 64)))
}

/// Whether `fd` has an entry (cheap, lock-free).
pub fn tracked(fd: c_int) -> bool {
    bit(fd).is_some_and(|(w, m)| BITS[w].load(Ordering::Acquire) & m != 0)
}

fn set_bit(fd: c_int, on: bool) {
    if let Some((w, m)) = bit(fd) {
        if on {
            BITS[w].fetch_or(m, Ordering::Release);
        } else {
            BITS[w].fetch_and(!m, Ordering::Release);
        }
    }
}

/// An option the program set, replayed on a replacement socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOpt {
    pub level: c_int,
    pub opt: c_int,
    pub val: Vec<u8>,
}

/// Records `o`, replacing an earlier value of the same option.
pub fn remember(list: &mut Vec<SetOpt>, o: SetOpt) {
    match list
        .iter_mut()
        .find(|x| (x.level, x.opt) == (o.level, o.opt))
    {
        Some(x) => *x = o,
        None => list.push(o),
    }
}

/// A TCP socket created through us that has neither connected nor listened yet.
#[derive(Clone, Debug)]
pub struct Cand {
    pub family: c_int,
    /// Another descriptor refers to the same socket (dup): replacing the socket under
    /// one number would split them, so it stays TCP.
    pub shared: bool,
    /// `SOL_SOCKET` options, replayed on the vsock socket.
    pub kopts: Vec<SetOpt>,
    pub emu: EmuOpts,
    pub buf: BufReq,
    /// An option with no vsock meaning was set: the socket stays TCP.
    pub tcp_only: Option<String>,
    /// Address given to a successful `bind()`.
    pub bound: Option<Inet>,
    /// The program's epoll registrations of this descriptor (epfd, events, data),
    /// re-made on the replacement file.
    pub epoll: Vec<(c_int, u32, u64)>,
}

impl Cand {
    pub fn new(family: c_int) -> Cand {
        Cand {
            family,
            shared: false,
            kopts: Vec::new(),
            emu: EmuOpts::default(),
            buf: BufReq::default(),
            tcp_only: None,
            bound: None,
            epoll: Vec::new(),
        }
    }
}

/// A descriptor that is really an AF_VSOCK stream socket.
#[derive(Clone, Debug)]
pub struct Vsock {
    /// The family the program asked for (addresses are shown in it).
    pub family: c_int,
    /// The peer as the program sees it.
    pub peer: V4,
    /// Our address as the program sees it.
    pub local_ip: [u8; 4],
    pub emu: EmuOpts,
    pub buf: BufReq,
}

/// The hidden descriptors of a dual listener; closed when the last descriptor number
/// referring to the listener (dups included) is closed.
#[derive(Debug)]
pub struct Hidden {
    pub tcp: c_int,
    pub vsock: c_int,
    /// Which listener `accept` tries first (alternates, so neither starves).
    pub turn: AtomicU32,
}

impl Drop for Hidden {
    fn drop(&mut self) {
        let r = real();
        // SAFETY: our own descriptors, closed exactly once (here); negative ones (a
        // unit test's) are none.
        unsafe {
            let e = *libc::__errno_location();
            for fd in [self.tcp, self.vsock] {
                if fd >= 0 {
                    (r.close)(fd);
                }
            }
            *libc::__errno_location() = e;
        }
    }
}

/// A dual TCP + vsock listener: the program's descriptor is an epoll instance over both.
#[derive(Clone, Debug)]
pub struct Listener {
    pub hidden: Arc<Hidden>,
    pub family: c_int,
    /// The address bound, if a specific one.
    pub local_ip: Option<[u8; 4]>,
    pub port: u16,
    /// Emulated options, inherited by accepted vsock connections.
    pub emu: EmuOpts,
    pub buf: BufReq,
    /// `SOL_SOCKET` options replayed on accepted vsock connections.
    pub inherit: Vec<SetOpt>,
}

#[derive(Clone, Debug)]
pub enum Entry {
    Cand(Cand),
    Vsock(Vsock),
    Listener(Listener),
}

/// (device, inode) of the file behind `fd`.
pub fn ident(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: fstat into a zeroed stat buffer.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 {
            Some((st.st_dev, st.st_ino))
        } else {
            None
        }
    }
}

struct Slot {
    entry: Entry,
    ident: Option<(u64, u64)>,
}

pub struct Table {
    slots: BTreeMap<c_int, Slot>,
}

pub static TABLE: ForkMutex<Table> = ForkMutex::new(Table {
    slots: BTreeMap::new(),
});

impl Table {
    /// Sets the entry of `fd` (its file identity is taken now); returns the old one.
    pub fn insert(&mut self, fd: c_int, entry: Entry) -> Option<Entry> {
        bit(fd)?;
        let ident = ident(fd);
        set_bit(fd, true);
        self.slots
            .insert(fd, Slot { entry, ident })
            .map(|s| s.entry)
    }

    pub fn remove(&mut self, fd: c_int) -> Option<Entry> {
        set_bit(fd, false);
        self.slots.remove(&fd).map(|s| s.entry)
    }

    /// The entry of `fd` if it still describes the file behind `fd`.
    pub fn get_mut(&mut self, fd: c_int) -> Option<&mut Entry> {
        let stale = match self.slots.get(&fd) {
            None => return None,
            Some(s) => s.ident.is_none() || s.ident != ident(fd),
        };
        if stale {
            // Dropped outside the caller's view; a stale listener's hidden
            // descriptors are ours and are closed here.
            self.remove(fd);
            return None;
        }
        self.slots.get_mut(&fd).map(|s| &mut s.entry)
    }
}

/// A copy of the entry of `fd`, if it has a valid one.
pub fn get(fd: c_int) -> Option<Entry> {
    if !tracked(fd) {
        return None;
    }
    TABLE.lock().get_mut(fd).cloned()
}

/// Runs `f` on the entry of `fd` under the lock.
pub fn update<R>(fd: c_int, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
    if !tracked(fd) {
        return None;
    }
    TABLE.lock().get_mut(fd).map(f)
}

/// Runs `f` with the table locked.
pub fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    f(&mut TABLE.lock())
}

/// The descriptor numbers of the dual listener whose hidden listeners are `h`.
pub fn listener_numbers(h: &Hidden) -> Vec<c_int> {
    TABLE
        .lock()
        .slots
        .iter()
        .filter(|(_, s)| matches!(&s.entry, Entry::Listener(l) if core::ptr::eq(&*l.hidden, h)))
        .map(|(&fd, _)| fd)
        .collect()
}

/// Sets the entry of `fd`.
pub fn insert(fd: c_int, entry: Entry) {
    let old = TABLE.lock().insert(fd, entry);
    drop(old);
}

/// Forgets `fd` (a stale entry, or a close).
pub fn remove(fd: c_int) {
    if tracked(fd) {
        let old = TABLE.lock().remove(fd);
        drop(old);
    }
}

/// `newfd` now refers to the same file as `oldfd` (dup family): copy the entry, or drop
/// a stale one at `newfd`.
pub fn dup(oldfd: c_int, newfd: c_int) {
    if !tracked(oldfd) && !tracked(newfd) {
        return;
    }
    let old_entry;
    {
        let mut t = TABLE.lock();
        let src = t.get_mut(oldfd).map(|e| {
            if let Entry::Cand(c) = e {
                c.shared = true;
            }
            e.clone()
        });
        old_entry = match src {
            Some(e) => t.insert(newfd, e),
            None => t.remove(newfd),
        };
    }
    drop(old_entry);
}
