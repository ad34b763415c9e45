//! The planner: a pure function from configuration and observation to the ordered steps that
//! move this host toward what its role wants.

use crate::config::Config;
use crate::observation::{ManualMode, Observation};
use crate::resource::ResourceName;
use crate::role::Role;
use crate::standing::{standing, Standing};
use crate::volume::{Connection, DiskState, VolumeRole, VolumeStatus};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What this host should be doing, after manual mode is applied to the pool role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Serve: every resource Primary, target up, VIP here.
    Serve,
    /// Do not serve: VIP gone, target stopped, every resource Secondary.
    Release,
    /// Change nothing (role unknown).
    Hold(String),
}

/// The role the planner follows: manual mode first, then the pool role.
pub fn intent(observation: &Observation) -> Intent {
    intent_of(observation.manual, &observation.role)
}

/// The intent of a manual mode and a pool role (manual mode first).
pub fn intent_of(manual: ManualMode, role: &Role) -> Intent {
    match (manual, role) {
        (ManualMode::BecomePrimary, _) => Intent::Serve,
        (ManualMode::BecomeSecondary, _) => Intent::Release,
        (ManualMode::Off, Role::Master) => Intent::Serve,
        (ManualMode::Off, Role::Slave) => Intent::Release,
        (ManualMode::Off, Role::Unknown(reason)) => Intent::Hold(reason.clone()),
    }
}

/// One action on one component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step", content = "resource")]
pub enum Step {
    /// Ask the network whether another host answers for the VIP before promoting anything:
    /// a live VIP elsewhere means another server, and this host must not become a second one.
    ProbeVip,
    /// Make the resource Primary here.
    Promote(ResourceName),
    /// Export the target (converge it on the configuration).
    ServeTarget,
    /// Probe the VIP and, if nobody else answers, assign and announce it.
    AssignVip,
    /// Announce the VIP again (gratuitous ARP / unsolicited NA) to win back initiators that a
    /// stale host's claim led astray.
    AnnounceVip,
    /// Remove the VIP.
    ReleaseVip,
    /// Stop exporting the target.
    StopTarget,
    /// Let I/O frozen by the replication layer's fencing go on, so the device can be demoted.
    /// Planned only once the VIP is observed gone: the writes it releases complete on this
    /// host's disk alone, and no initiator can be told they did.
    ResumeIo(ResourceName),
    /// Make the resource Secondary here.
    Demote(ResourceName),
    /// Connect a StandAlone resource to its peer again, never discarding data: DRBD's
    /// handshake decides the direction (a resync, or a split brain with its helper call).
    /// Planned only where the link went down by losing the peer (see [`reconnect_due`]).
    Reconnect(ResourceName),
    /// Connect a resource to its peer again discarding this host's changes since the split
    /// brain: an operator's `split-brain resolve` on the side they chose to lose, never
    /// planned (the reconciler refuses it).
    DiscardAndReconnect(ResourceName),
}

impl Step {
    /// The component this step acts on (restart budgets and retry delays are per component).
    pub fn component(&self) -> Component {
        match self {
            Step::Promote(r) | Step::Demote(r) | Step::ResumeIo(r) => Component::Volume(r.clone()),
            Step::Reconnect(r) | Step::DiscardAndReconnect(r) => Component::Replication(r.clone()),
            Step::ServeTarget | Step::StopTarget => Component::Target,
            Step::ProbeVip | Step::AssignVip | Step::AnnounceVip | Step::ReleaseVip => {
                Component::Vip
            }
        }
    }

    /// Whether the step starts something (counted against the restart budget). A reconnect
    /// is one: the port's call works even when the handshake then fails, so only the budget
    /// keeps a reconnect that never holds from being repeated at every pass.
    pub fn is_start(&self) -> bool {
        matches!(
            self,
            Step::Promote(_) | Step::ServeTarget | Step::AssignVip | Step::Reconnect(_)
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ProbeVip => f.write_str("probe VIP"),
            Step::Promote(r) => write!(f, "promote {r}"),
            Step::ServeTarget => f.write_str("serve target"),
            Step::AssignVip => f.write_str("assign VIP"),
            Step::AnnounceVip => f.write_str("announce VIP"),
            Step::ReleaseVip => f.write_str("release VIP"),
            Step::StopTarget => f.write_str("stop target"),
            Step::ResumeIo(r) => write!(f, "resume frozen I/O on {r}"),
            Step::Demote(r) => write!(f, "demote {r}"),
            Step::Reconnect(r) => write!(f, "reconnect {r} to its peer"),
            Step::DiscardAndReconnect(r) => {
                write!(f, "reconnect {r} discarding this host's changes")
            }
        }
    }
}

/// Something that can be started, stopped, and fail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "component", content = "resource")]
pub enum Component {
    /// A replicated resource.
    Volume(ResourceName),
    /// The iSCSI target.
    Target,
    /// The floating address.
    Vip,
    /// A replicated resource's link to its peer (budgeted apart from its role changes, so
    /// reconnecting never uses up the starts a promotion needs).
    Replication(ResourceName),
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Volume(r) => write!(f, "resource {r}"),
            Component::Target => f.write_str("target"),
            Component::Vip => f.write_str("VIP"),
            Component::Replication(r) => write!(f, "replication link of {r}"),
        }
    }
}

/// Why the plan stops short of what the intent wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "hold")]
pub enum Hold {
    /// The role is unknown: nothing changes.
    RoleUnknown {
        /// Why the role is unknown.
        reason: String,
    },
    /// The peer is Primary: promoting would make two Primaries.
    PeerPrimary {
        /// The resource.
        resource: ResourceName,
    },
    /// A split brain: nothing is promoted and the VIP is not taken; an operator must pick the
    /// survivor. Releasing is never held.
    SplitBrain {
        /// The resource.
        resource: ResourceName,
    },
    /// The local disk may hold old data (not UpToDate, and not Inconsistent while connected to
    /// an UpToDate peer): promoting it would serve old data and lose or split the writes of
    /// the host that was Primary last.
    StaleData {
        /// The resource.
        resource: ResourceName,
        /// The local disk state.
        disk: DiskState,
        /// The link, in the adapter's words.
        connection: String,
        /// The disk is UpToDate by DRBD's account, but this host has not been connected to
        /// its peer since it booted: DRBD attached it so without knowing what the peer wrote.
        peer_unseen: bool,
    },
    /// This host stopped serving: another host claimed the VIP (see [`crate::standing`]).
    Yielded {
        /// Why.
        reason: String,
        /// Both sides claimed to be the server.
        tie: bool,
    },
    /// This host took over and another host still claims the VIP: announcing again.
    Contested {
        /// The claim, as seen.
        claim: String,
    },
    /// A machine that is not the DRBD peer claims the VIP: an address conflict.
    AddressConflict {
        /// The claim, as seen.
        claim: String,
    },
    /// Something needed for a safe decision could not be observed.
    Unobservable {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::RoleUnknown { reason } => {
                write!(f, "role unknown ({reason}): holding, nothing changes")
            }
            Hold::PeerPrimary { resource } => write!(
                f,
                "{resource}: the peer is Primary; not promoting until it demotes (no dual-primary)"
            ),
            Hold::SplitBrain { resource } => write!(
                f,
                "{resource}: split brain; nothing is promoted and the VIP is not taken until an operator resolves it (iscsi-cfg split-brain)"
            ),
            Hold::StaleData { resource, disk, connection, peer_unseen } => write!(
                f,
                "{resource}: the local disk is {disk} ({connection}){} and may hold old data, so it is not promoted; if the other host is gone for good and this data must serve, run `iscsi-cfg manual-mode-enable && iscsi-cfg become-primary --force` (accepts possibly stale data)",
                if *peer_unseen {
                    " but has not been connected to its peer since this host booted"
                } else {
                    ""
                }
            ),
            Hold::Yielded { reason, .. } => write!(
                f,
                "yielded: {reason}. It stays stopped until the pool role changes; see `iscsi-cfg split-brain` for which data to keep, or run `iscsi-cfg manual-mode-enable && iscsi-cfg become-primary --force` if this host must serve after all"
            ),
            Hold::Contested { claim } => write!(
                f,
                "another host claims the VIP ({claim}) although this host took over: announcing it again; the stale host is expected to yield"
            ),
            Hold::AddressConflict { claim } => write!(
                f,
                "a machine that is not the DRBD peer claims the VIP ({claim}): an address conflict on the network; find that machine and remove the address there"
            ),
            Hold::Unobservable { what, reason } => write!(f, "cannot observe {what}: {reason}"),
        }
    }
}

/// The ordered steps, and the holds that keep it from going further.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// What this host should be doing.
    pub intent: Intent,
    /// The steps, in order; the reconciler stops at the first failure.
    pub steps: Vec<Step>,
    /// Why steps that the intent wants are not in the plan.
    pub holds: Vec<Hold>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Plans the steps toward the intent of `observation` under `config`.
///
/// Serve order: probe the VIP (when it is not here and something must be promoted) → promote
/// every resource not Primary → serve the target → assign the VIP. Nothing after a promotion
/// that is held (peer Primary, old data, split brain, unobservable) is planned, so the target
/// never starts and the VIP is never assigned unless every resource is Primary here.
///
/// Release order: release the VIP → stop the target → demote every resource that is not
/// Secondary. When a state cannot be observed the step is planned anyway, since each is
/// harmless when already done. Nothing holds a release: not a split brain, not a failed step.
///
/// A host that must yield ([`crate::standing`]) plans the release although its intent is to
/// serve, and holds there.
pub fn plan(config: &Config, observation: &Observation) -> Plan {
    let intent = intent(observation);
    let split: Vec<Hold> = observation
        .volumes
        .iter()
        .filter(|v| v.split_brain.is_some() && config.resources.contains(&v.name))
        .map(|v| Hold::SplitBrain {
            resource: v.name.clone(),
        })
        .collect();
    let (steps, holds) = match &intent {
        Intent::Hold(reason) => (
            Vec::new(),
            vec![Hold::RoleUnknown {
                reason: reason.clone(),
            }],
        ),
        Intent::Release => (plan_release(config, observation), Vec::new()),
        Intent::Serve => match standing(observation) {
            Standing::Yield { reason, tie } => (
                plan_release(config, observation),
                vec![Hold::Yielded { reason, tie }],
            ),
            Standing::Contested { claim } => {
                let (mut steps, mut holds) = plan_serve(config, observation, &split);
                if observation.vip_here == Ok(true) {
                    steps.push(Step::AnnounceVip);
                }
                holds.push(Hold::Contested {
                    claim: claim.to_string(),
                });
                (steps, holds)
            }
            Standing::AddressConflict { claim } => {
                let (steps, mut holds) = plan_serve(config, observation, &split);
                holds.push(Hold::AddressConflict {
                    claim: claim.to_string(),
                });
                (steps, holds)
            }
            Standing::Clear => plan_serve(config, observation, &split),
        },
    };
    let mut steps = steps;
    steps.extend(
        config
            .resources
            .iter()
            .filter(|name| split.is_empty() && reconnect_due(observation, name))
            .map(|name| Step::Reconnect(name.clone())),
    );
    Plan {
        intent,
        steps,
        holds,
    }
}

/// Whether `name` is to be connected to its peer again: it is StandAlone with no split brain
/// reported, the intent is known, and this host's history says the link went down by losing
/// the peer, not by an operator: it took over from an unreachable peer, or yielded as a stale
/// master (or released after losing its peer while Primary), and has not been connected since ([`crate::history::ResourceRecord::parted_by_loss`]).
/// Then it reconnects only where that cannot make two Primaries talk: Secondary here, or
/// Primary on the host that took over while nothing contests it. The caller leaves every
/// resource alone while any resource is in split brain (the operator's recovery decides).
pub fn reconnect_due(observation: &Observation, name: &ResourceName) -> bool {
    let Some(Ok(status)) = observation
        .volumes
        .iter()
        .find(|v| &v.name == name)
        .map(|v| &v.status)
    else {
        return false;
    };
    let parted_by_loss = observation
        .history
        .resources
        .get(name.as_str())
        .is_some_and(|r| r.parted_by_loss);
    if status.connection != Connection::StandAlone || !parted_by_loss {
        return false;
    }
    match intent(observation) {
        Intent::Hold(_) => false,
        _ if status.role == VolumeRole::Secondary => true,
        Intent::Serve => {
            status.role == VolumeRole::Primary
                && observation.history.took_over_at.is_some()
                && standing(observation) == Standing::Clear
        }
        Intent::Release => false,
    }
}

/// Whether DRBD's data on this side is current enough to be promoted automatically: UpToDate,
/// or Inconsistent while connected to an UpToDate peer (reads and writes then go through the
/// peer until the resync completes).
pub fn promotable(status: &VolumeStatus) -> bool {
    match status.disk {
        DiskState::UpToDate => true,
        DiskState::Inconsistent => {
            status.connection.is_connected() && status.peer_disk == DiskState::UpToDate
        }
        _ => false,
    }
}

/// Whether this host's claim to current data rests on having seen its peer: connected now,
/// or connected since this host booted (see [`crate::history::ResourceRecord`]). A disk DRBD
/// attached as UpToDate on a host that booted alone may miss the writes its peer
/// acknowledged after they parted.
/// A peer the replication layer itself records as Outdated (its fencing marked it so while
/// this host went on) cannot hold newer data either.
fn peer_seen(observation: &Observation, name: &ResourceName, status: &VolumeStatus) -> bool {
    status.connection.is_connected()
        || status.peer_disk == DiskState::Outdated
        || observation
            .history
            .resources
            .get(name.as_str())
            .is_some_and(|r| r.peer_seen_this_boot)
}

fn plan_serve(
    config: &Config,
    observation: &Observation,
    split: &[Hold],
) -> (Vec<Step>, Vec<Hold>) {
    let mut steps = Vec::new();
    let mut holds = split.to_vec();
    let mut held_promotion = false;
    for name in &config.resources {
        let seen = observation.volumes.iter().find(|v| &v.name == name);
        let hold = match seen.map(|v| &v.status) {
            None => Some(Hold::Unobservable {
                what: format!("resource {name}"),
                reason: "not in the observation".into(),
            }),
            Some(Err(reason)) => Some(Hold::Unobservable {
                what: format!("resource {name}"),
                reason: reason.clone(),
            }),
            Some(Ok(status)) if status.role == VolumeRole::Primary => None,
            Some(Ok(status)) if status.peer_is_primary() => Some(Hold::PeerPrimary {
                resource: name.clone(),
            }),
            Some(Ok(status)) if !promotable(status) => Some(Hold::StaleData {
                resource: name.clone(),
                disk: status.disk,
                connection: status.connection_detail.clone(),
                peer_unseen: false,
            }),
            Some(Ok(status)) if !peer_seen(observation, name, status) => Some(Hold::StaleData {
                resource: name.clone(),
                disk: status.disk,
                connection: status.connection_detail.clone(),
                peer_unseen: true,
            }),
            Some(Ok(_)) => {
                steps.push(Step::Promote(name.clone()));
                None
            }
        };
        if let Some(hold) = hold {
            held_promotion = true;
            holds.push(hold);
        }
    }
    if !split.is_empty() && !steps.is_empty() {
        // Nothing is promoted during a split brain, and nothing after a promotion held.
        return (Vec::new(), holds);
    }
    if !steps.is_empty() && observation.vip_here != Ok(true) {
        steps.insert(0, Step::ProbeVip);
    }
    if held_promotion {
        return (steps, holds);
    }
    match &observation.target {
        Ok(status) if config.target.is_served_by(status) => {}
        Ok(_) | Err(_) => steps.push(Step::ServeTarget),
    }
    match &observation.vip_here {
        Ok(true) => {}
        // A split brain holds taking the VIP; a host that already serves keeps serving.
        Ok(false) if !split.is_empty() => {}
        Ok(false) => steps.push(Step::AssignVip),
        Err(reason) => {
            holds.push(Hold::Unobservable {
                what: "the VIP".into(),
                reason: reason.clone(),
            });
        }
    }
    (steps, holds)
}

fn plan_release(config: &Config, observation: &Observation) -> Vec<Step> {
    let mut steps = Vec::new();
    if observation.vip_here != Ok(false) {
        steps.push(Step::ReleaseVip);
    }
    match &observation.target {
        Ok(status) if !config.target.is_present_in(status) => {}
        Ok(_) | Err(_) => steps.push(Step::StopTarget),
    }
    for name in &config.resources {
        let seen = observation.volumes.iter().find(|v| &v.name == name);
        match seen.map(|v| &v.status) {
            // Only a resource seen Secondary is left alone: a mixed or unknown role is demoted.
            Some(Ok(status)) if status.role == VolumeRole::Secondary => {}
            Some(Ok(status)) if status.suspended && observation.vip_here == Ok(false) => {
                steps.push(Step::ResumeIo(name.clone()));
                steps.push(Step::Demote(name.clone()));
            }
            _ => steps.push(Step::Demote(name.clone())),
        }
    }
    steps
}
