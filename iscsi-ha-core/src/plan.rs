//! The planner: a pure function from configuration and observation to the ordered steps that
//! move this host toward what its role wants.

use crate::config::Config;
use crate::observation::{ManualMode, Observation};
use crate::resource::ResourceName;
use crate::role::Role;
use crate::volume::VolumeRole;
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
    match (observation.manual, &observation.role) {
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
    /// Make the resource Primary here.
    Promote(ResourceName),
    /// Export the target (converge it on the configuration).
    ServeTarget,
    /// Probe the VIP and, if nobody else answers, assign and announce it.
    AssignVip,
    /// Remove the VIP.
    ReleaseVip,
    /// Stop exporting the target.
    StopTarget,
    /// Make the resource Secondary here.
    Demote(ResourceName),
}

impl Step {
    /// The component this step acts on (restart budgets and retry delays are per component).
    pub fn component(&self) -> Component {
        match self {
            Step::Promote(r) | Step::Demote(r) => Component::Volume(r.clone()),
            Step::ServeTarget | Step::StopTarget => Component::Target,
            Step::AssignVip | Step::ReleaseVip => Component::Vip,
        }
    }

    /// Whether the step starts something (counted against the restart budget).
    pub fn is_start(&self) -> bool {
        matches!(self, Step::Promote(_) | Step::ServeTarget | Step::AssignVip)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Promote(r) => write!(f, "promote {r}"),
            Step::ServeTarget => f.write_str("serve target"),
            Step::AssignVip => f.write_str("assign VIP"),
            Step::ReleaseVip => f.write_str("release VIP"),
            Step::StopTarget => f.write_str("stop target"),
            Step::Demote(r) => write!(f, "demote {r}"),
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
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Volume(r) => write!(f, "resource {r}"),
            Component::Target => f.write_str("target"),
            Component::Vip => f.write_str("VIP"),
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
    /// A split brain: nothing is promoted, the VIP does not move; an operator must pick the
    /// survivor.
    SplitBrain {
        /// The resource.
        resource: ResourceName,
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
                "{resource}: split brain; nothing is promoted and the VIP stays where it is until an operator resolves it (iscsi-cfg split-brain)"
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
/// Serve order: promote every resource not Primary → serve the target → assign the VIP. Nothing
/// after a promotion that is held (peer Primary, unobservable) is planned, so the target never
/// starts and the VIP is never assigned unless every resource is Primary here.
///
/// Release order: release the VIP → stop the target → demote every Primary resource. When a
/// state cannot be observed the step is planned anyway, since each is harmless when already done.
///
/// A split brain on any resource holds everything: nothing is promoted, the VIP neither comes
/// nor goes, and what serves keeps serving until an operator resolves it.
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
    if !split.is_empty() && !matches!(intent, Intent::Hold(_)) {
        // Whatever the role says, a split brain freezes promotion and the VIP: the two data
        // sets differ, and only an operator can say which one survives.
        return Plan {
            intent,
            steps: Vec::new(),
            holds: split,
        };
    }
    let (steps, holds) = match &intent {
        Intent::Hold(reason) => (
            Vec::new(),
            vec![Hold::RoleUnknown {
                reason: reason.clone(),
            }],
        ),
        Intent::Serve => plan_serve(config, observation),
        Intent::Release => (plan_release(config, observation), Vec::new()),
    };
    Plan {
        intent,
        steps,
        holds,
    }
}

fn plan_serve(config: &Config, observation: &Observation) -> (Vec<Step>, Vec<Hold>) {
    let mut steps = Vec::new();
    let mut holds = Vec::new();
    for name in &config.resources {
        let seen = observation.volumes.iter().find(|v| &v.name == name);
        match seen.map(|v| &v.status) {
            None => holds.push(Hold::Unobservable {
                what: format!("resource {name}"),
                reason: "not in the observation".into(),
            }),
            Some(Err(reason)) => holds.push(Hold::Unobservable {
                what: format!("resource {name}"),
                reason: reason.clone(),
            }),
            Some(Ok(status)) if status.role == VolumeRole::Primary => {}
            Some(Ok(status)) if status.peer_is_primary() => holds.push(Hold::PeerPrimary {
                resource: name.clone(),
            }),
            Some(Ok(_)) => steps.push(Step::Promote(name.clone())),
        }
    }
    if !holds.is_empty() {
        return (steps, holds);
    }
    match &observation.target {
        Ok(status) if config.target.is_served_by(status) => {}
        Ok(_) | Err(_) => steps.push(Step::ServeTarget),
    }
    match &observation.vip_here {
        Ok(true) => {}
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
            Some(Ok(status)) if status.role != VolumeRole::Primary => {}
            _ => steps.push(Step::Demote(name.clone())),
        }
    }
    steps
}
