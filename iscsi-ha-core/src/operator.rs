//! The operator's requests, checked against the observation: pure functions that say what a
//! request would do, or why it is refused and what to do instead.

use crate::config::Config;
use crate::observation::{ManualMode, Observation};
use crate::resource::ResourceName;
use crate::role::Role;
use crate::volume::{Connection, VolumeRole};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A refused request: why, and what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why it is refused.
    pub reason: String,
    /// What to do instead.
    pub hint: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.hint)
    }
}

/// The manual mode that holds what the host does now (`manual-mode-enable` must move
/// nothing). With the pool role known, it is that role; with the role unknown it is what every
/// resource shows, and refused when a resource cannot be read or the roles are mixed: picking
/// a direction that cannot be observed could release a serving master.
pub fn manual_mode_holding_now(observation: &Observation) -> Result<ManualMode, Refusal> {
    match &observation.role {
        Role::Master => return Ok(ManualMode::BecomePrimary),
        Role::Slave => return Ok(ManualMode::BecomeSecondary),
        Role::Unknown(_) => {}
    }
    let unreadable: Vec<String> = observation
        .volumes
        .iter()
        .filter(|v| v.status.is_err())
        .map(|v| v.name.to_string())
        .collect();
    if !unreadable.is_empty() || observation.volumes.is_empty() {
        return Err(Refusal {
            reason: format!(
                "the pool role is unknown and the DRBD role of {} cannot be read, so what this host does now cannot be told",
                if unreadable.is_empty() { "every resource".to_string() } else { unreadable.join(", ") }
            ),
            hint: "fix the role source or DRBD first (iscsi-cfg status shows why), then enable manual mode".into(),
        });
    }
    let roles = |role: VolumeRole| {
        observation
            .volumes
            .iter()
            .all(|v| v.status.as_ref().is_ok_and(|s| s.role == role))
    };
    if roles(VolumeRole::Primary) {
        Ok(ManualMode::BecomePrimary)
    } else if roles(VolumeRole::Secondary) && observation.vip_here != Ok(true) {
        Ok(ManualMode::BecomeSecondary)
    } else {
        Err(Refusal {
            reason: "the pool role is unknown and the resources are neither all Primary nor all Secondary (or the VIP is here without them)".into(),
            hint: "fix the role source first, or decide explicitly: iscsi-cfg manual-mode-enable once the role is known, then become-primary or become-secondary".into(),
        })
    }
}

/// The resources `split-brain resolve --discard-local-data` would discard here: those in split
/// brain, and those StandAlone (DRBD may have met the split brain before this daemon ran, e.g.
/// while the host booted, so no helper call was seen here; reconnecting with this side's data
/// discarded is what the other host's advice asks for, and without a split brain it is a
/// plain reconnect). Refused when there is none, or while this host still serves (holds the VIP or exports the
/// target): its data is what initiators use, and it must stop first (become-secondary, or the
/// pool role moving away, which always releases).
pub fn check_split_brain_resolve(
    config: &Config,
    observation: &Observation,
) -> Result<Vec<ResourceName>, Refusal> {
    let victims: Vec<ResourceName> = observation
        .volumes
        .iter()
        .filter(|v| {
            v.split_brain.is_some()
                || v.status
                    .as_ref()
                    .is_ok_and(|s| s.connection == Connection::StandAlone)
        })
        .map(|v| v.name.clone())
        .collect();
    if victims.is_empty() {
        return Err(Refusal {
            reason: "no resource is in split brain here (none is StandAlone)".into(),
            hint: "iscsi-cfg split-brain shows what each host knows".into(),
        });
    }
    let serving = observation.vip_here == Ok(true)
        || observation
            .target
            .as_ref()
            .is_ok_and(|t| config.target.is_present_in(t));
    if serving {
        return Err(Refusal {
            reason: "this host still serves the target: its data is the one initiators use".into(),
            hint: "if this host's data is to be thrown away, stop serving here first (iscsi-cfg manual-mode-enable && iscsi-cfg become-secondary, which releases even during a split brain), then resolve; otherwise run `iscsi-cfg split-brain resolve --discard-local-data --yes` on the other host".into(),
        });
    }
    Ok(victims)
}
