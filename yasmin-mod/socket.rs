// SPDX-License-Identifier: GPL-2.0
//! Our sockets: the kernel's `struct vsock_sock` behind one typed wrapper, and the state
//! YASMIN keeps in each (`vsk->trans`). This is the only file that writes `struct sock` /
//! `struct vsock_sock` fields, takes or drops socket references, or touches the user's
//! message buffer.
//!
//! - [`Sock`]: a vsock socket; references are [`ARef<Sock>`] (sock_hold / sock_put).
//! - [`Locked`]: the socket lock is held (taken here, or by af_vsock around a callback);
//!   functions that need the lock take one, and every state change is one of its named
//!   transitions: [`Locked::establish`], [`Locked::reset`], [`Locked::fail`],
//!   [`Locked::peer_shutdown`],
//!   [`Locked::peer_closed`], [`Locked::peer_done_writing`], [`Locked::peer_done_reading`],
//!   [`Sock::wake`].
//! - [`SockState`]: peer, token, rings and event channel of one connection.
//! - [`MsgIter`]: the user's buffer of one send or receive.

use crate::bindings::{self, msghdr, sock, vsock_sock, vsock_transport};
use crate::stats::{self, PeerStats};
use crate::xen::rings::{RxRing, TxRing};
use crate::xen::EventChannel;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

const PAGE: u64 = crate::control::wire::PAGE_SIZE as u64;
/// `SINGLE_DEPTH_NESTING`: a child socket is locked while its listener is.
const NESTED: i32 = 1;

/// YASMIN's state of one socket, reachable only through [`Locked`].
pub(crate) struct SockState {
    pub(crate) peer: u16,
    pub(crate) token: u64,
    /// Registered in the control plane's table (which holds a socket reference).
    pub(crate) registered: bool,
    /// The peer released its socket (its CLOSE arrived): we still answer with ours.
    pub(crate) peer_closed: bool,
    /// Failed where nothing could sleep ([`Locked::fail`]): `release` still has to tell
    /// the peer and free the rings.
    pub(crate) broken: bool,
    /// The peer's counters. Written (by [`SockState::set_peer`]) before the event channel
    /// is bound and never again: the interrupt handler reads it without the lock.
    stats: &'static PeerStats,
    /// Test hook armed on this socket: every write leaves its ring header corrupted.
    #[cfg(yasmin_test)]
    pub(crate) scribbling: bool,
    pub(crate) evt: Option<EventChannel>,
    pub(crate) tx: Option<TxRing>,
    pub(crate) rx: Option<RxRing>,
    /// SOCK_SEQPACKET: free bytes the record a sender waits to write needs (0: none
    /// waiting). Until then the ring has no space for it (`stream_has_space` is 0), or
    /// af_vsock's send loop would spin on a ring with room for less than the record.
    pub(crate) record_need: usize,
}

impl SockState {
    fn new() -> Self {
        SockState {
            peer: 0,
            token: 0,
            registered: false,
            peer_closed: false,
            broken: false,
            stats: stats::no_peer(),
            #[cfg(yasmin_test)]
            scribbling: false,
            evt: None,
            tx: None,
            rx: None,
            record_need: 0,
        }
    }

    /// Names the connection's peer and token. Before the event channel is bound.
    pub(crate) fn set_peer(&mut self, peer: u16, token: u64) {
        self.peer = peer;
        self.token = token;
        self.stats = stats::of_peer(peer);
    }

    pub(crate) fn stats(&self) -> &'static PeerStats {
        self.stats
    }

    /// Signals the peer through the connection's event channel, if it has one.
    pub(crate) fn notify(&self) {
        if let Some(e) = self.evt.as_ref() {
            crate::profiled!(NOTIFY, e.notify());
            stats::add(&stats::SIGNALS_SENT, 1);
            stats::add(&self.stats.signals_sent, 1);
        }
    }

    /// Drops the connection's rings and event channel.
    pub(crate) fn release_rings(&mut self) {
        // Unbind first: no interrupt may touch the socket once the rings are gone.
        self.evt = None;
        self.tx = None;
        self.rx = None;
        self.record_need = 0;
    }
}

/// A vsock socket (`struct vsock_sock`, which starts with its `struct sock`).
///
/// # Invariants
///
/// - A `&Sock` refers to a live socket for the whole borrow: an [`ARef<Sock>`] owns a
///   reference, and callbacks get theirs from af_vsock, which holds one for the call.
/// - Its fields are written only through [`Locked`] (socket lock held), apart from the
///   wake-ups, which the kernel allows from any context.
/// - `trans` is null or a `KBox<SockState>` installed by [`Locked::attach_state`].
#[repr(transparent)]
pub(crate) struct Sock(Opaque<vsock_sock>);

// SAFETY: a `struct sock` is shared between CPUs by design; every access we make goes
// through its lock (`Locked`), its reference count, or wake-ups that are IRQ-safe.
unsafe impl Send for Sock {}
// SAFETY: as above: `&Sock` only allows lock-protected or thread-safe operations.
unsafe impl Sync for Sock {}

// SAFETY: sock_hold/sock_put are the socket's reference count; the socket is freed only
// when it drops to zero.
unsafe impl AlwaysRefCounted for Sock {
    fn inc_ref(&self) {
        // SAFETY: the socket is live (type invariant), so its count is non-zero.
        unsafe { bindings::yasmin_sock_hold(self.sk()) };
    }

    /// # Safety
    ///
    /// The caller gives up one reference it owns (the trait's contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns (trait contract).
        unsafe { bindings::yasmin_sock_put(obj.as_ptr().cast()) };
    }
}

impl Sock {
    /// # Safety
    ///
    /// `vsk` points to a live vsock socket for `'a` (e.g. af_vsock's argument to a callback).
    pub(crate) unsafe fn from_vsk<'a>(vsk: *mut vsock_sock) -> &'a Sock {
        // SAFETY: `Sock` is a transparent wrapper of `vsock_sock`; liveness by the caller.
        unsafe { &*vsk.cast::<Sock>() }
    }

    /// Takes over a reference the caller owns on `sk` (null: none).
    ///
    /// # Safety
    ///
    /// `sk` is null or a vsock socket on which the caller owns a reference it gives up.
    unsafe fn adopt(sk: *mut sock) -> Option<ARef<Sock>> {
        // SAFETY: `struct vsock_sock` starts with its `struct sock`; the reference is ours.
        NonNull::new(sk.cast::<Sock>()).map(|p| unsafe { ARef::from_raw(p) })
    }

    fn vsk(&self) -> *mut vsock_sock {
        self.0.get()
    }

    fn sk(&self) -> *mut sock {
        self.0.get().cast()
    }

    /// Takes the socket lock (may sleep).
    pub(crate) fn lock(&self) -> Locked<'_> {
        // SAFETY: a live socket (type invariant); process context.
        unsafe { bindings::yasmin_lock_sock(self.sk()) };
        // INVARIANT: we hold the lock until the guard drops.
        Locked {
            sock: self,
            owned: true,
        }
    }

    /// A guard for a lock the caller already holds; it does not unlock on drop.
    ///
    /// # Safety
    ///
    /// The caller holds the socket lock for `'a` (af_vsock does around most callbacks),
    /// or has exclusive access to the socket (it is being destroyed).
    pub(crate) unsafe fn assume_locked(&self) -> Locked<'_> {
        // INVARIANT: guaranteed by the caller.
        Locked {
            sock: self,
            owned: false,
        }
    }

    /// Wakes readers, writers and pollers (callable from hard IRQ context).
    pub(crate) fn wake(&self) {
        // SAFETY: a live socket; the wake callbacks are IRQ-safe.
        unsafe { bindings::yasmin_sk_wake(self.sk()) };
    }

    /// The cookie our per-socket event channel hands to [`Sock::from_cookie`].
    pub(crate) fn cookie(&self) -> usize {
        self.sk() as usize
    }

    /// # Safety
    ///
    /// `cookie` came from [`Sock::cookie`] of a socket whose event channel is still bound
    /// (the channel is unbound, waiting for the handler, before the socket can go).
    pub(crate) unsafe fn from_cookie<'a>(cookie: *mut c_void) -> &'a Sock {
        // SAFETY: by the caller, a live socket.
        unsafe { &*cookie.cast::<Sock>() }
    }

    /// The per-socket interrupt: count the signal and wake everyone waiting.
    pub(crate) fn signal_received(&self) {
        stats::add(&stats::SIGNALS_RECEIVED, 1);
        // SAFETY: `trans` is stable while the channel is bound (installed before, freed
        // after); `stats` is written before the channel is bound and never again, so this
        // plain read of that one field races with nothing. No reference to the state is
        // formed: the lock owner may be using it.
        unsafe {
            let st = (*self.vsk()).trans.cast::<SockState>();
            if !st.is_null() {
                stats::add(&core::ptr::addr_of!((*st).stats).read().signals_received, 1);
            }
        }
        crate::profiled!(IRQ, self.wake());
    }

    /// The listening socket bound to `port` on our CID, if any.
    pub(crate) fn find_listener(local_cid: u32, port: u32) -> Option<ARef<Sock>> {
        // SAFETY: an all-zero sockaddr_vm is valid; vsock_addr_init fills it.
        let mut addr: bindings::sockaddr_vm = unsafe { core::mem::zeroed() };
        // SAFETY: a valid out-structure.
        unsafe { bindings::vsock_addr_init(&mut addr, local_cid, port) };
        // SAFETY: looks up af_vsock's bound table; returns a held socket or null.
        unsafe { Self::adopt(bindings::vsock_find_bound_socket(&mut addr)) }
    }
}

/// The socket lock is held on `sock`.
///
/// # Invariants
///
/// The lock is held for the guard's whole life; if `owned`, the guard took it and
/// releases it on drop.
pub(crate) struct Locked<'a> {
    sock: &'a Sock,
    owned: bool,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we took the lock (type invariant).
            unsafe { bindings::release_sock(self.sock.sk()) };
        }
    }
}

impl<'a> Locked<'a> {
    /// The locked socket.
    pub(crate) fn sock(&self) -> &'a Sock {
        self.sock
    }

    fn vsk(&self) -> *mut vsock_sock {
        self.sock.vsk()
    }

    fn sk(&self) -> *mut sock {
        self.sock.sk()
    }

    /// A SOCK_SEQPACKET socket (records), else SOCK_STREAM (bytes).
    pub(crate) fn is_seqpacket(&self) -> bool {
        // SAFETY: a live socket (we hold its lock); `sk_type` is set at creation.
        unsafe { bindings::yasmin_sock_is_seqpacket(self.sk()) }
    }

    /// YASMIN's state of this socket (none before init or after destruct).
    pub(crate) fn state(&mut self) -> Option<&mut SockState> {
        // SAFETY: `trans` is null or our `KBox<SockState>` (type invariant of `Sock`),
        // used only under the lock, which we hold, and borrowed as long as the guard.
        unsafe { (*self.vsk()).trans.cast::<SockState>().as_mut() }
    }

    /// Transport init: installs a fresh state and the buffer sizes (inherited from the
    /// listener for a child, else the module's default ring and bounds).
    pub(crate) fn attach_state(&mut self, parent: Option<&Sock>, ring: u64, max: u64) -> Result {
        let st = KBox::new(SockState::new(), GFP_KERNEL)?;
        stats::add(&stats::SOCKETS, 1);
        let sizes = match parent {
            // SAFETY: af_vsock passes the listener, locked by its caller: plain reads.
            Some(p) => unsafe {
                let p = p.vsk();
                ((*p).buffer_size, (*p).buffer_min_size, (*p).buffer_max_size)
            },
            None => (ring * PAGE, PAGE, max * PAGE),
        };
        let v = self.vsk();
        // SAFETY: a socket being set up, locked or not yet visible to anyone else.
        // INVARIANT: `trans` holds our `KBox<SockState>` until `detach_state`.
        unsafe {
            (*v).trans = KBox::into_raw(st).cast();
            ((*v).buffer_size, (*v).buffer_min_size, (*v).buffer_max_size) = sizes;
        }
        Ok(())
    }

    /// Transport destruct: frees the state.
    pub(crate) fn detach_state(&mut self) {
        let v = self.vsk();
        // SAFETY: the socket is being destroyed: nobody else uses `trans` now.
        let p = unsafe { core::ptr::replace(&mut (*v).trans, core::ptr::null_mut()) };
        let p = p.cast::<SockState>();
        if !p.is_null() {
            // SAFETY: installed by `attach_state` from `KBox::into_raw`, now unreachable.
            drop(unsafe { KBox::from_raw(p) });
            stats::SOCKETS.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(crate) fn local_port(&self) -> u32 {
        // SAFETY: a plain read of the locked socket.
        unsafe { (*self.vsk()).local_addr.svm_port }
    }

    pub(crate) fn remote_port(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.vsk()).remote_addr.svm_port }
    }

    pub(crate) fn remote_cid(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.vsk()).remote_addr.svm_cid }
    }

    /// SO_LINGER's time in milliseconds for a close() by a process (0: close at once).
    pub(crate) fn linger_ms(&self) -> u32 {
        // SAFETY: a locked socket; reads its flags and linger time.
        unsafe { bindings::yasmin_sock_linger_ms(self.sk()) }
    }

    /// Sleeps `ms` milliseconds with the socket unlocked (others may use it meanwhile,
    /// as with `sk_wait_event`), then locks it again. `false`: a signal cut it short.
    pub(crate) fn sleep_unlocked(&mut self, ms: u32) -> bool {
        // SAFETY: the lock is ours (af_vsock's, held for this callback) and is taken back
        // before returning, at the depth of a socket a process releases (af_vsock takes
        // it so, and only such sockets linger).
        unsafe {
            bindings::release_sock(self.sk());
            let left = bindings::msleep_interruptible(ms);
            bindings::lock_sock_nested(self.sk(), 0);
            left == 0
        }
    }

    /// Sets SO_VM_SOCKETS_BUFFER_SIZE as getsockopt reads it (the ring size in use).
    pub(crate) fn set_buffer_size(&mut self, bytes: u64) {
        // SAFETY: written under the socket lock, as af_vsock does.
        unsafe { (*self.vsk()).buffer_size = bytes };
    }

    /// SO_VM_SOCKETS_BUFFER_SIZE.
    pub(crate) fn buffer_size(&self) -> u64 {
        // SAFETY: read under the socket lock.
        unsafe { (*self.vsk()).buffer_size }
    }

    /// The TCP-style state (`TCP_ESTABLISHED`, ...).
    pub(crate) fn tcp_state(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.sk()).__sk_common.skc_state as u32 }
    }

    fn set_tcp_state(&mut self, state: u32) {
        // SAFETY: the state is written under the socket lock, as the core does.
        unsafe { (*self.sk()).__sk_common.skc_state = state as u8 };
    }

    fn state_change(&self) {
        let sk = self.sk();
        // SAFETY: the socket's own callback, called with its lock held as the core does.
        unsafe {
            if let Some(f) = (*sk).sk_state_change {
                f(sk);
            }
        }
    }

    /// Connector side, on the peer's ACCEPT: the connection is up.
    pub(crate) fn establish(&mut self, remote_port: u32) {
        self.set_tcp_state(bindings::TCP_ESTABLISHED);
        // SAFETY: written under the socket lock; `sk_socket` is null or the socket's live
        // `struct socket` (a connecting socket is owned by a process); then the socket,
        // connected, goes into af_vsock's connected table.
        unsafe {
            (*self.vsk()).remote_addr.svm_port = remote_port;
            if let Some(so) = (*self.sk()).sk_socket.as_mut() {
                so.state = bindings::socket_state_SS_CONNECTED;
            }
            bindings::vsock_insert_connected(self.vsk());
        }
        self.state_change();
    }

    /// The connection is gone with `errno` (peer RESET, pair failure, corrupt ring): the
    /// socket is closed, its rings released, and its users see the error.
    pub(crate) fn reset(&mut self, errno: u32) {
        self.set_error(errno);
        if let Some(st) = self.state() {
            st.registered = false;
            st.release_rings();
        }
    }

    /// As [`Locked::reset`], where nothing may sleep (af_vsock calls `has_data` after
    /// `prepare_to_wait`): only the socket's state changes now; the rings go, and the
    /// peer hears of it, at release ([`SockState::broken`]).
    pub(crate) fn fail(&mut self, errno: u32) {
        self.set_error(errno);
        if let Some(st) = self.state() {
            st.broken = true;
        }
    }

    fn set_error(&mut self, errno: u32) {
        stats::add(&stats::RESETS, 1);
        self.set_tcp_state(bindings::TCP_CLOSE);
        // SAFETY: fields written under the socket lock, as the core does.
        unsafe {
            (*self.sk()).sk_err = errno as i32;
            (*self.vsk()).peer_shutdown = bindings::SHUTDOWN_MASK;
        }
        if let Some(st) = self.state() {
            stats::add(&st.stats.resets, 1);
        }
        // SAFETY: a locked socket; reports `sk_err` to waiters (wakes, never sleeps).
        unsafe { bindings::sk_error_report(self.sock.sk()) };
    }

    /// The peer shut down `mode` (RCV_SHUTDOWN / SEND_SHUTDOWN bits).
    pub(crate) fn peer_shutdown(&mut self, mode: u32) {
        // SAFETY: written under the socket lock.
        unsafe { (*self.vsk()).peer_shutdown |= mode & bindings::SHUTDOWN_MASK };
        self.state_change();
        self.sock.wake();
    }

    /// The peer released its socket: it reads and writes no more, but what it wrote
    /// stays mapped for us to drain.
    pub(crate) fn peer_closed(&mut self) {
        if let Some(st) = self.state() {
            st.registered = false;
            st.peer_closed = true;
        }
        self.peer_shutdown(bindings::SHUTDOWN_MASK);
    }

    /// A new `connect()` attempt: what an earlier, failed attempt recorded of its peer
    /// (a RESET marks the peer shut down both ways) does not carry over, or the new
    /// connection's sends would fail with EPIPE.
    pub(crate) fn clear_peer_shutdown(&mut self) {
        // SAFETY: written under the socket lock.
        unsafe { (*self.vsk()).peer_shutdown = 0 };
    }

    /// What the peer has shut down (RCV_SHUTDOWN / SEND_SHUTDOWN bits), as far as we know.
    pub(crate) fn peer_shutdown_mask(&self) -> u32 {
        // SAFETY: read under the socket lock.
        unsafe { (*self.vsk()).peer_shutdown }
    }

    /// The peer closed its ring and everything in it has been read: that is its SHUT_WR,
    /// even before its CLOSE message (slower, on the control channel) arrives.
    pub(crate) fn peer_done_writing(&mut self) {
        // SAFETY: written under the socket lock.
        unsafe { (*self.vsk()).peer_shutdown |= bindings::SEND_SHUTDOWN };
    }

    /// The peer shut down reading (its ring's reader-closed flag): sends fail with EPIPE
    /// at once, before its SHUTDOWN message (slower, on the control channel) arrives.
    pub(crate) fn peer_done_reading(&mut self) {
        // SAFETY: written under the socket lock.
        unsafe { (*self.vsk()).peer_shutdown |= bindings::RCV_SHUTDOWN };
    }

    /// Transport release: out of af_vsock's bound and connected tables.
    pub(crate) fn remove_from_tables(&mut self) {
        // SAFETY: a locked socket of ours.
        unsafe { bindings::vsock_remove_sock(self.sock.vsk()) };
    }

    /// Whether this listener takes one more connection: still listening (else
    /// `Err(RESET_NO_LISTENER)`), its accept queue not full (else `Err(RESET_BACKLOG)`).
    fn has_room(&self) -> core::result::Result<(), u32> {
        use crate::control::wire::{RESET_BACKLOG, RESET_NO_LISTENER};
        if self.tcp_state() != bindings::TCP_LISTEN {
            return Err(RESET_NO_LISTENER);
        }
        // SAFETY: a locked listener.
        if unsafe { bindings::yasmin_sk_acceptq_is_full(self.sock.sk()) } {
            return Err(RESET_BACKLOG);
        }
        Ok(())
    }

    /// Listener side of an incoming connection, first step: a child socket at `local`
    /// (cid, port), connected to `remote`, on transport `ours`. Only the returned
    /// reference knows it (it is in no table or queue yet): the caller sets it up with
    /// the listener unlocked, then queues it with [`Locked::queue_child`], or drops it.
    /// `Err(reason)` (a wire RESET reason) if it cannot be made.
    pub(crate) fn new_child(
        &mut self,
        ours: *const vsock_transport,
        local: (u32, u32),
        remote: (u32, u32),
    ) -> core::result::Result<ARef<Sock>, u32> {
        use crate::control::wire::RESET_NO_MEMORY;
        self.has_room()?;
        // SAFETY: a locked listener; returns a new socket with one reference (ours) or null.
        let child = crate::profiled!(CHILD_NEW, unsafe {
            Sock::adopt(bindings::vsock_create_connected(self.sock.sk()))
        });
        let child = child.ok_or(RESET_NO_MEMORY)?;
        // SAFETY: a live socket, locked below its listener (lockdep nesting level 1).
        unsafe { bindings::lock_sock_nested(child.sk(), NESTED) };
        // INVARIANT: we took the lock; the guard releases it.
        let c = Locked {
            sock: &child,
            owned: true,
        };
        // SAFETY: the locked child's address fields; then af_vsock picks the child's transport from its addresses (both locked).
        let rc = unsafe {
            bindings::vsock_addr_init(&mut (*c.vsk()).local_addr, local.0, local.1);
            bindings::vsock_addr_init(&mut (*c.vsk()).remote_addr, remote.0, remote.1);
            bindings::vsock_assign_transport(c.vsk(), self.vsk())
        };
        if rc != 0 || !uses_transport(c.sock, ours) {
            return Err(RESET_NO_MEMORY); // the guard unlocks, the ARef drops the child
        }
        drop(c);
        Ok(child)
    }

    /// Listener side, last step: queues `child` (from [`Locked::new_child`], set up) for
    /// accept(), if the listener still listens and has room, and once `register` (run
    /// with both locked) agrees. `Err(reason)` (a wire RESET reason, or whatever
    /// `register` returned) otherwise: the child goes with its reference.
    pub(crate) fn queue_child(
        &mut self,
        child: ARef<Sock>,
        register: impl FnOnce(&mut Locked<'_>) -> core::result::Result<(), u32>,
    ) -> core::result::Result<(), u32> {
        // Again: closed, or filled by set-ups that ended first, while the child was set up.
        self.has_room()?;
        // SAFETY: a live socket, locked below its listener (lockdep nesting level 1).
        unsafe { bindings::lock_sock_nested(child.sk(), NESTED) };
        // INVARIANT: we took the lock; the guard releases it.
        let mut c = Locked {
            sock: &child,
            owned: true,
        };
        register(&mut c)?;
        c.set_tcp_state(bindings::TCP_ESTABLISHED);
        // SAFETY: listener and child locked; the accept queue takes its own references.
        unsafe {
            bindings::yasmin_sk_acceptq_added(self.sk());
            bindings::vsock_insert_connected(c.vsk());
            bindings::vsock_enqueue_accept(self.sk(), c.sk());
        }
        drop(c);
        // The creation reference now belongs to the socket itself: af_vsock drops it when
        // the accepted socket is released.
        let _ = ARef::into_raw(child);
        let l = self.sk();
        // SAFETY: the listener's own callback, called with its lock held.
        unsafe {
            if let Some(f) = (*l).sk_data_ready {
                f(l);
            }
        }
        Ok(())
    }
}

/// Whether `vsk` uses transport `t` (as af_vsock assigned it).
pub(crate) fn uses_transport(sock: &Sock, t: *const vsock_transport) -> bool {
    // SAFETY: a plain read of a pointer field af_vsock sets before calling the transport.
    core::ptr::eq(unsafe { (*sock.vsk()).transport }, t)
}

/// The user's buffer of one send or receive (`msg->msg_iter`).
pub(crate) struct MsgIter<'a> {
    msg: *mut msghdr,
    iter: *mut bindings::iov_iter,
    _call: PhantomData<&'a mut msghdr>,
}

impl<'a> MsgIter<'a> {
    /// # Safety
    ///
    /// `msg` is the message header af_vsock passed to this call, valid for `'a`.
    pub(crate) unsafe fn new(msg: *mut msghdr) -> Self {
        MsgIter {
            msg,
            // SAFETY: by the caller, `msg` is valid.
            iter: unsafe { core::ptr::addr_of_mut!((*msg).msg_iter) },
            _call: PhantomData,
        }
    }

    /// Bytes left in the user's buffer.
    pub(crate) fn data_left(&self) -> usize {
        // SAFETY: `msg` is valid for the call (`new`).
        unsafe { bindings::yasmin_msg_data_left(self.msg) }
    }

    /// The sender asked for `MSG_EOR` (SOCK_SEQPACKET).
    pub(crate) fn eor(&self) -> bool {
        // SAFETY: `msg` is valid for the call; a plain read of the caller's flags.
        unsafe { (*self.msg).msg_flags & bindings::MSG_EOR != 0 }
    }

    /// Tells the receiver its record ended with `MSG_EOR`.
    pub(crate) fn set_eor(&mut self) {
        // SAFETY: `msg` is valid for the call; af_vsock returns `msg_flags` to the user.
        unsafe { (*self.msg).msg_flags |= bindings::MSG_EOR };
    }

    /// The copier for `ring::Consumer::read` / `peek`: ring segment -> user memory.
    /// Returns the bytes copied, fewer on a fault in the user's buffer.
    pub(crate) fn to_user(&mut self) -> impl FnMut(*const u8, usize) -> usize + '_ {
        // SAFETY: the ring calls this only with `src` valid for reads of `n` bytes (its
        // callback contract); the iterator is the caller's, valid for the call.
        |src, n| unsafe { bindings::_copy_to_iter(src.cast(), n, self.iter) }
    }

    /// The copier for `ring::Producer::write`: user memory -> ring segment.
    pub(crate) fn from_user(&mut self) -> impl FnMut(*mut u8, usize) -> usize + '_ {
        // SAFETY: the ring calls this only with `dst` valid for writes of `n` bytes.
        |dst, n| unsafe { bindings::_copy_from_iter(dst.cast(), n, self.iter) }
    }
}
