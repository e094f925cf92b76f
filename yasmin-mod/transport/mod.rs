// SPDX-License-Identifier: GPL-2.0
//! YASMIN as the guest's G2H `struct vsock_transport`: the ops table and its callbacks.
//!
//! Every callback is a shim: it turns af_vsock's raw pointers into a [`Locked`] socket
//! (af_vsock holds the lock around them) and calls a safe function of `data` (the data
//! path: send, receive, poll) or `connect` (connect, accept, peer messages, shutdown,
//! release). Each connected socket has its own pair of rings (`xen::rings`) and event
//! channel; the per-pair control channel (`crate::plane`) carries only CONNECT, ACCEPT,
//! RESET, SHUTDOWN and CLOSE. Data never touches XenStore or dom0.
//!
//! Lock order: socket lock, then the plane mutex. The plane hands messages for sockets
//! back as events, applied by [`yasmin_control_work`] after it has dropped the mutex.

mod connect;
mod data;

pub(crate) use connect::IncomingSetup;

use crate::bindings::{self, msghdr, vsock_sock, vsock_transport};
use crate::control::paths;
use crate::control::wire::PAGE_SIZE;
use crate::plane;
use crate::socket::{Locked, MsgIter, Sock};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// Our CID (domid + 2), for `get_local_cid`.
static LOCAL_CID: AtomicU32 = AtomicU32::new(0);
/// Default and largest ring, in pages (module parameters).
static RING_PAGES: AtomicU32 = AtomicU32::new(1);
static MAX_RING_PAGES: AtomicU32 = AtomicU32::new(1);

pub(crate) fn local_cid() -> u32 {
    LOCAL_CID.load(Ordering::Relaxed)
}

/// A new domain after restore or migration: a new CID for `get_local_cid` (getsockname,
/// IOCTL_VM_SOCKETS_GET_LOCAL_CID, new binds) and `stream_allow`.
pub(crate) fn set_local_cid(cid: u32) {
    LOCAL_CID.store(cid, Ordering::Relaxed);
}

/// Applies a socket event from the plane outside the work item (lifecycle.rs).
pub(crate) fn apply(ev: plane::SockEvent) {
    connect::apply(ev);
}

/// Pages for a ring of `bytes` (SO_VM_SOCKETS_BUFFER_SIZE), within the module's bounds.
fn ring_pages_for(bytes: u64) -> u16 {
    let max = MAX_RING_PAGES.load(Ordering::Relaxed) as u64;
    let want = bytes.div_ceil(PAGE_SIZE as u64).clamp(1, max);
    want.next_power_of_two().min(max) as u16
}

/// Whether a peer's ring of `pages` is within our `max_ring_pages` (we map it whole).
fn ring_pages_ok(pages: u16) -> bool {
    pages as u32 <= MAX_RING_PAGES.load(Ordering::Relaxed)
}

/// Our ops table, to recognise our sockets.
fn ours() -> *const vsock_transport {
    &OPS.0
}

/// The socket af_vsock passed to a callback, with the lock it holds.
///
/// # Safety
///
/// `vsk` is live and locked by the caller for `'a` (or being destroyed, unshared).
unsafe fn locked<'a>(vsk: *mut vsock_sock) -> Locked<'a> {
    // SAFETY: by the caller.
    unsafe { Sock::from_vsk(vsk).assume_locked() }
}

// ---- callbacks (af_vsock calls each with a live `vsk`, locked unless said otherwise) ----

/// # Safety
///
/// `vsk` is a new socket, not yet visible to others; `psk` null or its locked listener.
unsafe extern "C" fn sock_init(vsk: *mut vsock_sock, psk: *mut vsock_sock) -> c_int {
    // SAFETY: by the caller; the parent, if any, is live for the call.
    let (mut sk, parent) = unsafe { (locked(vsk), psk.as_ref().map(|_| Sock::from_vsk(psk))) };
    let (ring, max) = (
        RING_PAGES.load(Ordering::Relaxed),
        MAX_RING_PAGES.load(Ordering::Relaxed),
    );
    match sk.attach_state(parent, ring as u64, max as u64) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `vsk` is being destroyed: nobody else uses it.
unsafe extern "C" fn sock_destruct(vsk: *mut vsock_sock) {
    // SAFETY: by the caller, exclusive access.
    unsafe { locked(vsk) }.detach_state();
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn sock_release(vsk: *mut vsock_sock) {
    // SAFETY: by the caller.
    connect::release(&mut unsafe { locked(vsk) });
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn sock_connect(vsk: *mut vsock_sock) -> c_int {
    // SAFETY: by the caller.
    connect::connect(&mut unsafe { locked(vsk) })
}

/// af_vsock gave up on a `connect()` (timeout, signal): end that attempt.
///
/// # Safety
///
/// `vsk` live and locked; process context.
unsafe extern "C" fn cancel_pkt(vsk: *mut vsock_sock) -> c_int {
    // SAFETY: by the caller.
    connect::cancel(&mut unsafe { locked(vsk) });
    0
}

/// # Safety
///
/// `vsk` live and locked; `msg` the caller's message header, valid for the call.
unsafe extern "C" fn stream_dequeue(
    vsk: *mut vsock_sock,
    msg: *mut msghdr,
    len: usize,
    flags: c_int,
) -> isize {
    // SAFETY: by the caller.
    let (mut sk, mut msg) = unsafe { (locked(vsk), MsgIter::new(msg)) };
    crate::profiled!(DEQUEUE, data::dequeue(&mut sk, &mut msg, len, flags))
}

/// # Safety
///
/// As for [`stream_dequeue`].
unsafe extern "C" fn stream_enqueue(vsk: *mut vsock_sock, msg: *mut msghdr, len: usize) -> isize {
    // SAFETY: by the caller.
    let (mut sk, mut msg) = unsafe { (locked(vsk), MsgIter::new(msg)) };
    crate::profiled!(ENQUEUE, data::enqueue(&mut sk, &mut msg, len))
}

/// # Safety
///
/// As for [`stream_dequeue`].
unsafe extern "C" fn seqpacket_dequeue(
    vsk: *mut vsock_sock,
    msg: *mut msghdr,
    flags: c_int,
) -> isize {
    // SAFETY: by the caller.
    let (mut sk, mut msg) = unsafe { (locked(vsk), MsgIter::new(msg)) };
    data::seq_dequeue(&mut sk, &mut msg, flags)
}

/// # Safety
///
/// As for [`stream_dequeue`].
unsafe extern "C" fn seqpacket_enqueue(
    vsk: *mut vsock_sock,
    msg: *mut msghdr,
    len: usize,
) -> c_int {
    // SAFETY: by the caller.
    let (mut sk, mut msg) = unsafe { (locked(vsk), MsgIter::new(msg)) };
    // A record is at most a ring (2 MiB): the length fits.
    data::seq_enqueue(&mut sk, &mut msg, len) as c_int
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn seqpacket_has_data(vsk: *mut vsock_sock) -> u32 {
    // SAFETY: by the caller.
    data::seq_has_data(&mut unsafe { locked(vsk) }) as u32
}

/// SOCK_SEQPACKET goes wherever SOCK_STREAM does: every YASMIN peer frames records.
///
/// # Safety
///
/// None: a plain value.
unsafe extern "C" fn seqpacket_allow(cid: u32) -> bool {
    // SAFETY: no pointers.
    unsafe { stream_allow(cid, 0) }
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn stream_has_data(vsk: *mut vsock_sock) -> i64 {
    // SAFETY: by the caller.
    data::has_data(&mut unsafe { locked(vsk) })
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn stream_has_space(vsk: *mut vsock_sock) -> i64 {
    // SAFETY: by the caller.
    data::has_space(&mut unsafe { locked(vsk) })
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn stream_rcvhiwat(vsk: *mut vsock_sock) -> u64 {
    // SAFETY: by the caller.
    data::rcvhiwat(&mut unsafe { locked(vsk) })
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn stream_is_active(vsk: *mut vsock_sock) -> bool {
    // SAFETY: by the caller.
    data::is_active(&mut unsafe { locked(vsk) })
}

/// # Safety
///
/// None: plain values.
unsafe extern "C" fn stream_allow(cid: u32, _port: u32) -> bool {
    cid != local_cid() && paths::cid_to_domid(cid).is_some()
}

/// # Safety
///
/// `vsk` live and locked; `ready` valid for a write.
unsafe extern "C" fn notify_poll_in(
    vsk: *mut vsock_sock,
    target: usize,
    ready: *mut bool,
) -> c_int {
    // SAFETY: by the caller.
    let r = data::poll_in(&mut unsafe { locked(vsk) }, target);
    // SAFETY: by the caller.
    unsafe { *ready = r == Ok(true) };
    r.err().unwrap_or(0)
}

/// # Safety
///
/// As for [`notify_poll_in`].
unsafe extern "C" fn notify_poll_out(
    vsk: *mut vsock_sock,
    _target: usize,
    ready: *mut bool,
) -> c_int {
    // SAFETY: by the caller.
    let r = data::poll_out(&mut unsafe { locked(vsk) });
    // SAFETY: by the caller.
    unsafe { *ready = r == Ok(true) };
    r.err().unwrap_or(0)
}

/// # Safety
///
/// `vsk` live and locked (and on its wait queue).
unsafe extern "C" fn notify_recv_pre_block(
    vsk: *mut vsock_sock,
    _target: usize,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    // SAFETY: by the caller.
    data::recv_pre_block(&mut unsafe { locked(vsk) });
    0
}

/// # Safety
///
/// `vsk` live and locked (and on its wait queue).
unsafe extern "C" fn notify_send_pre_block(
    vsk: *mut vsock_sock,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    // SAFETY: by the caller.
    data::send_pre_block(&mut unsafe { locked(vsk) });
    0
}

/// Receive notifications YASMIN needs no work for (the rings carry their own).
///
/// # Safety
///
/// None: nothing is dereferenced.
unsafe extern "C" fn notify_recv_nop(
    _vsk: *mut vsock_sock,
    _target: usize,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    0
}

/// # Safety
///
/// None: nothing is dereferenced.
unsafe extern "C" fn notify_recv_post_dequeue_nop(
    _vsk: *mut vsock_sock,
    _target: usize,
    _copied: isize,
    _data_read: bool,
    _d: *mut bindings::vsock_transport_recv_notify_data,
) -> c_int {
    0
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn notify_send_init(
    vsk: *mut vsock_sock,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    // SAFETY: by the caller.
    data::send_init(&mut unsafe { locked(vsk) });
    0
}

/// # Safety
///
/// None: nothing is dereferenced.
unsafe extern "C" fn notify_send_nop(
    _vsk: *mut vsock_sock,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    0
}

/// # Safety
///
/// None: nothing is dereferenced.
unsafe extern "C" fn notify_send_post_enqueue_nop(
    _vsk: *mut vsock_sock,
    _written: isize,
    _d: *mut bindings::vsock_transport_send_notify_data,
) -> c_int {
    0
}

/// SO_VM_SOCKETS_BUFFER_SIZE: the ring is chosen at connect time from it (a power of two
/// of pages, within bounds; the socket's buffer size then reads that ring's size). A
/// value set afterwards reads back as set, within bounds, as with virtio (vsock_test
/// checks it), though a connection's ring cannot change size.
///
/// # Safety
///
/// `val` valid for reads and writes.
unsafe extern "C" fn notify_buffer_size(_vsk: *mut vsock_sock, val: *mut u64) {
    let max = MAX_RING_PAGES.load(Ordering::Relaxed) as u64 * PAGE_SIZE as u64;
    // SAFETY: by the caller.
    unsafe { *val = (*val).clamp(PAGE_SIZE as u64, max) };
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn unsent_bytes(vsk: *mut vsock_sock) -> isize {
    // SAFETY: by the caller.
    data::unsent(&mut unsafe { locked(vsk) })
}

/// # Safety
///
/// `vsk` live and locked.
unsafe extern "C" fn shutdown(vsk: *mut vsock_sock, mode: c_int) -> c_int {
    // SAFETY: by the caller.
    connect::shutdown(&mut unsafe { locked(vsk) }, mode as u32);
    0
}

/// # Safety
///
/// None.
unsafe extern "C" fn get_local_cid() -> u32 {
    local_cid()
}

/// Per-socket event-channel interrupt (hard IRQ): wake readers, writers and pollers.
///
/// # Safety
///
/// `cookie` is the [`Sock::cookie`] the channel was bound with; the channel is unbound
/// (waiting for this handler) before the socket can be freed.
unsafe extern "C" fn sock_event(_irq: c_int, cookie: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: by the caller.
    unsafe { Sock::from_cookie(cookie) }.signal_received();
    bindings::irqreturn_IRQ_HANDLED
}

/// The control work item (called by glue.c): runs the plane, then applies the socket
/// events it returned, with the plane unlocked. Incoming connections are set up on the
/// set-up workqueue, several at once (each maps the peer's ring, grants ours and binds
/// an event channel: milliseconds that a burst of connects would otherwise wait out one
/// after the other); the rest, in order, here.
#[no_mangle]
extern "C" fn yasmin_control_work() {
    for ev in plane::run_work() {
        match IncomingSetup::of(&ev) {
            Some(job) => match KBox::new(job, GFP_KERNEL) {
                Ok(b) => {
                    if let Err(b) = crate::glue::setup_queue(b) {
                        b.run(); // no memory to queue it: here, now
                    }
                }
                Err(_) => job.run(),
            },
            None => connect::apply(ev),
        }
    }
}

/// One incoming connection's set-up (glue.c's set-up workqueue).
///
/// # Safety
///
/// `job` comes from `glue::setup_queue` (a `KBox<IncomingSetup>` given up with
/// `into_raw`), and is passed here once.
#[no_mangle]
unsafe extern "C" fn yasmin_setup_run(job: *mut c_void) {
    // SAFETY: by the caller, ours again.
    let job = unsafe { KBox::from_raw(job.cast::<IncomingSetup>()) };
    job.run();
}

// ---- the ops table -----------------------------------------------------------------

/// The ops table, immutable after build; af_vsock only reads it.
struct Ops(vsock_transport);

// SAFETY: never written; the only pointer in it is THIS_MODULE, shared by design.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(vsock_transport {
    module: crate::THIS_MODULE.as_ptr().cast(),
    init: Some(sock_init),
    destruct: Some(sock_destruct),
    release: Some(sock_release),
    connect: Some(sock_connect),
    cancel_pkt: Some(cancel_pkt),
    stream_dequeue: Some(stream_dequeue),
    stream_enqueue: Some(stream_enqueue),
    stream_has_data: Some(stream_has_data),
    stream_has_space: Some(stream_has_space),
    stream_rcvhiwat: Some(stream_rcvhiwat),
    stream_is_active: Some(stream_is_active),
    stream_allow: Some(stream_allow),
    seqpacket_dequeue: Some(seqpacket_dequeue),
    seqpacket_enqueue: Some(seqpacket_enqueue),
    seqpacket_allow: Some(seqpacket_allow),
    seqpacket_has_data: Some(seqpacket_has_data),
    notify_poll_in: Some(notify_poll_in),
    notify_poll_out: Some(notify_poll_out),
    notify_recv_init: Some(notify_recv_nop),
    notify_recv_pre_block: Some(notify_recv_pre_block),
    notify_recv_pre_dequeue: Some(notify_recv_nop),
    notify_recv_post_dequeue: Some(notify_recv_post_dequeue_nop),
    notify_send_init: Some(notify_send_init),
    notify_send_pre_block: Some(notify_send_pre_block),
    notify_send_pre_enqueue: Some(notify_send_nop),
    notify_send_post_enqueue: Some(notify_send_post_enqueue_nop),
    notify_buffer_size: Some(notify_buffer_size),
    unsent_bytes: Some(unsent_bytes),
    shutdown: Some(shutdown),
    get_local_cid: Some(get_local_cid),
    // SAFETY: every other member is a nullable pointer or an integer: all-zero is "absent".
    ..unsafe { core::mem::zeroed() }
});

/// The registered transport; unregistered on drop.
pub(crate) struct Transport(());

impl Transport {
    pub(crate) fn register(cid: u32, ring_pages: u32, max_ring_pages: u32) -> Result<Self> {
        LOCAL_CID.store(cid, Ordering::Relaxed);
        RING_PAGES.store(ring_pages, Ordering::Relaxed);
        MAX_RING_PAGES.store(max_ring_pages, Ordering::Relaxed);
        // SAFETY: a static table; unregistered in `drop`.
        let rc = unsafe {
            bindings::vsock_core_register(ours(), bindings::VSOCK_TRANSPORT_F_G2H as i32)
        };
        kernel::error::to_result(rc)?;
        Ok(Transport(()))
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Every socket of ours holds a module reference, so none is left here.
        // SAFETY: registered in `register`.
        unsafe { bindings::vsock_core_unregister(ours()) };
    }
}
