//! The YASMIN control plane's pure logic, shared with the kernel module.
//!
//! [`wire`] (control-channel messages and shared-page layouts), [`paths`] (XenStore schema
//! and node values) and [`pair`] (the per-peer handshake state machine) use `core` only and
//! are compiled into `yasmin.ko` with `#[path]`; see `PROTOCOL.md`.

pub mod pair;
pub mod paths;
pub mod wire;
