// SPDX-License-Identifier: GPL-2.0

//! Per-call time accounting (in TSC cycles) of the data path, for finding where a
//! transfer's time goes (`<debugfs>/yasmin/profile`; write 1 to reset and start, 0 to
//! stop). Test build only (`--cfg yasmin_test`): elsewhere `profiled!` is the bare
//! expression. Off by default: when off, each timed call costs one relaxed load. Whole
//! calls are timed, never each page copy (a clock read per page would distort them).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::glue;

static ON: AtomicBool = AtomicBool::new(false);
/// What one clock read costs (measured at start): each timed stage pays two, so a
/// stage's own time is its total minus `2 * calls * CLOCK_CYCLES`.
static CLOCK_CYCLES: AtomicU64 = AtomicU64::new(0);

/// One stage: how often it ran and the cycles spent in it.
pub(crate) struct Stage {
    name: &'static str,
    calls: AtomicU64,
    cycles: AtomicU64,
}

impl Stage {
    const fn new(name: &'static str) -> Self {
        Stage {
            name,
            calls: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
        }
    }

    /// Runs `f`, charging its time to this stage when profiling is on.
    #[inline]
    pub(crate) fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        if !ON.load(Ordering::Relaxed) {
            return f();
        }
        let t0 = glue::cycles();
        let r = f();
        let t1 = glue::cycles();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.cycles
            .fetch_add(t1.wrapping_sub(t0), Ordering::Relaxed);
        r
    }

    /// Counts an event that has no duration of its own (a side about to sleep).
    #[inline]
    pub(crate) fn count(&self) {
        if ON.load(Ordering::Relaxed) {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `enqueue` / `dequeue` are whole transport calls (ring bookkeeping, copy, notify);
/// `notify` is part of them.
pub(crate) static ENQUEUE: Stage = Stage::new("enqueue");
pub(crate) static DEQUEUE: Stage = Stage::new("dequeue");
pub(crate) static NOTIFY: Stage = Stage::new("notify");
pub(crate) static IRQ: Stage = Stage::new("irq");
pub(crate) static SEND_BLOCK: Stage = Stage::new("send_block");
pub(crate) static RECV_BLOCK: Stage = Stage::new("recv_block");

/// Connection set-up: `ring_new` allocates and grants a ring we produce (connector and
/// acceptor), `ring_map` maps the peer's (acceptor on CONNECT, connector on ACCEPT),
/// `accept_setup` is the acceptor's whole set-up of one CONNECT (in the control work
/// item, so set-ups queue behind each other), `control_run` one run of the plane under
/// its mutex.
pub(crate) static RING_NEW: Stage = Stage::new("ring_new");
pub(crate) static RING_MAP: Stage = Stage::new("ring_map");
pub(crate) static ACCEPT_SETUP: Stage = Stage::new("accept_setup");
/// Binding a connection's event channel to an interrupt handler (both sides), creating
/// the child socket, and registering it (plane table, ACCEPT sent).
pub(crate) static EVTCHN_BIND: Stage = Stage::new("evtchn_bind");
pub(crate) static CHILD_NEW: Stage = Stage::new("child_new");
pub(crate) static CHILD_REGISTER: Stage = Stage::new("child_register");
pub(crate) static CONTROL_RUN: Stage = Stage::new("control_run");
/// Inside a map of foreign pages (`ring_map`, the pair channel's too): taking ballooned
/// page frames to map over, and the batched map hypercall; and the whole unmap.
pub(crate) static MAP_FRAMES: Stage = Stage::new("map_frames");
pub(crate) static MAP_HYPERCALL: Stage = Stage::new("map_hypercall");
pub(crate) static UNMAP: Stage = Stage::new("unmap");

static ALL: [&Stage; 16] = [
    &ENQUEUE,
    &DEQUEUE,
    &NOTIFY,
    &IRQ,
    &SEND_BLOCK,
    &RECV_BLOCK,
    &RING_NEW,
    &RING_MAP,
    &ACCEPT_SETUP,
    &EVTCHN_BIND,
    &CHILD_NEW,
    &CHILD_REGISTER,
    &CONTROL_RUN,
    &MAP_FRAMES,
    &MAP_HYPERCALL,
    &UNMAP,
];

/// Starts (resetting every stage) or stops profiling.
pub(crate) fn set(on: bool) {
    if on {
        for s in ALL {
            s.calls.store(0, Ordering::Relaxed);
            s.cycles.store(0, Ordering::Relaxed);
        }
        const READS: u64 = 256;
        let t0 = glue::cycles();
        for _ in 0..READS {
            core::hint::black_box(glue::cycles());
        }
        let t1 = glue::cycles();
        CLOCK_CYCLES.store(t1.wrapping_sub(t0) / READS, Ordering::Relaxed);
    }
    ON.store(on, Ordering::Relaxed);
}

/// `<stage> <calls> <total cycles> <cycles per call>` lines, after `enabled` and
/// `clock_read_cycles`.
pub(crate) fn write(w: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(w, "enabled {}", ON.load(Ordering::Relaxed) as u8)?;
    writeln!(
        w,
        "clock_read_cycles {}",
        CLOCK_CYCLES.load(Ordering::Relaxed)
    )?;
    for s in ALL {
        let (c, cy) = (
            s.calls.load(Ordering::Relaxed),
            s.cycles.load(Ordering::Relaxed),
        );
        writeln!(
            w,
            "{} {} {} {}",
            s.name,
            c,
            cy,
            cy.checked_div(c).unwrap_or(0)
        )?;
    }
    Ok(())
}
