//! The status model the CLI prints as text and JSON. Field names are stable: tools read them.

use crate::config::Config;
use crate::observation::{ManualMode, Observation};
use crate::plan::{Intent, Plan};
use crate::reconcile::{ActionRecord, AlertRecord, Reconciler};
use crate::standing::{split_brain_advice, Confidence, Keep};
use crate::time::Moment;
use crate::time::Timestamp;
use crate::volume::{Connection, DiskState, SplitBrain, SyncProgress, VolumeRole};
use serde::{Deserialize, Serialize};

/// Everything an operator or a tool wants to know about this host's storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This host's name.
    pub host: String,
    /// The configuration's fingerprint (`config::fingerprint`): equal on both hosts when what
    /// must match does; empty from a daemon that predates it.
    #[serde(default)]
    pub fingerprint: String,
    /// The pool role: `master`, `slave` or `unknown`.
    pub host_role: String,
    /// Why the role is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_reason: Option<String>,
    /// What the host is doing about it: `serve`, `release` or a hold.
    pub intent: Intent,
    /// The operator's manual mode.
    pub manual_mode: ManualMode,
    /// Each replicated resource.
    pub resources: Vec<ResourceView>,
    /// The iSCSI target.
    pub target: TargetView,
    /// The floating address.
    pub vip: VipView,
    /// Why the host is not (yet) where its role wants it.
    pub holds: Vec<String>,
    /// What an operator should know although nothing is held (e.g. serving through the peer's
    /// disk during a resync).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Components whose restart budget is used up.
    pub exhausted: Vec<String>,
    /// Components whose last step failed, and when they are tried again.
    #[serde(default)]
    pub retrying: Vec<RetryView>,
    /// The last actions, oldest first.
    pub last_actions: Vec<ActionRecord>,
    /// The last alerts, oldest first.
    pub alerts: Vec<AlertRecord>,
    /// XenServer's PBD re-plug after this host began serving (`[xapi] replug_pbds`): its last
    /// result, or what it is doing. Filled in by the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbd_replug: Option<String>,
    /// When this status was made.
    pub updated_at: Timestamp,
}

/// A component waiting to be tried again after a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryView {
    /// The component (`target`, `VIP`, `resource r0`).
    pub component: String,
    /// Milliseconds until the next attempt.
    pub retry_in_ms: u64,
}

/// One resource as shown in status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceView {
    /// The resource.
    pub name: String,
    /// This host's role (`Primary`, `Secondary`, `Unknown`).
    pub role: Option<VolumeRole>,
    /// The peer's role.
    pub peer_role: Option<VolumeRole>,
    /// The replication link, in the adapter's words (e.g. `Connected`, `WFConnection`).
    pub connection: Option<String>,
    /// The link, reduced.
    pub connection_state: Option<Connection>,
    /// This host's disk.
    pub disk: Option<DiskState>,
    /// The peer's disk.
    pub peer_disk: Option<DiskState>,
    /// Resync progress.
    pub sync: Option<SyncProgress>,
    /// I/O is frozen on this replica (the replication layer's fencing waits for a verdict).
    #[serde(default)]
    pub suspended: Option<bool>,
    /// Why the status could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A split brain on this resource: what each side holds and how to recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain: Option<SplitBrainView>,
}

/// A split brain as shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBrainView {
    /// What the adapter knows of both sides.
    #[serde(flatten)]
    pub detail: SplitBrain,
    /// Whether this host serves now (then it is the natural survivor).
    pub serving_here: bool,
    /// When this host was last seen Primary on this resource (now, if it is), when known.
    #[serde(default)]
    pub local_last_primary: Option<Timestamp>,
    /// When this host last saw the peer Primary on this resource, when known.
    #[serde(default)]
    pub peer_last_primary: Option<Timestamp>,
    /// Which side's data to keep, as this host sees it.
    pub keep: Keep,
    /// How sure that is.
    pub confidence: Confidence,
    /// What this host saw that leads there.
    pub why: String,
    /// What to run, and where.
    pub recovery: String,
}

/// The target as shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    /// The configured target is exported and accepting logins.
    pub running: bool,
    /// Its name.
    pub iqn: String,
    /// Its LUNs as exported (number and path).
    pub luns: Vec<LunView>,
    /// Logged-in sessions.
    pub sessions: u32,
    /// The target daemon answers.
    pub daemon_running: bool,
    /// Why the daemon could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One exported LUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunView {
    /// Its number.
    pub lun: u64,
    /// Its backing path.
    pub path: Option<String>,
}

/// The VIP as shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipView {
    /// Address and prefix.
    pub address: String,
    /// Interface.
    pub interface: String,
    /// Assigned here (`null` when it could not be read).
    pub here: Option<bool>,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Status {
    /// Builds the status from the latest observation, plan and reconciler history.
    pub fn build(
        host: &str,
        config: &Config,
        observation: &Observation,
        plan: &Plan,
        reconciler: &Reconciler,
        now: Moment,
    ) -> Self {
        let serving_here = observation.vip_here == Ok(true)
            || observation
                .target
                .as_ref()
                .is_ok_and(|t| config.target.is_served_by(t));
        let history = &observation.history;
        let split_view = |v: &crate::observation::VolumeObservation| {
            v.split_brain.as_ref().map(|detail| {
                let advice = split_brain_advice(history, v.name.as_str(), serving_here);
                let record = history.resources.get(v.name.as_str());
                SplitBrainView {
                    detail: detail.clone(),
                    serving_here,
                    local_last_primary: record.and_then(|r| {
                        if r.local_primary {
                            Some(now.wall)
                        } else {
                            r.local_last
                        }
                    }),
                    peer_last_primary: record.and_then(|r| {
                        if r.peer_primary {
                            Some(now.wall)
                        } else {
                            r.peer_last
                        }
                    }),
                    keep: advice.keep,
                    confidence: advice.confidence,
                    why: advice.why,
                    recovery: advice.recovery,
                }
            })
        };
        let mut warnings: Vec<String> = observation
            .volumes
            .iter()
            .filter_map(|v| {
                let s = v.status.as_ref().ok()?;
                if s.suspended {
                    return Some(format!(
                        "{}: I/O is frozen: the replication layer's fencing did not let this host go on without its peer (iscsi-ha fence-peer refused: another host serves, or this host is not the master); it resumes when the peer is back or once this host has released the VIP",
                        v.name
                    ));
                }
                (s.role == VolumeRole::Primary && s.disk == DiskState::Inconsistent).then(|| {
                    format!(
                        "{}: serving from an Inconsistent disk while the resync from the peer runs; reads go through the peer, so do not take the peer down until the sync completes",
                        v.name
                    )
                })
            })
            .collect();
        let resources = observation
            .volumes
            .iter()
            .map(|v| match &v.status {
                Ok(s) => ResourceView {
                    name: v.name.to_string(),
                    role: Some(s.role),
                    peer_role: Some(s.peer_role),
                    connection: Some(s.connection_detail.clone()),
                    connection_state: Some(s.connection),
                    disk: Some(s.disk),
                    peer_disk: Some(s.peer_disk),
                    sync: s.sync,
                    suspended: Some(s.suspended),
                    error: None,
                    split_brain: split_view(v),
                },
                Err(e) => ResourceView {
                    name: v.name.to_string(),
                    role: None,
                    peer_role: None,
                    connection: None,
                    connection_state: None,
                    disk: None,
                    peer_disk: None,
                    sync: None,
                    suspended: None,
                    error: Some(e.clone()),
                    split_brain: split_view(v),
                },
            })
            .collect();
        if let Ok(t) = &observation.target {
            for lun in config.target.durability_mismatches(t) {
                warnings.push(format!(
                    "LUN {lun}: completed writes are not stable as configured (a write cache or backing-store flags differ); it is corrected once no initiator is logged in to it"
                ));
            }
        }
        let target = match &observation.target {
            Ok(t) => {
                let ours = t.find(&config.target.iqn);
                TargetView {
                    running: config.target.is_served_by(t),
                    iqn: config.target.iqn.to_string(),
                    luns: ours
                        .map(|o| {
                            o.luns
                                .iter()
                                .map(|l| LunView {
                                    lun: l.lun,
                                    path: l.path.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    sessions: ours.map_or(0, |o| o.sessions),
                    daemon_running: t.daemon_running,
                    error: None,
                }
            }
            Err(e) => TargetView {
                running: false,
                iqn: config.target.iqn.to_string(),
                luns: Vec::new(),
                sessions: 0,
                daemon_running: false,
                error: Some(e.clone()),
            },
        };
        let vip = VipView {
            address: format!("{}/{}", config.vip.address(), config.vip.prefix()),
            interface: config.vip.interface().to_string(),
            here: observation.vip_here.as_ref().ok().copied(),
            error: observation.vip_here.as_ref().err().cloned(),
        };
        Self {
            host: host.to_string(),
            fingerprint: crate::config::fingerprint(config),
            host_role: observation.role.name().to_string(),
            role_reason: match &observation.role {
                crate::role::Role::Unknown(r) => Some(r.clone()),
                _ => None,
            },
            intent: plan.intent.clone(),
            manual_mode: observation.manual,
            resources,
            target,
            vip,
            holds: plan.holds.iter().map(ToString::to_string).collect(),
            warnings,
            exhausted: reconciler
                .exhausted(now.instant)
                .iter()
                .map(ToString::to_string)
                .collect(),
            retrying: reconciler
                .waiting(now.instant)
                .into_iter()
                .map(|(c, left)| RetryView {
                    component: c.to_string(),
                    retry_in_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                })
                .collect(),
            last_actions: reconciler.recent_actions().cloned().collect(),
            alerts: reconciler.recent_alerts().cloned().collect(),
            pbd_replug: None,
            updated_at: now.wall,
        }
    }
}
