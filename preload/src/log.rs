//! Opt-in decision log (`YASMIN_PRELOAD_LOG=1`): one line per decision on stderr,
//! written with a single `write(2)` so lines of concurrent threads do not mix, and
//! without touching errno or panicking.

use core::fmt::{self, Write};

/// `plog!("...")`: a log line if logging is enabled.
macro_rules! plog {
    ($($t:tt)*) => {
        if $crate::config::config().log {
            $crate::log::write(format_args!($($t)*));
        }
    };
}

/// Writes one log line.
pub fn write(args: fmt::Arguments<'_>) {
    let mut s = String::with_capacity(128);
    s.push_str("yasmin-preload: ");
    let _ = s.write_fmt(args);
    s.push('\n');
    // SAFETY: errno is thread-local; the buffer is valid for its length.
    unsafe {
        let e = *libc::__errno_location();
        let _ = libc::write(2, s.as_ptr().cast(), s.len());
        *libc::__errno_location() = e;
    }
}

/// A short name for an errno value, for log lines.
pub fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENODEV => "ENODEV",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOMEM => "ENOMEM",
        libc::ENOBUFS => "ENOBUFS",
        libc::EINTR => "EINTR",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EBADF => "EBADF",
        _ => return format!("errno {e}"),
    };
    n.to_string()
}
