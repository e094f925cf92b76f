// SPDX-License-Identifier: GPL-2.0
//! Test-only hooks (compiled with `--cfg yasmin_test`, never into the production
//! `yasmin.ko`): a local stand-in for a hostile peer that corrupts shared ring headers.

use crate::socket::Locked;
use core::sync::atomic::{AtomicU32, Ordering};
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
