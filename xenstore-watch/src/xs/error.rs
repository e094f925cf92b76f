//! Errors of the XenStore client.

use std::fmt;
use std::io;

/// The errno names xenstored sends in `XS_ERROR` replies (`xsd_errors[]` in `xs_wire.h`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    Inval,
    Acces,
    Exist,
    IsDir,
    NoEnt,
    NoMem,
    NoSpc,
    Io,
    NotEmpty,
    NoSys,
    RoFs,
    Busy,
    Again,
    IsConn,
    TooBig,
    Perm,
    /// A name this client does not know, as sent.
    Other(String),
}

const NAMES: [(Errno, &str, &str); 16] = [
    (Errno::Inval, "EINVAL", "invalid argument"),
    (Errno::Acces, "EACCES", "permission denied"),
    (Errno::Exist, "EEXIST", "node exists"),
    (Errno::IsDir, "EISDIR", "is a directory"),
    (Errno::NoEnt, "ENOENT", "no such node"),
    (Errno::NoMem, "ENOMEM", "out of memory"),
    (Errno::NoSpc, "ENOSPC", "quota exceeded"),
    (Errno::Io, "EIO", "I/O error"),
    (Errno::NotEmpty, "ENOTEMPTY", "directory not empty"),
    (Errno::NoSys, "ENOSYS", "not supported"),
    (Errno::RoFs, "EROFS", "read-only"),
    (Errno::Busy, "EBUSY", "busy"),
    (Errno::Again, "EAGAIN", "transaction conflict, try again"),
    (Errno::IsConn, "EISCONN", "already connected"),
    (Errno::TooBig, "E2BIG", "too big"),
    (Errno::Perm, "EPERM", "operation not permitted"),
];

impl Errno {
    /// From the name in an `XS_ERROR` payload (`"ENOENT"`).
    pub fn from_name(name: &str) -> Errno {
        NAMES
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(e, _, _)| e.clone())
            .unwrap_or_else(|| Errno::Other(name.to_string()))
    }

    /// The name as on the wire.
    pub fn name(&self) -> &str {
        match self {
            Errno::Other(s) => s,
            e => NAMES
                .iter()
                .find(|(x, _, _)| x == e)
                .map(|(_, n, _)| *n)
                .unwrap_or("E?"),
        }
    }

    fn describe(&self) -> &str {
        NAMES
            .iter()
            .find(|(x, _, _)| x == self)
            .map(|(_, _, d)| *d)
            .unwrap_or("xenstore error")
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.describe(), self.name())
    }
}

/// Any failure of a XenStore operation.
#[derive(Debug)]
pub enum Error {
    /// xenstored answered `XS_ERROR` with this errno name.
    Xs(Errno),
    /// The transport failed (includes the connection closing).
    Io(io::Error),
    /// The peer broke the protocol (oversized message, unexpected reply, bad payload).
    Protocol(String),
    /// The request cannot be sent (NUL in a path, payload over 4096 bytes, ...).
    InvalidArgument(String),
    /// No transport could be opened; one line per attempt.
    NoTransport(Vec<String>),
}

impl Error {
    /// The xenstored errno, when this is an `XS_ERROR` reply.
    pub fn errno(&self) -> Option<&Errno> {
        match self {
            Error::Xs(e) => Some(e),
            _ => None,
        }
    }

    /// `ENOENT`: the node does not exist.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(&Errno::NoEnt)
    }

    /// `EAGAIN`: a transaction conflicted and should be retried.
    pub fn is_again(&self) -> bool {
        self.errno() == Some(&Errno::Again)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Xs(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "xenstore I/O error: {e}"),
            Error::Protocol(m) => write!(f, "xenstore protocol error: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::NoTransport(tried) => {
                write!(f, "cannot reach xenstore: {}", tried.join("; "))
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (e, name, _) in NAMES.iter() {
            assert_eq!(Errno::from_name(name), *e);
            assert_eq!(e.name(), *name);
        }
        assert_eq!(Errno::from_name("EWHAT"), Errno::Other("EWHAT".into()));
        assert_eq!(Errno::from_name("EWHAT").name(), "EWHAT");
        assert!(Error::Xs(Errno::NoEnt).is_not_found());
        assert!(Error::Xs(Errno::Again).is_again());
        assert_eq!(Errno::NoEnt.to_string(), "no such node (ENOENT)");
    }
}
