//! `libyasmin_preload.so`: an `LD_PRELOAD` library that moves TCP connections between
//! co-located Xen guests onto AF_VSOCK (and so onto YASMIN's shared-memory rings), and
//! leaves every other socket alone.
//!
//! * client side: an AF_INET/AF_INET6 stream socket whose `connect()` names an IPv4
//!   address that the IPv4 map (XenStore `ipmap`, or `$YASMIN_PRELOAD_MAP`) gives to
//!   another domain is replaced, under the same descriptor number, by an AF_VSOCK socket
//!   connected to CID = domid + 2, same port;
//! * server side: a stream socket listening on the wildcard address or an own address
//!   also listens on AF_VSOCK port P; the program's descriptor becomes an epoll instance
//!   over both listeners, so `poll`/`epoll`/`select` on it wake for both kinds of
//!   clients and `accept()` (intercepted) returns either.
//!
//! See `README.md` for the design, the environment variables and the limits.
//!
//! Layout: [`addr`] (socket addresses, flags), [`map`] (the IPv4 map and the routing
//! decision), [`opts`] (which socket options mean what on vsock), [`config`] (the
//! environment) and `route` (what each interposed call does with a descriptor, from its
//! recorded state, the address, the map and the options) are pure and unit-tested;
//! `interpose` is the thin system-call layer that carries the decisions out, `ffi` the
//! exported `extern "C"` symbols themselves (left out of the unit-test build so the test
//! harness keeps the real libc functions).

// The unit-test build has no `ffi` module, so the code only it calls looks dead there.
#![cfg_attr(test, allow(dead_code))]

pub mod addr;
pub mod config;
mod elf;
mod fallback;
mod inherit;
#[macro_use]
mod log;
pub mod map;
pub mod opts;

mod interpose;
mod real;
mod route;
mod source;
mod sync;
mod table;

#[cfg(not(test))]
mod ffi;
