//! What the interposed calls do: the system-call layer that carries out `route`'s
//! decisions. `ffi.rs` exports these functions under libc's names.
//!
//! Rules kept throughout: a descriptor we do not manage goes straight to libc; the
//! table lock is never held across a call that can block or re-enter us; errno is what
//! the program would see from the call it made.
//!
//! * `fd`: `socket`, `close`, `dup`/`dup2`/`dup3`, `fcntl`, `shutdown`, `epoll_ctl`;
//! * `connect`: `bind`, `connect` (the client side);
//! * `listen`: `listen`, `accept`/`accept4` (the dual listener);
//! * `sockopt`: `getsockname`/`getpeername`, `setsockopt`, `getsockopt`;
//! * `exec`: `execve` and friends (a log line for static binaries);
//! * `adopt`: at load, what an image before `exec` left us;
//! * `sys`: the system calls they share.

// `ffi`, the user of the re-exports, is not in the unit-test build.
#![cfg_attr(test, allow(unused_imports))]

mod adopt;
mod connect;
mod exec;
mod fd;
mod listen;
mod sockopt;
mod sys;

pub use adopt::adopt_inherited;
pub use connect::{bind, connect};
pub use exec::note_exec;
pub use fd::{close, dup, dup23, epoll_ctl, fcntl, shutdown, socket};
pub use listen::{accept, listen};
pub use sockopt::{getname, getsockopt, setsockopt};
