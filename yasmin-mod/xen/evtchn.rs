// SPDX-License-Identifier: GPL-2.0
//! Interdomain event channels bound to an interrupt handler.

use crate::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

/// Signature of an event-channel interrupt handler (hard IRQ context).
pub(crate) type IrqFn =
    unsafe extern "C" fn(kernel::ffi::c_int, *mut kernel::ffi::c_void) -> bindings::irqreturn_t;

/// An interdomain event channel bound to an interrupt handler; closed on drop.
pub(crate) struct EventChannel {
    irq: u32,
    port: u32,
    cookie: usize,
}

impl EventChannel {
    /// Allocates a fresh port that `remote` may bind to (its number goes in an offer).
    pub(crate) fn alloc_unbound(remote: u16, handler: IrqFn, cookie: usize) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe { bindings::yasmin_evtchn_alloc_unbound(remote, &mut port) })?;
        Self::bind(port, handler, cookie)
    }

    /// Binds to `remote`'s unbound port `remote_port` (offered to us).
    pub(crate) fn bind_interdomain(
        remote: u16,
        remote_port: u32,
        handler: IrqFn,
        cookie: usize,
    ) -> Result<Self> {
        let mut port = 0;
        // SAFETY: hypercall wrapper with a valid out-pointer.
        to_result(unsafe {
            bindings::yasmin_evtchn_bind_interdomain(remote, remote_port, &mut port)
        })?;
        Self::bind(port, handler, cookie)
    }

    fn bind(port: u32, handler: IrqFn, cookie: usize) -> Result<Self> {
        // SAFETY: `port` is ours; the handler is a plain function and `cookie` an opaque
        // value it receives (never dereferenced); the name is a static string.
        let irq = unsafe {
            bindings::bind_evtchn_to_irqhandler(
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
        Ok(EventChannel {
            irq: irq as u32,
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
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: unbinds what `bind` bound (waits for a running handler) and closes the port.
        unsafe {
            bindings::unbind_from_irqhandler(self.irq, self.cookie as *mut kernel::ffi::c_void)
        };
    }
}
