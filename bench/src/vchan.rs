// SPDX-License-Identifier: GPL-2.0
//! Xen libvchan as a byte stream (the `vchan` feature): guest to guest through a pair of
//! shared-memory rings and one event channel, with no socket and no relay in between.
//! Xen's static libraries are linked by `build.rs` (Debian 12 `libxen-dev`).
//!
//! Addresses are `vchan:DOMID:BASE` (see [`crate::net::Addr::Vchan`]). libxenvchan
//! serves exactly one client per `libxenvchan_server_init`, so the [`Listener`] opens one
//! endpoint per connection, at `BASE/<seq>` (seq = 0, 1, 2...), and publishes the seq of
//! the one waiting for a client in `BASE/current`; a client reads `BASE/current` and
//! connects to that endpoint. The next endpoint is opened as soon as a client has taken
//! the current one, before that connection is handed out, so that the next client finds
//! it at once. The peer domain must be able to read `BASE/current`, which inherits the
//! permissions of `BASE`: whoever sets the benchmark up gives the client domain read
//! access to `BASE` beforehand (e.g. `yasmin-xs set-perms BASE n<server> r<client>`).
//! libxenvchan sets the permissions of its own nodes (`ring-ref`, `event-channel`).
//!
//! I/O: libxenvchan is only ever asked to do what it can do at once: `libxenvchan_read`
//! with at most `libxenvchan_data_ready` bytes, `libxenvchan_write` with at most
//! `libxenvchan_buffer_space` bytes (both of which ask the peer for a notification). The
//! library's `blocking` flag is left alone; in Xen 4.17 `libxenvchan_server_init` and
//! `libxenvchan_client_init` never initialise it (it is whatever `malloc` left), and
//! with these sizes its value makes no difference. When nothing can be done, one thread
//! at a time waits in `poll(2)` on the event channel (`libxenvchan_fd_for_select`) with
//! the stream's timeout, consumes the event with `libxenvchan_wait` (which also unmasks
//! the port) and wakes the others; everyone then checks again. EOF is
//! `libxenvchan_is_open() == 0` with no data left.
//!
//! The benchmark runs one thread per direction, so a [`Stream`] can be cloned: clones
//! share the libxenvchan handle, whose calls are serialised by a mutex (they never wait
//! inside the library). Its timeout is shared by the clones, as a socket's is.

use crate::net::{vchan_path_fits, vchan_ring_sizes, DEFAULT_VCHAN_RING};
use anyhow::{anyhow, bail, Context, Result};
use std::cell::RefCell;
use std::ffi::{c_int, c_uint, CStr, CString};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The C interface: only the functions used here. Every struct stays opaque.
mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
    use std::marker::{PhantomData, PhantomPinned};

    /// `struct libxenvchan`, only ever behind a pointer.
    #[repr(C)]
    pub struct Libxenvchan {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `struct xs_handle`, only ever behind a pointer.
    #[repr(C)]
    pub struct XsHandle {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `struct xentoollog_logger`; always NULL here (libxenvchan then logs errors to
    /// stderr).
    #[repr(C)]
    pub struct XentoollogLogger {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `xs_transaction_t` (uint32_t); `XBT_NULL` is no transaction.
    pub type XsTransaction = u32;
    pub const XBT_NULL: XsTransaction = 0;

    extern "C" {
        // <libxenvchan.h>
        pub fn libxenvchan_server_init(
            logger: *mut XentoollogLogger,
            domain: c_int,
            xs_path: *const c_char,
            read_min: usize,
            write_min: usize,
        ) -> *mut Libxenvchan;
        pub fn libxenvchan_client_init(
            logger: *mut XentoollogLogger,
            domain: c_int,
            xs_path: *const c_char,
        ) -> *mut Libxenvchan;
        pub fn libxenvchan_close(ctrl: *mut Libxenvchan);
        pub fn libxenvchan_read(ctrl: *mut Libxenvchan, data: *mut c_void, size: usize) -> c_int;
        pub fn libxenvchan_write(ctrl: *mut Libxenvchan, data: *const c_void, size: usize)
            -> c_int;
        pub fn libxenvchan_wait(ctrl: *mut Libxenvchan) -> c_int;
        pub fn libxenvchan_fd_for_select(ctrl: *mut Libxenvchan) -> c_int;
        pub fn libxenvchan_is_open(ctrl: *mut Libxenvchan) -> c_int;
        pub fn libxenvchan_data_ready(ctrl: *mut Libxenvchan) -> c_int;
        pub fn libxenvchan_buffer_space(ctrl: *mut Libxenvchan) -> c_int;

        // <xenstore.h>
        pub fn xs_open(flags: c_ulong) -> *mut XsHandle;
        pub fn xs_close(xsh: *mut XsHandle);
        pub fn xs_read(
            h: *mut XsHandle,
            t: XsTransaction,
            path: *const c_char,
            len: *mut c_uint,
        ) -> *mut c_void;
        pub fn xs_write(
            h: *mut XsHandle,
            t: XsTransaction,
            path: *const c_char,
            data: *const c_void,
            len: c_uint,
        ) -> bool;
        pub fn xs_rm(h: *mut XsHandle, t: XsTransaction, path: *const c_char) -> bool;
    }
}

/// Device nodes libxenvchan opens (event channels; grant sharing for the server, grant
/// mapping for the client).
const EVTCHN_DEV: &str = "/dev/xen/evtchn";
const GNTALLOC_DEV: &str = "/dev/xen/gntalloc";
const GNTDEV_DEV: &str = "/dev/xen/gntdev";
/// Pause between connection attempts while the server's endpoint is not there.
const CONNECT_RETRY: Duration = Duration::from_millis(20);
/// Longest single `poll(2)`: a peer that died without its event reaching us (its event
/// channel can be closed before its unmap notification is sent) is noticed this late.
const POLL_SLICE: Duration = Duration::from_secs(1);
/// `timeout_ns` value for "no timeout".
const NO_TIMEOUT: u64 = u64::MAX;
/// The gntalloc driver's limit on grant pages shared by all its users at once, and its
/// default.
const GNTALLOC_LIMIT: &str = "/sys/module/xen_gntalloc/parameters/limit";
const GNTALLOC_DEFAULT_LIMIT: usize = 1024;
/// How long the pages of a closed server endpoint are still counted: gntalloc keeps
/// counting them until the client has unmapped them, which it does when it closes too.
const GRANT_GRACE: Duration = Duration::from_secs(1);

/// Fails clearly when a device libxenvchan needs is missing. This also keeps
/// `libxenvchan_server_init` off its error path after the grant device is open: in Xen
/// 4.17 that path frees a pointer the library has not initialised yet (`xs_path`).
fn need_devices(devs: &[&str]) -> io::Result<()> {
    for d in devs {
        if !Path::new(d).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{d} is missing (not a Xen guest, or its Xen drivers are not loaded)"),
            ));
        }
    }
    Ok(())
}

/// The grant pages this process's server endpoints hold (see [`Grants::reserve`]).
static GRANTS: Mutex<Grants> = Mutex::new(Grants {
    in_use: 0,
    released: Vec::new(),
});

/// Accounting of gntalloc pages. A `libxenvchan_server_init` that runs out of them
/// (ENOSPC from the driver) takes an error path that, in Xen 4.17, frees the
/// uninitialised `xs_path` of the half-made endpoint; so the server only opens an
/// endpoint when its pages fit under the driver's limit, counting its own live endpoints
/// and those closed less than [`GRANT_GRACE`] ago. Other users of gntalloc in the same
/// domain are not seen.
struct Grants {
    in_use: usize,
    released: Vec<(Instant, usize)>,
}

impl Grants {
    fn lock() -> MutexGuard<'static, Grants> {
        GRANTS.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limit() -> usize {
        std::fs::read_to_string(GNTALLOC_LIMIT)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(GNTALLOC_DEFAULT_LIMIT)
    }

    /// Pages of one server endpoint: the control page and the rings that do not live in
    /// it.
    fn pages(read_min: usize, write_min: usize) -> usize {
        let (r, w) = vchan_ring_sizes(read_min as u64, write_min as u64).unwrap_or((0, 0));
        let ring = |n: u64| if n >= 4096 { (n / 4096) as usize } else { 0 };
        1 + ring(r) + ring(w)
    }

    fn counted(&mut self) -> usize {
        let now = Instant::now();
        self.released
            .retain(|(t, _)| now.saturating_duration_since(*t) < GRANT_GRACE);
        self.in_use + self.released.iter().map(|(_, n)| n).sum::<usize>()
    }

    /// Whether `pages` more would fit now.
    fn fit(pages: usize) -> bool {
        Grants::lock().counted() + pages <= Grants::limit()
    }

    fn reserve(pages: usize) -> io::Result<()> {
        let mut g = Grants::lock();
        let (counted, limit) = (g.counted(), Grants::limit());
        if counted + pages > limit {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "{pages} grant pages would exceed the gntalloc limit ({counted} of \
                     {limit} in use by this server)"
                ),
            ));
        }
        g.in_use += pages;
        Ok(())
    }

    fn release(pages: usize) {
        let mut g = Grants::lock();
        g.in_use -= pages;
        g.released.push((Instant::now(), pages));
    }
}

fn c_string(s: String) -> io::Result<CString> {
    CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

// ---------------------------------------------------------------------------------
// XenStore

/// A connection to XenStore (`xs_open(0)`: xenstored's socket in dom0, /dev/xen/xenbus
/// in a guest).
struct Xs(NonNull<ffi::XsHandle>);

impl Xs {
    fn open() -> io::Result<Xs> {
        // SAFETY: xs_open takes no pointers; it returns a new handle or NULL.
        let h = unsafe { ffi::xs_open(0) };
        let err = io::Error::last_os_error();
        NonNull::new(h)
            .map(Xs)
            .ok_or_else(|| io::Error::new(err.kind(), format!("opening XenStore: {err}")))
    }

    fn read(&self, path: &CStr) -> io::Result<Vec<u8>> {
        let mut len: c_uint = 0;
        // SAFETY: the handle is open, `path` is NUL-terminated and `len` is a live c_uint
        // for xs_read to fill in.
        let p = unsafe { ffi::xs_read(self.0.as_ptr(), ffi::XBT_NULL, path.as_ptr(), &mut len) };
        if p.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success xs_read returns a malloc'd buffer of `len` bytes (and a NUL),
        // which stays valid until it is freed below.
        let v = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }.to_vec();
        // SAFETY: `p` came from malloc in xs_read, is ours to free, and is not used again.
        unsafe { libc::free(p) };
        Ok(v)
    }

    fn write(&self, path: &CStr, value: &[u8]) -> io::Result<()> {
        let len = c_uint::try_from(value.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the handle is open, `path` is NUL-terminated and `value` is live for
        // `len` bytes; xs_write copies both.
        let ok = unsafe {
            ffi::xs_write(
                self.0.as_ptr(),
                ffi::XBT_NULL,
                path.as_ptr(),
                value.as_ptr().cast(),
                len,
            )
        };
        if ok {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn rm(&self, path: &CStr) -> io::Result<()> {
        // SAFETY: the handle is open and `path` is NUL-terminated.
        if unsafe { ffi::xs_rm(self.0.as_ptr(), ffi::XBT_NULL, path.as_ptr()) } {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Xs {
    fn drop(&mut self) {
        // SAFETY: the handle is open and is not used after this.
        unsafe { ffi::xs_close(self.0.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------------
// One libxenvchan endpoint

/// An open libxenvchan endpoint, closed on drop.
struct Ctrl {
    ptr: NonNull<ffi::Libxenvchan>,
    /// Server side: this endpoint's XenStore directory, removed after the close.
    node: Option<CString>,
    /// Server side: the grant pages reserved for it ([`Grants`]).
    grants: usize,
}

// SAFETY: libxenvchan has no thread affinity (its state is the struct, the shared pages
// and file descriptors). `Ctrl` is not `Sync` and every call takes `&self` or `&mut self`
// of the one owner, so no two threads ever call into the same endpoint at once; shared
// streams reach it only through a mutex.
unsafe impl Send for Ctrl {}

impl Ctrl {
    /// `libxenvchan_server_init` for client domain `peer` at `path`.
    fn server(peer: u16, path: &CStr, read_min: usize, write_min: usize) -> io::Result<Ctrl> {
        let grants = Grants::pages(read_min, write_min);
        Grants::reserve(grants)?;
        // SAFETY: `path` is NUL-terminated (libxenvchan copies it); a NULL logger is
        // allowed (the library's default logger is used).
        let p = unsafe {
            ffi::libxenvchan_server_init(
                ptr::null_mut(),
                c_int::from(peer),
                path.as_ptr(),
                read_min,
                write_min,
            )
        };
        let err = io::Error::last_os_error();
        let Some(ptr) = NonNull::new(p) else {
            Grants::release(grants);
            return Err(err);
        };
        Ok(Ctrl {
            ptr,
            node: Some(path.to_owned()),
            grants,
        })
    }

    /// `libxenvchan_client_init` to server domain `server` at `path`.
    fn client(server: u16, path: &CStr) -> io::Result<Ctrl> {
        // SAFETY: as in `server`.
        let p = unsafe {
            ffi::libxenvchan_client_init(ptr::null_mut(), c_int::from(server), path.as_ptr())
        };
        let err = io::Error::last_os_error();
        let ptr = NonNull::new(p).ok_or(err)?;
        Ok(Ctrl {
            ptr,
            node: None,
            grants: 0,
        })
    }

    /// The event channel's descriptor: readable when an event is pending.
    fn fd(&self) -> RawFd {
        // SAFETY: `ptr` is an open endpoint.
        unsafe { ffi::libxenvchan_fd_for_select(self.ptr.as_ptr()) }
    }

    /// 1 open, 0 closed by the peer; a server's endpoint says 2 until a client comes.
    fn is_open(&self) -> c_int {
        // SAFETY: `ptr` is an open endpoint.
        unsafe { ffi::libxenvchan_is_open(self.ptr.as_ptr()) }
    }

    /// Bytes ready to read; also asks the peer to signal its next write.
    fn data_ready(&mut self) -> usize {
        // SAFETY: `ptr` is an open endpoint.
        let n = unsafe { ffi::libxenvchan_data_ready(self.ptr.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Bytes that can be written; also asks the peer to signal its next read.
    fn buffer_space(&mut self) -> usize {
        // SAFETY: `ptr` is an open endpoint.
        let n = unsafe { ffi::libxenvchan_buffer_space(self.ptr.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Reads at most `buf.len()` bytes, which must be at most [`Ctrl::data_ready`] (so
    /// that the library never waits, whatever its `blocking` flag says).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `ptr` is an open endpoint and `buf` is live and writable for its length.
        let n =
            unsafe { ffi::libxenvchan_read(self.ptr.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| io::Error::other("libxenvchan_read failed"))
    }

    /// Writes at most `buf.len()` bytes, which must be at most [`Ctrl::buffer_space`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `ptr` is an open endpoint and `buf` is live for its length.
        let n =
            unsafe { ffi::libxenvchan_write(self.ptr.as_ptr(), buf.as_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(n) => Ok(n),
            // libxenvchan_write checks is_open first: the peer closed just now.
            Err(_) if self.is_open() == 0 => Err(peer_closed()),
            Err(_) => Err(io::Error::other("libxenvchan_write failed")),
        }
    }

    /// Consumes the pending event and unmasks the port. Only call it when [`Ctrl::fd`]
    /// has polled readable (it reads the descriptor, which blocks otherwise).
    fn wait(&mut self) -> io::Result<()> {
        // SAFETY: `ptr` is an open endpoint.
        if unsafe { ffi::libxenvchan_wait(self.ptr.as_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Ctrl {
    fn drop(&mut self) {
        // SAFETY: `ptr` is an open endpoint, owned by us and not used after this.
        unsafe { ffi::libxenvchan_close(self.ptr.as_ptr()) };
        if self.grants > 0 {
            Grants::release(self.grants);
        }
        if let Some(node) = &self.node {
            // libxenvchan_close removes the server's nodes itself since Xen 4.15; this is
            // best effort for older libraries (an error, usually ENOENT, is ignored).
            if let Ok(xs) = Xs::open() {
                let _ = xs.rm(node);
            }
        }
    }
}

/// What a `poll(2)` on an event channel saw.
#[derive(Default)]
struct Polled {
    /// The event channel is readable: an event is pending.
    event: bool,
    /// The wake-up pipe is readable.
    wake: bool,
}

/// Polls `event_fd` (and `wake_fd` if given) for input, for at most `timeout` (forever
/// if `None`). EINTR counts as nothing seen.
fn poll_in(
    event_fd: RawFd,
    wake_fd: Option<RawFd>,
    timeout: Option<Duration>,
) -> io::Result<Polled> {
    let mut fds = [
        libc::pollfd {
            fd: event_fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            // A negative descriptor is skipped by poll.
            fd: wake_fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = match timeout {
        None => -1,
        // Rounded up, so that a wait does not end just before its deadline.
        Some(t) => c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX),
    };
    // SAFETY: `fds` is a live array of exactly the length given.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Polled::default())
        } else {
            Err(e)
        };
    }
    if fds[0].revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(io::Error::other("vchan: poll: error on the event channel"));
    }
    Ok(Polled {
        event: fds[0].revents & libc::POLLIN != 0,
        wake: fds[1].revents & libc::POLLIN != 0,
    })
}

// ---------------------------------------------------------------------------------
// Streams

/// What a stream needs from an endpoint: [`Ctrl`], or a fake in the tests.
trait Endpoint: Send {
    fn fd(&self) -> RawFd;
    fn is_open(&self) -> c_int;
    fn data_ready(&mut self) -> usize;
    fn buffer_space(&mut self) -> usize;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    fn wait(&mut self) -> io::Result<()>;
}

impl Endpoint for Ctrl {
    fn fd(&self) -> RawFd {
        Ctrl::fd(self)
    }
    fn is_open(&self) -> c_int {
        Ctrl::is_open(self)
    }
    fn data_ready(&mut self) -> usize {
        Ctrl::data_ready(self)
    }
    fn buffer_space(&mut self) -> usize {
        Ctrl::buffer_space(self)
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ctrl::read(self, buf)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ctrl::write(self, buf)
    }
    fn wait(&mut self) -> io::Result<()> {
        Ctrl::wait(self)
    }
}

/// A connected libvchan stream. Clones ([`Stream::try_clone`]) share the endpoint.
pub struct Stream {
    sh: Arc<Shared<Ctrl>>,
}

/// The state of a stream, shared by its clones.
struct Shared<E> {
    inner: Mutex<Inner<E>>,
    /// Signalled by the thread in `poll(2)` when it is done (after every event).
    cv: Condvar,
    /// The event channel's descriptor, valid as long as `inner.ep`.
    event_fd: RawFd,
    /// A byte written here wakes the thread in `poll(2)` ([`Shared::shutdown`]).
    wake_rd: OwnedFd,
    wake_wr: OwnedFd,
    shut_rd: AtomicBool,
    shut_wr: AtomicBool,
    /// Read and write timeout in ns, [`NO_TIMEOUT`] for none.
    timeout_ns: AtomicU64,
}

struct Inner<E> {
    ep: E,
    /// A thread is in `poll(2)` on the event channel (the others wait on `cv`).
    polling: bool,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "vchan: timed out")
}

fn peer_closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "vchan: the peer has closed the connection",
    )
}

/// Empties the (non-blocking) wake-up pipe.
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reads into a live buffer of the length given from our own pipe.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

impl<E: Endpoint> Shared<E> {
    fn new(ep: E, timeout: Option<Duration>) -> io::Result<Shared<E>> {
        let mut p = [0 as c_int; 2];
        // SAFETY: `p` is a live array of two descriptors for pipe2 to fill in.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are fresh descriptors that nothing else owns.
        let (wake_rd, wake_wr) =
            unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        let sh = Shared {
            event_fd: ep.fd(),
            inner: Mutex::new(Inner { ep, polling: false }),
            cv: Condvar::new(),
            wake_rd,
            wake_wr,
            shut_rd: AtomicBool::new(false),
            shut_wr: AtomicBool::new(false),
            timeout_ns: AtomicU64::new(NO_TIMEOUT),
        };
        sh.set_timeout(timeout)?;
        Ok(sh)
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        // A panic while holding the lock leaves nothing half-done in `Inner`.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for something to happen (an event, a shutdown, `POLL_SLICE`) or fails with
    /// TimedOut once `deadline` has passed. The caller checks its condition again after
    /// every return: one thread polls the event channel, consumes the event and wakes the
    /// others, whatever direction the event was for.
    fn wait<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner<E>>,
        deadline: Option<Instant>,
    ) -> io::Result<MutexGuard<'a, Inner<E>>> {
        let left = match deadline {
            None => POLL_SLICE,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(POLL_SLICE),
                _ => return Err(timed_out()),
            },
        };
        if g.polling {
            let (g, _) = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner);
            return Ok(g);
        }
        g.polling = true;
        drop(g);
        let polled = poll_in(self.event_fd, Some(self.wake_rd.as_raw_fd()), Some(left));
        let mut g = self.lock();
        g.polling = false;
        self.cv.notify_all();
        let polled = polled?;
        if polled.wake {
            drain(&self.wake_rd);
        }
        if polled.event {
            // Readable, and nobody else reads it: this does not block.
            g.ep.wait()?;
        }
        Ok(g)
    }

    fn shutdown(&self, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.shut_rd.store(true, Ordering::SeqCst);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.shut_wr.store(true, Ordering::SeqCst);
        }
        // Wake the thread in poll(2), which then wakes the others...
        // SAFETY: writes one byte from a live buffer to our own pipe; if the pipe is full
        // a wake-up is pending anyway.
        let _ = unsafe { libc::write(self.wake_wr.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        // ... and, under the lock so that none is between its check and its wait, those
        // waiting on the condition variable.
        let _g = self.lock();
        self.cv.notify_all();
    }

    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        let ns = match t {
            None => NO_TIMEOUT,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(NO_TIMEOUT - 1),
        };
        self.timeout_ns.store(ns, Ordering::Relaxed);
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        match self.timeout_ns.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            ns => Instant::now().checked_add(Duration::from_nanos(ns)),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.deadline();
        let mut g = self.lock();
        loop {
            if self.shut_rd.load(Ordering::SeqCst) {
                return Ok(0);
            }
            let ready = g.ep.data_ready();
            if ready > 0 {
                let n = ready.min(buf.len());
                return g.ep.read(&mut buf[..n]);
            }
            // Closed and nothing left? Data may have come between the two checks.
            if g.ep.is_open() == 0 && g.ep.data_ready() == 0 {
                return Ok(0);
            }
            g = self.wait(g, deadline)?;
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.deadline();
        let mut g = self.lock();
        loop {
            if self.shut_wr.load(Ordering::SeqCst) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "vchan: the stream is shut down",
                ));
            }
            if g.ep.is_open() == 0 {
                return Err(peer_closed());
            }
            let space = g.ep.buffer_space();
            if space > 0 {
                let n = space.min(buf.len());
                return g.ep.write(&buf[..n]);
            }
            g = self.wait(g, deadline)?;
        }
    }
}

impl Stream {
    fn new(ctrl: Ctrl, timeout: Option<Duration>) -> io::Result<Stream> {
        Ok(Stream {
            sh: Arc::new(Shared::new(ctrl, timeout)?),
        })
    }

    /// Connects to the endpoint the server at `server` publishes in `base`/current,
    /// retrying (the server may not be up yet, or the endpoint just taken by another
    /// client) until `timeout` has passed, forever if `None`.
    pub fn connect(server: u16, base: &str, timeout: Option<Duration>) -> Result<Stream> {
        need_devices(&[EVTCHN_DEV, GNTDEV_DEV])?;
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let xs = Xs::open()?;
        let current = c_string(format!("{base}/current"))?;
        loop {
            let why = match connect_once(&xs, server, base, &current) {
                Ok(ctrl) => return Ok(Stream::new(ctrl, timeout)?),
                Err(why) => why,
            };
            let mut pause = CONNECT_RETRY;
            if let Some(d) = deadline {
                match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => pause = pause.min(left),
                    _ => bail!(
                        "timed out after {:.1} s: {why}",
                        start.elapsed().as_secs_f64()
                    ),
                }
            }
            thread::sleep(pause);
        }
    }

    /// A second handle on the same endpoint (for the other direction's thread).
    pub fn try_clone(&self) -> Stream {
        Stream {
            sh: Arc::clone(&self.sh),
        }
    }

    /// Stops this end's reads (they return EOF) and/or writes (BrokenPipe), waking the
    /// threads blocked in them. Nothing is sent to the peer: it sees the close when the
    /// last handle is dropped.
    pub fn shutdown(&self, how: Shutdown) {
        self.sh.shutdown(how)
    }

    /// Read and write timeout (like SO_RCVTIMEO/SO_SNDTIMEO: the longest a call waits for
    /// progress), shared with the clones. A call fails with TimedOut when it passes.
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sh.set_timeout(t)
    }

    /// Reads what is there (at most `buf.len()` bytes), waiting for data if there is none;
    /// `Ok(0)` at EOF (the peer closed and everything it sent has been read).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sh.read(buf)
    }

    /// Writes what fits (at least one byte), waiting for room if there is none.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.sh.write(buf)
    }
}

/// One attempt to connect: read `base/current`, then `libxenvchan_client_init` there.
/// The error says why not, for the final message.
fn connect_once(xs: &Xs, server: u16, base: &str, current: &CStr) -> Result<Ctrl, String> {
    let seq = xs.read(current).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound => " (is the server listening?)",
            io::ErrorKind::PermissionDenied => {
                " (the server's domain must give this domain read access to BASE)"
            }
            _ => "",
        };
        format!("reading {base}/current: {e}{hint}")
    })?;
    let seq = std::str::from_utf8(&seq)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{base}/current is not a sequence number"))?;
    let path = format!("{base}/{seq}");
    if !vchan_path_fits(&path) {
        return Err(format!("{path}: XenStore path too long for libxenvchan"));
    }
    let cpath = c_string(path.clone()).map_err(|e| e.to_string())?;
    Ctrl::client(server, &cpath)
        .map_err(|e| format!("libxenvchan_client_init({path}) to domain {server}: {e}"))
}

// ---------------------------------------------------------------------------------
// Listener

/// Serves `vchan:PEER:BASE`: one libxenvchan endpoint per connection (see the module
/// documentation). Used from one thread.
pub struct Listener {
    peer: u16,
    base: String,
    /// Minimum size asked for each ring.
    ring: usize,
    xs: Xs,
    /// `BASE/current`.
    current: CString,
    state: RefCell<State>,
}

struct State {
    next_seq: u64,
    /// The published endpoint, waiting for its client.
    pending: Option<(u64, Ctrl)>,
}

impl Listener {
    /// Opens the first endpoint. Both rings are asked for `buffer_size` bytes (default
    /// [`DEFAULT_VCHAN_RING`]), which libxenvchan rounds ([`vchan_ring_sizes`]).
    pub fn bind(peer: u16, base: &str, buffer_size: Option<u64>) -> Result<Listener> {
        let want = buffer_size.unwrap_or(DEFAULT_VCHAN_RING);
        let (to_server, to_client) = vchan_ring_sizes(want, want)
            .ok_or_else(|| anyhow!("ring size {want}: libxenvchan rings are at most 1 MiB"))?;
        need_devices(&[EVTCHN_DEV, GNTALLOC_DEV])?;
        let ring = usize::try_from(want).context("ring size")?;
        let (pages, limit) = (Grants::pages(ring, ring), Grants::limit());
        if pages > limit {
            bail!("rings of {want} B need {pages} grant pages, over the gntalloc limit ({limit})");
        }
        let xs = Xs::open()?;
        let current = c_string(format!("{base}/current"))?;
        // A `current` left by an earlier server would send clients to a dead endpoint.
        let _ = xs.rm(&current);
        let l = Listener {
            peer,
            base: base.to_string(),
            ring,
            xs,
            current,
            state: RefCell::new(State {
                next_seq: 1,
                pending: None,
            }),
        };
        let first = l.publish(0)?;
        l.state.borrow_mut().pending = Some(first);
        eprintln!(
            "yasmin-bench server: vchan rings of {to_server} B (client to server) and \
             {to_client} B (server to client), for domain {peer}"
        );
        Ok(l)
    }

    /// Grant pages of one endpoint.
    fn pages(&self) -> usize {
        Grants::pages(self.ring, self.ring)
    }

    /// Opens the endpoint `seq` and points `BASE/current` at it.
    fn publish(&self, seq: u64) -> Result<(u64, Ctrl)> {
        let path = format!("{}/{seq}", self.base);
        if !vchan_path_fits(&path) {
            bail!("{path}: XenStore path too long for libxenvchan (use a shorter BASE)");
        }
        let cpath = c_string(path.clone())?;
        let ctrl = Ctrl::server(self.peer, &cpath, self.ring, self.ring).map_err(|e| {
            anyhow!(
                "libxenvchan_server_init({path}) for domain {}: {e}",
                self.peer
            )
        })?;
        // After the endpoint's nodes exist, so that a client never finds half of one.
        // The peer reads this with the permissions `current` inherits from BASE.
        self.xs
            .write(&self.current, seq.to_string().as_bytes())
            .map_err(|e| anyhow!("writing {}/current: {e}", self.base))?;
        Ok((seq, ctrl))
    }

    /// Waits (forever) for a client on the published endpoint, publishes the next one,
    /// and returns the connection and its name.
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        let mut st = self.state.borrow_mut();
        loop {
            let (seq, mut ctrl) = match st.pending.take() {
                Some(p) => p,
                None => {
                    // Connections with large rings may have to wait for earlier ones
                    // to end.
                    while !Grants::fit(self.pages()) {
                        thread::sleep(CONNECT_RETRY);
                    }
                    let seq = st.next_seq;
                    st.next_seq += 1;
                    self.publish(seq)
                        .map_err(|e| io::Error::other(format!("{e:#}")))?
                }
            };
            if !wait_for_client(&mut ctrl)? {
                // The client left before we saw it: drop that endpoint, open another.
                continue;
            }
            // Published before this connection is handed out: the client of the next
            // run finds its endpoint at once. If that fails (or must wait for grant
            // pages), the next accept tries again, and says why if it fails.
            if Grants::fit(self.pages()) {
                let next = st.next_seq;
                st.next_seq += 1;
                st.pending = self.publish(next).ok();
            }
            let name = format!("vchan:{}:{}/{seq}", self.peer, self.base);
            return Ok((Stream::new(ctrl, None)?, name));
        }
    }
}

/// Waits until a client has connected to the server endpoint (true) or has come and
/// gone (false).
fn wait_for_client(ctrl: &mut Ctrl) -> io::Result<bool> {
    loop {
        match ctrl.is_open() {
            1 => return Ok(true),
            0 => return Ok(false),
            _ => {}
        }
        // The client's libxenvchan_client_init signals the event channel once connected.
        if poll_in(ctrl.fd(), None, None)?.event {
            ctrl.wait()?;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Best effort; the pending endpoint's nodes go with it (see `Ctrl`'s drop).
        let _ = self.xs.rm(&self.current);
    }
}

#[cfg(test)]
mod tests {
    //! The stream logic over a fake endpoint that behaves like libxenvchan where it
    //! matters: an end is only signalled when it asked (data_ready / buffer_space set the
    //! request, the peer's next write / read clears it and signals), a close always
    //! signals, and at most one event is pending per end (the port stays masked until
    //! `wait` consumes it). `wait` fails if nothing is pending, so a call that would block
    //! in libxenvchan_wait shows up as an error.

    use super::*;
    use std::collections::VecDeque;

    struct Link {
        /// `to[i]`: bytes on their way to end i.
        to: [VecDeque<u8>; 2],
        cap: usize,
        live: [bool; 2],
        /// End i asked to hear of the next write to it / read of what it sent.
        want_data: [bool; 2],
        want_space: [bool; 2],
        pending: [bool; 2],
        /// Write ends of the ends' event pipes.
        signal: [OwnedFd; 2],
    }

    impl Link {
        fn signal(&mut self, end: usize) {
            // Xen drops a notification to a closed end silently.
            if self.live[end] && !self.pending[end] {
                self.pending[end] = true;
                // SAFETY: one byte from a live buffer to our own pipe.
                let n =
                    unsafe { libc::write(self.signal[end].as_raw_fd(), b"e".as_ptr().cast(), 1) };
                assert_eq!(n, 1, "{}", io::Error::last_os_error());
            }
        }
    }

    struct Fake {
        link: Arc<Mutex<Link>>,
        me: usize,
        events: OwnedFd,
    }

    impl Fake {
        fn link(&self) -> MutexGuard<'_, Link> {
            self.link.lock().unwrap()
        }
    }

    impl Endpoint for Fake {
        fn fd(&self) -> RawFd {
            self.events.as_raw_fd()
        }
        fn is_open(&self) -> c_int {
            c_int::from(self.link().live[1 - self.me])
        }
        fn data_ready(&mut self) -> usize {
            let mut l = self.link();
            l.want_data[self.me] = true;
            l.to[self.me].len()
        }
        fn buffer_space(&mut self) -> usize {
            let mut l = self.link();
            l.want_space[self.me] = true;
            l.cap - l.to[1 - self.me].len()
        }
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let (me, peer) = (self.me, 1 - self.me);
            let mut l = self.link();
            assert!(buf.len() <= l.to[me].len(), "read beyond data_ready");
            for b in buf.iter_mut() {
                *b = l.to[me].pop_front().unwrap();
            }
            if std::mem::take(&mut l.want_space[peer]) {
                l.signal(peer);
            }
            Ok(buf.len())
        }
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let peer = 1 - self.me;
            let mut l = self.link();
            // The peer may close between is_open and here, as in libxenvchan_write.
            if !l.live[peer] {
                return Err(peer_closed());
            }
            assert!(
                buf.len() <= l.cap - l.to[peer].len(),
                "write beyond buffer_space"
            );
            l.to[peer].extend(buf);
            if std::mem::take(&mut l.want_data[peer]) {
                l.signal(peer);
            }
            Ok(buf.len())
        }
        fn wait(&mut self) -> io::Result<()> {
            let mut b = [0u8; 1];
            // SAFETY: reads into a live one-byte buffer from our own (non-blocking) pipe.
            let n = unsafe { libc::read(self.events.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::other("wait without a pending event"));
            }
            self.link().pending[self.me] = false;
            Ok(())
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let mut l = self.link();
            l.live[self.me] = false;
            l.signal(1 - self.me);
        }
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut p = [0 as c_int; 2];
        // SAFETY: `p` is a live array of two descriptors for pipe2 to fill in.
        assert_eq!(
            unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        // SAFETY: fresh descriptors nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
    }

    type S = Arc<Shared<Fake>>;

    /// Two connected streams with rings of `cap` bytes each way and a 10 s timeout (so
    /// that a lost wake-up fails the test instead of hanging it).
    fn pair(cap: usize) -> (S, S) {
        let (r0, w0) = pipe();
        let (r1, w1) = pipe();
        let link = Arc::new(Mutex::new(Link {
            to: [VecDeque::new(), VecDeque::new()],
            cap,
            live: [true; 2],
            want_data: [false; 2],
            want_space: [false; 2],
            pending: [false; 2],
            signal: [w0, w1],
        }));
        let end = |me, events| {
            let ep = Fake {
                link: link.clone(),
                me,
                events,
            };
            Arc::new(Shared::new(ep, Some(Duration::from_secs(10))).unwrap())
        };
        (end(0, r0), end(1, r1))
    }

    fn write_all(s: &S, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = s.write(buf)?;
            assert!(n > 0);
            buf = &buf[n..];
        }
        Ok(())
    }

    fn read_exact(s: &S, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = s.read(buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[test]
    fn moves_bytes_through_a_small_ring_then_eof() {
        let (a, b) = pair(4096);
        let data = pattern(1 << 20, 0);
        let sent = data.clone();
        let w = thread::spawn(move || {
            for chunk in sent.chunks(64 << 10) {
                write_all(&a, chunk).unwrap();
            }
            // Dropping the last handle closes: the reader gets the rest, then EOF.
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 3000];
        loop {
            let n = b.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        w.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);
    }

    #[test]
    fn both_directions_at_once_through_clones() {
        let (a, b) = pair(1024);
        let len = 256 << 10;
        let mut threads = Vec::new();
        for (me, peer_seed, s) in [(0u8, 1u8, a), (1, 0, b)] {
            let w = s.clone();
            threads.push(thread::spawn(move || {
                write_all(&w, &pattern(len, me)).unwrap();
            }));
            threads.push(thread::spawn(move || {
                let mut got = vec![0u8; len];
                read_exact(&s, &mut got).unwrap();
                assert!(got == pattern(len, peer_seed));
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn ping_pong() {
        let (a, b) = pair(2048);
        let echo = thread::spawn(move || {
            let mut buf = [0u8; 100];
            for _ in 0..1000 {
                read_exact(&b, &mut buf).unwrap();
                write_all(&b, &buf).unwrap();
            }
        });
        let msg = pattern(100, 7);
        let mut back = [0u8; 100];
        for _ in 0..1000 {
            write_all(&a, &msg).unwrap();
            read_exact(&a, &mut back).unwrap();
            assert_eq!(&back[..], &msg[..]);
        }
        echo.join().unwrap();
    }

    #[test]
    fn writing_to_a_closed_peer_fails() {
        let (a, b) = pair(1024);
        // Fill the ring, so that the next write waits; the peer then goes away.
        write_all(&a, &[1; 1024]).unwrap();
        let closer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(b);
        });
        let e = a.write(&[2]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        closer.join().unwrap();
        assert_eq!(a.read(&mut [0u8; 8]).unwrap(), 0);
    }

    #[test]
    fn reads_and_writes_time_out() {
        let (a, _b) = pair(1024);
        a.set_timeout(Some(Duration::from_millis(50))).unwrap();
        let t0 = Instant::now();
        let e = a.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        write_all(&a, &[1; 1024]).unwrap();
        let e = a.write(&[2]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(a.set_timeout(Some(Duration::ZERO)).is_err());
    }

    #[test]
    fn grant_pages_are_counted_until_the_grace_ends() {
        // The control page, plus the rings outside it.
        assert_eq!(Grants::pages(1024, 1024), 1);
        assert_eq!(Grants::pages(2048, 2048), 2);
        assert_eq!(Grants::pages(64 << 10, 64 << 10), 33);
        assert_eq!(Grants::pages(1 << 20, 1 << 20), 513);
        // Two endpoints with 1 MiB rings do not fit under the default limit at once.
        let limit = Grants::limit();
        let big = limit / 2 + 1;
        Grants::reserve(big).unwrap();
        assert!(!Grants::fit(big));
        assert_eq!(
            Grants::reserve(big).unwrap_err().kind(),
            io::ErrorKind::OutOfMemory
        );
        // Released pages still count for the grace period, then not.
        Grants::release(big);
        assert!(!Grants::fit(big + 1));
        thread::sleep(GRANT_GRACE + Duration::from_millis(50));
        assert!(Grants::fit(big));
        assert_eq!(Grants::lock().counted(), 0);
    }

    #[test]
    fn shutdown_wakes_blocked_reader_and_writer() {
        let (a, _b) = pair(1024);
        a.set_timeout(None).unwrap();
        write_all(&a, &[1; 1024]).unwrap();
        let (r, w) = (a.clone(), a.clone());
        let reader = thread::spawn(move || r.read(&mut [0u8; 8]));
        let writer = thread::spawn(move || w.write(&[2]));
        thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        a.shutdown(Shutdown::Both);
        assert_eq!(reader.join().unwrap().unwrap(), 0);
        let e = writer.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        // Woken, not found by the next poll slice.
        assert!(t0.elapsed() < POLL_SLICE / 2, "{:?}", t0.elapsed());
    }
}
