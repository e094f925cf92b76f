// SPDX-License-Identifier: GPL-2.0
//! The vsock callbacks: YASMIN registered as the guest's G2H `struct vsock_transport`.
//!
//! Every connected socket has its own pair of rings (`socket_ring.rs`: each side produces
//! into pages it grants, and maps the peer's read-only) and its own interdomain event
//! channel; the per-pair control channel (`control_plane.rs`) carries only CONNECT,
//! ACCEPT, RESET, SHUTDOWN and CLOSE. Data never touches XenStore or dom0.
//!
//! Locking: af_vsock calls most callbacks with the socket lock held; messages from the
//! peer are applied by the control work item, which takes the socket lock itself, never
//! while it holds the control-plane mutex (order: socket lock, then plane mutex).

use crate::bindings::{self, msghdr, sock, sockaddr_vm, vsock_sock, vsock_transport};
use crate::control::paths;
use crate::control::wire::{self, ConnId, Msg, RingRef};
use crate::control_plane::{self, with_plane};
use crate::peer_stats::{self, PeerStats};
use crate::profile;
use crate::socket_ring::{RxRing, TxRing};
use crate::xen::EventChannel;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

const PAGE: u64 = wire::PAGE_SIZE as u64;

/// Our CID (domid + 2), for `get_local_cid`.
static LOCAL_CID: AtomicU32 = AtomicU32::new(0);
/// Default and largest ring, in pages (module parameters).
static RING_PAGES: AtomicU32 = AtomicU32::new(1);
static MAX_RING_PAGES: AtomicU32 = AtomicU32::new(1);
/// The registered transport (to recognise our sockets).
static TRANSPORT: AtomicPtr<vsock_transport> = AtomicPtr::new(null_mut());

/// Global counters (debugfs `stats`).
pub(crate) static BYTES_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS_SENT: AtomicU64 = AtomicU64::new(0);
pub(crate) static SIGNALS_RECEIVED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RESETS: AtomicU64 = AtomicU64::new(0);
pub(crate) static SOCKETS: AtomicU64 = AtomicU64::new(0);
pub(crate) static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// A message from the peer for one socket, applied by the work item.
pub(crate) enum SockEvent {
    /// CONNECT for one of our listeners.
    Incoming {
        peer: u16,
        id: ConnId,
        ring: RingRef,
        evtchn: u32,
    },
    /// ACCEPT, RESET, SHUTDOWN or CLOSE for a socket we hold a reference on.
    ForSock { sk: *mut sock, msg: Msg },
    /// The pair channel went down (peer death, reset, set-up failure): `errno` for the
    /// socket (ECONNRESET, EHOSTUNREACH).
    PairDown { sk: *mut sock, errno: i32 },
}

// SAFETY: the socket pointers carry a reference (sock_hold) and are used under lock_sock.
unsafe impl Send for SockEvent {}

/// What a socket of ours carries (`vsk->trans`).
pub(crate) struct SockState {
    peer: u16,
    token: u64,
    /// Registered in the control plane's table (it holds a socket reference).
    registered: bool,
    /// The peer released its socket (its CLOSE arrived): we still answer with ours.
    peer_closed: bool,
    /// The peer's counters (set, with `peer`, before the event channel is bound).
    stats: &'static PeerStats,
    /// Test hook armed on this socket: every write leaves its ring header corrupted.
    scribbling: bool,
    evt: Option<EventChannel>,
    tx: Option<TxRing>,
    rx: Option<RxRing>,
}

impl SockState {
    fn release_rings(&mut self) {
        // Unbind first: no interrupt may touch the socket once the rings are gone.
        self.evt = None;
        self.tx = None;
        self.rx = None;
    }
}

/// The socket state of `vsk`.
///
/// # Safety
///
/// `vsk` must be one of our sockets (transport init ran, destruct not yet), with its lock
/// held or otherwise exclusively accessed.
unsafe fn state<'a>(vsk: *mut vsock_sock) -> Option<&'a mut SockState> {
    // SAFETY: `trans` is null or the `KBox<SockState>` installed by `t_init`.
    unsafe { (*vsk).trans.cast::<SockState>().as_mut() }
}

fn vsk_of(sk: *mut sock) -> *mut vsock_sock {
    // `struct vsock_sock` starts with its `struct sock` (af_vsock.h: "sk must be first").
    sk.cast()
}

fn sk_of(vsk: *mut vsock_sock) -> *mut sock {
    vsk.cast()
}

/// Pages for a ring of `bytes` (SO_VM_SOCKETS_BUFFER_SIZE), within the module's bounds.
fn ring_pages_for(bytes: u64) -> u16 {
    let max = MAX_RING_PAGES.load(Ordering::Relaxed) as u64;
    let want = bytes.div_ceil(PAGE).clamp(1, max);
    let p = want.next_power_of_two().min(max);
    p as u16
}

fn notify(st: &SockState) {
    if let Some(e) = st.evt.as_ref() {
        profile::NOTIFY.time(|| e.notify());
        SIGNALS_SENT.fetch_add(1, Ordering::Relaxed);
        PeerStats::add(&st.stats.signals_sent, 1);
    }
}

/// Per-socket event channel interrupt: wake readers, writers and pollers.
unsafe extern "C" fn on_sock_event(_irq: c_int, cookie: *mut c_void) -> bindings::irqreturn_t {
    SIGNALS_RECEIVED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the socket state outlives its bound event channel, and `stats` is written
    // before the channel is bound and never again: a plain read of that one field.
    // No reference to the state is formed: the locked owner may be using it.
    unsafe {
        let st = (*vsk_of(cookie.cast())).trans.cast::<SockState>();
        if !st.is_null() {
            PeerStats::add(&core::ptr::addr_of!((*st).stats).read().signals_received, 1);
        }
    }
    // SAFETY: `cookie` is the socket the channel was bound for; the channel is unbound
    // (waiting for this handler) before the socket can be freed.
    profile::IRQ.time(|| unsafe { bindings::yasmin_sk_wake(cookie.cast()) });
    bindings::irqreturn_IRQ_HANDLED
}

/// Marks `sk` reset by the peer (or by a pair failure) with `errno`.
///
/// # Safety
///
/// `sk` is one of our sockets, locked.
unsafe fn set_reset(sk: *mut sock, errno: i32) {
    RESETS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: locked socket of ours.
    unsafe {
        (*sk).sk_err = errno;
        (*sk).__sk_common.skc_state = bindings::TCP_CLOSE as u8;
        (*vsk_of(sk)).peer_shutdown = bindings::SHUTDOWN_MASK;
        if let Some(st) = state(vsk_of(sk)) {
            PeerStats::add(&st.stats.resets, 1);
            st.registered = false;
            st.release_rings();
        }
        bindings::sk_error_report(sk);
    }
}

/// The peer broke the ring protocol (an impossible index in shared memory): log it, reset
/// the connection on both sides, and return `-ECONNRESET` for the caller.
///
/// # Safety
///
/// `vsk` is one of our sockets, locked; no reference into its state is used afterwards.
unsafe fn corrupted(vsk: *mut vsock_sock) -> c_int {
    let sk = sk_of(vsk);
    // SAFETY: locked socket of ours.
    if let Some(st) = unsafe { state(vsk) } {
        if st.registered {
            // SAFETY: locked socket.
            let id = unsafe { conn_id(vsk, st.token) };
            pr_warn!(
                "domain {}: connection (port {} -> {}) reset: the peer corrupted the shared ring\n",
                st.peer,
                id.src_port,
                id.dst_port
            );
            let (peer, token) = (st.peer, st.token);
            let held = with_plane(|p| {
                p.send_sock(
                    peer,
                    Msg::Reset {
                        id,
                        reason: wire::RESET_PROTOCOL,
                    },
                );
                p.forget_sock(peer, token)
            })
            .flatten();
            if let Some(h) = held {
                // SAFETY: the table's reference; af_vsock holds its own.
                unsafe { bindings::yasmin_sock_put(h) };
            }
        }
    }
    // SAFETY: locked socket of ours.
    unsafe { set_reset(sk, bindings::ECONNRESET as i32) };
    -(bindings::ECONNRESET as i32)
}

/// Test hook (debugfs `scribble_tx_port`): the next write on a socket with this local
/// port corrupts its own ring header, as a hostile peer would; 0 = off.
pub(crate) static SCRIBBLE_PORT: AtomicU32 = AtomicU32::new(0);

/// # Safety
///
/// `vsk` is one of our sockets, locked.
unsafe fn maybe_scribble(vsk: *mut vsock_sock) {
    // SAFETY: locked socket.
    let port = unsafe { (*vsk).local_addr.svm_port };
    if SCRIBBLE_PORT
        .compare_exchange(port, 0, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        // SAFETY: locked socket of ours.
        if let Some(st) = unsafe { state(vsk) } {
            st.scribbling = true;
            if let Some(tx) = st.tx.as_ref() {
                tx.scribble_header();
                pr_warn!(
                    "test hook: corrupted the ring header of local port {}\n",
                    port
                );
                notify(st);
            }
        }
    }
}

// ---- callbacks --------------------------------------------------------------------

unsafe extern "C" fn t_init(vsk: *mut vsock_sock, psk: *mut vsock_sock) -> c_int {
    let st = match KBox::new(
        SockState {
            peer: 0,
            token: 0,
            registered: false,
            peer_closed: false,
            stats: peer_stats::none(),
            scribbling: false,
            evt: None,
            tx: None,
            rx: None,
        },
        GFP_KERNEL,
    ) {
        Ok(b) => b,
        Err(_) => return ENOMEM.to_errno(),
    };
    SOCKETS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: af_vsock gives us a socket being set up (and its parent, if any).
    unsafe {
        (*vsk).trans = KBox::into_raw(st).cast();
        let max = MAX_RING_PAGES.load(Ordering::Relaxed) as u64 * PAGE;
        if let Some(p) = psk.as_ref() {
            (*vsk).buffer_size = p.buffer_size;
            (*vsk).buffer_min_size = p.buffer_min_size;
            (*vsk).buffer_max_size = p.buffer_max_size;
        } else {
            (*vsk).buffer_size = RING_PAGES.load(Ordering::Relaxed) as u64 * PAGE;
            (*vsk).buffer_min_size = PAGE;
            (*vsk).buffer_max_size = max;
        }
    }
    0
}

unsafe extern "C" fn t_destruct(vsk: *mut vsock_sock) {
    // SAFETY: the socket is going away; nobody else uses `trans` now.
    let p = unsafe { (*vsk).trans.cast::<SockState>() };
    if !p.is_null() {
        // SAFETY: installed by `t_init` from `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(p) });
        // SAFETY: as above.
        unsafe { (*vsk).trans = null_mut() };
        SOCKETS.fetch_sub(1, Ordering::Relaxed);
    }
}

unsafe extern "C" fn t_release(vsk: *mut vsock_sock) {
    // SAFETY: called with the socket locked.
    if let Some(st) = unsafe { state(vsk) } {
        // Mark both rings closed (EOF for the peer's reads, EPIPE for its writes).
        if let Some(tx) = st.tx.as_mut() {
            let _ = tx.prod.close();
        }
        if let Some(rx) = st.rx.as_mut() {
            let _ = rx.cons.close();
        }
        if st.evt.is_some() {
            notify(st);
        }
        // The interrupt names this socket: unbind before it can go away; unmap the peer's
        // ring (we read no more).
        st.evt = None;
        st.rx = None;
        let tx = st.tx.take();
        // Every connection not reset ends with a CLOSE from each side; the peer's CLOSE is
        // what lets a lingering ring go.
        if st.registered || st.peer_closed {
            // What we wrote must stay readable until the peer has released its socket too
            // (it may not even have mapped our ring yet): the plane keeps our ring until
            // the peer's CLOSE or RESET, or the pair going down.
            // SAFETY: locked socket of ours.
            let id = unsafe { conn_id(vsk, st.token) };
            let (peer, token, linger) = (st.peer, st.token, st.registered);
            let held = with_plane(move |p| {
                p.send_sock(peer, Msg::Close { id });
                if let (Some(tx), true) = (tx, linger) {
                    p.linger(peer, token, tx);
                }
                p.forget_sock(peer, token)
            })
            .flatten();
            st.registered = false;
            if let Some(h) = held {
                // SAFETY: the reference the table held; af_vsock holds its own.
                unsafe { bindings::yasmin_sock_put(h) };
            }
        }
    }
    // SAFETY: removes the socket from af_vsock's bound and connected tables.
    unsafe { bindings::vsock_remove_sock(vsk) };
}

/// The connection id as this side sends it.
///
/// # Safety
///
/// `vsk` is a locked socket.
unsafe fn conn_id(vsk: *mut vsock_sock, token: u64) -> ConnId {
    // SAFETY: plain reads of the locked socket's addresses.
    unsafe {
        ConnId {
            src_port: (*vsk).local_addr.svm_port,
            dst_port: (*vsk).remote_addr.svm_port,
            token,
        }
    }
}

unsafe extern "C" fn t_connect(vsk: *mut vsock_sock) -> c_int {
    let sk = sk_of(vsk);
    // SAFETY: called with the socket locked.
    let (cid, buf) = unsafe { ((*vsk).remote_addr.svm_cid, (*vsk).buffer_size) };
    let own = LOCAL_CID.load(Ordering::Relaxed);
    let peer = match paths::cid_to_domid(cid) {
        Some(p) if cid != own => p,
        _ => return -(bindings::ENETUNREACH as i32),
    };
    // SAFETY: locked socket of ours.
    let Some(st) = (unsafe { state(vsk) }) else {
        return EINVAL.to_errno();
    };
    st.stats = peer_stats::of(peer);
    let pages = ring_pages_for(buf);
    let tx = match TxRing::new(peer, pages) {
        Ok(t) => t,
        Err(e) => return e.to_errno(),
    };
    let evt = match EventChannel::alloc_unbound(peer, on_sock_event, sk as usize) {
        Ok(e) => e,
        Err(e) => return e.to_errno(),
    };
    let token = control_plane::next_token();
    // SAFETY: locked socket.
    let id = unsafe { conn_id(vsk, token) };
    let msg = Msg::Connect {
        id,
        ring: RingRef {
            dir_gref: tx.dir_gref(),
            pages: tx.pages(),
        },
        evtchn: evt.port(),
    };
    st.peer = peer;
    st.token = token;
    st.tx = Some(tx);
    st.evt = Some(evt);
    // The table keeps a reference until the connection is forgotten.
    // SAFETY: a live socket.
    unsafe { bindings::yasmin_sock_hold(sk) };
    match with_plane(|p| p.connect_sock(peer, token, sk, msg)) {
        Some(Ok(())) => {
            st.registered = true;
            CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            PeerStats::add(&st.stats.connections, 1);
            0
        }
        r => {
            // SAFETY: the reference taken above, not stored.
            unsafe { bindings::yasmin_sock_put(sk) };
            st.release_rings();
            let e = match r {
                Some(Err(e)) => e,
                _ => ENODEV,
            };
            e.to_errno()
        }
    }
}

unsafe extern "C" fn t_dequeue(
    vsk: *mut vsock_sock,
    msg: *mut msghdr,
    len: usize,
    flags: c_int,
) -> isize {
    // SAFETY: af_vsock calls us with `vsk` locked and `msg` valid for the call, which is
    // what `dequeue` requires; the closure runs once, inside this call.
    profile::DEQUEUE.time(|| unsafe { dequeue(vsk, msg, len, flags) })
}

/// `t_dequeue` itself.
///
/// # Safety
///
/// As for `t_dequeue`: `vsk` is locked, `msg` is the caller's message header.
unsafe fn dequeue(vsk: *mut vsock_sock, msg: *mut msghdr, len: usize, flags: c_int) -> isize {
    // SAFETY: called with the socket locked.
    let Some(st) = (unsafe { state(vsk) }) else {
        return (-(bindings::ENOTCONN as i32)) as isize;
    };
    let Some(rx) = st.rx.as_mut() else {
        return (-(bindings::ENOTCONN as i32)) as isize;
    };
    // SAFETY: `msg` is the caller's message header, valid for the call.
    let iter = unsafe { core::ptr::addr_of_mut!((*msg).msg_iter) };
    let copy = |src: *const u8, n: usize| {
        // SAFETY: `src` is valid for `n` bytes (ring contract); the iterator is the caller's.
        profile::DEQUEUE_COPY.time(|| unsafe { bindings::_copy_to_iter(src.cast(), n, iter) })
    };
    if flags as u32 & bindings::MSG_PEEK != 0 {
        return match rx.cons.peek(0, len, copy) {
            Ok(n) => n as isize,
            // SAFETY: locked socket of ours.
            Err(_) => (unsafe { corrupted(vsk) }) as isize,
        };
    }
    match rx.cons.read(len, copy) {
        Ok(t) => {
            if t.notify {
                notify(st);
            }
            BYTES_RECEIVED.fetch_add(t.bytes as u64, Ordering::Relaxed);
            PeerStats::add(&st.stats.bytes_received, t.bytes as u64);
            if t.bytes == 0 && len > 0 && rx_has_data(st) {
                return EFAULT.to_errno() as isize;
            }
            t.bytes as isize
        }
        // SAFETY: locked socket of ours.
        Err(_) => (unsafe { corrupted(vsk) }) as isize,
    }
}

fn rx_has_data(st: &mut SockState) -> bool {
    st.rx
        .as_mut()
        .is_some_and(|r| matches!(r.cons.readable(), Ok(n) if n > 0))
}

unsafe extern "C" fn t_enqueue(vsk: *mut vsock_sock, msg: *mut msghdr, len: usize) -> isize {
    // SAFETY: af_vsock calls us with `vsk` locked and `msg` valid for the call, which is
    // what `enqueue` requires; the closure runs once, inside this call.
    profile::ENQUEUE.time(|| unsafe { enqueue(vsk, msg, len) })
}

/// `t_enqueue` itself.
///
/// # Safety
///
/// As for `t_enqueue`: `vsk` is locked, `msg` is the caller's message header.
unsafe fn enqueue(vsk: *mut vsock_sock, msg: *mut msghdr, len: usize) -> isize {
    // SAFETY: called with the socket locked.
    let Some(st) = (unsafe { state(vsk) }) else {
        return (-(bindings::ENOTCONN as i32)) as isize;
    };
    let Some(tx) = st.tx.as_mut() else {
        return (-(bindings::ENOTCONN as i32)) as isize;
    };
    // SAFETY: the caller's message header, valid for the call.
    let iter = unsafe { core::ptr::addr_of_mut!((*msg).msg_iter) };
    let r = tx.prod.write(len, |dst, n| {
        // SAFETY: `dst` is valid for writes of `n` bytes (ring contract).
        profile::ENQUEUE_COPY.time(|| unsafe { bindings::_copy_from_iter(dst.cast(), n, iter) })
    });
    match r {
        Ok(t) => {
            if t.notify {
                notify(st);
            }
            BYTES_SENT.fetch_add(t.bytes as u64, Ordering::Relaxed);
            PeerStats::add(&st.stats.bytes_sent, t.bytes as u64);
            if st.scribbling {
                // The producer stores its own index on every write: corrupt it again.
                if let Some(tx) = st.tx.as_ref() {
                    tx.scribble_header();
                }
                notify(st);
            }
            if SCRIBBLE_PORT.load(Ordering::Relaxed) != 0 {
                // SAFETY: locked socket of ours.
                unsafe { maybe_scribble(vsk) };
            }
            t.bytes as isize
        }
        // SAFETY: locked socket of ours.
        Err(_) => (unsafe { corrupted(vsk) }) as isize,
    }
}

/// The peer closed its ring and everything in it has been read: that is its SHUT_WR, even
/// before its CLOSE message (which travels on the slower control channel) arrives, so
/// that readers see EOF rather than `EAGAIN` after poll said readable.
///
/// # Safety
///
/// `vsk` is one of our sockets, locked.
unsafe fn peer_done_writing(vsk: *mut vsock_sock) {
    // SAFETY: locked socket.
    unsafe { (*vsk).peer_shutdown |= bindings::SEND_SHUTDOWN };
}

unsafe extern "C" fn t_has_data(vsk: *mut vsock_sock) -> i64 {
    // SAFETY: called with the socket locked.
    match unsafe { state(vsk) }.and_then(|s| s.rx.as_mut()) {
        // The closed flag first, then the index (the ring's `at_eof` order): a close seen
        // here covers the producer's final index. The other way round, data published
        // between the two loads would be taken for EOF and lost to the reader.
        Some(rx) => match (rx.cons.producer_closed(), rx.cons.readable()) {
            (true, Ok(0)) => {
                // SAFETY: locked socket of ours.
                unsafe { peer_done_writing(vsk) };
                0
            }
            (_, Ok(n)) => n as i64,
            // SAFETY: locked socket of ours.
            (_, Err(_)) => (unsafe { corrupted(vsk) }) as i64,
        },
        None => 0,
    }
}

unsafe extern "C" fn t_has_space(vsk: *mut vsock_sock) -> i64 {
    // SAFETY: called with the socket locked.
    match unsafe { state(vsk) }.and_then(|s| s.tx.as_mut()) {
        Some(tx) => match tx.prod.writable() {
            Ok(n) => n as i64,
            // SAFETY: locked socket of ours.
            Err(_) => (unsafe { corrupted(vsk) }) as i64,
        },
        None => 0,
    }
}

unsafe extern "C" fn t_rcvhiwat(vsk: *mut vsock_sock) -> u64 {
    // SAFETY: called with the socket locked.
    match unsafe { state(vsk) }.and_then(|s| s.rx.as_ref()) {
        Some(rx) => rx.cons.capacity() as u64,
        // SAFETY: as above.
        None => unsafe { (*vsk).buffer_size },
    }
}

unsafe extern "C" fn t_is_active(vsk: *mut vsock_sock) -> bool {
    // SAFETY: called with the socket locked.
    unsafe { state(vsk) }.is_some_and(|s| s.rx.is_some() && s.tx.is_some())
}

unsafe extern "C" fn t_stream_allow(cid: u32, _port: u32) -> bool {
    cid != LOCAL_CID.load(Ordering::Relaxed) && paths::cid_to_domid(cid).is_some()
}

unsafe extern "C" fn t_poll_in(vsk: *mut vsock_sock, target: usize, ready: *mut bool) -> c_int {
    // SAFETY: called with the socket locked; `ready` is the caller's out-parameter.
    unsafe {
        *ready = false;
        if let Some(rx) = state(vsk).and_then(|s| s.rx.as_mut()) {
            let target = target.max(1);
            // Flag before index, as in `t_has_data`.
            let closed = rx.cons.producer_closed();
            let now = match rx.cons.readable() {
                Ok(n) if n >= target => n,
                // Ask to be signalled, then look again (no lost wakeup).
                Ok(_) => rx.cons.arm_readable().unwrap_or(0),
                Err(_) => return corrupted(vsk),
            };
            if closed && now == 0 {
                peer_done_writing(vsk);
            }
            *ready = now >= target || closed;
        }
    }
    0
}

unsafe extern "C" fn t_poll_out(vsk: *mut vsock_sock, _target: usize, ready: *mut bool) -> c_int {
    // SAFETY: as in `t_poll_in`.
    unsafe {
        *ready = false;
        if let Some(tx) = state(vsk).and_then(|s| s.tx.as_mut()) {
            let now = match tx.prod.writable() {
                Ok(n) if n > 0 => n,
                Ok(_) => tx.prod.arm_writable().unwrap_or(0),
                Err(_) => return corrupted(vsk),
            };
            *ready = now > 0;
        }
    }
    0
}

unsafe extern "C" fn t_recv_nop(
    _vsk: *mut vsock_sock,
    _target: usize,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    0
}

unsafe extern "C" fn t_recv_pre_block(
    vsk: *mut vsock_sock,
    _target: usize,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    profile::RECV_BLOCK.count();
    // The caller is already on the socket's wait queue: if data arrived between its check
    // and our arming, wake it instead of letting it sleep.
    // SAFETY: called with the socket locked.
    if let Some(rx) = unsafe { state(vsk) }.and_then(|s| s.rx.as_mut()) {
        if matches!(rx.cons.arm_readable(), Ok(n) if n > 0) {
            // SAFETY: a live socket.
            unsafe { bindings::yasmin_sk_wake(sk_of(vsk)) };
        }
    }
    0
}

unsafe extern "C" fn t_recv_post_dequeue(
    _vsk: *mut vsock_sock,
    _target: usize,
    _copied: isize,
    _data_read: bool,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    0
}

unsafe extern "C" fn t_send_nop(
    _vsk: *mut vsock_sock,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    0
}

unsafe extern "C" fn t_send_pre_block(
    vsk: *mut vsock_sock,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    profile::SEND_BLOCK.count();
    // SAFETY: called with the socket locked.
    if let Some(tx) = unsafe { state(vsk) }.and_then(|s| s.tx.as_mut()) {
        if matches!(tx.prod.arm_writable(), Ok(n) if n > 0) {
            // SAFETY: a live socket.
            unsafe { bindings::yasmin_sk_wake(sk_of(vsk)) };
        }
    }
    0
}

unsafe extern "C" fn t_send_post_enqueue(
    _vsk: *mut vsock_sock,
    _written: isize,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    0
}

unsafe extern "C" fn t_buffer_size(_vsk: *mut vsock_sock, val: *mut u64) {
    // The ring is chosen at connect time from the buffer size, within the module bounds.
    let max = MAX_RING_PAGES.load(Ordering::Relaxed) as u64 * PAGE;
    // SAFETY: the caller's in/out value.
    unsafe { *val = (*val).clamp(PAGE, max) };
}

unsafe extern "C" fn t_unsent(vsk: *mut vsock_sock) -> isize {
    // SAFETY: called with the socket locked.
    match unsafe { state(vsk) }.and_then(|s| s.tx.as_mut()) {
        Some(tx) => tx
            .prod
            .unsent()
            .map_or(EPIPE.to_errno() as isize, |n| n as isize),
        None => 0,
    }
}

unsafe extern "C" fn t_shutdown(vsk: *mut vsock_sock, mode: c_int) -> c_int {
    let mode = mode as u32 & bindings::SHUTDOWN_MASK;
    // SAFETY: called with the socket locked.
    let Some(st) = (unsafe { state(vsk) }) else {
        return 0;
    };
    if mode & bindings::SEND_SHUTDOWN != 0 {
        if let Some(tx) = st.tx.as_mut() {
            if tx.prod.close().notify {
                notify(st);
            }
        }
    }
    if st.registered && mode != 0 {
        // SAFETY: locked socket.
        let id = unsafe { conn_id(vsk, st.token) };
        with_plane(|p| p.send_sock(st.peer, Msg::Shutdown { id, mode }));
    }
    0
}

unsafe extern "C" fn t_local_cid() -> u32 {
    LOCAL_CID.load(Ordering::Relaxed)
}

// ---- messages from the peer (control work item, no plane lock held) ----------------

/// Applies one socket event from the control channel.
pub(crate) fn handle(ev: SockEvent) {
    match ev {
        SockEvent::Incoming {
            peer,
            id,
            ring,
            evtchn,
        } => incoming(peer, id, ring, evtchn),
        SockEvent::ForSock { sk, msg } => {
            // SAFETY: the event holds a reference on `sk`; we lock it to apply the message.
            unsafe {
                bindings::yasmin_lock_sock(sk);
                for_sock(sk, msg);
                bindings::release_sock(sk);
                bindings::yasmin_sock_put(sk);
            }
        }
        SockEvent::PairDown { sk, errno } => {
            // SAFETY: as above; the table's reference came with the event.
            unsafe {
                bindings::yasmin_lock_sock(sk);
                if state(vsk_of(sk)).is_some_and(|s| s.registered) {
                    set_reset(sk, errno);
                }
                bindings::release_sock(sk);
                bindings::yasmin_sock_put(sk);
            }
        }
    }
}

/// ACCEPT, RESET, SHUTDOWN or CLOSE for a socket of ours.
///
/// # Safety
///
/// `sk` is one of our sockets, locked.
unsafe fn for_sock(sk: *mut sock, msg: Msg) {
    let vsk = vsk_of(sk);
    // SAFETY: locked socket of ours.
    let Some(st) = (unsafe { state(vsk) }) else {
        return;
    };
    if !st.registered {
        return; // released or reset meanwhile
    }
    match msg {
        Msg::Accept { id, ring } => {
            // SAFETY: locked socket.
            if unsafe { (*sk).__sk_common.skc_state } != bindings::TCP_SYN_SENT as u8
                || st.rx.is_some()
            {
                // Too late (connect timed out) or a duplicate: refuse it, so the peer's
                // accepted socket does not wait for a connection nobody uses.
                // SAFETY: locked socket.
                let my = unsafe { conn_id(vsk, st.token) };
                let held = with_plane(|p| {
                    p.send_sock(
                        st.peer,
                        Msg::Reset {
                            id: my,
                            reason: wire::RESET_PROTOCOL,
                        },
                    );
                    p.forget_sock(st.peer, st.token)
                })
                .flatten();
                st.registered = false;
                st.release_rings();
                if let Some(h) = held {
                    // SAFETY: the table's reference; the event holds another.
                    unsafe { bindings::yasmin_sock_put(h) };
                }
                return;
            }
            match RxRing::map(st.peer, ring.dir_gref, ring.pages) {
                Ok(rx) => {
                    st.rx = Some(rx);
                    // SAFETY: locked socket; `sk_socket` is set for a connecting socket.
                    unsafe {
                        (*vsk).remote_addr.svm_port = id.src_port;
                        (*sk).__sk_common.skc_state = bindings::TCP_ESTABLISHED as u8;
                        if let Some(so) = (*sk).sk_socket.as_mut() {
                            so.state = bindings::socket_state_SS_CONNECTED;
                        }
                        bindings::vsock_insert_connected(vsk);
                        if let Some(f) = (*sk).sk_state_change {
                            f(sk);
                        }
                    }
                }
                Err(e) => {
                    pr_warn!(
                        "domain {}: connection refused: its ring is unusable ({:?})\n",
                        st.peer,
                        e
                    );
                    // SAFETY: locked socket.
                    let my = unsafe { conn_id(vsk, st.token) };
                    let held = with_plane(|p| {
                        p.send_sock(
                            st.peer,
                            Msg::Reset {
                                id: my,
                                reason: wire::RESET_BAD_RING,
                            },
                        );
                        p.forget_sock(st.peer, st.token)
                    })
                    .flatten();
                    // SAFETY: locked socket of ours; then the table's reference.
                    unsafe {
                        set_reset(sk, bindings::ECONNRESET as i32);
                        if let Some(h) = held {
                            bindings::yasmin_sock_put(h);
                        }
                    }
                }
            }
        }
        Msg::Reset { .. } | Msg::Close { .. } => {
            let held = with_plane(|p| p.forget_sock(st.peer, st.token)).flatten();
            if matches!(msg, Msg::Reset { .. }) {
                // SAFETY: locked socket of ours.
                unsafe { set_reset(sk, bindings::ECONNRESET as i32) };
            } else {
                // The peer released its socket: it reads and writes no more, but what it
                // wrote stays mapped for us to drain.
                st.registered = false;
                st.peer_closed = true;
                // SAFETY: locked socket.
                unsafe {
                    (*vsk).peer_shutdown = bindings::SHUTDOWN_MASK;
                    if let Some(f) = (*sk).sk_state_change {
                        f(sk);
                    }
                    bindings::yasmin_sk_wake(sk);
                }
            }
            if let Some(h) = held {
                // SAFETY: the table's reference; af_vsock and the event hold others.
                unsafe { bindings::yasmin_sock_put(h) };
            }
        }
        Msg::Shutdown { mode, .. } => {
            // SAFETY: locked socket.
            unsafe {
                (*vsk).peer_shutdown |= mode & bindings::SHUTDOWN_MASK;
                if let Some(f) = (*sk).sk_state_change {
                    f(sk);
                }
                bindings::yasmin_sk_wake(sk);
            }
        }
        _ => {}
    }
}

/// A CONNECT from `peer`: find the listener, create the child socket, map the
/// connector's ring, set up ours, answer ACCEPT (or RESET with the reason).
fn incoming(peer: u16, id: ConnId, ring: RingRef, evtchn: u32) {
    let reset = |reason: u32| {
        let back = ConnId {
            src_port: id.dst_port,
            dst_port: id.src_port,
            token: id.token,
        };
        with_plane(|p| p.send_sock(peer, Msg::Reset { id: back, reason }));
    };
    let own = LOCAL_CID.load(Ordering::Relaxed);
    let Some(peer_cid) = paths::domid_to_cid(peer) else {
        return;
    };
    // SAFETY: an all-zero sockaddr_vm is valid; vsock_addr_init fills it.
    let mut addr: sockaddr_vm = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-structure.
    unsafe { bindings::vsock_addr_init(&mut addr, own, id.dst_port) };
    // SAFETY: looks up af_vsock's bound table; returns a held socket or null.
    let listener = unsafe { bindings::vsock_find_bound_socket(&mut addr) };
    if listener.is_null() {
        reset(wire::RESET_NO_LISTENER);
        return;
    }
    // SAFETY: `listener` is held; everything below runs under its lock.
    unsafe {
        bindings::yasmin_lock_sock(listener);
        let r = accept_on(listener, peer, peer_cid, own, id, ring, evtchn);
        bindings::release_sock(listener);
        bindings::yasmin_sock_put(listener);
        if let Err(reason) = r {
            reset(reason);
        }
    }
}

/// # Safety
///
/// `listener` is a held, locked socket.
unsafe fn accept_on(
    listener: *mut sock,
    peer: u16,
    peer_cid: u32,
    own: u32,
    id: ConnId,
    ring: RingRef,
    evtchn: u32,
) -> core::result::Result<(), u32> {
    // SAFETY: locked listener.
    unsafe {
        if (*listener).__sk_common.skc_state != bindings::TCP_LISTEN as u8 {
            return Err(wire::RESET_NO_LISTENER);
        }
        if bindings::yasmin_sk_acceptq_is_full(listener) {
            return Err(wire::RESET_BACKLOG);
        }
        let child = bindings::vsock_create_connected(listener);
        if child.is_null() {
            return Err(wire::RESET_NO_MEMORY);
        }
        bindings::lock_sock_nested(child, 1);
        let vchild = vsk_of(child);
        bindings::vsock_addr_init(&mut (*vchild).local_addr, own, id.dst_port);
        bindings::vsock_addr_init(&mut (*vchild).remote_addr, peer_cid, id.src_port);
        let r = bindings::vsock_assign_transport(vchild, vsk_of(listener));
        let ours = TRANSPORT.load(Ordering::Relaxed).cast_const();
        let set_up = if r != 0 || (*vchild).transport != ours {
            Err(wire::RESET_NO_MEMORY)
        } else {
            child_rings(vchild, peer, ring, evtchn, id.token)
        };
        let answer = match set_up {
            Ok(m) => m,
            Err(reason) => {
                bindings::release_sock(child);
                bindings::yasmin_sock_put(child);
                return Err(reason);
            }
        };
        (*child).__sk_common.skc_state = bindings::TCP_ESTABLISHED as u8;
        bindings::yasmin_sk_acceptq_added(listener);
        bindings::vsock_insert_connected(vchild);
        bindings::vsock_enqueue_accept(listener, child);
        // The table's reference.
        bindings::yasmin_sock_hold(child);
        let registered = with_plane(|p| p.register_sock(peer, id.token, child, answer));
        if let Some(st) = state(vchild) {
            st.registered = matches!(registered, Some(Ok(())));
        }
        if !matches!(registered, Some(Ok(()))) {
            bindings::yasmin_sock_put(child);
            set_reset(child, bindings::ECONNRESET as i32);
        }
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        bindings::release_sock(child);
        if let Some(f) = (*listener).sk_data_ready {
            f(listener);
        }
    }
    Ok(())
}

/// Maps the connector's ring, binds its port, allocates our ring; returns the ACCEPT.
///
/// # Safety
///
/// `vchild` is a new, locked socket of ours.
unsafe fn child_rings(
    vchild: *mut vsock_sock,
    peer: u16,
    ring: RingRef,
    evtchn: u32,
    token: u64,
) -> core::result::Result<Msg, u32> {
    // SAFETY: locked new socket of ours.
    let st = unsafe { state(vchild) }.ok_or(wire::RESET_NO_MEMORY)?;
    st.peer = peer;
    st.stats = peer_stats::of(peer);
    PeerStats::add(&st.stats.connections, 1);
    st.token = token;
    st.rx = Some(RxRing::map(peer, ring.dir_gref, ring.pages).map_err(|_| wire::RESET_BAD_RING)?);
    // SAFETY: locked socket.
    let pages = ring_pages_for(unsafe { (*vchild).buffer_size });
    st.tx = Some(TxRing::new(peer, pages).map_err(|_| wire::RESET_NO_MEMORY)?);
    let cookie = sk_of(vchild) as usize;
    st.evt = Some(
        EventChannel::bind_interdomain(peer, evtchn, on_sock_event, cookie)
            .map_err(|_| wire::RESET_BAD_RING)?,
    );
    let tx = st.tx.as_ref().ok_or(wire::RESET_NO_MEMORY)?;
    // SAFETY: locked socket.
    let id = unsafe { conn_id(vchild, token) };
    Ok(Msg::Accept {
        id,
        ring: RingRef {
            dir_gref: tx.dir_gref(),
            pages: tx.pages(),
        },
    })
}

// ---- registration -------------------------------------------------------------------

/// The registered transport; unregistered on drop.
pub(crate) struct Transport {
    t: Pin<KBox<Opaque<vsock_transport>>>,
}

// SAFETY: after registration af_vsock only reads the ops table; we never write it again.
unsafe impl Send for Transport {}
// SAFETY: `&Transport` gives no access to the table.
unsafe impl Sync for Transport {}

impl Transport {
    pub(crate) fn register(cid: u32, ring_pages: u32, max_ring_pages: u32) -> Result<Self> {
        LOCAL_CID.store(cid, Ordering::Relaxed);
        RING_PAGES.store(ring_pages, Ordering::Relaxed);
        MAX_RING_PAGES.store(max_ring_pages, Ordering::Relaxed);
        let t = KBox::pin(Opaque::<vsock_transport>::uninit(), GFP_KERNEL)?;
        // SAFETY: we own the table: zero it (all callbacks absent), then fill ours in.
        unsafe {
            let p = t.get();
            core::ptr::write_bytes(p, 0, 1);
            (*p).module = bindings::yasmin_this_module();
            (*p).init = Some(t_init);
            (*p).destruct = Some(t_destruct);
            (*p).release = Some(t_release);
            (*p).connect = Some(t_connect);
            (*p).stream_dequeue = Some(t_dequeue);
            (*p).stream_enqueue = Some(t_enqueue);
            (*p).stream_has_data = Some(t_has_data);
            (*p).stream_has_space = Some(t_has_space);
            (*p).stream_rcvhiwat = Some(t_rcvhiwat);
            (*p).stream_is_active = Some(t_is_active);
            (*p).stream_allow = Some(t_stream_allow);
            (*p).notify_poll_in = Some(t_poll_in);
            (*p).notify_poll_out = Some(t_poll_out);
            (*p).notify_recv_init = Some(t_recv_nop);
            (*p).notify_recv_pre_block = Some(t_recv_pre_block);
            (*p).notify_recv_pre_dequeue = Some(t_recv_nop);
            (*p).notify_recv_post_dequeue = Some(t_recv_post_dequeue);
            (*p).notify_send_init = Some(t_send_nop);
            (*p).notify_send_pre_block = Some(t_send_pre_block);
            (*p).notify_send_pre_enqueue = Some(t_send_nop);
            (*p).notify_send_post_enqueue = Some(t_send_post_enqueue);
            (*p).notify_buffer_size = Some(t_buffer_size);
            (*p).unsent_bytes = Some(t_unsent);
            (*p).shutdown = Some(t_shutdown);
            (*p).get_local_cid = Some(t_local_cid);
        }
        TRANSPORT.store(t.get(), Ordering::Release);
        // SAFETY: the table lives (pinned) until `drop` unregisters it.
        let rc = unsafe {
            bindings::vsock_core_register(t.get(), bindings::VSOCK_TRANSPORT_F_G2H as i32)
        };
        if rc != 0 {
            TRANSPORT.store(null_mut(), Ordering::Release);
            return Err(Error::from_errno(rc));
        }
        Ok(Transport { t })
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Every socket of ours holds a module reference, so none is left here.
        // SAFETY: registered in `register`.
        unsafe { bindings::vsock_core_unregister(self.t.get()) };
        TRANSPORT.store(null_mut(), Ordering::Release);
    }
}
