//! The [`ReplicatedVolume`] port over DRBD: generic netlink when the kernel has the `drbd`
//! family, `/proc/drbd` (read-only) when it does not (8.3 kernels).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iscsi_ha_core::ports::{Cause, ReplicatedVolume, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::{SplitBrain, VolumeStatus};

use crate::client::{DrbdError, DrbdNetlink, RoleRequest};
use crate::events::{DrbdEvent, DrbdEvents};
use crate::family::FamilyError;
use crate::netconf::NetConfig;
use crate::procfs::{self, ProcDrbd, ProcMinor};
use crate::retcode::StateRv;
use crate::split_brain::{is_connected, SeenSplitBrain, SplitBrainLog, VolumeFacts};
use crate::state::Dialect;
use crate::state::{ConnState, DrbdDiskState, DrbdRole};
use crate::status::{DrbdResource, DrbdVolume, ResyncPause, ResyncProgress, Suspension};
use crate::wire::DrbdMessage;

mod observe;
mod wake;
use observe::facts_in;
pub use observe::Observed;

/// DRBD resources through the kernel module.
///
/// Besides the port's requests it keeps two things across calls: the split-brain helper
/// calls seen on its own subscription to DRBD's events (or handed in with
/// [`DrbdVolumes::note_events`]), and each resource's network configuration as last reported
/// by the kernel, which [`ReplicatedVolume::connect`] replays once DRBD has forgotten it.
#[derive(Debug)]
pub struct DrbdVolumes {
    netlink: Option<DrbdNetlink>,
    proc_path: PathBuf,
    by_res_dir: PathBuf,
    events: Option<DrbdEvents>,
    split_brains: SplitBrainLog,
    net_configs: HashMap<String, NetConfig>,
    net_config_dir: Option<PathBuf>,
    /// GET_STATUS requests attempted (see [`DrbdVolumes::status_requests`]).
    status_requests: u64,
    /// Whether a failed subscription was logged (once, until one works).
    events_warned: bool,
}

impl Default for DrbdVolumes {
    fn default() -> Self {
        Self::new()
    }
}

impl DrbdVolumes {
    /// An adapter on the standard paths; the netlink connection opens on first use and
    /// reopens after a failure (a reloaded module gets a new family id).
    pub fn new() -> Self {
        Self::with_paths(
            PathBuf::from(procfs::PROC_DRBD),
            PathBuf::from("/dev/drbd/by-res"),
        )
    }

    /// Uses other locations for `/proc/drbd` and udev's `/dev/drbd/by-res` (tests).
    pub fn with_paths(proc_path: PathBuf, by_res_dir: PathBuf) -> Self {
        DrbdVolumes {
            netlink: None,
            proc_path,
            by_res_dir,
            events: None,
            split_brains: SplitBrainLog::new(),
            net_configs: HashMap::new(),
            net_config_dir: None,
            status_requests: 0,
            events_warned: false,
        }
    }

    /// Also keeps each resource's network configuration as `<dir>/<resource>.net.json`
    /// (written when it changes, read by [`ReplicatedVolume::connect`] when this process has
    /// not seen the connection configured), so another process, or the daemon after a
    /// restart, can reconnect a resource DRBD has forgotten the configuration of; and the
    /// split-brain helper calls seen, as `<dir>/<resource>.split-brain.json` until the
    /// resource is connected again, so a restarted daemon still reports a confirmed split
    /// brain.
    pub fn keep_net_config_in(mut self, dir: PathBuf) -> Self {
        self.net_config_dir = Some(dir);
        self
    }

    /// Takes events read elsewhere (e.g. the daemon's own subscription) into account, in the
    /// order received. The adapter also reads its own subscription before each status and
    /// split-brain query; an event seen twice changes nothing.
    pub fn note_events(&mut self, events: &[DrbdEvent]) {
        for e in events {
            self.split_brains.note(e);
        }
    }

    /// The network configuration of `resource` as last reported by the kernel (or loaded).
    pub fn net_config(&self, resource: &ResourceName) -> Option<&NetConfig> {
        self.net_configs.get(resource.as_str())
    }

    /// Provides a resource's network configuration (e.g. restored by the caller).
    pub fn set_net_config(&mut self, config: NetConfig) {
        self.net_configs.insert(config.resource.clone(), config);
    }

    /// Reads what the adapter's event subscription holds, subscribing first if needed. A
    /// failure means a split-brain helper call can be missed (the only evidence used), so it
    /// is retried on the next call; a daemon with a state directory also has the record an
    /// earlier subscription kept.
    /// Returns whether anything was read (or the subscription failed, which may mean the
    /// module went away).
    fn pump_events(&mut self) -> bool {
        if self.events.is_none() {
            self.events = DrbdEvents::subscribe().ok();
        }
        let Some(sub) = self.events.as_mut() else {
            return false;
        };
        match sub.read() {
            Ok(list) => {
                if list.contains(&DrbdEvent::ModuleUnloaded) {
                    self.events = None;
                }
                self.note_events(&list);
                !list.is_empty()
            }
            Err(_) => {
                self.events = None;
                true
            }
        }
    }

    /// The GET_STATUS dump of one resource (8.4), or `None` on a kernel that answers status
    /// another way; remembers the resource's network configuration on the way.
    fn status_messages(
        &mut self,
        resource: &ResourceName,
    ) -> Result<Option<Vec<DrbdMessage>>, DrbdError> {
        self.status_requests = self.status_requests.saturating_add(1);
        let messages = self.with_netlink(|nl| match nl.dialect() {
            Dialect::V84 => nl.status_messages(Some(resource.as_str())).map(Some),
            Dialect::V9 => Ok(None),
        })?;
        if let Some(messages) = &messages {
            if let Some(config) = NetConfig::from_messages(resource.as_str(), messages) {
                self.remember_net_config(config);
            }
        }
        Ok(messages)
    }

    fn remember_net_config(&mut self, config: NetConfig) {
        if self.net_configs.get(&config.resource) == Some(&config) {
            return;
        }
        if let Some(dir) = &self.net_config_dir {
            // Best effort: the in-memory copy still serves this process.
            let _ = store_net_config(dir, &config);
        }
        self.net_configs.insert(config.resource.clone(), config);
    }

    fn known_net_config(&self, resource: &ResourceName) -> Option<NetConfig> {
        if let Some(c) = self.net_configs.get(resource.as_str()) {
            return Some(c.clone());
        }
        let dir = self.net_config_dir.as_ref()?;
        load_net_config(dir, resource.as_str())
    }

    /// With a state directory, keeps the split-brain helper calls seen for a resource on disk
    /// (a restarted daemon still knows DRBD called it), or reads them back when this process
    /// saw none. Only called while the resource is not connected.
    fn sync_kept_split_brain(&mut self, resource: &str, minors: &[u32]) {
        let Some(dir) = self.net_config_dir.clone() else {
            return;
        };
        let path = split_brain_path(&dir, resource);
        let seen: Vec<SeenSplitBrain> = self
            .split_brains
            .for_resource(resource, minors)
            .into_iter()
            .filter(|s| !s.recorded_earlier)
            .cloned()
            .collect();
        if seen.is_empty() {
            let kept = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Vec<SeenSplitBrain>>(&b).ok())
                .unwrap_or_default();
            for mut s in kept {
                if s.resource.as_deref() == Some(resource) {
                    s.recorded_earlier = true;
                    self.split_brains.record(s);
                }
            }
        } else if let Ok(json) = serde_json::to_vec(&seen) {
            // Best effort, like the net configuration; written once, not on every poll.
            if std::fs::read(&path).ok().as_deref() != Some(json.as_slice()) {
                let _ = write_private(&dir, &path, &json);
            }
        }
    }

    /// The volumes of a resource with their UUIDs (8.4), `None` on other kernels.
    fn volume_facts(
        &mut self,
        resource: &ResourceName,
    ) -> Result<Option<Vec<VolumeFacts>>, VolumeError> {
        let messages = match self.status_messages(resource) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(DrbdError::Family(FamilyError::ModuleNotLoaded)) if self.proc_path.exists() => {
                return Ok(None)
            }
            Err(e) => return Err(volume_error(e)),
        };
        facts_in(resource, &messages).map(Some)
    }

    fn netlink(&mut self) -> Result<&mut DrbdNetlink, DrbdError> {
        if self.netlink.is_none() {
            self.netlink = Some(DrbdNetlink::connect()?);
        }
        self.netlink
            .as_mut()
            .ok_or(DrbdError::Family(FamilyError::ModuleNotLoaded))
    }

    /// Runs `f` on the connection, dropping the connection after transport failures.
    fn with_netlink<T>(
        &mut self,
        f: impl FnOnce(&mut DrbdNetlink) -> Result<T, DrbdError>,
    ) -> Result<T, DrbdError> {
        let result = self.netlink().and_then(f);
        if matches!(
            result,
            Err(DrbdError::Recv { .. }) | Err(DrbdError::Family(_))
        ) {
            self.netlink = None;
        }
        result
    }

    /// The status of one resource from `/proc/drbd`, its minors found through udev's
    /// `/dev/drbd/by-res/<name>` links (8.3: a link to the device; 8.4: a directory of
    /// per-volume links).
    pub fn proc_status(&self, resource: &ResourceName) -> Result<DrbdResource, VolumeError> {
        let proc =
            procfs::read(&self.proc_path).map_err(|e| VolumeError::Unavailable(Cause::of(e)))?;
        if proc.version.is_drbd9() && !proc.version.compat_84 {
            return Err(VolumeError::Unsupported(
                "DRBD 9 not supported yet (/proc/drbd shows no per-device state)"
                    .to_string()
                    .into(),
            ));
        }
        let minors = self.minors_of(resource)?;
        resource_from_proc(resource.as_str(), &proc, &minors)
    }

    fn minors_of(&self, resource: &ResourceName) -> Result<Vec<(u32, u32)>, VolumeError> {
        let path = self.by_res_dir.join(resource.as_str());
        let no_such = || VolumeError::NoSuchResource(resource.to_string());
        let minor_of = |p: &std::path::Path| -> Option<u32> {
            let target = std::fs::canonicalize(p).ok()?;
            target
                .file_name()?
                .to_str()?
                .strip_prefix("drbd")?
                .parse()
                .ok()
        };
        if path.is_dir() {
            let mut out = Vec::new();
            let entries = std::fs::read_dir(&path).map_err(|_| no_such())?;
            for entry in entries.flatten() {
                let volume = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok());
                if let (Some(volume), Some(minor)) = (volume, minor_of(&entry.path())) {
                    out.push((volume, minor));
                }
            }
            out.sort_unstable();
            if out.is_empty() {
                return Err(no_such());
            }
            Ok(out)
        } else {
            minor_of(&path).map(|m| vec![(0, m)]).ok_or_else(no_such)
        }
    }
}

/// Builds a resource from /proc/drbd minors (volume, minor pairs).
pub fn resource_from_proc(
    name: &str,
    proc: &ProcDrbd,
    minors: &[(u32, u32)],
) -> Result<DrbdResource, VolumeError> {
    let mut volumes = Vec::new();
    for &(volume, minor) in minors {
        let m = proc
            .minors
            .iter()
            .find(|m| m.minor == minor)
            .ok_or_else(|| VolumeError::NoSuchResource(name.to_string()))?;
        volumes.push(volume_from_proc(volume, m));
    }
    Ok(DrbdResource {
        name: name.to_string(),
        volumes,
    })
}

/// Reads one /proc/drbd minor as a volume.
pub fn volume_from_proc(volume: u32, m: &ProcMinor) -> DrbdVolume {
    let (role, peer_role) = m.roles.unwrap_or((DrbdRole::Unknown, DrbdRole::Unknown));
    let (disk, peer_disk) = m
        .disks
        .unwrap_or((DrbdDiskState::Diskless, DrbdDiskState::DUnknown));
    let flag = |i: usize, c: char| m.flags.chars().nth(i) == Some(c);
    DrbdVolume {
        minor: m.minor,
        volume,
        role,
        peer_role,
        cstate: m.cstate,
        disk,
        peer_disk,
        suspended: Suspension {
            // /proc shows one 's' for any suspension reason.
            user: m.io_suspended(),
            no_data: false,
            fencing: false,
        },
        resync_paused: ResyncPause {
            dependency: flag(1, 'a'),
            peer: flag(2, 'p'),
            user: flag(3, 'u'),
        },
        out_of_sync_kib: m.counters.and_then(|c| c.oos),
        resync: m
            .sync
            .as_ref()
            .filter(|_| m.cstate.is_resyncing())
            .map(|s| ResyncProgress::from_kib(s.total_kib, s.left_kib)),
        capacity_kib: None,
    }
}

/// Maps an adapter error onto the port's error, keeping DRBD's meaning.
pub fn volume_error(e: DrbdError) -> VolumeError {
    match e {
        DrbdError::Family(FamilyError::ModuleNotLoaded) => {
            VolumeError::Unavailable("the drbd kernel module is not loaded".to_string().into())
        }
        DrbdError::Family(FamilyError::UnknownVersion(v)) => {
            VolumeError::Unsupported(format!("drbd generic netlink family version {v}").into())
        }
        DrbdError::Family(other) => VolumeError::Unavailable(Cause::of(other)),
        DrbdError::Drbd9Unsupported(what) => {
            VolumeError::Unsupported(format!("DRBD 9 not supported yet ({what})").into())
        }
        DrbdError::NoSuchResource(name) => VolumeError::NoSuchResource(name),
        DrbdError::NoSuchMinor(minor) => VolumeError::NoSuchResource(format!("minor {minor}")),
        DrbdError::StateRefused {
            rv: StateRv::TwoPrimaries | StateRv::OtherVolumePeerPrimary,
            ..
        } => VolumeError::PeerPrimary,
        DrbdError::StateRefused {
            rv: StateRv::DeviceInUse,
            ..
        } => VolumeError::DeviceInUse,
        DrbdError::StateRefused {
            rv: StateRv::NoUpToDateDisk,
            ..
        } => VolumeError::NoUpToDateDisk,
        e @ (DrbdError::StateRefused { .. } | DrbdError::Config { .. }) => {
            VolumeError::Refused(Cause::of(e))
        }
        e @ DrbdError::PermissionDenied { .. } => VolumeError::PermissionDenied(Cause::of(e)),
        e @ DrbdError::Malformed { .. } => VolumeError::Malformed(Cause::of(e)),
        e @ (DrbdError::Errno { .. } | DrbdError::Recv { .. }) => {
            VolumeError::Unavailable(Cause::of(e))
        }
    }
}

fn net_config_path(dir: &Path, resource: &str) -> PathBuf {
    dir.join(format!("{resource}.net.json"))
}

fn split_brain_path(dir: &Path, resource: &str) -> PathBuf {
    dir.join(format!("{resource}.split-brain.json"))
}

fn store_net_config(dir: &Path, config: &NetConfig) -> std::io::Result<()> {
    let json = serde_json::to_vec(config).map_err(std::io::Error::other)?;
    // It may hold the shared secret: owner-only.
    write_private(dir, &net_config_path(dir, &config.resource), &json)
}

/// Writes `bytes` to `path` (in `dir`) atomically, readable by the owner only.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

fn load_net_config(dir: &Path, resource: &str) -> Option<NetConfig> {
    let bytes = std::fs::read(net_config_path(dir, resource)).ok()?;
    serde_json::from_slice::<NetConfig>(&bytes)
        .ok()
        .filter(|c| c.resource == resource)
}

impl ReplicatedVolume for DrbdVolumes {
    fn status(&mut self, resource: &ResourceName) -> Result<VolumeStatus, VolumeError> {
        self.pump_events();
        self.look(resource).0
    }

    fn promote(&mut self, resource: &ResourceName, force: bool) -> Result<(), VolumeError> {
        self.with_netlink(|nl| {
            nl.set_resource_role(resource.as_str(), RoleRequest::Primary { force })
        })
        .map_err(volume_error)
    }

    fn demote(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.with_netlink(|nl| nl.set_resource_role(resource.as_str(), RoleRequest::Secondary))
            .map_err(volume_error)
    }

    fn resume_io(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.with_netlink(|nl| nl.resume_resource_io(resource.as_str()))
            .map_err(volume_error)
    }

    fn split_brain(&mut self, resource: &ResourceName) -> Result<Option<SplitBrain>, VolumeError> {
        self.pump_events();
        let Some(facts) = self.volume_facts(resource)? else {
            return Ok(None);
        };
        Ok(self.assess_split_brain(resource, &facts))
    }

    fn connect(
        &mut self,
        resource: &ResourceName,
        discard_local_data: bool,
    ) -> Result<(), VolumeError> {
        self.pump_events();
        let Some(facts) = self.volume_facts(resource)? else {
            return Err(VolumeError::Unsupported(
                "connect needs the DRBD 8.4 generic netlink family"
                    .to_string()
                    .into(),
            ));
        };
        if let Some(up) = facts.iter().find(|f| is_connected(f.volume.cstate)) {
            // Connected: nothing to reconnect, and discarding data would need a new handshake.
            return if discard_local_data {
                Err(VolumeError::Refused(
                    format!(
                        "{resource} is {} with its peer: there is no split brain to resolve here",
                        up.volume.cstate.name()
                    )
                    .into(),
                ))
            } else {
                Ok(())
            };
        }
        if facts
            .iter()
            .any(|f| f.volume.cstate != ConnState::StandAlone)
        {
            // Configured and waiting for the peer (after a split brain, the side whose
            // handshake was cut short by the other ends here instead of StandAlone).
            if !discard_local_data {
                return Ok(());
            }
            if facts.iter().any(|f| f.volume.role == DrbdRole::Primary) {
                return Err(VolumeError::Refused(
                    format!(
                        "{resource} is Primary here: make it Secondary before discarding its data"
                    )
                    .into(),
                ));
            }
            // The documented recovery: disconnect, then connect discarding local data. The
            // configuration was just read from the kernel (status above), so it is known.
            self.with_netlink(|nl| nl.disconnect(resource.as_str(), false))
                .map_err(volume_error)?;
        }
        if discard_local_data && facts.iter().any(|f| f.volume.role == DrbdRole::Primary) {
            return Err(VolumeError::Refused(
                format!("{resource} is Primary here: make it Secondary before discarding its data")
                    .into(),
            ));
        }
        let config = self.known_net_config(resource).ok_or_else(|| {
            VolumeError::Refused(
                format!(
                    "the network configuration of {resource} is not known: DRBD forgets it when \
                 the connection goes StandAlone and it was not seen configured{}",
                    self.net_config_dir
                        .as_ref()
                        .map(|d| format!(" (nor kept in {})", d.display()))
                        .unwrap_or_default()
                )
                .into(),
            )
        })?;
        self.with_netlink(|nl| nl.connect_peer(&config, discard_local_data))
            .map_err(volume_error)
    }
}

/// Whether a volume's /proc line and its netlink status agree on the observable state
/// (roles, connection, disks, suspension): the cross-check.
pub fn proc_agrees(netlink: &DrbdVolume, proc: &ProcMinor) -> bool {
    let from_proc = volume_from_proc(netlink.volume, proc);
    netlink.minor == from_proc.minor
        && netlink.role == from_proc.role
        && netlink.peer_role == from_proc.peer_role
        && netlink.cstate == from_proc.cstate
        && netlink.disk == from_proc.disk
        && netlink.peer_disk == from_proc.peer_disk
        && netlink.suspended.any() == from_proc.suspended.any()
        && (proc.cstate != ConnState::Unconfigured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(resource: &str) -> NetConfig {
        NetConfig {
            resource: resource.to_string(),
            my_addr: vec![2, 0, 0x1e, 0x6d, 10, 99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            peer_addr: vec![2, 0, 0x1e, 0x6d, 10, 99, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
            net_conf: vec![8, 0, 6, 0x40, 3, 0, 0, 0],
        }
    }

    #[test]
    fn a_kept_net_config_survives_the_process_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut a = DrbdVolumes::new().keep_net_config_in(dir.path().join("drbd"));
        a.remember_net_config(config("r0"));
        let path = net_config_path(&dir.path().join("drbd"), "r0");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another process (a new adapter) finds it; other resources are not confused with it.
        let b = DrbdVolumes::new().keep_net_config_in(dir.path().join("drbd"));
        let r0 = ResourceName::new("r0".to_string()).unwrap();
        let r1 = ResourceName::new("r1".to_string()).unwrap();
        assert_eq!(b.known_net_config(&r0), Some(config("r0")));
        assert_eq!(b.known_net_config(&r1), None);
        // A file naming another resource, or garbage, is not used.
        std::fs::write(
            net_config_path(&dir.path().join("drbd"), "r1"),
            serde_json::to_vec(&config("r0")).unwrap(),
        )
        .unwrap();
        assert_eq!(b.known_net_config(&r1), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(b.known_net_config(&r0), None);
        // Without a directory only the in-memory copy serves.
        let mut c = DrbdVolumes::new();
        assert_eq!(c.known_net_config(&r0), None);
        c.set_net_config(config("r0"));
        assert_eq!(c.net_config(&r0), Some(&config("r0")));
    }

    #[test]
    fn a_seen_split_brain_is_kept_for_the_next_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = DrbdVolumes::new().keep_net_config_in(dir.path().to_path_buf());
        a.split_brains.record(SeenSplitBrain {
            resource: Some("r0".to_string()),
            minor: 1,
            seq: 39,
            state: None,
            recorded_earlier: false,
        });
        a.sync_kept_split_brain("r0", &[1]);
        let path = split_brain_path(dir.path(), "r0");
        assert!(path.exists());
        // A new process reads it back, marked as such; another resource does not.
        let mut b = DrbdVolumes::new().keep_net_config_in(dir.path().to_path_buf());
        b.sync_kept_split_brain("r1", &[2]);
        assert!(b.split_brains.is_empty());
        b.sync_kept_split_brain("r0", &[1]);
        let seen = b.split_brains.for_resource("r0", &[1]);
        assert_eq!(seen.len(), 1);
        assert!(seen[0].recorded_earlier);
        assert_eq!(seen[0].seq, 39);
        // Read back, it is not written again as if seen live.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        b.sync_kept_split_brain("r0", &[1]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }
}
