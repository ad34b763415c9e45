//! Whether the VIP is due for its periodic announcement (`[vip] refresh_interval`): one
//! gratuitous ARP / unsolicited NA now and then while this host serves, so that a switch or
//! initiator whose entry aged out, or that a passing claim led astray, learns again where the
//! address is.
//!
//! An announcement draws initiators to this host, so it is only made by a settled server
//! that nothing calls into question: its intent is to serve, it holds the VIP, the plan has
//! nothing left to do but a reconnect and holds nothing, its standing is clear, it may not be
//! a stale master ([`crate::standing::may_have_been_unreachable`]), and no other host's claim
//! on the VIP was seen for [`QUIET_AFTER_CLAIM_MS`]. Claims, contests and yields have their own
//! announcements ([`crate::plan::Step::AnnounceVip`]); this one never joins a dispute.
//!
//! A host that wrongly holds the VIP but hears no rival claim (a quiet mistaken holder) looks
//! settled from here: the rule cannot detect it. The daemon probes the VIP before each
//! refresh, which catches such a holder only when the rival answers the probe.

use crate::history::elapsed;
use crate::observation::Observation;
use crate::plan::{intent, Intent, Plan, Step};
use crate::standing::{may_have_been_unreachable, standing, Standing};
use crate::time::Moment;
use std::fmt;
use std::time::{Duration, Instant};

/// How long after another host's last claim on the VIP this host stays silent, in
/// milliseconds: as long as the history keeps a contest in mind (a contest with no claim for
/// this long is over), so a refresh never lands in the middle of one.
pub const QUIET_AFTER_CLAIM_MS: u64 = 30_000;

/// The rule's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Announce the VIP once, now.
    Due,
    /// Every condition holds but time: due at this instant if nothing changes meanwhile (the
    /// interval since the last announcement, or the quiet after a claim, runs out then).
    At(Instant),
    /// Not while this holds; a later observation decides again.
    Withheld(Withheld),
}

/// Why no refresh is due, whatever the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// `refresh_interval = "0s"`.
    Off,
    /// The intent is not to serve (release, or the role is unknown).
    NotServing,
    /// The VIP is not here, or that could not be observed.
    VipNotHere,
    /// The plan still has steps (other than reconnecting) or holds something.
    Unsettled,
    /// Another host claims the VIP, or this host's standing is in question (contested, a
    /// conflict, a yield).
    Disputed,
    /// This host may be a stale master (it lost its peer while Primary, or a split brain).
    MayBeStale,
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Withheld::Off => "refresh_interval is 0s",
            Withheld::NotServing => "this host does not serve",
            Withheld::VipNotHere => "the VIP is not here",
            Withheld::Unsettled => "the plan is not settled",
            Withheld::Disputed => "the VIP is disputed",
            Withheld::MayBeStale => "this host may be a stale master",
        })
    }
}

/// Decides whether the VIP is due for its periodic announcement.
///
/// `observation` is the latest one, with the host's record as it stands after that pass;
/// `plan` is the plan made from it; `interval` is `[vip] refresh_interval` (`None`: off);
/// `last_announced` is when this daemon last announced the VIP (assignment, a contest's
/// announcement, or a refresh), `None` when it has not yet: then the first refresh is due at
/// once. A wall clock that went back counts as no time passed since the last claim, which
/// only delays a refresh.
pub fn refresh_due(
    observation: &Observation,
    plan: &Plan,
    interval: Option<Duration>,
    last_announced: Option<Instant>,
    now: Moment,
) -> Refresh {
    let Some(interval) = interval else {
        return Refresh::Withheld(Withheld::Off);
    };
    if intent(observation) != Intent::Serve || plan.intent != Intent::Serve {
        return Refresh::Withheld(Withheld::NotServing);
    }
    if observation.vip_here != Ok(true) {
        return Refresh::Withheld(Withheld::VipNotHere);
    }
    if observation.vip_claim.is_some() || standing(observation) != Standing::Clear {
        return Refresh::Withheld(Withheld::Disputed);
    }
    if may_have_been_unreachable(observation) {
        return Refresh::Withheld(Withheld::MayBeStale);
    }
    if !settled(plan) {
        return Refresh::Withheld(Withheld::Unsettled);
    }
    let quiet_from = observation.history.last_claim_at.map(|at| {
        let since = Duration::from_millis(elapsed(at, now.wall));
        now.instant + Duration::from_millis(QUIET_AFTER_CLAIM_MS).saturating_sub(since)
    });
    let interval_from = last_announced.map(|at| at + interval);
    match quiet_from.into_iter().chain(interval_from).max() {
        Some(at) if at > now.instant => Refresh::At(at),
        _ => Refresh::Due,
    }
}

/// Whether a serving plan is done: no holds, and no step but reconnecting the replication
/// link (which draws no initiator anywhere).
fn settled(plan: &Plan) -> bool {
    plan.holds.is_empty() && plan.steps.iter().all(|s| matches!(s, Step::Reconnect(_)))
}
