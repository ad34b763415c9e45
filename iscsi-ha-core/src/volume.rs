//! What a replicated volume reports, in terms that do not depend on the DRBD version.

use crate::resource::ResourceName;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica's role, here or on the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VolumeRole {
    /// Writable and exported by this replica.
    Primary,
    /// Receiving replication, not writable.
    Secondary,
    /// Not known (peer unreachable, or not reported).
    Unknown,
}

/// The replication link's state, reduced to what the planner needs; the adapter's own word
/// for it stays in [`VolumeStatus::connection_detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connection {
    /// Not trying to connect (DRBD: StandAlone), for example after a split brain.
    StandAlone,
    /// Trying to reach the peer, or tearing a connection down.
    Connecting,
    /// Connected, nothing to resynchronise.
    Connected,
    /// Connected and sending a resync to the peer.
    SyncSource,
    /// Connected and receiving a resync from the peer.
    SyncTarget,
    /// Connected in another state (verify, paused sync, ahead/behind, ...).
    OtherConnected,
}

impl Connection {
    /// Whether the peer is reachable over the replication link now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            Connection::Connected
                | Connection::SyncSource
                | Connection::SyncTarget
                | Connection::OtherConnected
        )
    }
}

/// A replica's disk state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DiskState {
    /// No local disk attached.
    Diskless,
    /// Being attached.
    Attaching,
    /// I/O errors made the disk unusable.
    Failed,
    /// Negotiating with the peer.
    Negotiating,
    /// Not consistent (being resynchronised or never synchronised).
    Inconsistent,
    /// Consistent but known to be older than the peer's.
    Outdated,
    /// Not known (the peer's disk, while disconnected).
    Unknown,
    /// Consistent, but whether it is the newest is not known.
    Consistent,
    /// Consistent and current.
    UpToDate,
}

/// Progress of a running resynchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// Percentage done, 0.0..=100.0.
    pub percent_done: f32,
    /// Data still out of sync, in KiB.
    pub out_of_sync_kib: u64,
}

/// The status of one replicated resource, as an adapter observed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeStatus {
    /// The resource.
    pub name: ResourceName,
    /// This host's role.
    pub role: VolumeRole,
    /// The peer's role as this host last knew it.
    pub peer_role: VolumeRole,
    /// The replication link.
    pub connection: Connection,
    /// The adapter's own word for the link state (e.g. DRBD's `WFConnection`).
    pub connection_detail: String,
    /// This host's disk.
    pub disk: DiskState,
    /// The peer's disk.
    pub peer_disk: DiskState,
    /// Running resynchronisation, if any.
    pub sync: Option<SyncProgress>,
    /// I/O is suspended on this replica.
    pub suspended: bool,
}

impl VolumeStatus {
    /// Whether a promotion here would make a second Primary.
    pub fn peer_is_primary(&self) -> bool {
        self.peer_role == VolumeRole::Primary
    }
}

impl fmt::Display for VolumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VolumeRole::Primary => "Primary",
            VolumeRole::Secondary => "Secondary",
            VolumeRole::Unknown => "Unknown",
        })
    }
}

impl fmt::Display for DiskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One side of a split brain, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBrainSide {
    /// Its role.
    pub role: VolumeRole,
    /// Its disk.
    pub disk: DiskState,
    /// Data it holds that the other side lacks, in KiB, when known.
    pub out_of_sync_kib: Option<u64>,
    /// Its current data-generation identifier, when known (hex).
    pub current_uuid: Option<String>,
}

/// A split brain on one resource: both sides changed the data while disconnected, and the
/// replication layer refuses to resynchronise until an operator picks the survivor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBrain {
    /// How it was recognised (the replication layer's split-brain handler, its data
    /// generation identifiers, ...).
    pub evidence: String,
    /// This host's side.
    pub local: SplitBrainSide,
    /// The peer's side as last known.
    pub peer: Option<SplitBrainSide>,
}
