//! Command numbers (`genlmsghdr.cmd`) and top-level attribute numbers of the `drbd` family.
//!
//! Operations and notifications share one number space. Numbers are from the kernel's
//! `include/linux/drbd_genl.h` (8.4) and LINBIT's drbd-headers (DRBD 9).

/// A command or notification of the `drbd` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrbdCommand {
    /// 1: 8.4 state-change / status broadcast on the `events` group.
    Event,
    /// 2: 8.4 status of one minor (doit) or of all/one resource (dump).
    GetStatus,
    /// 14: become Primary.
    Primary,
    /// 15: become Secondary.
    Secondary,
    /// 10: connect to the peer (8.4: CFG_CONTEXT with both addresses, NET_CONF).
    Connect,
    /// 11: disconnect from the peer.
    Disconnect,
    /// 24: resume I/O suspended by the user, by no-data or by fencing (8.4: per minor; the
    /// kernel first starts a new current UUID if the freeze left one pending).
    ResumeIo,
    /// 30: dump of resources (events2 era).
    GetResources,
    /// 31: dump of devices.
    GetDevices,
    /// 32: dump of connections.
    GetConnections,
    /// 33: dump of peer devices.
    GetPeerDevices,
    /// 34: events2 notification about a resource.
    ResourceState,
    /// 35: events2 notification about a device.
    DeviceState,
    /// 36: events2 notification about a connection.
    ConnectionState,
    /// 37: events2 notification about a peer device.
    PeerDeviceState,
    /// 38: dump the initial state as events2 "exists" notifications.
    GetInitialState,
    /// 40: events2 notification about a user-mode helper call.
    Helper,
    /// 41: end of the events2 initial state.
    InitialStateDone,
    /// 48: DRBD 9 path state notification.
    PathState,
    /// Any other number.
    Other(u8),
}

impl DrbdCommand {
    /// The wire number.
    pub fn number(self) -> u8 {
        match self {
            DrbdCommand::Event => 1,
            DrbdCommand::GetStatus => 2,
            DrbdCommand::Connect => 10,
            DrbdCommand::Disconnect => 11,
            DrbdCommand::Primary => 14,
            DrbdCommand::Secondary => 15,
            DrbdCommand::ResumeIo => 24,
            DrbdCommand::GetResources => 30,
            DrbdCommand::GetDevices => 31,
            DrbdCommand::GetConnections => 32,
            DrbdCommand::GetPeerDevices => 33,
            DrbdCommand::ResourceState => 34,
            DrbdCommand::DeviceState => 35,
            DrbdCommand::ConnectionState => 36,
            DrbdCommand::PeerDeviceState => 37,
            DrbdCommand::GetInitialState => 38,
            DrbdCommand::Helper => 40,
            DrbdCommand::InitialStateDone => 41,
            DrbdCommand::PathState => 48,
            DrbdCommand::Other(n) => n,
        }
    }
}

impl From<u8> for DrbdCommand {
    fn from(n: u8) -> Self {
        match n {
            1 => DrbdCommand::Event,
            2 => DrbdCommand::GetStatus,
            10 => DrbdCommand::Connect,
            11 => DrbdCommand::Disconnect,
            14 => DrbdCommand::Primary,
            15 => DrbdCommand::Secondary,
            24 => DrbdCommand::ResumeIo,
            30 => DrbdCommand::GetResources,
            31 => DrbdCommand::GetDevices,
            32 => DrbdCommand::GetConnections,
            33 => DrbdCommand::GetPeerDevices,
            34 => DrbdCommand::ResourceState,
            35 => DrbdCommand::DeviceState,
            36 => DrbdCommand::ConnectionState,
            37 => DrbdCommand::PeerDeviceState,
            38 => DrbdCommand::GetInitialState,
            40 => DrbdCommand::Helper,
            41 => DrbdCommand::InitialStateDone,
            48 => DrbdCommand::PathState,
            n => DrbdCommand::Other(n),
        }
    }
}

impl From<DrbdCommand> for u8 {
    fn from(c: DrbdCommand) -> Self {
        c.number()
    }
}

/// Top-level attribute numbers (`DRBD_NLA_*`); every one is a nested set.
pub mod tla {
    /// `DRBD_NLA_CFG_REPLY`.
    pub const CFG_REPLY: u16 = 1;
    /// `DRBD_NLA_CFG_CONTEXT`.
    pub const CFG_CONTEXT: u16 = 2;
    /// `DRBD_NLA_DISK_CONF`.
    pub const DISK_CONF: u16 = 3;
    /// `DRBD_NLA_RESOURCE_OPTS`.
    pub const RESOURCE_OPTS: u16 = 4;
    /// `DRBD_NLA_NET_CONF`.
    pub const NET_CONF: u16 = 5;
    /// `DRBD_NLA_SET_ROLE_PARMS`.
    pub const SET_ROLE_PARMS: u16 = 6;
    /// `DRBD_NLA_STATE_INFO` (8.4 only).
    pub const STATE_INFO: u16 = 8;
    /// `DRBD_NLA_DISCONNECT_PARMS`.
    pub const DISCONNECT_PARMS: u16 = 12;
    /// `DRBD_NLA_RESOURCE_INFO`.
    pub const RESOURCE_INFO: u16 = 15;
    /// `DRBD_NLA_DEVICE_INFO`.
    pub const DEVICE_INFO: u16 = 16;
    /// `DRBD_NLA_CONNECTION_INFO`.
    pub const CONNECTION_INFO: u16 = 17;
    /// `DRBD_NLA_PEER_DEVICE_INFO`.
    pub const PEER_DEVICE_INFO: u16 = 18;
    /// `DRBD_NLA_DEVICE_STATISTICS`.
    pub const DEVICE_STATISTICS: u16 = 20;
    /// `DRBD_NLA_PEER_DEVICE_STATISTICS`.
    pub const PEER_DEVICE_STATISTICS: u16 = 22;
    /// `DRBD_NLA_NOTIFICATION_HEADER`.
    pub const NOTIFICATION_HEADER: u16 = 23;
    /// `DRBD_NLA_HELPER`.
    pub const HELPER: u16 = 24;
}
