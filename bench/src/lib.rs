// SPDX-License-Identifier: GPL-2.0
//! yasmin-bench: one benchmark for every byte-stream transport (AF_VSOCK over YASMIN,
//! TCP over netfront, Unix sockets, vsock loopback, Xen libvchan...) so that their numbers
//! compare, and the record handling that the plotting tool shares. See README.md.

pub mod costs;
pub mod net;
pub mod proto;
pub mod record;
pub mod report;
pub mod run;
pub mod size;
#[cfg(feature = "vchan")]
pub mod vchan;
