//! The host's serving history (who took over, who lost its peer while Primary, who yielded:
//! see `iscsi_ha_core::history`) kept in the state directory, so a restarted daemon still
//! knows it was a stale master and still gives the right split-brain advice. Written only
//! when a fact changes, not on every pass.

use iscsi_ha_core::history::ServingHistory;
use std::path::PathBuf;

/// The history with the file it lives in.
#[derive(Debug)]
pub struct HistoryFile {
    path: PathBuf,
    /// The record.
    pub history: ServingHistory,
}

impl HistoryFile {
    /// Loads `<state_dir>/serving-history.json`. A missing file is an empty record; an
    /// unreadable or malformed one too, with a warning (the facts only sharpen advice and
    /// the stale-master rule; without them the rules fall back to their cautious side).
    pub fn load(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join("serving-history.json");
        let history = match crate::small_file::read(&path, crate::small_file::CONFIG_FILE_CAP) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(
                    "{}: not a serving history ({e}); starting a new one",
                    path.display()
                );
                ServingHistory::default()
            }),
            Err(e) if e.is_not_found() => ServingHistory::default(),
            Err(e) => {
                tracing::warn!("{e}; starting a new serving history");
                ServingHistory::default()
            }
        };
        Self { path, history }
    }

    /// [`HistoryFile::load`], then starts the record of the running kernel's boot: facts that
    /// held only for an earlier boot (the peer seen connected) are forgotten, so a host that
    /// booted alone does not take DRBD's UpToDate for current data.
    pub fn load_for_this_boot(state_dir: &std::path::Path) -> Self {
        let mut file = Self::load(state_dir);
        let boot = current_boot_id();
        if file.history.start_boot(boot.as_deref()) {
            file.save();
        }
        file
    }

    /// The state directory the record lives in (other records of the daemon go beside it).
    pub fn state_dir(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new("."))
    }

    /// Saves the record atomically; a failure is logged (the daemon goes on).
    pub fn save(&self) {
        let bytes = serde_json::to_vec_pretty(&self.history).unwrap_or_default();
        if let Err(e) = crate::state_file::write_atomically(&self.path, &bytes) {
            tracing::warn!("cannot save {}: {e}", self.path.display());
        }
    }
}

/// The kernel's boot id, or `None` (with a warning) when it cannot be read.
fn current_boot_id() -> Option<String> {
    const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
    match crate::small_file::read(std::path::Path::new(BOOT_ID), 4096) {
        Ok(text) => Some(text.trim().to_string()).filter(|s| !s.is_empty()),
        Err(e) => {
            tracing::warn!("{e}; an UpToDate disk without its peer is held until it connects");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::observation::{ManualMode, Observation, VolumeObservation};
    use iscsi_ha_core::plan::plan;
    use iscsi_ha_core::resource::ResourceName;
    use iscsi_ha_core::role::Role;
    use iscsi_ha_core::time::Timestamp;
    use iscsi_ha_core::volume::{Connection, DiskState, VolumeRole, VolumeStatus};

    fn observation(local: VolumeRole, connected: bool, history: &ServingHistory) -> Observation {
        let name = ResourceName::new("r0").unwrap();
        Observation {
            role: Role::Master,
            manual: ManualMode::Off,
            volumes: vec![VolumeObservation {
                name: name.clone(),
                status: Ok(VolumeStatus {
                    name,
                    role: local,
                    peer_role: if connected {
                        VolumeRole::Secondary
                    } else {
                        VolumeRole::Unknown
                    },
                    connection: if connected {
                        Connection::Connected
                    } else {
                        Connection::Connecting
                    },
                    connection_detail: "x".into(),
                    disk: DiskState::UpToDate,
                    peer_disk: DiskState::UpToDate,
                    sync: None,
                    suspended: false,
                }),
                split_brain: None,
            }],
            target: Err("not asked".into()),
            vip_here: Ok(false),
            vip_claim: None,
            history: history.clone(),
        }
    }

    #[test]
    fn a_lost_peer_survives_a_restart_and_a_malformed_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = iscsi_ha_core::config::Config::parse(
            iscsi_ha_core::config::Source {
                text: include_str!("../../fixtures/config/good/minimal.toml"),
                origin: "minimal.toml",
            },
            None,
        )
        .unwrap();
        let mut file = HistoryFile::load(dir.path());
        for (i, connected) in [true, true, false].into_iter().enumerate() {
            let o = observation(VolumeRole::Primary, connected, &file.history);
            let p = plan(&cfg, &o);
            if file
                .history
                .note(&o, &p, Timestamp::from_unix_millis(1000 * i as u64))
            {
                file.save();
            }
        }
        let again = HistoryFile::load(dir.path());
        assert_eq!(
            again.history.lost_peer_at,
            Some(Timestamp::from_unix_millis(2000))
        );
        std::fs::write(dir.path().join("serving-history.json"), b"\xff garbage").unwrap();
        assert_eq!(
            HistoryFile::load(dir.path()).history,
            ServingHistory::default()
        );
    }
}
