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
        let serving = self.engine.status().is_some_and(serving);
        let xapi = &self.config.file.xapi;
        let event = self.replug.observe(
            serving,
            xapi.replug_pbds,
            xapi.replug_delay.get(),
            Instant::now(),
        );
        if let Some(event) = event {
            self.replug_event(&event);
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
            self.replug_event(&event);
        }
        let last = self.replug.last().map(str::to_string);
        self.engine.set_pbd_replug(last);
    }

    fn replug_event(&mut self, event: &ReplugEvent) {
        log(event);
        let Some(alert) = alert_for(event) else {
            return;
        };
        if let Some(record) =
            self.engine
                .raise(alert, self.manual, self.host.alerts.as_mut(), moment())
        {
            tracing::debug!(delivery = ?record.delivery, "PBD re-plug alert");
        }
    }
}

/// Logs a re-plug event: a failure that is tried again as a warning, the final failure once
/// as an error with the commands to run by hand.
fn log(event: &ReplugEvent) {
    match event {
        ReplugEvent::Started { attempt } => {
            tracing::info!(
                attempt,
                "PBD re-plug: asking XAPI for the lvmoiscsi SRs on the VIP"
            );
        }
        ReplugEvent::Cancelled { why } => tracing::info!("PBD re-plug cancelled: {why}"),
        ReplugEvent::Finished {
            attempt,
            report,
            retry_in,
        } => {
            for note in &report.notes {
                tracing::warn!("PBD re-plug: {note}");
            }
            match retry_in {
                _ if report.succeeded() => {
                    tracing::info!(attempt, "PBD re-plug: {}", report.summary());
                }
                Some(after) => tracing::warn!(
                    attempt,
                    "PBD re-plug {}; trying again in {} s",
                    report.summary(),
                    after.as_secs()
                ),
                None => tracing::error!("{}", final_failure(*attempt, report)),
            }
        }
    }
}

fn final_failure(attempt: usize, report: &crate::xapi::ReplugReport) -> String {
    format!(
        "PBD re-plug gave up after {attempt} attempts: {}. Hosts may have lost their SR on the VIP; by hand: {}",
        report.summary(),
        report.by_hand()
    )
}

/// What an event tells the operator: an info alert naming the PBDs plugged, an error alert
/// when the last attempt failed; nothing for an attempt that is tried again.
fn alert_for(event: &ReplugEvent) -> Option<Alert> {
    let ReplugEvent::Finished {
        attempt,
        report,
        retry_in,
    } = event
    else {
        return None;
    };
    if report.succeeded() {
        if report.plugged.is_empty() {
            return None;
        }
        let plugged: Vec<String> = report
            .plugged
            .iter()
            .map(|p| format!("{} (host {}, SR {})", p.pbd, p.host, p.sr))
            .collect();
        return Some(Alert::new(
            Severity::Info,
            format!(
                "PBD re-plug after taking over: plugged {}",
                plugged.join(", ")
            ),
        ));
    }
    retry_in
        .is_none()
        .then(|| Alert::new(Severity::Error, final_failure(*attempt, report)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::{PbdPlugged, ReplugReport};
    use std::time::Duration;

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

    #[test]
    fn status_shows_the_last_replug_result_as_text_and_json() {
        let text = include_str!("../../../fixtures/xapi/status-serving.json");
        let mut status: Status = serde_json::from_str(text).unwrap();
        let rendered = crate::commands::status::render(&status, std::time::SystemTime::now());
        assert!(!rendered.contains("PBD RE-PLUG"), "{rendered}");
        status.pbd_replug = Some("plugged 2 PBDs".into());
        let rendered = crate::commands::status::render(&status, std::time::SystemTime::now());
        assert!(
            rendered.contains("PBD RE-PLUG:    plugged 2 PBDs\n"),
            "{rendered}"
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["pbd_replug"], "plugged 2 PBDs");
    }

    #[test]
    fn the_last_failure_raises_an_error_alert_naming_the_plug_to_run_by_hand() {
        let pbd = PbdPlugged {
            pbd: "a2".into(),
            host: "h2".into(),
            sr: "sa".into(),
        };
        let failed = ReplugReport {
            not_plugged: vec![pbd.clone()],
            failures: vec!["/usr/bin/xe pbd-plug uuid=a2 exited 1".into()],
            ..ReplugReport::default()
        };
        let finished = |report: &ReplugReport, retry_in| ReplugEvent::Finished {
            attempt: 3,
            report: report.clone(),
            retry_in,
        };
        assert_eq!(
            alert_for(&finished(&failed, Some(Duration::from_secs(30)))),
            None,
            "an attempt tried again is only logged"
        );
        let alert = alert_for(&finished(&failed, None)).unwrap();
        assert_eq!(alert.severity, Severity::Error);
        assert!(
            alert.message.contains("gave up after 3 attempts")
                && alert.message.ends_with("by hand: xe pbd-plug uuid=a2"),
            "{}",
            alert.message
        );
        let nothing = ReplugReport::default();
        assert_eq!(alert_for(&finished(&nothing, None)), None);
        let plugged = ReplugReport {
            plugged: vec![pbd],
            ..ReplugReport::default()
        };
        let info = alert_for(&finished(&plugged, None)).unwrap();
        assert_eq!(info.severity, Severity::Info);
        assert!(info.message.contains("plugged a2 (host h2, SR sa)"));
        assert_eq!(alert_for(&ReplugEvent::Started { attempt: 1 }), None);
    }
}
