// SPDX-License-Identifier: GPL-2.0
//! Test-only hooks (compiled with `--cfg yasmin_test`, never into the production
//! `yasmin.ko`): this guest as a hostile peer. It corrupts shared ring headers
//! (`scribble_tx_port`), and through `adversary` floods and abuses the control channel
//! (`plane::adversary`) or keeps released connections' rings (`hold`).

use crate::plane::Attack;
use crate::socket::Locked;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::prelude::*;

/// debugfs `scribble_tx_port`: the next write on a socket with this local port corrupts
/// its own ring header, as a hostile peer would; 0 = off.
static SCRIBBLE_PORT: AtomicU32 = AtomicU32::new(0);

pub(crate) fn arm_scribble(port: u32) {
    SCRIBBLE_PORT.store(port, Ordering::Relaxed);
    pr_warn!(
        "test hook armed: the next write on local port {} corrupts its ring header\n",
        port
    );
}

/// After every successful write: corrupt the ring header again on a socket the hook
/// was armed for (the producer stores its own index on every write), or arm it now.
pub(crate) fn after_write(sk: &mut Locked<'_>) {
    let port = sk.local_port();
    let fire = SCRIBBLE_PORT.load(Ordering::Relaxed) != 0
        && SCRIBBLE_PORT
            .compare_exchange(port, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    let Some(st) = sk.state() else { return };
    if fire {
        st.scribbling = true;
        pr_warn!(
            "test hook: corrupted the ring header of local port {}\n",
            port
        );
    }
    if st.scribbling {
        if let Some(tx) = st.tx.as_ref() {
            tx.scribble_header();
        }
        st.notify();
    }
}

/// `hold`: released sockets keep their rings and send no CLOSE (a peer that never
/// releases what it mapped).
static HOLD: AtomicBool = AtomicBool::new(false);

/// Whether `hold` is on (read by `transport::connect::release`).
pub(crate) fn holding() -> bool {
    HOLD.load(Ordering::Relaxed)
}

/// debugfs `adversary`: one command per write, `NAME DOMID [N] [PORT]`:
/// `junk D N`, `ping D N`, `connect D N PORT`, `bigring D PORT`, `foreign D PORT`,
/// `reuse D PORT`, `accept D N`, `dupaccept D`, `hold 1|0` (0 also gives back what was
/// held).
pub(crate) fn adversary(cmd: &[u8]) -> Result {
    let s = core::str::from_utf8(cmd).map_err(|_| EINVAL)?;
    let mut it = s.split_ascii_whitespace();
    let name = it.next().ok_or(EINVAL)?;
    let mut num = || -> Result<u32> { it.next().and_then(|w| w.parse::<u32>().ok()).ok_or(EINVAL) };
    if name == "hold" {
        let on = num()? != 0;
        HOLD.store(on, Ordering::Relaxed);
        if !on {
            let n = crate::plane::with(|p| p.drop_hoard()).unwrap_or(0);
            pr_warn!("test hook: hold off, {} held connections given back\n", n);
        } else {
            pr_warn!("test hook: hold on: released sockets keep their rings, no CLOSE\n");
        }
        return Ok(());
    }
    let peer = u16::try_from(num()?).map_err(|_| EINVAL)?;
    let attack = match name {
        "junk" => Attack::Junk(num()?),
        "ping" => Attack::Ping(num()?),
        "connect" => {
            let n = num()?;
            Attack::Connect(n, num()?)
        }
        "bigring" => Attack::BigRing(num()?),
        "foreign" => Attack::ForeignToken(num()?),
        "reuse" => Attack::ReuseToken(num()?),
        "accept" => Attack::StrayAccept(num()?),
        "dupaccept" => Attack::DupAccept,
        "wedge" => Attack::Wedge,
        _ => return Err(EINVAL),
    };
    crate::plane::with(|p| p.attack(peer, attack)).unwrap_or(Err(ENODEV))
}
