// SPDX-License-Identifier: GPL-2.0
//! The addresses the YASMIN tools take on their command lines (`vsock:CID:PORT`,
//! `tcp:IP:PORT`, `unix:/path`) and one stream type over the three socket families, so
//! that the same code path runs over YASMIN, netfront TCP and Unix sockets.
//!
//! Sockets are made with `socket(2)` and their options set before `connect`/`listen`
//! (the vsock buffer size selects the YASMIN ring size, and vsock's connect timeout is
//! not SO_SNDTIMEO), the same way for each family; the descriptor is then handed to the
//! std or `vsock` stream type.

mod addr;
mod socket;

pub use addr::{Addr, AddrError, SYNTAX};
pub use socket::{
    errno_name, errno_of, set_vsock_connect_timeout, Conn, ConnectError, Listener, SockOpts,
};
