//! Descriptors inherited across `exec`: what the library of the old image left in the
//! new one, recognised from the kernel's own records so that no state has to be passed.
//!
//! * A dual listener is an epoll instance with exactly two members, registered with
//!   data 0 (the hidden TCP listener) and 1 (the hidden vsock listener); its hidden
//!   listeners are inherited with it when the program's descriptor is (see
//!   `interpose::sys::follow_cloexec`). `/proc/self/fdinfo/<epfd>` lists the members by
//!   descriptor number, data and inode, which the caller checks against the
//!   descriptors themselves (both listening, the right families, the same port).
//! * A vsock connection made for a TCP socket is a connected AF_VSOCK stream socket to
//!   a domain the map knows; it is shown as TCP again.
//!
//! This file is the pure part: parsing the fdinfo text.

use libc::c_int;

/// One member of an epoll instance, as `/proc/self/fdinfo` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The descriptor number it was registered under.
    pub tfd: c_int,
    pub data: u64,
    pub ino: u64,
}

/// The members listed in an epoll descriptor's fdinfo text (lines `tfd: N events: X
/// data: X pos:N ino:X sdev:X`, numbers in hex but `tfd` and `pos`).
pub fn epoll_members(fdinfo: &str) -> Vec<Member> {
    fdinfo
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix("tfd:")?;
            let mut words = l.split_whitespace();
            let tfd = words.next()?.parse().ok()?;
            let mut data = None;
            let mut ino = None;
            while let Some(w) = words.next() {
                if w == "data:" {
                    data = u64::from_str_radix(words.next()?, 16).ok();
                } else if let Some(v) = w.strip_prefix("ino:") {
                    ino = u64::from_str_radix(v, 16).ok();
                }
            }
            Some(Member {
                tfd,
                data: data?,
                ino: ino?,
            })
        })
        .collect()
}

/// The (TCP, vsock) members of an epoll instance that has the shape of a dual listener.
pub fn dual_listener(members: &[Member]) -> Option<(Member, Member)> {
    match members {
        [a, b] => match (a.data, b.data) {
            (0, 1) => Some((*a, *b)),
            (1, 0) => Some((*b, *a)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUAL: &str = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
        tfd:      512 events:       19 data:                0  pos:0 ino:51b2 sdev:9\n\
        tfd:      513 events:       19 data:                1  pos:0 ino:51b3 sdev:8\n";

    #[test]
    fn members_are_parsed() {
        let m = epoll_members(DUAL);
        assert_eq!(
            m,
            vec![
                Member {
                    tfd: 512,
                    data: 0,
                    ino: 0x51b2
                },
                Member {
                    tfd: 513,
                    data: 1,
                    ino: 0x51b3
                }
            ]
        );
        assert_eq!(dual_listener(&m), Some((m[0], m[1])));
        let swapped = [m[1], m[0]];
        assert_eq!(dual_listener(&swapped), Some((m[0], m[1])));
    }

    #[test]
    fn other_epoll_instances_are_not_listeners() {
        assert!(epoll_members("pos:\t0\nflags:\t02\n").is_empty());
        let one = "tfd:        4 events:       19 data:                4  pos:0 ino:51b2 sdev:9\n";
        let m = epoll_members(one);
        assert_eq!(m.len(), 1);
        assert_eq!(dual_listener(&m), None);
        let wrong_data = DUAL.replace("data:                1", "data:                7");
        assert_eq!(dual_listener(&epoll_members(&wrong_data)), None);
        let three = format!(
            "{DUAL}tfd:        9 events:       19 data:                2  pos:0 ino:1 sdev:9\n"
        );
        assert_eq!(dual_listener(&epoll_members(&three)), None);
        assert!(epoll_members("tfd: x events: 1 data: 0 ino:1").is_empty());
        assert!(epoll_members("tfd: 3 events: 1 data: zz ino:1").is_empty());
    }
}
