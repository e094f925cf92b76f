//! YASMIN's XenStore tooling.
//!
//! [`xs`] is a small XenStore client that speaks the wire protocol itself, over the
//! xenstored unix socket (dom0) or the kernel's `/dev/xen/xenbus` (any guest), so the
//! tools link statically and need no libxenstore. See `README.md` for why.

extern crate alloc;

pub mod xs;
