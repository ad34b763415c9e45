//! Phase stamps: one log line per phase of a pass that changes something, so a tool can tell
//! where a failover's time goes without the clock of whoever asked for it.
//!
//! # Format
//!
//! Each stamp is an `INFO` event with the message `phase` and these fields, in this order:
//!
//! | field | value |
//! |---|---|
//! | `phase` | `"role seen"`, a step as the plan names it (`"promote r0"`, `"serve target"`, `"assign VIP"`, `"announce VIP"`, ...), `"serving"` or `"released"` |
//! | `edge` | `"at"` for a point, `"start"` / `"end"` around a step |
//! | `mono_us` | CLOCK_MONOTONIC in microseconds: comparable only between stamps of one host (one boot) |
//! | `wall_us` | the wall clock (Unix time) in microseconds: comparable between hosts only as far as their clocks agree |
//! | `ok` | on a step's `end` only: whether it worked |
//! | `role` | on `role seen` only: the role that arrived |
//!
//! On standard error (the lab's daemons) a line reads, after the time and level,
//! `phase phase="promote r0" edge="end" mono_us=1234 wall_us=1733150000000000 ok=true`; in the
//! journal the fields are `PHASE`, `EDGE`, `MONO_US`, ... . `iscsi_ha_lab::phases` parses the
//! first form and the bin test `daemon_phases` holds both ends to it.
//!
//! `role seen` is stamped when the loop woke with the new role (before observing), `serving`
//! and `released` right after the pass whose plan for that intent, with nothing held, ran
//! every step successfully (or found nothing left to do).

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment on both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    mono_us: u64,
    wall_us: u64,
}

impl Stamp {
    /// Now, on both clocks.
    pub(crate) fn now() -> Self {
        let mono_us = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| {
                u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                    + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1000
            })
            .unwrap_or(0);
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self { mono_us, wall_us }
    }
}

/// A point phase (`role seen` carries `role`; `serving`, `released` none).
pub(crate) fn at(phase: &str, stamp: Stamp, role: Option<&str>) {
    match role {
        Some(role) => tracing::info!(
            phase,
            edge = "at",
            mono_us = stamp.mono_us,
            wall_us = stamp.wall_us,
            role,
            "phase"
        ),
        None => tracing::info!(
            phase,
            edge = "at",
            mono_us = stamp.mono_us,
            wall_us = stamp.wall_us,
            "phase"
        ),
    }
}

/// Which edge of a step a stamp marks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Edge {
    /// The step is about to run.
    Start,
    /// It ended; `ok` when it worked.
    End { ok: bool },
}

/// Stamps an edge of the step `phase`, now.
pub(crate) fn edge(phase: &str, edge: Edge) {
    let now = Stamp::now();
    match edge {
        Edge::Start => tracing::info!(
            phase,
            edge = "start",
            mono_us = now.mono_us,
            wall_us = now.wall_us,
            "phase"
        ),
        Edge::End { ok } => tracing::info!(
            phase,
            edge = "end",
            mono_us = now.mono_us,
            wall_us = now.wall_us,
            ok,
            "phase"
        ),
    }
}

/// Runs `f` as the step `phase`, stamped at its start and end; `ok` tells whether it worked.
pub(crate) fn step<T>(phase: &str, ok: impl FnOnce(&T) -> bool, f: impl FnOnce() -> T) -> T {
    edge(phase, Edge::Start);
    let result = f();
    edge(phase, Edge::End { ok: ok(&result) });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_never_goes_back_and_the_wall_clock_is_unix_time() {
        let a = Stamp::now();
        let b = Stamp::now();
        assert!(b.mono_us >= a.mono_us);
        assert!(a.mono_us > 0);
        // After 2020-01-01 in microseconds: the wall stamp is Unix time, not uptime.
        assert!(a.wall_us > 1_577_836_800_000_000);
    }
}
