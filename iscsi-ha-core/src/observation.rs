//! One snapshot of everything the planner looks at.

use crate::history::ServingHistory;
use crate::resource::ResourceName;
use crate::role::Role;
use crate::target::TargetStatus;
use crate::vip::VipClaim;
use crate::volume::{SplitBrain, VolumeStatus};
use serde::{Deserialize, Serialize};

/// The operator's manual mode (the original's `iscsi-cfg manual-mode-enable`): while it is on,
/// its action overrides the pool role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManualMode {
    /// Follow the pool role.
    #[default]
    Off,
    /// Serve here whatever the pool role says.
    BecomePrimary,
    /// Do not serve here whatever the pool role says.
    BecomeSecondary,
}

impl ManualMode {
    /// Whether manual mode is on.
    pub fn is_on(self) -> bool {
        self != ManualMode::Off
    }
}

/// What could be observed of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeObservation {
    /// The resource.
    pub name: ResourceName,
    /// Its status, or why it could not be read.
    pub status: Result<VolumeStatus, String>,
    /// A split brain, when the adapter recognises one.
    #[serde(default)]
    pub split_brain: Option<SplitBrain>,
}

/// Everything observed in one wake-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The pool role (a role source failure is already folded into `Unknown`).
    pub role: Role,
    /// The operator's manual mode.
    pub manual: ManualMode,
    /// Every configured resource, in configuration order.
    pub volumes: Vec<VolumeObservation>,
    /// The target daemon, or why it could not be asked.
    pub target: Result<TargetStatus, String>,
    /// Whether the VIP is assigned here, or why that could not be read.
    pub vip_here: Result<bool, String>,
    /// Another host's claim on the VIP seen since the last observation (the conflict watch,
    /// or a probe sent while holding it).
    #[serde(default)]
    pub vip_claim: Option<VipClaim>,
    /// What this host remembers of its time as a server (who took over, who lost its peer).
    #[serde(default)]
    pub history: ServingHistory,
}
