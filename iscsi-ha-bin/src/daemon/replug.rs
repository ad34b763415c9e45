//! The daemon's side of XenServer's PBD re-plug ([`crate::xapi`]): after each wake-up it tells
//! the re-plug whether this host serves; the running `xe` is polled like the other
//! descriptors; results are logged, alerted and shown in status.

use super::{moment, Daemon};
use crate::xapi::{ReplugEvent, ReplugSpec, Xe};
use iscsi_ha_core::alert::{Alert, Severity};
use iscsi_ha_core::plan::Intent;
use iscsi_ha_core::status::Status;
use std::time::Instant;

/// Serving, for the re-plug: the intent is to serve and the target and the VIP are both here
/// (what the initiators need before a plug can work).
pub(super) fn serving(status: &Status) -> bool {
    status.intent == Intent::Serve && status.target.running && status.vip.here == Some(true)
}

impl Daemon {
    /// Follows the pass just made: starts the wait for a re-plug once this host serves,
    /// cancels it when it stops.
    pub(super) fn follow_replug(&mut self) {
        let serving = self.status.as_ref().is_some_and(serving);
        let xapi = &self.config.file.xapi;
        let event = self.replug.observe(
            serving,
            xapi.replug_pbds,
            xapi.replug_delay.get(),
            Instant::now(),
        );
        if let Some(event) = event {
            self.replug_event(event);
        }
        self.poll_replug();
    }

    /// Starts a due attempt or reads the running `xe`, without blocking.
    pub(super) fn poll_replug(&mut self) {
        let xapi = &self.config.file.xapi;
        let spec = ReplugSpec {
            xe: Xe::new(&xapi.xe, xapi.timeout.get()),
            vip: self.config.vip.address(),
            iqn: self.config.target.iqn.to_string(),
        };
        // A started attempt may end at once (an xe that cannot start), so read on.
        while let Some(event) = self.replug.advance(Instant::now(), || spec.clone()) {
            self.replug_event(event);
        }
        let last = self.replug.last().map(str::to_string);
        if let Some(status) = self.status.as_mut() {
            status.pbd_replug = last;
        }
    }

    fn replug_event(&mut self, event: ReplugEvent) {
        match event {
            ReplugEvent::Started { attempt } => {
                tracing::info!(
                    attempt,
                    "PBD re-plug: asking XAPI for the lvmoiscsi SRs on the VIP"
                );
            }
            ReplugEvent::Cancelled { why } => {
                tracing::info!("PBD re-plug cancelled: {why}");
            }
            ReplugEvent::Finished {
                attempt,
                report,
                retry_in,
            } => {
                for note in &report.notes {
                    tracing::warn!("PBD re-plug: {note}");
                }
                if report.succeeded() {
                    tracing::info!(attempt, "PBD re-plug: {}", report.summary());
                    if !report.plugged.is_empty() {
                        let plugged: Vec<String> = report
                            .plugged
                            .iter()
                            .map(|p| format!("{} (host {}, SR {})", p.pbd, p.host, p.sr))
                            .collect();
                        self.alert(Alert::new(
                            Severity::Info,
                            format!(
                                "PBD re-plug after taking over: plugged {}",
                                plugged.join(", ")
                            ),
                        ));
                    }
                } else if let Some(after) = retry_in {
                    tracing::warn!(
                        attempt,
                        "PBD re-plug {}; trying again in {} s",
                        report.summary(),
                        after.as_secs()
                    );
                } else {
                    let message = format!(
                        "PBD re-plug gave up after {attempt} attempts: {}. Hosts may have lost their SR on the VIP; by hand: {}",
                        report.summary(),
                        report.by_hand()
                    );
                    tracing::error!("{message}");
                    self.alert(Alert::new(Severity::Error, message));
                }
            }
        }
    }

    fn alert(&mut self, alert: Alert) {
        let now = moment();
        if let Some(record) =
            self.reconciler
                .raise(alert, self.manual, self.host.alerts.as_mut(), now)
        {
            tracing::debug!(delivery = ?record.delivery, "PBD re-plug alert");
        }
        if let Some(status) = self.status.as_mut() {
            status.alerts = self.reconciler.recent_alerts().cloned().collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_whose_intent_is_serve_with_the_target_and_the_vip_here_is_serving() {
        let text = include_str!("../../../fixtures/xapi/status-serving.json");
        let status: Status = serde_json::from_str(text).unwrap();
        assert!(serving(&status));
        let mut s = status.clone();
        s.intent = Intent::Release;
        assert!(!serving(&s), "a slave (or become-secondary) never re-plugs");
        let mut s = status.clone();
        s.intent = Intent::Hold("role unknown".into());
        assert!(!serving(&s));
        let mut s = status.clone();
        s.target.running = false;
        assert!(!serving(&s), "not before the target exports");
        let mut s = status.clone();
        s.vip.here = None;
        assert!(!serving(&s), "not while the VIP cannot be seen here");
        let mut s = status;
        s.vip.here = Some(false);
        assert!(!serving(&s));
    }
}
