// SPDX-License-Identifier: GPL-2.0
//! `connect-retry`: a `connect()` given up once (its vsock connect timeout expired, or a
//! signal interrupted it), then retried on the same socket, as af_vsock allows and
//! programs do. The retry must connect and carry a checked stream; what the first attempt
//! leaves behind (a CONNECT still in flight, the server's child, socket references) is for
//! the scenario to check in the module's counters.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use vsock::VsockStream;
use yasmin_endpoint::{set_vsock_connect_timeout as set_connect_timeout, Conn};

/// How the first attempt is made to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// A vsock connect timeout of one jiffy (the shortest the kernel keeps).
    Timeout,
    /// SIGALRM after 1 ms, with a handler installed without `SA_RESTART`.
    Signal,
}

/// How one socket's connect went: the first attempt's errno if it gave up.
pub struct Outcome {
    pub conn: Conn,
    pub first_errno: Option<i32>,
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `connect()` to `cid:port`; the errno on failure.
fn connect(fd: &OwnedFd, cid: u32, port: u32) -> Result<(), i32> {
    // SAFETY: all-zero is a valid `sockaddr_vm`; the fields that matter are set below.
    let mut sa: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    sa.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    sa.svm_cid = cid;
    sa.svm_port = port;
    // SAFETY: a valid descriptor and a `sockaddr_vm` of the size passed.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

extern "C" fn on_alarm(_: libc::c_int) {}

/// Arms (`Some`) or disarms (`None`) a one-shot SIGALRM; the handler does nothing and
/// is installed without `SA_RESTART`, so a blocking `connect()` returns `EINTR`.
fn alarm(after: Option<Duration>) -> io::Result<()> {
    // SAFETY: all-zero is a valid `sigaction`; the handler is async-signal-safe (empty).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let d = after.unwrap_or_default();
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        },
    };
    // SAFETY: a valid `itimerval`; the old value is not wanted.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One socket: a first `connect()` to `cid:port` made to give up as `how` says, then,
/// if it did, a second one on the same socket with `timeout`.
pub fn connect_retrying(
    cid: u32,
    port: u32,
    how: GiveUp,
    timeout: Duration,
) -> io::Result<Outcome> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let raw = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let first = match how {
        GiveUp::Timeout => {
            set_connect_timeout(&fd, Duration::from_micros(1))?;
            connect(&fd, cid, port)
        }
        GiveUp::Signal => {
            set_connect_timeout(&fd, timeout)?;
            alarm(Some(Duration::from_millis(1)))?;
            let r = connect(&fd, cid, port);
            alarm(None)?;
            r
        }
    };
    let first_errno = first.err();
    if first_errno.is_some() {
        set_connect_timeout(&fd, timeout)?;
        connect(&fd, cid, port).map_err(|e| {
            io::Error::new(
                io::Error::from_raw_os_error(e).kind(),
                format!(
                    "retried connect to vsock:{cid}:{port}: {} (first attempt: {})",
                    io::Error::from_raw_os_error(e),
                    io::Error::from_raw_os_error(first_errno.unwrap_or(0))
                ),
            )
        })?;
    }
    Ok(Outcome {
        conn: Conn::Vsock(VsockStream::from(fd)),
        first_errno,
    })
}
