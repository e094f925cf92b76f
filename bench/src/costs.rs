// SPDX-License-Identifier: GPL-2.0
//! Guest-wide cost counters read around each client run, so that a ratio between
//! transports comes with what each one cost: context switches and interrupts (the
//! kernel's `/proc/stat`), and YASMIN's event-channel signals, each one a hypercall
//! (its debugfs `stats`, when the module is loaded and debugfs readable).

use std::time::Instant;

/// Where YASMIN's counters are.
const YASMIN_STATS: &str = "/sys/kernel/debug/yasmin/stats";

/// One reading of the counters.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    ctxt: Option<u64>,
    intr: Option<u64>,
    signals: Option<u64>,
    at: Instant,
}

/// What a run cost: counter differences over `seconds`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Costs {
    pub ctxt: Option<u64>,
    pub intr: Option<u64>,
    pub signals: Option<u64>,
    pub seconds: f64,
}

/// `ctxt` and `intr` (the first, total, field) of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
        })
    };
    (field("ctxt"), field("intr"))
}

/// YASMIN's signals sent plus received, from its `stats` file.
pub fn parse_yasmin_stats(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
    };
    Some(field("signals_sent")? + field("signals_received")?)
}

/// Reads the counters now (a counter that cannot be read is `None`).
pub fn read() -> Reading {
    let (ctxt, intr) = std::fs::read_to_string("/proc/stat")
        .map(|t| parse_proc_stat(&t))
        .unwrap_or((None, None));
    let signals = std::fs::read_to_string(YASMIN_STATS)
        .ok()
        .and_then(|t| parse_yasmin_stats(&t));
    Reading {
        ctxt,
        intr,
        signals,
        at: Instant::now(),
    }
}

impl Reading {
    /// What happened between `self` and `later`.
    pub fn until(&self, later: &Reading) -> Costs {
        let d = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
        Costs {
            ctxt: d(self.ctxt, later.ctxt),
            intr: d(self.intr, later.intr),
            signals: d(self.signals, later.signals),
            seconds: later.at.duration_since(self.at).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let t = "cpu  1 2 3\nintr 12345 0 7 9\nctxt 678\nbtime 1\n";
        assert_eq!(parse_proc_stat(t), (Some(678), Some(12345)));
        assert_eq!(parse_proc_stat("cpu 1\n"), (None, None));
    }

    #[test]
    fn parses_yasmin_stats() {
        let t = "grant_pages 0\nsignals_sent 10\nsignals_received 5\n";
        assert_eq!(parse_yasmin_stats(t), Some(15));
        assert_eq!(parse_yasmin_stats("signals_sent 10\n"), None);
    }

    #[test]
    fn differences_never_underflow() {
        let t0 = Instant::now();
        let a = Reading {
            ctxt: Some(10),
            intr: Some(5),
            signals: None,
            at: t0,
        };
        let b = Reading {
            ctxt: Some(25),
            intr: Some(4), // a reset counter: no difference
            signals: Some(3),
            at: t0,
        };
        let c = a.until(&b);
        assert_eq!((c.ctxt, c.intr, c.signals), (Some(15), None, None));
    }
}
