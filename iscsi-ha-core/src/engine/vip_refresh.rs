//! `[vip] refresh_interval`: the periodic announcement of the VIP while this host serves.
//!
//! The decision is [`crate::refresh::refresh_due`]'s, asked after every wake-up with that
//! wake-up's last observation and plan; this keeps the clock it needs (when the VIP was last
//! announced) and the instant the loop must wake for the next refresh. The loop then runs a
//! pass first, so the refresh is decided on a fresh observation, never on one up to a scan
//! interval old.
//!
//! Before announcing, the VIP is probed (`[vip] probe_timeout`, answers from this host's own
//! MACs ignored): a host that looks settled to itself may not be the only one holding the
//! address, such as a stale master resuming from a pause before DRBD has noticed the lost
//! peer, while the host that took over answers for it. Then nothing is sent, and the answer
//! goes to the next pass as a claim.

use super::{Hooks, Notice};
use crate::config::Config;
use crate::observation::Observation;
use crate::plan::{Plan, Step};
use crate::ports::FloatingIp;
use crate::reconcile::Report;
use crate::refresh::{refresh_due, Refresh};
use crate::vip::{VipClaim, VipProbe, VipRefresh};
use std::time::{Duration, Instant};

/// How late a refresh may be found before it is taken as a sign that the loop, or the whole
/// host, was stopped meanwhile (SIGSTOP, a paused VM): a host coming back from a pause may be
/// a stale master whose DRBD has not yet noticed the lost peer, so that refresh is skipped.
const LATE: Duration = Duration::from_secs(1);

/// How a refresh ended, for the log and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshNotice {
    /// One announcement went out.
    Sent,
    /// Another host answered the probe: nothing was sent, its answer is the next pass's claim.
    Withheld {
        /// The answering host's hardware address, when known.
        owner: Option<String>,
    },
    /// Nothing went out: the probe failed, the address was gone, or the send failed.
    Failed(String),
    /// Found more than a second late (the loop or the host was stopped): skipped, and the
    /// next one is an interval away.
    SkippedLate,
    /// The rule no longer allows refreshing (the reason), after it did.
    Paused(String),
}

/// The refresh's state between wake-ups. Public so that an integration test can drive it
/// with the real adapter on a host where a daemon itself cannot serve (no DRBD).
#[derive(Debug, Default)]
pub struct VipRefresher {
    /// When this host last announced the VIP: an assignment, a contest's announcement, or a
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
        hooks: &mut dyn Hooks,
    ) -> Option<VipClaim> {
        let now = hooks.now();
        let interval = config.file.vip.refresh_interval.get();
        match refresh_due(observation, plan, interval, self.last_announced, now) {
            Refresh::Due if self.next.is_some_and(|at| now.instant > at + LATE) => {
                hooks.notice(Notice::VipRefresh(RefreshNotice::SkippedLate));
                self.last_announced = Some(now.instant);
                self.next = interval.map(|i| now.instant + i);
                None
            }
            Refresh::Due => {
                self.last_announced = Some(now.instant);
                self.next = interval.map(|i| now.instant + i);
                let (notice, claim) = send(config, vip);
                hooks.notice(Notice::VipRefresh(notice));
                claim
            }
            Refresh::At(at) => {
                self.next = Some(at);
                None
            }
            Refresh::Withheld(why) => {
                if self.next.take().is_some() {
                    hooks.notice(Notice::VipRefresh(RefreshNotice::Paused(why.to_string())));
                }
                None
            }
        }
    }
}

/// Probes, then sends one announcement if nobody else answered.
fn send(config: &Config, vip: &mut dyn FloatingIp) -> (RefreshNotice, Option<VipClaim>) {
    match vip.probe(&config.vip) {
        Ok(VipProbe::Free) => {}
        Ok(VipProbe::LiveElsewhere { owner }) => {
            let claim = VipClaim {
                owner: owner.clone(),
                how: "reply to the probe before a VIP refresh".into(),
            };
            return (RefreshNotice::Withheld { owner }, Some(claim));
        }
        Err(e) => {
            return (
                RefreshNotice::Failed(format!("cannot probe the VIP first: {e}")),
                None,
            )
        }
    }
    let notice = match vip.refresh(&config.vip) {
        Ok(VipRefresh::Sent) => RefreshNotice::Sent,
        Ok(VipRefresh::NotHere) => {
            RefreshNotice::Failed("the address is no longer on its interface".into())
        }
        Err(e) => RefreshNotice::Failed(e.to_string()),
    };
    (notice, None)
}

impl RefreshNotice {
    /// Whether it is worth a warning: nothing went out when it should have.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            RefreshNotice::Withheld { .. } | RefreshNotice::Failed(_)
        )
    }
}

impl std::fmt::Display for RefreshNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshNotice::Sent => f.write_str("VIP refreshed: one announcement sent"),
            RefreshNotice::Withheld { owner } => write!(
                f,
                "VIP refresh withheld: another host ({}) answers for the VIP this host holds",
                owner.as_deref().unwrap_or("unknown")
            ),
            RefreshNotice::Failed(why) => write!(f, "VIP refresh not sent: {why}"),
            RefreshNotice::SkippedLate => f.write_str(
                "VIP refresh skipped: found late, the loop or the host was stopped meanwhile; the next one is an interval away",
            ),
            RefreshNotice::Paused(why) => write!(f, "VIP refresh withheld: {why}"),
        }
    }
}
