//! An in-memory host: DRBD-like volumes, a target, a VIP and an alert sink, with injectable
//! failures and a log of every mutating call. It checks the safety invariants at the moment of
//! each call, against the world's state and against what the last observation showed.

use crate::alert::Alert;
use crate::config::{Config, Source};
use crate::history::ServingHistory;
use crate::observation::{ManualMode, Observation, VolumeObservation};
use crate::plan::promotable;
use crate::ports::{
    AlertError, Alerts, FloatingIp, FloatingIpError, IscsiTarget, ReplicatedVolume, TargetError,
    VolumeError,
};
use crate::reconcile::Ports;
use crate::resource::ResourceName;
use crate::role::Role;
use crate::target::{ObservedLun, ObservedTarget, TargetSpec, TargetStatus};
use crate::vip::{Vip, VipClaim, VipProbe, VipRefresh};
use crate::volume::{Connection, DiskState, SplitBrain, SplitBrainSide, VolumeRole, VolumeStatus};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub fn config(resources: &[&str]) -> Config {
    let text = config_text(resources);
    Config::parse(
        Source {
            text: &text,
            origin: "test",
        },
        None,
    )
    .unwrap()
}

/// The text [`config`] parses: a static master with `resources`, one LUN, a VIP.
pub fn config_text(resources: &[&str]) -> String {
    let list: Vec<String> = resources.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        r#"
[role]
source = "static"
role = "master"
[replication]
resources = [{}]
[target]
iqn = "iqn.2024-01.com.example:t"
[[target.lun]]
lun = 1
path = "/dev/drbd1"
[target.access]
initiators = ["10.0.0.0/24"]
[vip]
address = "10.0.0.100/24"
interface = "eth0"
[monitor]
max_starts = 3
start_window = "60s"
retry_delay = "2s"
[alerts]
screen = "10m"
"#,
        list.join(", ")
    )
}

/// Which port calls fail.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub promote: bool,
    pub demote: bool,
    pub serve: bool,
    pub stop: bool,
    pub assign: bool,
    pub release: bool,
    pub probe: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Promote(String),
    Demote(String),
    ResumeIo(String),
    Serve,
    Stop,
    Probe,
    Assign,
    Announce,
    /// A periodic refresh that sent its announcement.
    Refresh,
    Release,
    /// A reconnect, and whether it discarded local data.
    Connect(String, bool),
}

#[derive(Debug, Default)]
pub struct World {
    pub roles: BTreeMap<String, VolumeRole>,
    pub peer_roles: BTreeMap<String, VolumeRole>,
    pub observed_peer_primary: BTreeMap<String, bool>,
    pub target_daemon: bool,
    pub target_served: bool,
    pub vip_here: bool,
    pub vip_elsewhere: bool,
    pub faults: Faults,
    pub calls: Vec<Call>,
    pub violations: Vec<String>,
    pub alerts: Vec<Alert>,
    /// The alert port only logs (mail off).
    pub alerts_logged_only: bool,
    pub unobservable_target: bool,
    pub unobservable_vip: bool,
    pub split_brain: BTreeMap<String, SplitBrain>,
    /// Local disk states (UpToDate when absent).
    pub disks: BTreeMap<String, DiskState>,
    /// Resources whose replication link is down (the peer's role and disk are then unknown).
    pub disconnected: BTreeMap<String, bool>,
    /// Disconnected resources that DRBD left StandAlone (not trying to connect).
    pub standalone: BTreeMap<String, bool>,
    /// Another host's claim on the VIP, shown in the next observation.
    pub claim: Option<VipClaim>,
    /// The host's serving history, handed to each observation.
    pub history: ServingHistory,
    /// A stop was attempted since the target was last served (demoting then is refused by
    /// DRBD while the device is open, which is harmless).
    pub stop_attempted: bool,
    /// The last observation, as the planner saw it.
    pub last_observation: Option<Observation>,
    /// Resources whose I/O the fencing froze.
    pub suspended: BTreeMap<String, bool>,
}

impl World {
    pub fn all_primary(&self) -> bool {
        self.roles.values().all(|r| *r == VolumeRole::Primary)
    }

    pub fn observe(&mut self, role: Role, manual: ManualMode, spec: &TargetSpec) -> Observation {
        let roles = self.roles.clone();
        let volumes = roles
            .iter()
            .map(|(name, role)| {
                let peer = self
                    .peer_roles
                    .get(name)
                    .copied()
                    .unwrap_or(VolumeRole::Secondary);
                let connected = !self.disconnected.get(name).copied().unwrap_or(false);
                let standalone = !connected && self.standalone.get(name).copied().unwrap_or(false);
                self.observed_peer_primary
                    .insert(name.clone(), connected && peer == VolumeRole::Primary);
                VolumeObservation {
                    name: ResourceName::new(name.clone()).unwrap(),
                    status: Ok(self.volume_status(name, *role, peer, connected, standalone)),
                    split_brain: self.split_brain.get(name).cloned(),
                }
            })
            .collect();
        let observation = Observation {
            role,
            manual,
            volumes,
            target: if self.unobservable_target {
                Err("socket timeout".into())
            } else {
                Ok(self.target_status(spec))
            },
            vip_here: if self.unobservable_vip {
                Err("netlink error".into())
            } else {
                Ok(self.vip_here)
            },
            vip_claim: self.claim.clone(),
            history: self.history.clone(),
        };
        self.last_observation = Some(observation.clone());
        observation
    }

    fn volume_status(
        &self,
        name: &str,
        role: VolumeRole,
        peer: VolumeRole,
        connected: bool,
        standalone: bool,
    ) -> VolumeStatus {
        VolumeStatus {
            name: ResourceName::new(name).unwrap(),
            role,
            peer_role: if connected { peer } else { VolumeRole::Unknown },
            connection: if connected {
                Connection::Connected
            } else if standalone {
                Connection::StandAlone
            } else {
                Connection::Connecting
            },
            connection_detail: if connected {
                "Connected"
            } else if standalone {
                "StandAlone"
            } else {
                "WFConnection"
            }
            .into(),
            disk: self.disks.get(name).copied().unwrap_or(DiskState::UpToDate),
            peer_disk: if connected {
                DiskState::UpToDate
            } else {
                DiskState::Unknown
            },
            sync: None,
            suspended: self.suspended.get(name).copied().unwrap_or(false),
        }
    }

    pub fn target_status(&self, spec: &TargetSpec) -> TargetStatus {
        let targets = if self.target_served {
            vec![ObservedTarget {
                iqn: spec.iqn.to_string(),
                ready: true,
                luns: spec
                    .luns
                    .iter()
                    .map(|l| ObservedLun {
                        lun: l.lun.get(),
                        path: Some(l.path.clone()),
                        ..ObservedLun::default()
                    })
                    .collect(),
                allow_all: spec.access.allow_all,
                initiator_addresses: spec
                    .access
                    .initiator_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                ..ObservedTarget::default()
            }]
        } else {
            Vec::new()
        };
        TargetStatus {
            daemon_running: self.target_daemon || self.target_served,
            targets,
        }
    }
}

#[derive(Clone)]
pub struct Handle(pub Rc<RefCell<World>>);

pub struct Fakes {
    pub world: Rc<RefCell<World>>,
    volumes: Handle,
    target: Handle,
    vip: Handle,
    alerts: Handle,
}

impl Fakes {
    pub fn new(resources: &[&str]) -> Self {
        let mut world = World::default();
        for r in resources {
            world.roles.insert((*r).to_string(), VolumeRole::Secondary);
        }
        let world = Rc::new(RefCell::new(world));
        Self {
            volumes: Handle(world.clone()),
            target: Handle(world.clone()),
            vip: Handle(world.clone()),
            alerts: Handle(world.clone()),
            world,
        }
    }

    pub fn ports(&mut self) -> Ports<'_> {
        Ports {
            volumes: &mut self.volumes,
            target: &mut self.target,
            vip: &mut self.vip,
            alerts: &mut self.alerts,
        }
    }
}

impl ReplicatedVolume for Handle {
    fn status(&mut self, _: &ResourceName) -> Result<VolumeStatus, VolumeError> {
        Err(VolumeError::Unsupported(
            "the fake is observed through World::observe".into(),
        ))
    }

    fn promote(&mut self, r: &ResourceName, force: bool) -> Result<(), VolumeError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Promote(r.to_string()));
        if force {
            w.violations
                .push(format!("promote {r} forced by the planner"));
        }
        if w.observed_peer_primary.get(r.as_str()) == Some(&true) {
            w.violations
                .push(format!("promote {r} while the peer was observed Primary"));
        }
        let seen = w
            .last_observation
            .as_ref()
            .and_then(|o| o.volumes.iter().find(|v| v.name == *r))
            .and_then(|v| v.status.clone().ok());
        if seen.as_ref().is_some_and(|s| !promotable(s)) {
            w.violations.push(format!(
                "promote {r} of a disk that may hold old data: {seen:?}"
            ));
        }
        if w.vip_elsewhere {
            w.violations
                .push(format!("promote {r} while the VIP is live on another host"));
        }
        if w.split_brain.contains_key(r.as_str()) {
            w.violations
                .push(format!("promote {r} during a split brain"));
        }
        if w.faults.promote {
            return Err(VolumeError::Refused("injected".into()));
        }
        if w.peer_roles.get(r.as_str()) == Some(&VolumeRole::Primary) {
            return Err(VolumeError::PeerPrimary);
        }
        w.roles.insert(r.to_string(), VolumeRole::Primary);
        Ok(())
    }

    fn demote(&mut self, r: &ResourceName) -> Result<(), VolumeError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Demote(r.to_string()));
        if w.target_served {
            if !w.stop_attempted {
                w.violations.push(format!(
                    "demote {r} before stopping the target that exports it"
                ));
            }
            return Err(VolumeError::DeviceInUse);
        }
        if w.faults.demote {
            return Err(VolumeError::Refused("injected".into()));
        }
        if w.suspended.get(r.as_str()) == Some(&true) {
            // Frozen requests keep the device busy.
            return Err(VolumeError::DeviceInUse);
        }
        w.roles.insert(r.to_string(), VolumeRole::Secondary);
        Ok(())
    }

    fn resume_io(&mut self, r: &ResourceName) -> Result<(), VolumeError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::ResumeIo(r.to_string()));
        if w.vip_here {
            w.violations.push(format!(
                "I/O on {r} resumed while the VIP is here: a frozen write could be acknowledged"
            ));
        }
        w.suspended.insert(r.to_string(), false);
        Ok(())
    }

    fn connect(&mut self, r: &ResourceName, discard: bool) -> Result<(), VolumeError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Connect(r.to_string(), discard));
        if discard {
            w.violations
                .push(format!("reconnect {r} discarding local data"));
        }
        if w.split_brain.contains_key(r.as_str()) {
            w.violations
                .push(format!("reconnect {r} during a split brain"));
        }
        let took_over = w.history.took_over_at.is_some() && w.history.yielded_at.is_none();
        if w.roles.get(r.as_str()) != Some(&VolumeRole::Secondary) && !took_over {
            w.violations.push(format!(
                "reconnect {r} while not Secondary on a host that did not take over"
            ));
        }
        if w.roles.get(r.as_str()) == Some(&VolumeRole::Primary) && w.claim.is_some() {
            w.violations.push(format!(
                "reconnect {r} while Primary and another host claims the VIP"
            ));
        }
        // The kernel now waits for its peer; whether the handshake works is the test's part.
        w.standalone.insert(r.to_string(), false);
        Ok(())
    }
}

impl IscsiTarget for Handle {
    fn status(&mut self) -> Result<TargetStatus, TargetError> {
        Err(TargetError::Invalid(
            "the fake is observed through World::observe".into(),
        ))
    }

    fn serve(&mut self, _: &TargetSpec) -> Result<(), TargetError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Serve);
        if !w.all_primary() {
            w.violations
                .push("target started while a resource is not Primary".into());
        }
        if w.faults.serve {
            return Err(TargetError::Busy("injected".into()));
        }
        w.target_served = true;
        w.stop_attempted = false;
        Ok(())
    }

    fn stop(&mut self, _: &TargetSpec) -> Result<(), TargetError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Stop);
        w.stop_attempted = true;
        // Stopping under a VIP is right only for a host yielding to another server.
        if w.vip_here && w.claim.is_none() {
            w.violations
                .push("target stopped while the VIP is still here".into());
        }
        if w.faults.stop {
            return Err(TargetError::Busy("injected".into()));
        }
        w.target_served = false;
        w.target_daemon = false;
        Ok(())
    }
}

impl FloatingIp for Handle {
    fn is_assigned(&mut self, _: &Vip) -> Result<bool, FloatingIpError> {
        Ok(self.0.borrow().vip_here)
    }

    fn probe(&mut self, _: &Vip) -> Result<VipProbe, FloatingIpError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Probe);
        if w.faults.probe {
            return Err(FloatingIpError::Io("injected".into()));
        }
        Ok(if w.vip_elsewhere {
            VipProbe::LiveElsewhere {
                owner: Some("52:54:00:00:00:02".into()),
            }
        } else {
            VipProbe::Free
        })
    }

    fn assign(&mut self, _: &Vip) -> Result<(), FloatingIpError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Assign);
        if !w.all_primary() {
            w.violations
                .push("VIP assigned while a resource is not Primary".into());
        }
        if w.vip_elsewhere {
            w.violations
                .push("VIP assigned while live on another host".into());
        }
        if w.faults.assign {
            return Err(FloatingIpError::Io("injected".into()));
        }
        w.vip_here = true;
        Ok(())
    }

    fn announce(&mut self, _: &Vip) -> Result<(), FloatingIpError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Announce);
        if !w.vip_here {
            w.violations.push("VIP announced while not here".into());
        }
        Ok(())
    }

    fn refresh(&mut self, _: &Vip) -> Result<VipRefresh, FloatingIpError> {
        let mut w = self.0.borrow_mut();
        if !w.vip_here {
            return Ok(VipRefresh::NotHere);
        }
        w.calls.push(Call::Refresh);
        Ok(VipRefresh::Sent)
    }

    fn release(&mut self, _: &Vip) -> Result<(), FloatingIpError> {
        let mut w = self.0.borrow_mut();
        w.calls.push(Call::Release);
        if w.faults.release {
            return Err(FloatingIpError::Io("injected".into()));
        }
        w.vip_here = false;
        Ok(())
    }
}

impl Alerts for Handle {
    fn deliver(&mut self, alert: &Alert) -> Result<(), AlertError> {
        self.0.borrow_mut().alerts.push(alert.clone());
        Ok(())
    }

    fn sends(&self) -> bool {
        !self.0.borrow().alerts_logged_only
    }
}

/// A split brain as an adapter would report it.
pub fn split_brain() -> SplitBrain {
    SplitBrain {
        evidence: "the split-brain handler ran".into(),
        local: SplitBrainSide {
            role: VolumeRole::Primary,
            disk: DiskState::UpToDate,
            out_of_sync_kib: Some(4),
            current_uuid: None,
        },
        peer: None,
    }
}
