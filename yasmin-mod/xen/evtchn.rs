// SPDX-License-Identifier: GPL-2.0
//! Interdomain event channels bound to an interrupt handler.

use crate::bindings;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::error::to_result;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// Signature of an event-channel interrupt handler (hard IRQ context).
pub(crate) type IrqFn =
    unsafe extern "C" fn(kernel::ffi::c_int, *mut kernel::ffi::c_void) -> bindings::irqreturn_t;

/// An interdomain event channel bound to an interrupt handler; closed on drop. Plain
/// channels (a socket's: the handler only wakes the socket) are acknowledged by the
/// kernel as the handler returns; [`PolledChannel`]s use late EOI.
pub(crate) struct EventChannel {
    irq: u32,
    late_eoi: bool,
    port: u32,
    cookie: usize,
}

impl EventChannel {
    /// Allocates a fresh port that `remote` may bind to (its number goes in an offer).
    pub(crate) fn alloc_unbound(remote: u16, handler: IrqFn, cookie: usize) -> Result<Self> {
        Self::alloc_unbound_with(remote, handler, cookie, false)
    }

    fn alloc_unbound_with(remote: u16, handler: IrqFn, cookie: usize, late: bool) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe { bindings::yasmin_evtchn_alloc_unbound(remote, &mut port) })?;
        Self::bind(port, handler, cookie, late)
    }

    /// Binds to `remote`'s unbound port `remote_port` (offered to us).
    pub(crate) fn bind_interdomain(
        remote: u16,
        remote_port: u32,
        handler: IrqFn,
        cookie: usize,
    ) -> Result<Self> {
        Self::bind_interdomain_with(remote, remote_port, handler, cookie, false)
    }

    fn bind_interdomain_with(
        remote: u16,
        remote_port: u32,
        handler: IrqFn,
        cookie: usize,
        late: bool,
    ) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe {
            bindings::yasmin_evtchn_bind_interdomain(remote, remote_port, &mut port)
        })?;
        Self::bind(port, handler, cookie, late)
    }

    fn bind(port: u32, handler: IrqFn, cookie: usize, late_eoi: bool) -> Result<Self> {
        let bind = if late_eoi {
            bindings::bind_evtchn_to_irqhandler_lateeoi
        } else {
            bindings::bind_evtchn_to_irqhandler
        };
        // SAFETY: `port` is ours; the handler is a plain function and `cookie` an opaque
        // value it receives (for a `PolledChannel`, its `Fired`, which outlives the
        // binding); the name is a static string.
        let irq = unsafe {
            bind(
                port,
                Some(handler),
                0,
                kernel::c_str!("yasmin").as_char_ptr(),
                cookie as *mut kernel::ffi::c_void,
            )
        };
        if irq < 0 {
            // SAFETY: the port is ours and bound to nothing.
            unsafe { bindings::yasmin_evtchn_close(port) };
            return Err(Error::from_errno(irq));
        }
        crate::stats::EVENT_CHANNELS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        Ok(EventChannel {
            irq: irq as u32,
            late_eoi,
            port,
            cookie,
        })
    }

    /// Our local port number.
    pub(crate) fn port(&self) -> u32 {
        self.port
    }

    /// Signals the peer.
    pub(crate) fn notify(&self) {
        // SAFETY: `irq` is bound to our port as long as `self` lives.
        unsafe { bindings::notify_remote_via_irq(self.irq as i32) };
    }

    /// Keeps the port allocated but never runs the handler again (waits for a running
    /// one), so that whatever its cookie names may go. For a port offered in a CONNECT
    /// the peer has not answered yet: closed now, its number could be handed to the next
    /// connection, and the peer, setting up the old CONNECT late, would bind to that.
    pub(crate) fn park(self) -> ParkedChannel {
        // SAFETY: `irq` is our live binding; it stays disabled until it is unbound (drop),
        // which compares the cookie without reading it.
        unsafe { bindings::disable_irq(self.irq) };
        ParkedChannel { _held: self }
    }
}

/// An [`EventChannel`] whose handler no longer runs: the port stays ours until drop.
pub(crate) struct ParkedChannel {
    _held: EventChannel,
}

/// What a [`PolledChannel`]'s interrupt leaves for its owner.
struct Fired {
    flag: AtomicBool,
    kick: fn(),
}

/// An event channel whose owner polls, bound with late EOI (XSA-332): the interrupt only
/// records that it fired and runs `kick` (e.g. queue the work item), and the channel
/// stays masked until the owner acknowledges it with [`PolledChannel::ack`] after
/// looking, saying whether there was anything to do; a peer that storms it with nothing
/// to do is slowed down by Xen's spurious-event back-off. (Acknowledging from the
/// handler itself would not help: the kernel defers an EOI issued inside its event loop.)
/// Field order is drop order: the channel (and its handler) goes before `fired`.
pub(crate) struct PolledChannel {
    evt: EventChannel,
    fired: Pin<KBox<Fired>>,
}

/// # Safety
///
/// Called by the kernel's event-channel code only, with the cookie of a live
/// [`PolledChannel`] (its `fired`, freed only after the handler is unbound).
unsafe extern "C" fn polled_irq(_irq: c_int, cookie: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: by the caller: `cookie` points to the channel's pinned `Fired`.
    let f = unsafe { &*cookie.cast::<Fired>() };
    f.flag.store(true, Ordering::Release);
    (f.kick)();
    bindings::irqreturn_IRQ_HANDLED
}

impl PolledChannel {
    fn fired(kick: fn()) -> Result<(Pin<KBox<Fired>>, usize)> {
        let fired = KBox::pin(
            Fired {
                flag: AtomicBool::new(false),
                kick,
            },
            GFP_KERNEL,
        )?;
        let cookie = &*fired as *const Fired as usize;
        Ok((fired, cookie))
    }

    /// As [`EventChannel::alloc_unbound`].
    pub(crate) fn alloc_unbound(remote: u16, kick: fn()) -> Result<Self> {
        let (fired, cookie) = Self::fired(kick)?;
        let evt = EventChannel::alloc_unbound_with(remote, polled_irq, cookie, true)?;
        Ok(PolledChannel { evt, fired })
    }

    /// As [`EventChannel::bind_interdomain`].
    pub(crate) fn bind_interdomain(remote: u16, remote_port: u32, kick: fn()) -> Result<Self> {
        let (fired, cookie) = Self::fired(kick)?;
        let evt =
            EventChannel::bind_interdomain_with(remote, remote_port, polled_irq, cookie, true)?;
        Ok(PolledChannel { evt, fired })
    }

    pub(crate) fn port(&self) -> u32 {
        self.evt.port()
    }

    pub(crate) fn notify(&self) {
        self.evt.notify()
    }

    /// If the interrupt fired since the last call: acknowledge it (`spurious` if the owner
    /// found nothing to do), so that it can fire again.
    pub(crate) fn ack(&self, spurious: bool) {
        if self.evt.late_eoi && self.fired.flag.swap(false, Ordering::AcqRel) {
            let flags = if spurious {
                bindings::XEN_EOI_FLAG_SPURIOUS
            } else {
                0
            };
            // SAFETY: `irq` is our live late-EOI interrupt, and it fired (masked since).
            unsafe { bindings::xen_irq_lateeoi(self.evt.irq, flags) };
        }
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: unbinds what `bind` bound (waits for a running handler) and closes the port.
        unsafe {
            bindings::unbind_from_irqhandler(self.irq, self.cookie as *mut kernel::ffi::c_void)
        };
        crate::stats::EVENT_CHANNELS.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    }
}
