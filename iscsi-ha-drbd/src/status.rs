//! The adapter's own, richer status (per volume: roles, connection, disks, suspension, resync,
//! out-of-sync, capacity, minor), how it is read from an 8.4 GET_STATUS reply, and how it is
//! reduced to the core's [`VolumeStatus`].

use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::{Connection, SyncProgress, VolumeRole, VolumeStatus};
use serde::Serialize;

use crate::state::{ConnState, DrbdDiskState, DrbdRole, StateWord};
use crate::wire::{DrbdMessage, MINOR_NONE};

/// Bitmap granularity: one bit covers 4 KiB.
const KIB_PER_BIT: u64 = 4;

/// Why I/O is suspended, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Suspension {
    /// Suspended by the user (`suspend-io`).
    pub user: bool,
    /// Suspended because no up-to-date data is reachable (on-no-data-accessible suspend-io).
    pub no_data: bool,
    /// Suspended by fencing (waiting for the fence-peer handler).
    pub fencing: bool,
}

impl Suspension {
    /// Whether any reason holds.
    pub fn any(self) -> bool {
        self.user || self.no_data || self.fencing
    }
}

/// Why a resync is paused, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ResyncPause {
    /// Waiting for another resync it depends on (`resync-after`).
    pub dependency: bool,
    /// Paused by the peer.
    pub peer: bool,
    /// Paused by the user.
    pub user: bool,
}

/// Progress of a running resync or verify.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResyncProgress {
    /// Data to resync in this run, KiB.
    pub total_kib: u64,
    /// Data still to do, KiB.
    pub left_kib: u64,
    /// Percentage done, 0.0..=100.0.
    pub percent_done: f32,
}

impl ResyncProgress {
    /// Progress from totals; a zero total counts as done.
    pub fn from_kib(total_kib: u64, left_kib: u64) -> Self {
        let left_kib = left_kib.min(total_kib);
        let percent_done = if total_kib == 0 {
            100.0
        } else {
            // Precision loss is irrelevant for a percentage.
            #[allow(clippy::cast_precision_loss)]
            let p = 100.0 * (total_kib - left_kib) as f64 / total_kib as f64;
            #[allow(clippy::cast_possible_truncation)]
            let p = p as f32;
            p
        };
        ResyncProgress {
            total_kib,
            left_kib,
            percent_done,
        }
    }
}

/// One DRBD volume (minor) as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrbdVolume {
    /// The device minor (`/dev/drbdN`).
    pub minor: u32,
    /// Volume number within the resource.
    pub volume: u32,
    /// This node's role.
    pub role: DrbdRole,
    /// The peer's role.
    pub peer_role: DrbdRole,
    /// Connection / replication state.
    pub cstate: ConnState,
    /// Local disk.
    pub disk: DrbdDiskState,
    /// Peer's disk.
    pub peer_disk: DrbdDiskState,
    /// I/O suspension.
    pub suspended: Suspension,
    /// Resync pause reasons.
    pub resync_paused: ResyncPause,
    /// Data marked out of sync, KiB (when there is a local disk).
    pub out_of_sync_kib: Option<u64>,
    /// Running resync/verify progress.
    pub resync: Option<ResyncProgress>,
    /// Device size, KiB.
    pub capacity_kib: Option<u64>,
}

/// A resource and its volumes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrbdResource {
    /// The resource name.
    pub name: String,
    /// Its volumes in minor order (empty for a resource without volumes).
    pub volumes: Vec<DrbdVolume>,
}

/// Why a status reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// A required set or field is missing.
    #[error("status reply for minor {minor} lacks {what}")]
    Missing {
        /// The minor of the reply.
        minor: u32,
        /// What is missing.
        what: &'static str,
    },
}

/// One GET_STATUS reply / DRBD_EVENT as read: the resource it names and, unless the resource
/// has no volumes, the volume.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReply {
    /// The resource name.
    pub resource: String,
    /// The volume, or `None` for a resource without volumes (`minor = ~0`).
    pub volume: Option<DrbdVolume>,
}

impl StatusReply {
    /// Reads an 8.4 GET_STATUS reply (or DRBD_EVENT) message.
    pub fn from_message(msg: &DrbdMessage) -> Result<Self, StatusError> {
        let minor = msg.header.minor;
        let ctx = msg.attrs.cfg_context.as_ref().ok_or(StatusError::Missing {
            minor,
            what: "CFG_CONTEXT",
        })?;
        let resource = ctx.resource_name.clone().ok_or(StatusError::Missing {
            minor,
            what: "ctx_resource_name",
        })?;
        if minor == MINOR_NONE {
            return Ok(StatusReply {
                resource,
                volume: None,
            });
        }
        let info = msg.attrs.state_info.as_ref().ok_or(StatusError::Missing {
            minor,
            what: "STATE_INFO",
        })?;
        let word = StateWord(info.current_state.ok_or(StatusError::Missing {
            minor,
            what: "current_state",
        })?);
        Ok(StatusReply {
            resource,
            volume: Some(volume_from_state(
                minor,
                ctx.volume.unwrap_or(0),
                word,
                info,
            )),
        })
    }
}

/// Builds a volume from an 8.4 state word and the STATE_INFO counters.
pub fn volume_from_state(
    minor: u32,
    volume: u32,
    word: StateWord,
    info: &crate::wire::sets::StateInfo,
) -> DrbdVolume {
    let cstate = word.conn();
    let has_disk = !matches!(word.disk(), DrbdDiskState::Diskless);
    let oos = info.bits_oos.map(|b| b.saturating_mul(KIB_PER_BIT));
    let resync = if cstate.is_resyncing() {
        info.bits_rs_total.map(|total| {
            let left = info
                .bits_oos
                .unwrap_or(0)
                .saturating_sub(info.bits_rs_failed.unwrap_or(0));
            ResyncProgress::from_kib(
                total.saturating_mul(KIB_PER_BIT),
                left.saturating_mul(KIB_PER_BIT),
            )
        })
    } else {
        None
    };
    DrbdVolume {
        minor,
        volume,
        role: word.role(),
        peer_role: word.peer(),
        cstate,
        disk: word.disk(),
        peer_disk: word.pdsk(),
        suspended: Suspension {
            user: word.susp(),
            no_data: word.susp_nod(),
            fencing: word.susp_fen(),
        },
        resync_paused: ResyncPause {
            dependency: word.aftr_isp(),
            peer: word.peer_isp(),
            user: word.user_isp(),
        },
        out_of_sync_kib: if has_disk { oos } else { None },
        resync,
        capacity_kib: info.capacity.map(|s| s / 2),
    }
}

/// Groups replies into resources, in the order the resources first appear, volumes by minor.
pub fn group_replies(replies: Vec<StatusReply>) -> Vec<DrbdResource> {
    let mut out: Vec<DrbdResource> = Vec::new();
    for reply in replies {
        let idx = match out.iter().position(|r| r.name == reply.resource) {
            Some(i) => i,
            None => {
                out.push(DrbdResource {
                    name: reply.resource.clone(),
                    volumes: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(v) = reply.volume {
            out[idx].volumes.push(v);
        }
    }
    for r in &mut out {
        r.volumes.sort_by_key(|v| v.minor);
    }
    out
}

/// How current a disk state's data is, lowest first; a multi-volume resource reports its
/// least current volume. The order is the one that is conservative for promotion: no data or
/// unusable data (Failed, DRBD 9's Detaching, a value this adapter has no name for, Diskless,
/// and the transient Attaching and Negotiating, whose data is not known yet) < Inconsistent <
/// Outdated (consistent but known old) < DUnknown (nothing known; only the peer's disk is
/// ever DUnknown) < Consistent (whether it is the newest is not known) < UpToDate. So the
/// resource is UpToDate only if every volume is, and a volume in a transient state never lets
/// the resource look Inconsistent (promotable while connected to an UpToDate peer).
fn disk_rank(d: DrbdDiskState) -> u8 {
    match d {
        DrbdDiskState::Failed | DrbdDiskState::Detaching | DrbdDiskState::Other(_) => 0,
        DrbdDiskState::Diskless => 1,
        DrbdDiskState::Attaching => 2,
        DrbdDiskState::Negotiating => 3,
        DrbdDiskState::Inconsistent => 4,
        DrbdDiskState::Outdated => 5,
        DrbdDiskState::DUnknown => 6,
        DrbdDiskState::Consistent => 7,
        DrbdDiskState::UpToDate => 8,
    }
}

/// How connected, lowest first (a multi-volume resource reports its least connected volume):
/// not configured < trying < connected and resyncing towards this side (its data is not
/// current) < resyncing from this side < other connected states (handshake steps, verify,
/// paused resync, congestion) < plainly Connected.
fn conn_rank(c: Connection) -> u8 {
    match c {
        Connection::StandAlone => 0,
        Connection::Connecting => 1,
        Connection::SyncTarget => 2,
        Connection::SyncSource => 3,
        Connection::OtherConnected => 4,
        Connection::Connected => 5,
    }
}

impl DrbdResource {
    /// Reduces the resource to the core's status. With several volumes the most cautious
    /// reading wins, since the core acts on the resource as a whole:
    /// - role: Primary only if every volume is, Secondary only if every volume is, otherwise
    ///   Unknown (the core demotes whenever the role is not Secondary, which evens out a
    ///   half-promoted resource);
    /// - peer role: Primary if any of the peer's volumes is (never promote next to a peer
    ///   Primary), otherwise the common role, or Unknown when they differ;
    /// - disk and peer disk: the least current volume (order documented on `disk_rank`);
    /// - connection: the least connected volume (order on `conn_rank`), with its DRBD name;
    /// - sync: the running resyncs summed; suspended if any volume is.
    pub fn to_core(&self, name: ResourceName) -> VolumeStatus {
        let vols = &self.volumes;
        let Some(first) = vols.first() else {
            return VolumeStatus {
                name,
                role: VolumeRole::Unknown,
                peer_role: VolumeRole::Unknown,
                connection: Connection::StandAlone,
                connection_detail: "no volumes".to_string(),
                disk: iscsi_ha_core::volume::DiskState::Diskless,
                peer_disk: iscsi_ha_core::volume::DiskState::Unknown,
                sync: None,
                suspended: false,
            };
        };
        let role = if vols.iter().all(|v| v.role == first.role) {
            first.role.to_core()
        } else {
            VolumeRole::Unknown
        };
        let peer_role = if vols.iter().any(|v| v.peer_role == DrbdRole::Primary) {
            VolumeRole::Primary
        } else if vols.iter().all(|v| v.peer_role == first.peer_role) {
            first.peer_role.to_core()
        } else {
            VolumeRole::Unknown
        };
        let worst_conn = vols
            .iter()
            .min_by_key(|v| conn_rank(v.cstate.to_core()))
            .unwrap_or(first);
        let worst_disk = vols.iter().map(|v| v.disk).min_by_key(|d| disk_rank(*d));
        let worst_pdisk = vols
            .iter()
            .map(|v| v.peer_disk)
            .min_by_key(|d| disk_rank(*d));
        let syncing: Vec<&ResyncProgress> = vols.iter().filter_map(|v| v.resync.as_ref()).collect();
        let sync = if syncing.is_empty() {
            None
        } else {
            let total: u64 = syncing.iter().map(|p| p.total_kib).sum();
            let left: u64 = syncing.iter().map(|p| p.left_kib).sum();
            let p = ResyncProgress::from_kib(total, left);
            Some(SyncProgress {
                percent_done: p.percent_done,
                out_of_sync_kib: left,
            })
        };
        VolumeStatus {
            name,
            role,
            peer_role,
            connection: worst_conn.cstate.to_core(),
            connection_detail: worst_conn.cstate.name(),
            disk: worst_disk.unwrap_or(first.disk).to_core(),
            peer_disk: worst_pdisk.unwrap_or(first.peer_disk).to_core(),
            sync,
            suspended: vols.iter().any(|v| v.suspended.any()),
        }
    }
}

#[cfg(test)]
mod tests {
    use iscsi_ha_core::volume::DiskState;

    use super::*;

    fn volume(minor: u32, role: DrbdRole, disk: DrbdDiskState, cstate: ConnState) -> DrbdVolume {
        DrbdVolume {
            minor,
            volume: minor - 1,
            role,
            peer_role: DrbdRole::Secondary,
            cstate,
            disk,
            peer_disk: DrbdDiskState::UpToDate,
            suspended: Suspension::default(),
            resync_paused: ResyncPause::default(),
            out_of_sync_kib: Some(0),
            resync: None,
            capacity_kib: Some(8192),
        }
    }

    fn core(volumes: Vec<DrbdVolume>) -> VolumeStatus {
        DrbdResource {
            name: "r0".to_string(),
            volumes,
        }
        .to_core(ResourceName::new("r0").expect("name"))
    }

    fn two(a: DrbdVolume, b: DrbdVolume) -> [VolumeStatus; 2] {
        // The reduction does not depend on the volumes' order.
        [core(vec![a.clone(), b.clone()]), core(vec![b, a])]
    }

    use ConnState::Connected;
    use DrbdDiskState::UpToDate;
    use DrbdRole::{Primary, Secondary};

    #[test]
    fn the_role_is_primary_or_secondary_only_if_every_volume_is() {
        let both = |role| {
            core(vec![
                volume(1, role, UpToDate, Connected),
                volume(2, role, UpToDate, Connected),
            ])
        };
        assert_eq!(both(Primary).role, VolumeRole::Primary);
        assert_eq!(both(Secondary).role, VolumeRole::Secondary);
        for s in two(
            volume(1, Primary, UpToDate, Connected),
            volume(2, Secondary, UpToDate, Connected),
        ) {
            assert_eq!(s.role, VolumeRole::Unknown);
        }
        for s in two(
            volume(1, Secondary, UpToDate, Connected),
            volume(2, DrbdRole::Unknown, UpToDate, Connected),
        ) {
            assert_eq!(s.role, VolumeRole::Unknown);
        }
        for s in two(
            volume(1, Primary, UpToDate, Connected),
            volume(2, DrbdRole::Other(3), UpToDate, Connected),
        ) {
            assert_eq!(s.role, VolumeRole::Unknown);
        }
    }

    #[test]
    fn the_peer_is_primary_if_any_of_its_volumes_is() {
        let mut b = volume(2, Secondary, UpToDate, Connected);
        b.peer_role = Primary;
        for s in two(volume(1, Secondary, UpToDate, Connected), b.clone()) {
            assert_eq!(s.peer_role, VolumeRole::Primary);
        }
        b.peer_role = DrbdRole::Unknown;
        for s in two(volume(1, Secondary, UpToDate, Connected), b) {
            assert_eq!(s.peer_role, VolumeRole::Unknown);
        }
    }

    /// The documented order, least current first (ties: equal rank, either may be shown).
    const ORDER: [&[DrbdDiskState]; 9] = [
        &[
            DrbdDiskState::Failed,
            DrbdDiskState::Detaching,
            DrbdDiskState::Other(42),
        ],
        &[DrbdDiskState::Diskless],
        &[DrbdDiskState::Attaching],
        &[DrbdDiskState::Negotiating],
        &[DrbdDiskState::Inconsistent],
        &[DrbdDiskState::Outdated],
        &[DrbdDiskState::DUnknown],
        &[DrbdDiskState::Consistent],
        &[DrbdDiskState::UpToDate],
    ];

    #[test]
    fn disk_and_peer_disk_are_the_least_current_volumes() {
        for (i, lower) in ORDER.iter().enumerate() {
            for higher in &ORDER[i..] {
                for (&lo, &hi) in lower.iter().zip(higher.iter().cycle()) {
                    let expected = if disk_rank(lo) == disk_rank(hi) {
                        None
                    } else {
                        Some(lo.to_core())
                    };
                    let a = volume(1, Secondary, lo, Connected);
                    let b = volume(2, Secondary, hi, Connected);
                    for s in two(a.clone(), b.clone()) {
                        if let Some(e) = expected {
                            assert_eq!(s.disk, e, "{lo} with {hi}");
                        }
                    }
                    let (mut a, mut b) = (a, b);
                    a.disk = UpToDate;
                    b.disk = UpToDate;
                    a.peer_disk = lo;
                    b.peer_disk = hi;
                    for s in two(a.clone(), b.clone()) {
                        assert_eq!(s.disk, DiskState::UpToDate);
                        if let Some(e) = expected {
                            assert_eq!(s.peer_disk, e, "peer {lo} with {hi}");
                        }
                    }
                }
            }
        }
        // The cases promotion hinges on, spelled out.
        let pair = |x, y| {
            two(
                volume(1, Secondary, x, Connected),
                volume(2, Secondary, y, Connected),
            )
        };
        for s in pair(UpToDate, DrbdDiskState::Inconsistent) {
            assert_eq!(s.disk, DiskState::Inconsistent);
        }
        for s in pair(DrbdDiskState::Inconsistent, DrbdDiskState::Negotiating) {
            assert_eq!(s.disk, DiskState::Negotiating);
        }
        for s in pair(DrbdDiskState::Outdated, DrbdDiskState::Consistent) {
            assert_eq!(s.disk, DiskState::Outdated);
        }
        for s in pair(UpToDate, DrbdDiskState::Consistent) {
            assert_eq!(s.disk, DiskState::Consistent);
        }
        for s in pair(UpToDate, DrbdDiskState::Diskless) {
            assert_eq!(s.disk, DiskState::Diskless);
        }
        for s in pair(DrbdDiskState::Diskless, DrbdDiskState::Failed) {
            assert_eq!(s.disk, DiskState::Failed);
        }
    }

    #[test]
    fn the_connection_is_the_least_connected_volumes() {
        let pair = |x, y| {
            two(
                volume(1, Secondary, UpToDate, x),
                volume(2, Secondary, UpToDate, y),
            )
        };
        for s in pair(Connected, ConnState::StandAlone) {
            assert_eq!(
                (s.connection, s.connection_detail.as_str()),
                (Connection::StandAlone, "StandAlone")
            );
        }
        for s in pair(Connected, ConnState::WFConnection) {
            assert_eq!(
                (s.connection, s.connection_detail.as_str()),
                (Connection::Connecting, "WFConnection")
            );
        }
        for s in pair(ConnState::SyncSource, ConnState::SyncTarget) {
            assert_eq!(s.connection, Connection::SyncTarget);
        }
        for s in pair(Connected, ConnState::PausedSyncS) {
            assert_eq!(s.connection, Connection::OtherConnected);
        }
        for s in pair(Connected, Connected) {
            assert_eq!(s.connection, Connection::Connected);
        }
    }

    #[test]
    fn a_fencing_freeze_is_suspended_in_the_core_status() {
        // Primary/Unknown, WFConnection(8), UpToDate/DUnknown, susp_fen only: what a Primary
        // whose fence-peer handler failed shows.
        let word = StateWord(1 | (8 << 4) | (8 << 9) | (6 << 13) | (1 << 22));
        let info = crate::wire::sets::StateInfo::default();
        let v = volume_from_state(1, 0, word, &info);
        assert_eq!(
            v.suspended,
            Suspension {
                user: false,
                no_data: false,
                fencing: true
            }
        );
        assert!(core(vec![v.clone()]).suspended);
        // One frozen volume makes the resource suspended.
        let other = volume(2, Primary, UpToDate, ConnState::WFConnection);
        for s in two(v, other) {
            assert!(s.suspended);
        }
        assert!(!core(vec![volume(1, Primary, UpToDate, Connected)]).suspended);
    }

    #[test]
    fn a_resource_without_volumes_is_nothing_to_promote() {
        let s = core(Vec::new());
        assert_eq!(s.role, VolumeRole::Unknown);
        assert_eq!(s.disk, DiskState::Diskless);
        assert_eq!(s.connection, Connection::StandAlone);
    }
}
