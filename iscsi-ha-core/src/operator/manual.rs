//! `manual-mode-enable` and `manual-mode-disable`: neither may move storage by itself, so
//! enabling holds what the host does now and disabling waits until storage matches the role.

use super::Refusal;
use crate::observation::{ManualMode, Observation};
use crate::role::Role;
use crate::volume::VolumeRole;

/// What a manual-mode verb changes. `Unchanged` is an answer, not a refusal: enabling twice
/// or disabling when off leaves everything as it is and succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualModeChange {
    /// Already in the requested state (enable: the mode kept; disable: off).
    Unchanged,
    /// Record this mode.
    To(ManualMode),
}

/// `manual-mode-enable`: the mode that holds what the host does now
/// ([`manual_mode_holding_now`]), or `Unchanged` when manual mode is already on (the
/// operator's earlier choice is kept rather than re-derived).
pub fn check_manual_mode_enable(observation: &Observation) -> Result<ManualModeChange, Refusal> {
    if observation.manual.is_on() {
        return Ok(ManualModeChange::Unchanged);
    }
    manual_mode_holding_now(observation).map(ManualModeChange::To)
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

/// `manual-mode-disable`: hands the host back to the pool role only when that role is known
/// and every resource's DRBD role already matches it (Primary on a master, not Primary on a
/// slave). Otherwise the next pass would promote or demote behind the operator's back, so the
/// refusal names the verb that makes storage match first. `Unchanged` when not in manual mode.
pub fn check_manual_mode_disable(observation: &Observation) -> Result<ManualModeChange, Refusal> {
    if !observation.manual.is_on() {
        return Ok(ManualModeChange::Unchanged);
    }
    let role = &observation.role;
    let wants_primary = match role {
        Role::Master => true,
        Role::Slave => false,
        Role::Unknown(reason) => {
            return Err(Refusal {
                reason: format!("the pool role is unknown ({reason})"),
                hint: "fix the role source (pool.conf) first, then run manual-mode-disable again"
                    .into(),
            })
        }
    };
    let unreadable: Vec<String> = observation
        .volumes
        .iter()
        .filter(|v| v.status.is_err())
        .map(|v| v.name.to_string())
        .collect();
    if !unreadable.is_empty() {
        return Err(Refusal {
            reason: format!(
                "the DRBD role of {} cannot be read, so it cannot be checked against the pool role ({})",
                unreadable.join(", "),
                role.name()
            ),
            hint: "fix DRBD first (iscsi-cfg status shows why), then run manual-mode-disable again".into(),
        });
    }
    let contradicting: Vec<String> = observation
        .volumes
        .iter()
        .filter(|v| {
            v.status
                .as_ref()
                .is_ok_and(|s| (s.role == VolumeRole::Primary) != wants_primary)
        })
        .map(|v| v.name.to_string())
        .collect();
    if !contradicting.is_empty() {
        return Err(Refusal {
            reason: format!(
                "the pool role is {} but the DRBD role of {} is not {}",
                role.name(),
                contradicting.join(", "),
                if wants_primary {
                    "Primary"
                } else {
                    "Secondary"
                }
            ),
            hint: format!(
                "run iscsi-cfg {} first so storage matches the pool role, then manual-mode-disable",
                if wants_primary {
                    "become-primary"
                } else {
                    "become-secondary"
                }
            ),
        });
    }
    Ok(ManualModeChange::To(ManualMode::Off))
}
