//! When each side of each resource was last seen Primary, kept in the state directory so a
//! split brain can be shown with it ("keep the side that has been Primary and serving") even
//! after a daemon restart. Written only when a role changes, not on every cycle.

use iscsi_ha_core::observation::Observation;
use iscsi_ha_core::status::Status;
use iscsi_ha_core::time::Timestamp;
use iscsi_ha_core::volume::VolumeRole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One resource's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryRecord {
    /// This host is Primary now.
    pub local_primary: bool,
    /// When this host stopped being Primary (or was last seen so).
    pub local_last: Option<Timestamp>,
    /// The peer was Primary at the last observation.
    pub peer_primary: bool,
    /// When the peer was last seen Primary.
    pub peer_last: Option<Timestamp>,
}

/// The records of every resource, with the file they live in.
#[derive(Debug)]
pub struct PrimaryHistory {
    path: PathBuf,
    records: BTreeMap<String, PrimaryRecord>,
}

impl PrimaryHistory {
    /// Loads `<state_dir>/primary-history.json` (missing or unreadable: empty).
    pub fn load(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join("primary-history.json");
        let records = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self { path, records }
    }

    /// Notes the roles observed at `now`; saves when one changed.
    pub fn observe(&mut self, observation: &Observation, now: Timestamp) {
        let mut changed = false;
        for v in &observation.volumes {
            let Ok(s) = &v.status else { continue };
            let r = self.records.entry(v.name.to_string()).or_default();
            let local = s.role == VolumeRole::Primary;
            let peer = s.peer_role == VolumeRole::Primary;
            if local != r.local_primary || peer != r.peer_primary {
                changed = true;
            }
            if local || r.local_primary {
                r.local_last = Some(now);
            }
            if peer || r.peer_primary {
                r.peer_last = Some(now);
            }
            r.local_primary = local;
            r.peer_primary = peer;
        }
        if changed {
            self.save();
        }
    }

    /// Fills the split-brain views of `status` (a side Primary now shows `now`).
    pub fn annotate(&self, status: &mut Status) {
        for r in &mut status.resources {
            let (Some(view), Some(rec)) = (r.split_brain.as_mut(), self.records.get(&r.name))
            else {
                continue;
            };
            view.local_last_primary = if rec.local_primary {
                Some(status.updated_at)
            } else {
                rec.local_last
            };
            view.peer_last_primary = if rec.peer_primary {
                Some(status.updated_at)
            } else {
                rec.peer_last
            };
        }
    }

    fn save(&self) {
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(&self.records).unwrap_or_default(),
            )?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            tracing::warn!("cannot save {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::observation::{ManualMode, VolumeObservation};
    use iscsi_ha_core::resource::ResourceName;
    use iscsi_ha_core::role::Role;
    use iscsi_ha_core::volume::{Connection, DiskState, VolumeStatus};

    fn observation(local: VolumeRole, peer: VolumeRole) -> Observation {
        let name = ResourceName::new("r0").unwrap();
        Observation {
            role: Role::Master,
            manual: ManualMode::Off,
            volumes: vec![VolumeObservation {
                name: name.clone(),
                status: Ok(VolumeStatus {
                    name,
                    role: local,
                    peer_role: peer,
                    connection: Connection::Connected,
                    connection_detail: "Connected".into(),
                    disk: DiskState::UpToDate,
                    peer_disk: DiskState::UpToDate,
                    sync: None,
                    suspended: false,
                }),
                split_brain: None,
            }],
            target: Err("not asked".into()),
            vip_here: Ok(false),
        }
    }

    #[test]
    fn records_the_last_time_each_side_was_primary_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = PrimaryHistory::load(dir.path());
        let t = Timestamp::from_unix_millis;
        h.observe(
            &observation(VolumeRole::Secondary, VolumeRole::Primary),
            t(1000),
        );
        h.observe(
            &observation(VolumeRole::Secondary, VolumeRole::Primary),
            t(2000),
        );
        h.observe(
            &observation(VolumeRole::Secondary, VolumeRole::Secondary),
            t(3000),
        );
        h.observe(
            &observation(VolumeRole::Primary, VolumeRole::Secondary),
            t(4000),
        );
        let again = PrimaryHistory::load(dir.path());
        let r = again.records["r0"];
        assert_eq!(
            r.peer_last,
            Some(t(3000)),
            "the peer was last seen Primary until 3 s"
        );
        assert!(r.local_primary && !r.peer_primary);
        assert_eq!(r.local_last, Some(t(4000)));
    }
}
