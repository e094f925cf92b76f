//! YASMIN's XenStore tooling.
//!
//! [`xs`] is a small XenStore client that speaks the wire protocol itself, over the
//! xenstored unix socket (dom0) or the kernel's `/dev/xen/xenbus` (any guest), so the
//! tools link statically and need no libxenstore. See `README.md` for why.
//!
//! [`control`] is the control plane's pure logic (control-channel codec, XenStore schema,
//! handshake state machine), shared with the kernel module; [`watcher`] is the dom0
//! watcher (`yasmin-watch`). The protocol is in `PROTOCOL.md`.

extern crate alloc;

pub mod control;
pub mod watcher;
pub mod xs;
