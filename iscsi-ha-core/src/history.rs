//! What this host remembers of its time as a server, across passes and daemon restarts: the
//! facts that the stale-master rule ([`crate::standing`]) and the split-brain advice rest on.
//!
//! Every fact is local: a host cannot know what its peer did while they were apart, only what
//! it saw itself. The transitions are pure ([`ServingHistory::note`]); the daemon keeps the
//! record in its state directory and writes it only when a fact changes.

use crate::observation::Observation;
use crate::plan::{Hold, Intent, Plan};
use crate::time::Timestamp;
use crate::volume::VolumeRole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One resource's last roles, as this host saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// This host was Primary at the last observation.
    pub local_primary: bool,
    /// When this host stopped being Primary (or was last seen so).
    pub local_last: Option<Timestamp>,
    /// The peer was Primary at the last observation.
    pub peer_primary: bool,
    /// When the peer was last seen Primary.
    pub peer_last: Option<Timestamp>,
    /// The replication link was up at the last observation.
    #[serde(default)]
    pub connected: bool,
    /// The replication link has been up since this host booted ([`ServingHistory::boot_id`]):
    /// only then does an UpToDate disk without its peer vouch for current data. DRBD 8.4
    /// attaches a consistent disk as UpToDate when fencing is `dont-care` (its default), also
    /// on a host that booted alone after its peer went on writing.
    #[serde(default)]
    pub peer_seen_this_boot: bool,
    /// The link went down by losing the peer, not by an operator, and has not been up since:
    /// set on every resource not connected when this host took over from an unreachable peer
    /// or yielded as a stale master (not in a tie), or was told to release after losing its
    /// peer while still Primary there; cleared once connected, and at a new boot (DRBD's
    /// handshake at boot decided the link's state since). Only such a
    /// resource is connected again by the daemon ([`crate::plan::reconnect_due`]); one an
    /// operator disconnected on a host that simply serves is left alone.
    #[serde(default)]
    pub parted_by_loss: bool,
}

/// The host's record. A default record knows nothing, which the rules read as "this host
/// never took over and never lost its peer".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingHistory {
    /// When this host took over: it became Primary while its peer was unreachable and then
    /// took the VIP (a promotion that never served the initiators is no take-over).
    #[serde(default)]
    pub took_over_at: Option<Timestamp>,
    /// A resource was promoted while the peer was unreachable and the VIP has not come here
    /// since.
    #[serde(default)]
    pub promoted_alone: bool,
    /// When that promotion happened (kept after the VIP came: then it is a take-over).
    #[serde(default)]
    pub promoted_alone_at: Option<Timestamp>,
    /// When this host, Primary, lost the replication link, if it has not been connected to a
    /// Secondary peer since: it may have been the unreachable one (paused, cut off).
    #[serde(default)]
    pub lost_peer_at: Option<Timestamp>,
    /// When this host stopped serving because another host claimed the VIP (or a tie could
    /// not be broken). Held while the intent stays "serve", until an operator forces.
    #[serde(default)]
    pub yielded_at: Option<Timestamp>,
    /// Why it yielded.
    #[serde(default)]
    pub yield_reason: Option<String>,
    /// It yielded because both sides claimed to be the server.
    #[serde(default)]
    pub yielded_in_tie: bool,
    /// Since when this host, the rightful server, has seen another host claim the VIP; when
    /// that lasts [`crate::standing::TIE_AFTER_MS`] the other side did not yield either.
    #[serde(default)]
    pub contested_since: Option<Timestamp>,
    /// When another host's claim on the VIP was last seen.
    #[serde(default)]
    pub last_claim_at: Option<Timestamp>,
    /// When this host last held the VIP (while it holds it: the last change).
    #[serde(default)]
    pub vip_last_held_at: Option<Timestamp>,
    /// Whether it held the VIP at the last observation.
    #[serde(default)]
    pub vip_held: bool,
    /// Per resource.
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceRecord>,
    /// The kernel boot (`/proc/sys/kernel/random/boot_id`) the per-boot facts belong to.
    #[serde(default)]
    pub boot_id: Option<String>,
}

impl ServingHistory {
    /// Starts the record of boot `boot_id` (when the daemon starts): facts of an earlier boot
    /// (or of an unknown one) that held only for that boot are forgotten. Returns whether
    /// anything changed.
    pub fn start_boot(&mut self, boot_id: Option<&str>) -> bool {
        if boot_id.is_some() && self.boot_id.as_deref() == boot_id {
            return false;
        }
        let before = self.clone();
        self.boot_id = boot_id.map(str::to_string);
        for r in self.resources.values_mut() {
            r.peer_seen_this_boot = false;
            // DRBD was brought up again with this boot and tried its handshake: a resource
            // StandAlone now was dropped there (a split brain whose helper call no process of
            // ours saw, or a refusal) or by an operator, not by the loss recorded before.
            r.parted_by_loss = false;
        }
        *self != before
    }

    /// Takes in one pass's observation and plan at `now`. Returns whether anything worth
    /// keeping changed (the caller saves the record then, not on every pass).
    pub fn note(&mut self, observation: &Observation, plan: &Plan, now: Timestamp) -> bool {
        let before = self.clone();
        for v in &observation.volumes {
            let Ok(s) = &v.status else { continue };
            // Without an earlier record a transition cannot be told from a daemon start.
            let known = self.resources.contains_key(v.name.as_str());
            let r = self.resources.entry(v.name.to_string()).or_default();
            let local = s.role == VolumeRole::Primary;
            let peer = s.peer_role == VolumeRole::Primary;
            let connected = s.connection.is_connected();
            if known && local && !r.local_primary && !connected {
                self.promoted_alone = true;
                self.promoted_alone_at = Some(now);
            }
            if known && local && r.local_primary && r.connected && !connected {
                self.lost_peer_at = Some(now);
            }
            if connected && s.peer_role == VolumeRole::Secondary {
                // The peer is back and follows this host: whoever was cut off, the data did
                // not go two ways.
                self.lost_peer_at = None;
            }
            if local != r.local_primary || peer != r.peer_primary {
                if local || r.local_primary {
                    r.local_last = Some(now);
                }
                if peer || r.peer_primary {
                    r.peer_last = Some(now);
                }
            }
            r.local_primary = local;
            r.peer_primary = peer;
            r.connected = connected;
            r.peer_seen_this_boot |= connected;
            if connected {
                r.parted_by_loss = false;
            }
        }
        if let Ok(here) = observation.vip_here {
            if here != self.vip_held {
                self.vip_last_held_at = Some(now);
                self.vip_held = here;
            }
            if here && self.promoted_alone {
                self.took_over_at = Some(now);
                self.promoted_alone = false;
                self.mark_parted_by_loss(observation, false);
            }
        }
        if observation.vip_claim.is_some() {
            self.last_claim_at = Some(now);
        }
        let stale_yield = self.note_plan(plan, now);
        if stale_yield {
            self.mark_parted_by_loss(observation, false);
        }
        // A host that lost its peer while Primary and is now told to release (the pool moved
        // the role before a claim made it yield) parted by losing its peer just the same, on
        // the resources it still holds Primary from then. One already Secondary (a host that
        // rebooted since, say) proves nothing about why its link is down.
        if plan.intent == Intent::Release && self.lost_peer_at.is_some() {
            self.mark_parted_by_loss(observation, true);
        }
        *self != before
    }

    /// Every resource observed without its peer (and Primary here, with `primary_only`) lost
    /// it: a take-over, a stale master's yield or its release is being recorded.
    fn mark_parted_by_loss(&mut self, observation: &Observation, primary_only: bool) {
        for v in &observation.volumes {
            let Ok(s) = &v.status else { continue };
            if primary_only && s.role != VolumeRole::Primary {
                continue;
            }
            if !s.connection.is_connected() {
                self.resources
                    .entry(v.name.to_string())
                    .or_default()
                    .parted_by_loss = true;
            }
        }
    }

    /// Returns whether a stale master's yield (not a tie) was recorded now.
    fn note_plan(&mut self, plan: &Plan, now: Timestamp) -> bool {
        let mut stale_yield = false;
        if plan.intent != Intent::Serve {
            // A new intent ends a yield: the pool (or the operator) has decided again.
            self.yielded_at = None;
            self.yield_reason = None;
            self.yielded_in_tie = false;
            self.contested_since = None;
            return false;
        }
        for hold in &plan.holds {
            match hold {
                Hold::Yielded { reason, tie } if self.yielded_at.is_none() => {
                    self.yielded_at = Some(now);
                    self.yield_reason = Some(reason.clone());
                    self.yielded_in_tie = *tie;
                    stale_yield = !*tie;
                }
                Hold::Contested { .. } if self.contested_since.is_none() => {
                    self.contested_since = Some(now);
                }
                _ => {}
            }
        }
        let contested = plan
            .holds
            .iter()
            .any(|h| matches!(h, Hold::Contested { .. }));
        if !contested
            && self
                .last_claim_at
                .is_none_or(|t| elapsed(t, now) > CONTEST_FORGOTTEN_MS)
        {
            self.contested_since = None;
        }
        stale_yield
    }

    /// The operator decided this host serves (a forced promotion): earlier yields and
    /// suspicions no longer apply.
    pub fn operator_forced(&mut self, now: Timestamp) {
        self.yielded_at = None;
        self.yield_reason = None;
        self.yielded_in_tie = false;
        self.contested_since = None;
        self.lost_peer_at = None;
        self.promoted_alone = true;
        self.promoted_alone_at = Some(now);
    }
}

/// A contest with no claim seen for this long is over.
const CONTEST_FORGOTTEN_MS: u64 = 30_000;

/// Milliseconds from `from` to `to` (zero when the wall clock went back).
pub fn elapsed(from: Timestamp, to: Timestamp) -> u64 {
    to.unix_millis().saturating_sub(from.unix_millis())
}
