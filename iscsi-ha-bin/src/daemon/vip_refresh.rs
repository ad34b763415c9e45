//! `[vip] refresh_interval`: the periodic announcement of the VIP while this host serves.
//!
//! The decision is the core's ([`iscsi_ha_core::refresh::refresh_due`]), asked after every
//! wake-up with that wake-up's last observation and plan; this module keeps the clock it
//! needs (when the VIP was last announced) and the instant the loop must wake for the next
//! refresh. The loop then runs a pass first, so the refresh is decided on a fresh observation,
//! never on one up to a scan interval old.

use iscsi_ha_core::config::Config;
use iscsi_ha_core::observation::Observation;
use iscsi_ha_core::plan::{Plan, Step};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_core::reconcile::Report;
use iscsi_ha_core::refresh::{refresh_due, Refresh};
use iscsi_ha_core::time::Moment;
use iscsi_ha_core::vip::VipRefresh;
use std::time::{Duration, Instant};

/// How late a refresh may be found before it is taken as a sign that the loop, or the whole
/// host, was stopped meanwhile (SIGSTOP, a paused VM): a host coming back from a pause may be
/// a stale master whose DRBD has not yet noticed the lost peer, so that refresh is skipped.
const LATE: Duration = Duration::from_secs(1);

/// The refresh's state between wake-ups. Public so that its integration test can drive it
/// with the real adapter on a host where the daemon itself cannot serve (no DRBD).
#[derive(Debug, Default)]
pub struct VipRefresher {
    /// When this daemon last announced the VIP: an assignment, a contest's announcement, or a
    /// refresh (sent or tried: a failing one waits a whole interval too).
    last_announced: Option<Instant>,
    /// When the rule says the next refresh is due, if nothing changes meanwhile.
    next: Option<Instant>,
}

impl VipRefresher {
    /// The instant the loop must wake for the next refresh.
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    /// Takes in a pass's report: an assignment or a contest's announcement that went out is an
    /// announcement, and restarts the interval.
    pub fn note(&mut self, report: &Report, at: Instant) {
        let announced = report
            .actions
            .iter()
            .any(|a| matches!(a.step, Step::AssignVip | Step::AnnounceVip) && a.outcome.is_done());
        if announced {
            self.last_announced = Some(at);
        }
    }

    /// Asks the rule after a wake-up and, when a refresh is due, sends it through `vip`.
    /// `observation` carries the host's record as it stands after the wake-up's last pass.
    pub fn after_wake(
        &mut self,
        config: &Config,
        observation: &Observation,
        plan: &Plan,
        vip: &mut dyn FloatingIp,
        now: Moment,
    ) {
        let interval = config.file.vip.refresh_interval.get();
        match refresh_due(observation, plan, interval, self.last_announced, now) {
            Refresh::Due if self.next.is_some_and(|at| now.instant > at + LATE) => {
                tracing::debug!("VIP refresh skipped: found late, the loop or the host was stopped meanwhile; the next one is an interval away");
                self.last_announced = Some(now.instant);
                self.next = interval.map(|i| now.instant + i);
            }
            Refresh::Due => self.send(config, vip, now.instant),
            Refresh::At(at) => self.next = Some(at),
            Refresh::Withheld(why) => {
                if self.next.take().is_some() {
                    tracing::debug!("VIP refresh withheld: {why}");
                }
            }
        }
    }

    fn send(&mut self, config: &Config, vip: &mut dyn FloatingIp, now: Instant) {
        let interval = config.file.vip.refresh_interval.get();
        // Sent or not, the next attempt waits a whole interval: a failing interface is not
        // hammered, and its failure is logged once per interval.
        self.last_announced = Some(now);
        self.next = interval.map(|i| now + i);
        match vip.refresh(&config.vip) {
            Ok(VipRefresh::Sent) => {
                tracing::debug!(vip = %config.vip, "VIP refreshed: one announcement sent");
                crate::metrics::vip_refreshed(true);
            }
            Ok(VipRefresh::NotHere) => {
                tracing::warn!(vip = %config.vip, "VIP refresh not sent: the address is no longer on its interface");
                crate::metrics::vip_refreshed(false);
            }
            Err(e) => {
                tracing::warn!(vip = %config.vip, "VIP refresh failed: {e}");
                crate::metrics::vip_refreshed(false);
            }
        }
    }
}
