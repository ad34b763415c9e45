//! A serving host that may have been unreachable (it lost its peer while Primary, or a split
//! brain shows the data went two ways) probes the VIP it holds: another host's answer means a
//! new master took over meanwhile, and becomes the observation's claim.

use super::{Hooks, Notice};
use crate::history::ServingHistory;
use crate::ports::FloatingIp;
use crate::time::Timestamp;
use crate::vip::{Vip, VipClaim, VipProbe};
use std::time::{Duration, Instant};

/// How often a serving host that may have been unreachable probes the VIP it holds, at first.
const EVERY: Duration = Duration::from_secs(1);
/// ... and after the first minute.
const LATER: Duration = Duration::from_secs(5);
/// How long the first, faster period lasts after the peer was lost.
const FIRST_PERIOD_MS: u64 = 60_000;

/// How often a serving host that may have been unreachable probes the VIP it holds: every
/// second in the first minute after it lost its peer (when a stale master comes back), then
/// every five seconds for as long as it is not connected again, so that a link restored much
/// later is still noticed within seconds at the cost of one ARP probe per period.
pub fn stale_check_period(history: &ServingHistory, now: Timestamp) -> Duration {
    let recent = history
        .lost_peer_at
        .is_none_or(|at| crate::history::elapsed(at, now) < FIRST_PERIOD_MS);
    if recent {
        EVERY
    } else {
        LATER
    }
}

/// When the VIP was last probed while held here, to space probes.
#[derive(Debug, Default)]
pub(super) struct StaleCheck {
    last: Option<Instant>,
}

impl StaleCheck {
    /// Probes the VIP, at most once per second however often the loop wakes.
    pub(super) fn probe(
        &mut self,
        vip: &Vip,
        port: &mut dyn FloatingIp,
        now: Instant,
        hooks: &mut dyn Hooks,
    ) -> Option<VipClaim> {
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < EVERY)
        {
            return None;
        }
        self.last = Some(now);
        match port.probe(vip) {
            Ok(VipProbe::LiveElsewhere { owner }) => {
                hooks.notice(Notice::VipAnsweredElsewhere {
                    owner: owner.clone(),
                });
                Some(VipClaim {
                    owner,
                    how: "reply to our probe while holding the VIP".into(),
                })
            }
            Ok(VipProbe::Free) => None,
            Err(e) => {
                hooks.notice(Notice::VipProbeFailed(e.to_string()));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspect_host_checks_its_vip_every_second_for_a_minute_then_every_five() {
        let t = Timestamp::from_unix_millis;
        let lost = ServingHistory {
            lost_peer_at: Some(t(100_000)),
            ..ServingHistory::default()
        };
        assert_eq!(stale_check_period(&lost, t(100_000)), EVERY);
        assert_eq!(stale_check_period(&lost, t(159_999)), EVERY);
        assert_eq!(stale_check_period(&lost, t(160_000)), LATER);
        assert_eq!(stale_check_period(&lost, t(3_600_000)), LATER);
        // A split brain without a lost peer on record: the one-second period.
        assert_eq!(stale_check_period(&ServingHistory::default(), t(0)), EVERY);
    }
}
