//! XenStore: the wire codec ([`wire`], [`perms`]) and a blocking client ([`XsClient`]).

pub mod client;
pub mod error;
pub mod perms;
pub mod transport;
pub mod wire;

pub use client::{Transaction, WatchEvent, XsClient, DEFAULT_TX_RETRIES};
pub use error::{Errno, Error, Result};
pub use perms::{Perm, PermKind};
pub use transport::{Transport, XsTransport};
pub use wire::{Message, MsgType};
