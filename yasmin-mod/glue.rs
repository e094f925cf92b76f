// SPDX-License-Identifier: GPL-2.0
//! The safe face of `glue.c` for what is not Xen and not a socket: module parameters,
//! the control work item, and [`Published`], the one global through which C callbacks
//! (work item, debugfs, socket callbacks) reach the running control plane.

use crate::bindings;
use crate::transport::IncomingSetup;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// The module parameters as loaded (read-only after load; 0444 in sysfs).
pub(crate) fn params() -> (u32, u32) {
    // SAFETY: plain u32s written only by the module loader before init runs.
    unsafe {
        (
            bindings::yasmin_param_ring_pages,
            bindings::yasmin_param_max_ring_pages,
        )
    }
}

/// The limit parameters: (max_conns_per_peer, max_conns, max_granted_pages,
/// max_mapped_pages, linger_ms, bad_msg_budget).
pub(crate) fn limit_params() -> (u32, u32, u32, u32, u32, u32) {
    // SAFETY: plain u32s written only by the module loader before init runs.
    unsafe {
        (
            bindings::yasmin_param_max_conns_per_peer,
            bindings::yasmin_param_max_conns,
            bindings::yasmin_param_max_granted_pages,
            bindings::yasmin_param_max_mapped_pages,
            bindings::yasmin_param_linger_ms,
            bindings::yasmin_param_bad_msg_budget,
        )
    }
}

/// The `max_setups` parameter: incoming connections set up at once.
pub(crate) fn max_setups() -> u32 {
    // SAFETY: a plain u32 written only by the module loader before init runs.
    unsafe { bindings::yasmin_param_max_setups }
}

/// (RAM pages, grant-table entries) of this guest, which the default limits derive from.
pub(crate) fn guest_size() -> (u64, u64) {
    // SAFETY: plain reads of kernel totals.
    unsafe {
        (
            bindings::yasmin_total_ram_pages() as u64,
            bindings::yasmin_grant_entries() as u64,
        )
    }
}

/// Runs the control work item now (a pending later run is pulled forward). Any context.
pub(crate) fn work_kick() {
    // SAFETY: queues the static work item; callable from any context.
    unsafe { bindings::yasmin_ctl_kick() };
}

/// Runs the control work item in `ms` at the latest (an earlier pending run is kept).
pub(crate) fn work_kick_after(ms: u32) {
    // SAFETY: as above.
    unsafe { bindings::yasmin_ctl_kick_after(ms) };
}

/// Cancels the control work item and waits for a running one (process context).
pub(crate) fn work_cancel() {
    // SAFETY: the static work item; may sleep, which the caller allows.
    unsafe { bindings::yasmin_ctl_cancel() };
}

/// Cancels the control work item for good (module unload): later kicks do nothing.
pub(crate) fn work_disable() {
    // SAFETY: the static work item; may sleep, which the caller allows.
    unsafe { bindings::yasmin_ctl_disable() };
}

/// Most set-ups at once `max_setups` may ask for.
pub(crate) const SETUPS_LIMIT: u32 = 64;

/// The workqueue that sets up incoming connections, several at once (glue.c), while it
/// lives: dropping it waits for every set-up queued.
pub(crate) struct SetupQueue(());

impl SetupQueue {
    /// At most `max_active` set-ups at once (1..=[`SETUPS_LIMIT`], checked with the
    /// other parameters at load).
    pub(crate) fn start(max_active: u32) -> Result<Self> {
        // SAFETY: allocates glue.c's workqueue once; `drop` frees it.
        kernel::error::to_result(unsafe { bindings::yasmin_setup_start(max_active) })?;
        Ok(SetupQueue(()))
    }
}

impl Drop for SetupQueue {
    fn drop(&mut self) {
        // SAFETY: the workqueue `start` allocated; waits for its jobs (process context).
        unsafe { bindings::yasmin_setup_stop() };
    }
}

/// Queues `job` for `yasmin_setup_run` (transport/mod.rs) on the set-up workqueue;
/// gives it back if there is no memory to queue it.
pub(crate) fn setup_queue(
    job: KBox<IncomingSetup>,
) -> core::result::Result<(), KBox<IncomingSetup>> {
    let raw = KBox::into_raw(job);
    // SAFETY: the workqueue lives (the control plane owns the `SetupQueue`, and stops
    // the work item that calls this before dropping it); `yasmin_setup_run` takes the
    // pointer back as a `KBox<IncomingSetup>`.
    if unsafe { bindings::yasmin_setup_queue(raw.cast()) } {
        Ok(())
    } else {
        // SAFETY: not queued: the pointer is still ours, from `into_raw` above.
        Err(unsafe { KBox::from_raw(raw) })
    }
}

/// Waits for every set-up queued so far (the caller has stopped the work item that
/// queues them). Process context.
pub(crate) fn setup_flush() {
    // SAFETY: the workqueue lives while the control plane does, which calls this.
    unsafe { bindings::yasmin_setup_flush() };
}

/// The save/restore PM device (glue.c, calling lifecycle.rs), registered while it lives.
pub(crate) struct PmHooks(());

impl PmHooks {
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: registers glue.c's static driver and device once; `drop` undoes it.
        kernel::error::to_result(unsafe { bindings::yasmin_pm_register() })?;
        Ok(PmHooks(()))
    }
}

impl Drop for PmHooks {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; waits for a running PM callback.
        unsafe { bindings::yasmin_pm_unregister() };
    }
}

/// The TSC (`get_cycles()`): the data-path profile's clock. A cycle counter, not ktime:
/// under Xen PV ktime reads the PV clock, far too slow to time short calls with.
#[cfg(yasmin_test)]
pub(crate) fn cycles() -> u64 {
    // SAFETY: reads the cycle counter; callable in any context.
    unsafe { bindings::yasmin_clock_cycles() }
}

/// A slot through which C callbacks (work item, debugfs, socket callbacks) reach one
/// mutex-protected value while a [`Publication`] owns it.
///
/// # Invariants
///
/// `ptr` is null or points to the pinned mutex owned by the live `Publication`, which
/// nulls `ptr` and waits until `users` is 0 before the mutex can be freed. A caller of
/// [`Published::with`] counts itself in `users` before it loads `ptr`.
pub(crate) struct Published<T> {
    ptr: AtomicPtr<Mutex<T>>,
    users: AtomicUsize,
}

impl<T> Published<T> {
    pub(crate) const fn new() -> Self {
        Published {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            users: AtomicUsize::new(0),
        }
    }

    /// Publishes `value` until the returned publication drops.
    pub(crate) fn publish(&'static self, value: Pin<KBox<Mutex<T>>>) -> Publication<T> {
        // INVARIANT: the publication owns the mutex and withdraws it before freeing it.
        self.ptr
            .store((&*value as *const Mutex<T>).cast_mut(), Ordering::SeqCst);
        Publication { slot: self, value }
    }

    /// Runs `f` on the locked value, if one is published.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        // SeqCst pairs with the withdrawal: either it sees our count, or we see null.
        self.users.fetch_add(1, Ordering::SeqCst);
        let p = self.ptr.load(Ordering::SeqCst);
        // SAFETY: non-null only while the publication owns the mutex, and it waits for
        // `users`, which counts us, to reach 0 before freeing it (type invariant).
        let r = unsafe { p.as_ref() }.map(|m| f(&mut m.lock()));
        self.users.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

/// Owns a published value; withdraws it on drop, after the last running user.
pub(crate) struct Publication<T: 'static> {
    slot: &'static Published<T>,
    value: Pin<KBox<Mutex<T>>>,
}

impl<T> Publication<T> {
    /// Runs `f` on the locked value.
    pub(crate) fn with_locked<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.value.lock())
    }
}

impl<T> Drop for Publication<T> {
    fn drop(&mut self) {
        self.slot.ptr.store(core::ptr::null_mut(), Ordering::SeqCst);
        // A user that counted itself before the store may still hold or wait for the
        // lock: taking it lets a holder finish (we sleep meanwhile); the rest of its
        // window is a few instructions without a sleep.
        while self.slot.users.load(Ordering::SeqCst) != 0 {
            drop(self.value.lock());
            core::hint::spin_loop();
        }
    }
}
