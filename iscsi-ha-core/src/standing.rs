//! Whether this host may go on serving (the stale-master rule), and which side of a split
//! brain to keep. Pure functions over the observation and the host's [`ServingHistory`].
//!
//! The danger: a master that was paused or cut off comes back still Primary, still holding the
//! VIP, while its peer has taken over and acknowledged writes of its own. Both would answer
//! for the VIP, and initiators resolving it afresh would reach either. What each side can
//! observe decides who stays:
//!
//! - the side that **took over** became Primary while its peer was unreachable; it has the
//!   writes acknowledged since, and it stays (and announces the VIP again to win the
//!   initiators back);
//! - the side that **lost its peer while Primary** may have been the unreachable one; when
//!   another host claims the VIP (a gratuitous ARP, a reply to its probe, an ARP reply from a
//!   foreign MAC) it yields: VIP off, target stopped, demoted;
//! - when neither can show the other is stale (both took over, or a host with no record), a
//!   claim that is still seen [`TIE_AFTER_MS`] later means nobody yielded: both stop and an
//!   operator decides.
//!
//! A claim while the DRBD peer is connected and Secondary is not a second server of our data
//! (the peer cannot be Primary): it is an address conflict with some other machine, alerted,
//! never yielded to.

use crate::history::{elapsed, ServingHistory};
use crate::observation::Observation;
use crate::plan::{intent, Intent};
use crate::time::Timestamp;
use crate::vip::VipClaim;
use crate::volume::VolumeRole;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How long the rightful server tolerates another host's claims before concluding that the
/// other side will not yield either (a tie), in milliseconds. Longer than DRBD's default
/// ping interval (10 s), within which an idle stale master notices that it lost its peer.
pub const TIE_AFTER_MS: u64 = 15_000;

/// This host's right to serve, as far as it can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nothing calls it into question.
    Clear,
    /// This host took over and another host still claims the VIP: announce it again; the
    /// stale side is expected to yield.
    Contested {
        /// The claim seen.
        claim: VipClaim,
    },
    /// Another machine, not the DRBD peer (which is connected and follows this host), claims
    /// the VIP: an address conflict on the network.
    AddressConflict {
        /// The claim seen.
        claim: VipClaim,
    },
    /// This host must stop serving now.
    Yield {
        /// Why, for status, alerts and the split-brain advice.
        reason: String,
        /// Both sides claimed to be the rightful server: neither can be advised as the survivor.
        tie: bool,
    },
}

/// Whether this host serves (or is half-way to it): it holds the VIP or a resource is Primary.
pub fn serving_here(observation: &Observation) -> bool {
    observation.vip_here == Ok(true)
        || observation.volumes.iter().any(|v| {
            v.status
                .as_ref()
                .is_ok_and(|s| s.role == VolumeRole::Primary)
        })
}

/// Whether every resource's peer is connected and Secondary: then the peer cannot be serving.
fn peer_follows(observation: &Observation) -> bool {
    !observation.volumes.is_empty()
        && observation.volumes.iter().all(|v| {
            v.status
                .as_ref()
                .is_ok_and(|s| s.connection.is_connected() && s.peer_role == VolumeRole::Secondary)
        })
}

/// Decides this host's standing from the observation (its claim, its history).
pub fn standing(observation: &Observation) -> Standing {
    let h = &observation.history;
    if intent(observation) != Intent::Serve {
        return Standing::Clear;
    }
    if let Some(at) = h.yielded_at {
        return Standing::Yield {
            reason: h
                .yield_reason
                .clone()
                .unwrap_or_else(|| format!("this host stopped serving at {at}")),
            tie: h.yielded_in_tie,
        };
    }
    let Some(claim) = observation.vip_claim.clone() else {
        return Standing::Clear;
    };
    if !serving_here(observation) {
        // Not holding anything: the probe before promotion and before assigning the VIP
        // keeps this host from taking it.
        return Standing::Clear;
    }
    if peer_follows(observation) {
        return Standing::AddressConflict { claim };
    }
    if let Some(lost) = suspect_since(h) {
        return Standing::Yield {
            reason: format!(
                "this host lost its DRBD peer at {lost} while Primary and another host now claims the VIP ({claim}): the peer took over while this host was unreachable; stopped serving so the data does not go two ways"
            ),
            tie: false,
        };
    }
    if losing_peer_now(observation) {
        return Standing::Yield {
            reason: format!(
                "this host is losing its DRBD peer while Primary and another host claims the VIP ({claim}): the peer took over while this host was unreachable; stopped serving so the data does not go two ways"
            ),
            tie: false,
        };
    }
    match h.took_over_at {
        Some(_) if !tie_reached(h) => Standing::Contested { claim },
        Some(_) => Standing::Yield {
            reason: format!(
                "another host has claimed the VIP for more than {} s ({claim}) although this host took over: both sides claim to be the server; both stop and an operator decides",
                TIE_AFTER_MS / 1000
            ),
            tie: true,
        },
        None => Standing::Yield {
            reason: format!(
                "another host claims the VIP ({claim}) and this host cannot show it took over after it: stopped serving so the data does not go two ways"
            ),
            tie: true,
        },
    }
}

/// Whether this observation is the one in which a Primary resource lost its link (the record
/// still says connected): a stale master that resumes often hears the new master's claim in
/// the same wake-up as DRBD's disconnect.
fn losing_peer_now(observation: &Observation) -> bool {
    observation.volumes.iter().any(|v| {
        v.status.as_ref().is_ok_and(|s| {
            s.role == VolumeRole::Primary
                && !s.connection.is_connected()
                && observation
                    .history
                    .resources
                    .get(v.name.as_str())
                    .is_some_and(|r| r.connected && r.local_primary)
        })
    })
}

/// When this host lost its peer while Primary, if it has not taken over since.
fn suspect_since(h: &ServingHistory) -> Option<Timestamp> {
    h.lost_peer_at
        .filter(|lost| h.took_over_at.is_none_or(|t| *lost >= t))
}

fn tie_reached(h: &ServingHistory) -> bool {
    match (h.contested_since, h.last_claim_at) {
        (Some(since), Some(last)) => elapsed(since, last) >= TIE_AFTER_MS,
        _ => false,
    }
}

/// Whether the daemon should probe the VIP while holding it before this pass: the host serves
/// and may have been unreachable (it lost its peer while Primary, or a split brain shows the
/// data went two ways). A reply from another host becomes the observation's claim.
pub fn vip_check_due(observation: &Observation) -> bool {
    intent(observation) == Intent::Serve
        && observation.vip_here == Ok(true)
        && may_have_been_unreachable(observation)
}

/// Whether this host may be a stale master: it lost its peer while Primary and has not taken
/// over since, or a split brain shows the data went two ways. Such a host keeps serving until
/// a claim says otherwise, but does nothing that would draw initiators to it.
pub fn may_have_been_unreachable(observation: &Observation) -> bool {
    suspect_since(&observation.history).is_some()
        || observation.volumes.iter().any(|v| v.split_brain.is_some())
}

/// Which side of a split brain to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// Keep this host's data.
    ThisHost,
    /// Keep the other host's data; discard this host's changes.
    OtherHost,
    /// This host cannot tell; compare what both hosts say.
    Undecided,
}

/// How sure the advice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// This host saw what decides it (it took over, or it yielded to the other).
    High,
    /// Likely, from what this host saw; confirm with the other host's advice.
    Medium,
    /// A guess; compare both hosts first.
    Low,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        })
    }
}

/// What to do about a split brain on one resource, as this host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advice {
    /// Which side's data to keep.
    pub keep: Keep,
    /// How sure.
    pub confidence: Confidence,
    /// What this host saw that leads there.
    pub why: String,
    /// What to run, and where.
    pub recovery: String,
}

/// The split-brain advice for `resource`: the side that served the initiators last survives.
/// A host that took over (and has not lost its peer or yielded since), or that kept the VIP
/// uncontested after it lost its peer, never advises discarding its own data.
pub fn split_brain_advice(h: &ServingHistory, resource: &str, serving_now: bool) -> Advice {
    let keep_here = |confidence: Confidence, why: String| {
        Advice {
        keep: Keep::ThisHost,
        confidence,
        why,
        recovery: format!(
            "keep THIS host's data: on the OTHER host run `iscsi-cfg split-brain resolve --discard-local-data --yes` (throws its changes to {resource} away), then here `iscsi-cfg split-brain reconnect`"
        ),
    }
    };
    let keep_there = |confidence: Confidence, why: String| {
        Advice {
        keep: Keep::OtherHost,
        confidence,
        why,
        recovery: format!(
            "keep the OTHER host's data: once this host no longer serves, run here `iscsi-cfg split-brain resolve --discard-local-data --yes` (throws this host's changes to {resource} away), then on the other host `iscsi-cfg split-brain reconnect`"
        ),
    }
    };
    if h.yielded_at.is_some() && h.yielded_in_tie {
        return Advice {
            keep: Keep::Undecided,
            confidence: Confidence::Low,
            why: format!(
                "both hosts claimed to be the server ({}); neither side's data can be called the newer from here",
                h.yield_reason.as_deref().unwrap_or("tie")
            ),
            recovery: "compare `iscsi-cfg split-brain` and the initiators' logs on both hosts; keep the side the initiators wrote to last, discard the other with `iscsi-cfg split-brain resolve --discard-local-data --yes` there, then `iscsi-cfg split-brain reconnect` on the survivor".into(),
        };
    }
    if let Some(at) = h.yielded_at {
        return keep_there(
            Confidence::High,
            format!(
                "this host yielded at {at}: {}",
                h.yield_reason
                    .as_deref()
                    .unwrap_or("another host claimed the VIP")
            ),
        );
    }
    if let Some(lost) = suspect_since(h) {
        let claimed_since = h.last_claim_at.is_some_and(|c| c >= lost);
        if serving_now && h.vip_held && !claimed_since {
            return keep_here(
                Confidence::Medium,
                format!(
                    "this host lost its peer at {lost} while Primary and has held the VIP since, with no other host claiming it: the initiators wrote here; if the other host says it took over, compare with its advice before discarding anything"
                ),
            );
        }
        return keep_there(
            Confidence::Medium,
            format!(
                "this host lost its peer at {lost} while Primary and {}; if the other host took over (its `iscsi-cfg split-brain` says so), its data is what the initiators used since",
                if claimed_since { "another host has claimed the VIP since" } else { "no longer serves" }
            ),
        );
    }
    if let Some(at) = h.took_over_at {
        return keep_here(
            Confidence::High,
            format!("this host took over at {at} while its peer was unreachable and has not lost its standing since: it holds the writes acknowledged after that"),
        );
    }
    if let (true, Some(at)) = (h.promoted_alone, h.promoted_alone_at) {
        return keep_there(
            Confidence::Medium,
            format!("this host was made Primary at {at} without its peer but never held the VIP after that: initiators did not write here"),
        );
    }
    if serving_now {
        return keep_here(
            Confidence::Low,
            "this host serves now, but has no record of taking over; check the other host's advice first".into(),
        );
    }
    Advice {
        keep: Keep::Undecided,
        confidence: Confidence::Low,
        why: format!(
            "this host neither took over nor yielded{}",
            h.vip_last_held_at
                .map(|t| format!("; it last held the VIP at {t}"))
                .unwrap_or_default()
        ),
        recovery: "run `iscsi-cfg split-brain` on the other host: keep the side that says it took over; never discard a side that took over".into(),
    }
}
