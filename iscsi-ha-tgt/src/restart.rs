//! The adapter as what wakes the engine's loop: a managed tgtd's exit (our child, or the one
//! adopted on our control port) makes its exit descriptor readable (a pidfd; before Linux 5.3
//! a timer that makes the loop look every 500 ms). With
//! [`TgtConfig::keep_daemon_running`](crate::TgtConfig::keep_daemon_running), a tgtd that
//! exits is started again at once, paced so that one that keeps dying is not restarted in a
//! loop.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use iscsi_ha_core::engine::EventSource;

use crate::config::Lifecycle;
use crate::TgtTarget;

/// A tgtd that dies again this soon after being started again is started only at the first
/// wake-up past this spacing (a serve, the scan), not in a loop; the spacing doubles with each
/// start that fails, up to [`MAX_RESTART_SPACING`].
pub const RESTART_SPACING: Duration = Duration::from_secs(5);
/// The longest spacing between two attempts to start tgtd again.
pub const MAX_RESTART_SPACING: Duration = Duration::from_secs(300);

/// When tgtd was last started again, and how many attempts in a row failed.
#[derive(Debug, Default)]
pub(crate) struct RestartPacing {
    last: Option<Instant>,
    failures: u32,
}

impl RestartPacing {
    /// The spacing the next attempt must keep after the last one.
    fn spacing(&self) -> Duration {
        RESTART_SPACING
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_RESTART_SPACING)
    }
}

impl TgtTarget {
    /// Whether the adapter runs tgtd and keeps it running between `serve`s.
    fn keeps_daemon_running(&self) -> bool {
        matches!(self.config().lifecycle, Lifecycle::Managed(_))
            && self.config().keep_daemon_running
    }

    /// Starts tgtd again (or finds it answering), unless the last attempt was too recent.
    fn restart(&mut self) {
        let spacing = self.pacing.spacing();
        if self.pacing.last.is_some_and(|at| at.elapsed() < spacing) {
            return;
        }
        self.pacing.last = Some(Instant::now());
        match self.ensure_daemon() {
            Ok(()) => {
                self.pacing.failures = 0;
                if let Some((pid, _)) = self.exit_watch() {
                    tracing::info!(pid, "tgtd running again (keep_running)");
                }
            }
            Err(e) => {
                self.pacing.failures = self.pacing.failures.saturating_add(1);
                tracing::error!(
                    "cannot start tgtd again ({e}); next attempt in {} s at the earliest",
                    self.pacing.spacing().as_secs()
                );
            }
        }
    }
}

impl EventSource for TgtTarget {
    fn name(&self) -> &str {
        "tgtd exit"
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.exit_watch().map(|(_, fd)| fd)
    }

    fn refresh(&mut self) {
        if self.keeps_daemon_running() && self.exit_watch().is_none() {
            // A start that failed, or one held back by the spacing.
            self.restart();
        }
    }

    fn drain(&mut self) -> Result<bool, String> {
        let exited = self.forget_exited().map_err(|e| e.to_string())?;
        if exited && self.keeps_daemon_running() {
            self.restart();
        }
        Ok(exited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spacing_doubles_with_each_failed_start_up_to_five_minutes() {
        let mut pacing = RestartPacing::default();
        let mut seen = Vec::new();
        for failures in 0..9 {
            pacing.failures = failures;
            seen.push(pacing.spacing().as_secs());
        }
        assert_eq!(seen, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
