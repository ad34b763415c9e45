//! The engine's surroundings in the daemon ([`Hooks`]): the clocks, systemd's watchdog, the
//! phase stamps and the log, the serving-history file, and what follows a pass that took over
//! (the `[tickle]` hand-over), the metrics of what the engine tells.

use super::{handover::Handover, phase, Notifier};
use crate::metrics::RefreshResult;
use crate::serving_history::HistoryFile;
use iscsi_ha_core::engine::{Hooks, Notice, Pass, RefreshNotice};
use iscsi_ha_core::history::ServingHistory;
use iscsi_ha_core::plan::{Intent, Step};
use iscsi_ha_core::reconcile::{Outcome, Report};
use iscsi_ha_core::time::{Moment, Timestamp};
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

/// What the engine reaches outside itself, owned by the daemon.
#[allow(missing_debug_implementations)]
pub(super) struct Surroundings {
    pub(super) notifier: Notifier,
    /// What this host remembers of serving, as last saved.
    pub(super) history: HistoryFile,
    /// `[tickle]`: the connection lists exchanged with the peer, the tickles at a takeover.
    pub(super) handover: Option<Handover>,
    /// When the loop woke for the wake-up under way (the stamp of a role seen).
    pub(super) woke: phase::Stamp,
    /// Steps whose failure was logged as an error, with that error (logged once).
    failing: HashMap<Step, String>,
}

impl Surroundings {
    pub(super) fn new(
        notifier: Notifier,
        history: HistoryFile,
        handover: Option<Handover>,
    ) -> Self {
        Self {
            notifier,
            history,
            handover,
            woke: phase::Stamp::now(),
            failing: HashMap::new(),
        }
    }

    /// Logs what a pass did. A step that keeps failing with the same error is logged as an
    /// error once (then at debug level) and once more when it works again, so a component that
    /// cannot work does not fill the log; status says when it is retried.
    fn log_report(&mut self, reason: &str, pass: usize, report: &Report) {
        if report.actions.is_empty() {
            tracing::debug!(reason, pass, intent = ?report.plan.intent, holds = report.plan.holds.len(), "nothing to do");
        }
        for a in &report.actions {
            match &a.outcome {
                Outcome::Done => {
                    if self.failing.remove(&a.step).is_some() {
                        tracing::info!(reason, "{}: done, it works again", a.step);
                    } else {
                        tracing::info!(reason, "{}: done", a.step);
                    }
                }
                Outcome::Failed { error, .. } => {
                    if self.failing.get(&a.step) == Some(error) {
                        tracing::debug!(reason, "{}: still failing: {error}", a.step);
                    } else {
                        tracing::error!(reason, "{}: failed: {error}", a.step);
                        self.failing.insert(a.step.clone(), error.clone());
                    }
                }
                Outcome::Deferred { retry_in_ms } => {
                    tracing::debug!("{}: deferred {retry_in_ms} ms", a.step)
                }
                Outcome::BudgetExhausted { retry_in_ms } => {
                    tracing::debug!("{}: budget exhausted for {retry_in_ms} ms more", a.step)
                }
            }
        }
        for hold in &report.plan.holds {
            tracing::debug!("hold: {hold}");
        }
    }
}

/// Now, on both clocks.
pub(super) fn moment() -> Moment {
    Moment {
        instant: Instant::now(),
        wall: Timestamp::from_system_time(SystemTime::now()),
    }
}

impl Hooks for Surroundings {
    fn now(&self) -> Moment {
        moment()
    }

    fn keepalive(&self) {
        self.notifier.keepalive();
    }

    fn step_started(&self, step: &Step) {
        phase::edge(&step.to_string(), phase::Edge::Start);
    }

    fn step_ended(&self, step: &Step, ok: bool) {
        phase::edge(&step.to_string(), phase::Edge::End { ok });
    }

    fn role_seen(&mut self, role: &'static str) {
        phase::at("role seen", self.woke, Some(role));
    }

    fn reached(&mut self, intent: &Intent) {
        let name = match intent {
            Intent::Serve => "serving",
            Intent::Release => "released",
            Intent::Hold(_) => return,
        };
        phase::at(name, phase::Stamp::now(), None);
    }

    fn pass_done(&mut self, pass: &Pass<'_>) {
        let report = pass.report;
        if !report.actions.is_empty() {
            tracing::info!(
                reason = pass.reason,
                pass = pass.index,
                observe_ms = pass.observed.as_millis(),
                act_ms = pass.acted.as_millis(),
                "pass: {}",
                report
                    .plan
                    .steps
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        self.log_report(pass.reason, pass.index, report);
        // `[tickle]`: once this pass assigned the VIP (the assignment sends the first
        // announcement before it returns, and the target was started before it), the peer's
        // initiators are tickled so they log in here at once.
        let assigned = report
            .actions
            .iter()
            .any(|a| a.step == Step::AssignVip && a.outcome.is_done());
        if let (true, Some(h)) = (assigned, self.handover.as_mut()) {
            h.tickle();
        }
    }

    fn history_changed(&mut self, history: &ServingHistory) {
        self.history.history = history.clone();
        self.history.save();
    }

    fn notice(&mut self, notice: Notice) {
        if let Notice::VipRefresh(refresh) = &notice {
            let result = match refresh {
                RefreshNotice::Sent => Some(RefreshResult::Sent),
                RefreshNotice::Withheld { .. } => Some(RefreshResult::Withheld),
                RefreshNotice::Failed(_) => Some(RefreshResult::Failed),
                _ => None,
            };
            if let Some(result) = result {
                crate::metrics::vip_refreshed(result);
            }
        }
        if notice.is_warning() {
            tracing::warn!("{notice}");
        } else {
            tracing::debug!("{notice}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    #[test]
    fn the_engines_keepalives_reach_systemd_spaced_by_the_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd.set_nonblocking(true).unwrap();
        // Only this test sets it, before the first notification of this process.
        std::env::set_var("NOTIFY_SOCKET", &path);
        // systemd's WatchdogSec=1s: a keep-alive is due every 500 ms. The engine calls the
        // hook around every port call; steps 400 ms apart (three demotions) must each be
        // followed by one, and calls in quick succession must not flood the socket.
        let hooks = Surroundings::new(
            Notifier::with_watchdog(Some(Duration::from_secs(1))),
            HistoryFile::load(dir.path()),
            None,
        );
        for _ in 0..4 {
            hooks.keepalive();
            hooks.keepalive();
            std::thread::sleep(Duration::from_millis(400));
        }
        let mut keepalives = 0;
        let mut buf = [0u8; 256];
        while let Ok(n) = systemd.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
            keepalives += 1;
        }
        assert_eq!(keepalives, 4, "one per step, none for the repeated calls");
    }
}
