//! `become-primary [--force]` and `become-secondary`, in manual mode. Promotion is refused
//! while the peer is seen Primary or another host answers for the VIP, with or without
//! `--force`: `--force` only overrides DRBD's own refusal to promote data it does not know to
//! be current (the planner's `StaleData` hold), never the one-server rules.

use super::{not_in_manual_mode, Refusal};
use crate::observation::Observation;
use crate::ports::FloatingIpError;
use crate::resource::ResourceName;
use crate::vip::{Vip, VipProbe};
use crate::volume::VolumeRole;

/// What an allowed `become-primary` does besides switching manual mode to `BecomePrimary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BecomePrimary {
    /// With `--force`: the resources to promote at once with DRBD's force flag, outside the
    /// planner (which never forces) and its restart budgets, kept in the action record: every
    /// resource not seen Primary here, unreadable ones included. Empty without `--force`.
    pub forced: Vec<ResourceName>,
}

/// Whether `become-primary` needs a fresh probe of the VIP before [`check_become_primary`]
/// can answer: only when nothing else refuses first and the VIP is not seen here (not here,
/// or unreadable: either way another host may hold it). The daemon probes only then, so a
/// refusal for another reason costs no probe.
pub fn become_primary_needs_probe(observation: &Observation) -> bool {
    observation.manual.is_on()
        && peer_primary(observation).is_empty()
        && observation.vip_here != Ok(true)
}

/// `become-primary [--force]`: allowed in manual mode unless the peer is seen Primary on any
/// resource or another host answers for the VIP (`probe`, asked for by
/// [`become_primary_needs_probe`]; refused when it is needed and missing or failed, since an
/// unanswered question is not a free address). Refusals name what to run on the peer.
pub fn check_become_primary(
    observation: &Observation,
    force: bool,
    vip: &Vip,
    probe: Option<Result<VipProbe, FloatingIpError>>,
) -> Result<BecomePrimary, Refusal> {
    if !observation.manual.is_on() {
        return Err(not_in_manual_mode());
    }
    let peer_primary = peer_primary(observation);
    if !peer_primary.is_empty() {
        return Err(Refusal {
            reason: format!("the peer is Primary on {}", peer_primary.join(", ")),
            hint: "on the peer run: iscsi-cfg manual-mode-enable && iscsi-cfg become-secondary"
                .into(),
        });
    }
    if become_primary_needs_probe(observation) {
        match probe {
            Some(Ok(VipProbe::Free)) => {}
            Some(Ok(VipProbe::LiveElsewhere { owner })) => return Err(Refusal {
                reason: format!(
                    "{} answers on another host{}",
                    vip.address(),
                    owner.map(|o| format!(" ({o})")).unwrap_or_default()
                ),
                hint: "on the peer run: iscsi-cfg manual-mode-enable && iscsi-cfg become-secondary"
                    .into(),
            }),
            Some(Err(e)) => {
                return Err(Refusal {
                    reason: format!("cannot probe {}: {e}", vip.address()),
                    hint: "check the VIP interface, then try again".into(),
                })
            }
            None => {
                return Err(Refusal {
                    reason: format!(
                        "{} was not probed, so whether another host answers for it cannot be told",
                        vip.address()
                    ),
                    hint: "try again: iscsi-cfg become-primary".into(),
                })
            }
        }
    }
    let forced = if force {
        observation
            .volumes
            .iter()
            .filter(|v| {
                !v.status
                    .as_ref()
                    .is_ok_and(|s| s.role == VolumeRole::Primary)
            })
            .map(|v| v.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    Ok(BecomePrimary { forced })
}

/// `become-secondary`: allowed whenever manual mode is on, whatever is observed: a release
/// always releases (split brain, mixed or unknown roles included), so there is nothing to
/// check against the observation.
pub fn check_become_secondary(manual: crate::observation::ManualMode) -> Result<(), Refusal> {
    if manual.is_on() {
        Ok(())
    } else {
        Err(not_in_manual_mode())
    }
}

/// The resources whose peer is seen Primary: promoting any of them would make two servers.
fn peer_primary(observation: &Observation) -> Vec<String> {
    observation
        .volumes
        .iter()
        .filter(|v| {
            v.status
                .as_ref()
                .is_ok_and(|s| s.peer_role == VolumeRole::Primary)
        })
        .map(|v| v.name.to_string())
        .collect()
}
