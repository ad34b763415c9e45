//! DRBD's state enums, with a decode table per dialect (DRBD 9 renumbers disk states), the
//! 8.4 state word, and the mapping onto the core's version-free terms.

use std::fmt;
use std::str::FromStr;

use iscsi_ha_core::volume::{Connection, DiskState, VolumeRole};
use serde::{Serialize, Serializer};

/// Which generic netlink dialect the kernel speaks (nlctrl's family version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Dialect {
    /// Family version 1: DRBD 8.4 (in-tree module), GET_STATUS and DRBD_EVENT.
    V84,
    /// Family version 2: DRBD 9, events2 and resource-scoped roles.
    V9,
}

impl Dialect {
    /// The dialect of a family version, if known.
    pub fn from_family_version(version: u32) -> Option<Self> {
        match version {
            1 => Some(Dialect::V84),
            2 => Some(Dialect::V9),
            _ => None,
        }
    }

    /// The genlmsghdr version to send.
    pub fn family_version(self) -> u8 {
        match self {
            Dialect::V84 => 1,
            Dialect::V9 => 2,
        }
    }

    /// A disk state as this dialect numbers it (DRBD 9 renumbered them).
    pub fn disk_state(self, v: u32) -> DrbdDiskState {
        match self {
            Dialect::V84 => DrbdDiskState::from_wire_84(v),
            Dialect::V9 => DrbdDiskState::from_wire_9(v),
        }
    }

    /// A connection object's state in a notification or dump.
    pub fn connection_state(self, v: u32) -> ConnState {
        match self {
            Dialect::V84 => ConnState::from_wire_84_connection(v),
            Dialect::V9 => ConnState::from_wire_9_conn(v),
        }
    }

    /// A peer device's replication state in a notification or dump.
    pub fn replication_state(self, v: u32) -> ConnState {
        match self {
            Dialect::V84 => ConnState::from_wire_84(v),
            Dialect::V9 => ConnState::from_wire_9_repl(v),
        }
    }
}

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this adapter has no name for.
            Other(u32),
        }

        impl $name {
            /// DRBD's own word for the value (as drbdsetup and /proc/drbd print it).
            pub fn name(self) -> String {
                match self {
                    $( $name::$variant => $text.to_string(), )*
                    $name::Other(v) => format!("{}({v})", stringify!($name)),
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $( $text => Ok($name::$variant), )*
                    _ => Err(UnknownName { kind: stringify!($name), text: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.name())
            }
        }
    };
}

/// A word that names no known value of a DRBD enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a DRBD {kind}")]
pub struct UnknownName {
    /// The enum.
    pub kind: &'static str,
    /// The word.
    pub text: String,
}

named_enum! {
    /// A node's role.
    pub enum DrbdRole {
        /// Role not known (peer unreachable).
        Unknown = "Unknown",
        /// Primary.
        Primary = "Primary",
        /// Secondary.
        Secondary = "Secondary",
    }
}

named_enum! {
    /// Connection / replication state, in the union of both dialects' names.
    pub enum ConnState {
        /// Not trying to connect.
        StandAlone = "StandAlone",
        /// Tearing the connection down.
        Disconnecting = "Disconnecting",
        /// Between connection attempts.
        Unconnected = "Unconnected",
        /// Timed out.
        Timeout = "Timeout",
        /// The socket broke.
        BrokenPipe = "BrokenPipe",
        /// Network failure.
        NetworkFailure = "NetworkFailure",
        /// Protocol error.
        ProtocolError = "ProtocolError",
        /// Tearing down.
        TearDown = "TearDown",
        /// 8.4: waiting for the peer.
        WFConnection = "WFConnection",
        /// 8.4: waiting for the peer's parameters.
        WFReportParams = "WFReportParams",
        /// Connected.
        Connected = "Connected",
        /// Starting a resync as source.
        StartingSyncS = "StartingSyncS",
        /// Starting a resync as target.
        StartingSyncT = "StartingSyncT",
        /// Waiting for the bitmap (source).
        WFBitMapS = "WFBitMapS",
        /// Waiting for the bitmap (target).
        WFBitMapT = "WFBitMapT",
        /// Waiting for the sync UUID.
        WFSyncUUID = "WFSyncUUID",
        /// Resync source.
        SyncSource = "SyncSource",
        /// Resync target.
        SyncTarget = "SyncTarget",
        /// Online verify source.
        VerifyS = "VerifyS",
        /// Online verify target.
        VerifyT = "VerifyT",
        /// Paused resync (source).
        PausedSyncS = "PausedSyncS",
        /// Paused resync (target).
        PausedSyncT = "PausedSyncT",
        /// Congestion: ahead of the peer.
        Ahead = "Ahead",
        /// Congestion: behind the peer.
        Behind = "Behind",
        /// DRBD 9 connection state: trying to connect.
        Connecting = "Connecting",
        /// DRBD 9 replication state: off.
        Off = "Off",
        /// DRBD 9 replication state: established.
        Established = "Established",
        /// /proc/drbd: a minor without configuration.
        Unconfigured = "Unconfigured",
    }
}

named_enum! {
    /// Disk state, in the union of both dialects' names.
    pub enum DrbdDiskState {
        /// No disk.
        Diskless = "Diskless",
        /// Attaching.
        Attaching = "Attaching",
        /// DRBD 9: detaching.
        Detaching = "Detaching",
        /// Failed by I/O errors.
        Failed = "Failed",
        /// Negotiating with the peer.
        Negotiating = "Negotiating",
        /// Inconsistent.
        Inconsistent = "Inconsistent",
        /// Outdated.
        Outdated = "Outdated",
        /// Peer disk not known.
        DUnknown = "DUnknown",
        /// Consistent.
        Consistent = "Consistent",
        /// Up to date.
        UpToDate = "UpToDate",
    }
}

const ROLES: [DrbdRole; 3] = [DrbdRole::Unknown, DrbdRole::Primary, DrbdRole::Secondary];

const CONNS_84: [ConnState; 24] = [
    ConnState::StandAlone,
    ConnState::Disconnecting,
    ConnState::Unconnected,
    ConnState::Timeout,
    ConnState::BrokenPipe,
    ConnState::NetworkFailure,
    ConnState::ProtocolError,
    ConnState::TearDown,
    ConnState::WFConnection,
    ConnState::WFReportParams,
    ConnState::Connected,
    ConnState::StartingSyncS,
    ConnState::StartingSyncT,
    ConnState::WFBitMapS,
    ConnState::WFBitMapT,
    ConnState::WFSyncUUID,
    ConnState::SyncSource,
    ConnState::SyncTarget,
    ConnState::VerifyS,
    ConnState::VerifyT,
    ConnState::PausedSyncS,
    ConnState::PausedSyncT,
    ConnState::Ahead,
    ConnState::Behind,
];

const DISKS_84: [DrbdDiskState; 9] = [
    DrbdDiskState::Diskless,
    DrbdDiskState::Attaching,
    DrbdDiskState::Failed,
    DrbdDiskState::Negotiating,
    DrbdDiskState::Inconsistent,
    DrbdDiskState::Outdated,
    DrbdDiskState::DUnknown,
    DrbdDiskState::Consistent,
    DrbdDiskState::UpToDate,
];

const DISKS_9: [DrbdDiskState; 10] = [
    DrbdDiskState::Diskless,
    DrbdDiskState::Attaching,
    DrbdDiskState::Detaching,
    DrbdDiskState::Failed,
    DrbdDiskState::Negotiating,
    DrbdDiskState::Inconsistent,
    DrbdDiskState::Outdated,
    DrbdDiskState::DUnknown,
    DrbdDiskState::Consistent,
    DrbdDiskState::UpToDate,
];

fn lookup<T: Copy>(table: &[T], v: u32, other: fn(u32) -> T) -> T {
    usize::try_from(v)
        .ok()
        .and_then(|i| table.get(i).copied())
        .unwrap_or_else(|| other(v))
}

impl DrbdRole {
    /// Decodes a role number (the same in both dialects).
    pub fn from_wire(v: u32) -> Self {
        lookup(&ROLES, v, DrbdRole::Other)
    }
}

impl ConnState {
    /// Decodes a connection state number of the 8.4 `enum drbd_conns`.
    pub fn from_wire_84(v: u32) -> Self {
        lookup(&CONNS_84, v, ConnState::Other)
    }

    /// Decodes the connection-level state of an 8.4 events2 CONNECTION_INFO. 8.4's connection
    /// object stays at 9 (`C_WF_REPORT_PARAMS`) once the handshake is done, while each device
    /// moves on to `C_CONNECTED`; drbdsetup-84 prints it as "Connected" (seen in the lab
    /// captures, fixtures/drbd/genl/status-all-events2).
    pub fn from_wire_84_connection(v: u32) -> Self {
        match v {
            9 => ConnState::Connected,
            v => Self::from_wire_84(v),
        }
    }

    /// Decodes a DRBD 9 `enum drbd_conn_state` number (0-7 as 8.4, 8 Connecting, 9 Connected).
    pub fn from_wire_9_conn(v: u32) -> Self {
        match v {
            0..=7 => Self::from_wire_84(v),
            8 => ConnState::Connecting,
            9 => ConnState::Connected,
            v => ConnState::Other(v),
        }
    }

    /// Decodes a DRBD 9 `enum drbd_repl_state` number (9 Off, 10 Established, 11-23 as 8.4).
    pub fn from_wire_9_repl(v: u32) -> Self {
        match v {
            9 => ConnState::Off,
            10 => ConnState::Established,
            11..=23 => Self::from_wire_84(v),
            v => ConnState::Other(v),
        }
    }

    /// Reduces the state to the core's terms.
    pub fn to_core(self) -> Connection {
        match self {
            ConnState::StandAlone | ConnState::Unconfigured => Connection::StandAlone,
            ConnState::Connected | ConnState::Established => Connection::Connected,
            ConnState::SyncSource => Connection::SyncSource,
            ConnState::SyncTarget => Connection::SyncTarget,
            ConnState::StartingSyncS
            | ConnState::StartingSyncT
            | ConnState::WFBitMapS
            | ConnState::WFBitMapT
            | ConnState::WFSyncUUID
            | ConnState::VerifyS
            | ConnState::VerifyT
            | ConnState::PausedSyncS
            | ConnState::PausedSyncT
            | ConnState::Ahead
            | ConnState::Behind => Connection::OtherConnected,
            ConnState::Disconnecting
            | ConnState::Unconnected
            | ConnState::Timeout
            | ConnState::BrokenPipe
            | ConnState::NetworkFailure
            | ConnState::ProtocolError
            | ConnState::TearDown
            | ConnState::WFConnection
            | ConnState::WFReportParams
            | ConnState::Connecting
            | ConnState::Off
            | ConnState::Other(_) => Connection::Connecting,
        }
    }

    /// Whether a resync or verify is running (progress is meaningful).
    pub fn is_resyncing(self) -> bool {
        matches!(
            self,
            ConnState::SyncSource
                | ConnState::SyncTarget
                | ConnState::VerifyS
                | ConnState::VerifyT
                | ConnState::PausedSyncS
                | ConnState::PausedSyncT
        )
    }
}

impl DrbdDiskState {
    /// Decodes an 8.4 disk state number.
    pub fn from_wire_84(v: u32) -> Self {
        lookup(&DISKS_84, v, DrbdDiskState::Other)
    }

    /// Decodes a DRBD 9 disk state number (renumbered: 2 Detaching, 9 UpToDate).
    pub fn from_wire_9(v: u32) -> Self {
        lookup(&DISKS_9, v, DrbdDiskState::Other)
    }

    /// Reduces the state to the core's terms.
    pub fn to_core(self) -> DiskState {
        match self {
            DrbdDiskState::Diskless => DiskState::Diskless,
            DrbdDiskState::Attaching => DiskState::Attaching,
            DrbdDiskState::Detaching | DrbdDiskState::Failed => DiskState::Failed,
            DrbdDiskState::Negotiating => DiskState::Negotiating,
            DrbdDiskState::Inconsistent => DiskState::Inconsistent,
            DrbdDiskState::Outdated => DiskState::Outdated,
            DrbdDiskState::DUnknown | DrbdDiskState::Other(_) => DiskState::Unknown,
            DrbdDiskState::Consistent => DiskState::Consistent,
            DrbdDiskState::UpToDate => DiskState::UpToDate,
        }
    }
}

impl DrbdRole {
    /// Reduces the role to the core's terms.
    pub fn to_core(self) -> VolumeRole {
        match self {
            DrbdRole::Primary => VolumeRole::Primary,
            DrbdRole::Secondary => VolumeRole::Secondary,
            DrbdRole::Unknown | DrbdRole::Other(_) => VolumeRole::Unknown,
        }
    }
}

/// The 8.4 state word (`union drbd_state`), as sent in STATE_INFO's current/prev/new_state.
/// Bit positions are the same on either endianness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateWord(pub u32);

impl StateWord {
    fn bits(self, shift: u32, width: u32) -> u32 {
        (self.0 >> shift) & ((1 << width) - 1)
    }

    /// Bits 0-1: this node's role.
    pub fn role(self) -> DrbdRole {
        DrbdRole::from_wire(self.bits(0, 2))
    }
    /// Bits 2-3: the peer's role.
    pub fn peer(self) -> DrbdRole {
        DrbdRole::from_wire(self.bits(2, 2))
    }
    /// Bits 4-8: connection state.
    pub fn conn(self) -> ConnState {
        ConnState::from_wire_84(self.bits(4, 5))
    }
    /// Bits 9-12: local disk.
    pub fn disk(self) -> DrbdDiskState {
        DrbdDiskState::from_wire_84(self.bits(9, 4))
    }
    /// Bits 13-16: peer disk.
    pub fn pdsk(self) -> DrbdDiskState {
        DrbdDiskState::from_wire_84(self.bits(13, 4))
    }
    /// Bit 17: I/O suspended by the user.
    pub fn susp(self) -> bool {
        self.bits(17, 1) != 0
    }
    /// Bit 18: resync paused waiting for another resync (`aftr_isp`).
    pub fn aftr_isp(self) -> bool {
        self.bits(18, 1) != 0
    }
    /// Bit 19: resync paused by the peer.
    pub fn peer_isp(self) -> bool {
        self.bits(19, 1) != 0
    }
    /// Bit 20: resync paused by the user.
    pub fn user_isp(self) -> bool {
        self.bits(20, 1) != 0
    }
    /// Bit 21: I/O suspended for lack of data.
    pub fn susp_nod(self) -> bool {
        self.bits(21, 1) != 0
    }
    /// Bit 22: I/O suspended by fencing.
    pub fn susp_fen(self) -> bool {
        self.bits(22, 1) != 0
    }

    /// Builds a state word from its fields (for tests and fixtures); numbers out of a field's
    /// width are truncated to it.
    pub fn compose(role: u32, peer: u32, conn: u32, disk: u32, pdsk: u32) -> Self {
        StateWord(
            (role & 3) | (peer & 3) << 2 | (conn & 31) << 4 | (disk & 15) << 9 | (pdsk & 15) << 13,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_fields() {
        // Primary/Secondary, Connected(10), UpToDate(8)/UpToDate(8), susp_fen.
        let w = StateWord(StateWord::compose(1, 2, 10, 8, 8).0 | 1 << 22);
        assert_eq!(w.role(), DrbdRole::Primary);
        assert_eq!(w.peer(), DrbdRole::Secondary);
        assert_eq!(w.conn(), ConnState::Connected);
        assert_eq!(w.disk(), DrbdDiskState::UpToDate);
        assert_eq!(w.pdsk(), DrbdDiskState::UpToDate);
        assert!(w.susp_fen() && !w.susp() && !w.susp_nod());
    }

    #[test]
    fn disk_states_are_renumbered_in_drbd9() {
        assert_eq!(DrbdDiskState::from_wire_84(8), DrbdDiskState::UpToDate);
        assert_eq!(DrbdDiskState::from_wire_9(8), DrbdDiskState::Consistent);
        assert_eq!(DrbdDiskState::from_wire_9(9), DrbdDiskState::UpToDate);
        assert_eq!(DrbdDiskState::from_wire_9(2), DrbdDiskState::Detaching);
        assert_eq!(DrbdDiskState::from_wire_84(2), DrbdDiskState::Failed);
        assert_eq!(DrbdDiskState::from_wire_84(77), DrbdDiskState::Other(77));
    }

    #[test]
    fn drbd9_connection_and_replication_states() {
        assert_eq!(ConnState::from_wire_9_conn(8), ConnState::Connecting);
        assert_eq!(ConnState::from_wire_84(8), ConnState::WFConnection);
        assert_eq!(ConnState::from_wire_9_repl(10), ConnState::Established);
        assert_eq!(ConnState::from_wire_9_repl(16), ConnState::SyncSource);
    }

    #[test]
    fn names_round_trip() {
        for c in CONNS_84 {
            assert_eq!(c.name().parse::<ConnState>(), Ok(c));
        }
        for d in DISKS_9 {
            assert_eq!(d.name().parse::<DrbdDiskState>(), Ok(d));
        }
        assert!("Bogus".parse::<DrbdRole>().is_err());
    }

    #[test]
    fn core_mapping() {
        assert_eq!(ConnState::WFConnection.to_core(), Connection::Connecting);
        assert_eq!(ConnState::StandAlone.to_core(), Connection::StandAlone);
        assert_eq!(ConnState::PausedSyncT.to_core(), Connection::OtherConnected);
        assert_eq!(DrbdDiskState::DUnknown.to_core(), DiskState::Unknown);
        assert_eq!(DrbdRole::Unknown.to_core(), VolumeRole::Unknown);
    }
}
