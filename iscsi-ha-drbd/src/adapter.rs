//! The [`ReplicatedVolume`] port over DRBD: generic netlink when the kernel has the `drbd`
//! family, `/proc/drbd` (read-only) when it does not (8.3 kernels).

use std::path::PathBuf;

use iscsi_ha_core::ports::{ReplicatedVolume, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::VolumeStatus;

use crate::client::{DrbdError, DrbdNetlink, RoleRequest};
use crate::family::FamilyError;
use crate::procfs::{self, ProcDrbd, ProcMinor};
use crate::retcode::StateRv;
use crate::state::{ConnState, DrbdDiskState, DrbdRole};
use crate::status::{DrbdResource, DrbdVolume, ResyncPause, ResyncProgress, Suspension};

/// DRBD resources through the kernel module.
#[derive(Debug)]
pub struct DrbdVolumes {
    netlink: Option<DrbdNetlink>,
    proc_path: PathBuf,
    by_res_dir: PathBuf,
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
        DrbdVolumes {
            netlink: None,
            proc_path: PathBuf::from(procfs::PROC_DRBD),
            by_res_dir: PathBuf::from("/dev/drbd/by-res"),
        }
    }

    /// Uses other locations for `/proc/drbd` and udev's `/dev/drbd/by-res` (tests).
    pub fn with_paths(proc_path: PathBuf, by_res_dir: PathBuf) -> Self {
        DrbdVolumes {
            netlink: None,
            proc_path,
            by_res_dir,
        }
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
            procfs::read(&self.proc_path).map_err(|e| VolumeError::Unavailable(e.to_string()))?;
        if proc.version.is_drbd9() && !proc.version.compat_84 {
            return Err(VolumeError::Unsupported(
                "DRBD 9 not supported yet (/proc/drbd shows no per-device state)".to_string(),
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
            VolumeError::Unavailable("the drbd kernel module is not loaded".to_string())
        }
        DrbdError::Family(FamilyError::UnknownVersion(v)) => {
            VolumeError::Unsupported(format!("drbd generic netlink family version {v}"))
        }
        DrbdError::Family(other) => VolumeError::Unavailable(other.to_string()),
        DrbdError::Drbd9Unsupported(what) => {
            VolumeError::Unsupported(format!("DRBD 9 not supported yet ({what})"))
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
            VolumeError::Refused(e.to_string())
        }
        e @ DrbdError::PermissionDenied { .. } => VolumeError::PermissionDenied(e.to_string()),
        e @ DrbdError::Malformed { .. } => VolumeError::Malformed(e.to_string()),
        e @ (DrbdError::Errno { .. } | DrbdError::Recv { .. }) => {
            VolumeError::Unavailable(e.to_string())
        }
    }
}

impl ReplicatedVolume for DrbdVolumes {
    fn status(&mut self, resource: &ResourceName) -> Result<VolumeStatus, VolumeError> {
        match self.with_netlink(|nl| nl.status(Some(resource.as_str()))) {
            Ok(resources) => resources
                .into_iter()
                .find(|r| r.name == resource.as_str())
                .map(|r| r.to_core(resource.clone()))
                .ok_or_else(|| VolumeError::NoSuchResource(resource.to_string())),
            // No genl family but a /proc/drbd: an 8.3 module (it speaks the connector).
            Err(DrbdError::Family(FamilyError::ModuleNotLoaded)) if self.proc_path.exists() => {
                Ok(self.proc_status(resource)?.to_core(resource.clone()))
            }
            Err(e) => Err(volume_error(e)),
        }
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
