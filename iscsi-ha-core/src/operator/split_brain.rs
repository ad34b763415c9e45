//! `split-brain resolve --discard-local-data --yes` and `split-brain reconnect`: the two
//! halves of DRBD's manual split-brain recovery, one on each host.

use super::Refusal;
use crate::config::Config;
use crate::observation::Observation;
use crate::resource::ResourceName;
use crate::volume::Connection;

/// The resources `split-brain resolve --discard-local-data --yes` would discard here: those in
/// split brain, and those StandAlone (DRBD may have met the split brain before this daemon
/// ran, e.g. while the host booted, so no helper call was seen here; reconnecting with this
/// side's data discarded is what the other host's advice asks for, and without a split brain
/// it is a plain reconnect). Refused without both flags (it throws data away), when there is
/// none, while the VIP or the target cannot be read, or while this host still serves (holds
/// the VIP or exports the target): its data is what initiators use, and it must stop first
/// (become-secondary, or the pool role moving away, which always releases).
pub fn check_split_brain_resolve(
    config: &Config,
    observation: &Observation,
    discard_local_data: bool,
    yes: bool,
) -> Result<Vec<ResourceName>, Refusal> {
    if !(discard_local_data && yes) {
        return Err(Refusal {
            reason: "this throws away every change this host made to the split-brained resources".into(),
            hint: "on the host whose changes are to be lost, run iscsi-cfg split-brain resolve with both --discard-local-data and --yes".into(),
        });
    }
    let victims = split_brain_reconnect_targets(observation);
    if victims.is_empty() {
        return Err(Refusal {
            reason: "no resource is in split brain here (none is StandAlone)".into(),
            hint: "nothing to discard here: iscsi-cfg split-brain shows what each host knows; run resolve on the host that reports the split brain".into(),
        });
    }
    // A VIP or target that cannot be read may be serving: discarding that data is the one
    // loss this verb must never cause, so not knowing refuses too.
    let unreadable: Vec<String> = [
        observation
            .vip_here
            .as_ref()
            .err()
            .map(|e| format!("the VIP ({e})")),
        observation
            .target
            .as_ref()
            .err()
            .map(|e| format!("the target ({e})")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !unreadable.is_empty() {
        return Err(Refusal {
            reason: format!(
                "whether this host still serves cannot be told: {} cannot be read",
                unreadable.join(" and ")
            ),
            hint: "fix that first (iscsi-cfg status shows why), then run resolve again".into(),
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

/// The resources `split-brain reconnect` reconnects, keeping this host's data: those in
/// split brain or StandAlone. It never refuses: reconnecting while keeping data loses nothing
/// (if the other host kept its data too, DRBD meets the split brain again and stands alone),
/// and an empty list means there is nothing to do.
pub fn split_brain_reconnect_targets(observation: &Observation) -> Vec<ResourceName> {
    observation
        .volumes
        .iter()
        .filter(|v| {
            v.split_brain.is_some()
                || v.status
                    .as_ref()
                    .is_ok_and(|s| s.connection == Connection::StandAlone)
        })
        .map(|v| v.name.clone())
        .collect()
}
