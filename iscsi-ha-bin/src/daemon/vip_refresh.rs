//! `[vip] refresh_interval`: the periodic announcement of the VIP while this host serves.
//!
//! The decision is the core's ([`iscsi_ha_core::refresh::refresh_due`]), asked after every
//! wake-up with that wake-up's last observation and plan; this module keeps the clock it
//! needs (when the VIP was last announced) and the instant the loop must wake for the next
//! refresh. The loop then runs a pass first, so the refresh is decided on a fresh observation,
//! never on one up to a scan interval old.
//!
//! Before announcing, the VIP is probed (`[vip] probe_timeout`, answers from this host's own
//! MACs ignored): a host that looks settled to itself may not be the only one holding the
//! address, such as a stale master resuming from a pause before DRBD has noticed the lost
//! peer, while the host that took over answers for it. Then nothing is sent, and the answer
//! goes to the next pass as a claim.

use crate::metrics::RefreshResult;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::observation::Observation;
use iscsi_ha_core::plan::{Plan, Step};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_core::reconcile::Report;
use iscsi_ha_core::refresh::{refresh_due, Refresh};
use iscsi_ha_core::time::Moment;
use iscsi_ha_core::vip::{VipClaim, VipProbe, VipRefresh};
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

    /// Asks the rule after a wake-up and, when a refresh is due, probes the VIP and sends it
    /// through `vip` if nobody else answers. `observation` carries the host's record as it
    /// stands after the wake-up's last pass. Returns the claim of a host that answered the
    /// probe, for the next pass to weigh.
    pub fn after_wake(
        &mut self,
        config: &Config,
        observation: &Observation,
        plan: &Plan,
        vip: &mut dyn FloatingIp,
        now: Moment,
    ) -> Option<VipClaim> {
        let interval = config.file.vip.refresh_interval.get();
        match refresh_due(observation, plan, interval, self.last_announced, now) {
            Refresh::Due if self.next.is_some_and(|at| now.instant > at + LATE) => {
                tracing::debug!("VIP refresh skipped: found late, the loop or the host was stopped meanwhile; the next one is an interval away");
                self.last_announced = Some(now.instant);
                self.next = interval.map(|i| now.instant + i);
                None
            }
            Refresh::Due => self.send(config, vip, now.instant),
            Refresh::At(at) => {
                self.next = Some(at);
                None
            }
            Refresh::Withheld(why) => {
                if self.next.take().is_some() {
                    tracing::debug!("VIP refresh withheld: {why}");
                }
                None
            }
        }
    }

    fn send(
        &mut self,
        config: &Config,
        vip: &mut dyn FloatingIp,
        now: Instant,
    ) -> Option<VipClaim> {
        let interval = config.file.vip.refresh_interval.get();
        // Sent or not, the next attempt waits a whole interval: a failing interface is not
        // hammered, and its failure is logged once per interval.
        self.last_announced = Some(now);
        self.next = interval.map(|i| now + i);
        match vip.probe(&config.vip) {
            Ok(VipProbe::Free) => {}
            Ok(VipProbe::LiveElsewhere { owner }) => {
                tracing::warn!(
                    vip = %config.vip,
                    owner = owner.as_deref().unwrap_or("unknown"),
                    "VIP refresh withheld: another host answers for the VIP this host holds"
                );
                crate::metrics::vip_refreshed(RefreshResult::Withheld);
                return Some(VipClaim {
                    owner,
                    how: "reply to the probe before a VIP refresh".into(),
                });
            }
            Err(e) => {
                // Announcing without knowing whether another host holds it is what the probe
                // is there to avoid.
                tracing::warn!(vip = %config.vip, "VIP refresh not sent: cannot probe the VIP first: {e}");
                crate::metrics::vip_refreshed(RefreshResult::Failed);
                return None;
            }
        }
        match vip.refresh(&config.vip) {
            Ok(VipRefresh::Sent) => {
                tracing::debug!(vip = %config.vip, "VIP refreshed: one announcement sent");
                crate::metrics::vip_refreshed(RefreshResult::Sent);
            }
            Ok(VipRefresh::NotHere) => {
                tracing::warn!(vip = %config.vip, "VIP refresh not sent: the address is no longer on its interface");
                crate::metrics::vip_refreshed(RefreshResult::Failed);
            }
            Err(e) => {
                tracing::warn!(vip = %config.vip, "VIP refresh failed: {e}");
                crate::metrics::vip_refreshed(RefreshResult::Failed);
            }
        }
        None
    }
}
