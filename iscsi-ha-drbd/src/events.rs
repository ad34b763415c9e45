//! DRBD's broadcasts on the `events` multicast group, as a pollable source of typed events.
//!
//! 8.4 kernels send `DRBD_EVENT` (a STATE_INFO with the previous and new state word for state
//! changes, the current state for sync progress and helper calls). Kernels with the events2
//! backport also broadcast resource/device/connection/peer-device notifications on the same
//! group; both are decoded.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::client::DrbdError;
use crate::family::{self, FamilyInfo};
use crate::socket::{GenlSocket, RecvError};
use crate::state::{ConnState, Dialect, DrbdDiskState, DrbdRole, StateWord};
use crate::status::{volume_from_state, DrbdVolume, Suspension};
use crate::wire::{decode_datagram, DrbdCommand, DrbdMessage, Frame, SibReason};

/// `NOTIFY_CONTINUES`: more messages of the same group follow.
pub const NOTIFY_CONTINUES: u32 = 0x8000;

/// One event from the kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DrbdEvent {
    /// An 8.4 `DRBD_EVENT`.
    State(StateEvent),
    /// An events2 notification.
    Notification(Notification),
    /// The socket's receive buffer overflowed: events were lost; re-read the status.
    Overrun,
    /// nlctrl announced that the `drbd` family is gone: the module was unloaded. No more
    /// events will come on this subscription; subscribe again once the module is back.
    ModuleUnloaded,
    /// A broadcast that could not be decoded (the stream goes on).
    Malformed {
        /// What was wrong.
        reason: String,
    },
}

/// An 8.4 `DRBD_EVENT`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateEvent {
    /// The kernel's global event sequence number.
    pub seq: u32,
    /// The minor.
    pub minor: u32,
    /// The resource, when the event names it.
    pub resource: Option<String>,
    /// Why it was sent.
    #[serde(serialize_with = "ser_debug")]
    pub reason: SibReason,
    /// State before the change (state changes only).
    pub prev: Option<StateWord>,
    /// State after the change (state changes only).
    pub new: Option<StateWord>,
    /// The volume's state when the event was sent.
    pub volume: Option<DrbdVolume>,
    /// The user-mode helper (helper events).
    pub helper: Option<String>,
    /// The helper's exit code (after it ran).
    pub helper_exit_code: Option<u32>,
}

/// `NOTIFY_*` types of events2 notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotifyKind {
    /// Part of the initial state.
    Exists,
    /// An object was created.
    Create,
    /// An object changed.
    Change,
    /// An object was destroyed.
    Destroy,
    /// A helper is called.
    Call,
    /// A helper answered.
    Response,
    /// DRBD 9: a resource was renamed.
    Rename,
    /// Another value.
    Other(u32),
}

impl NotifyKind {
    fn from_wire(v: u32) -> Self {
        match v & !NOTIFY_CONTINUES {
            0 => NotifyKind::Exists,
            1 => NotifyKind::Create,
            2 => NotifyKind::Change,
            3 => NotifyKind::Destroy,
            4 => NotifyKind::Call,
            5 => NotifyKind::Response,
            6 => NotifyKind::Rename,
            v => NotifyKind::Other(v),
        }
    }
}

/// An events2 notification (resource, device, connection, peer device or helper).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `nlmsg_seq` (drbdsetup orders notifications by it).
    pub seq: u32,
    /// Which object the notification is about.
    #[serde(serialize_with = "ser_debug")]
    pub cmd: DrbdCommand,
    /// The minor (device notifications), or `~0`.
    pub minor: u32,
    /// What happened.
    pub kind: Option<NotifyKind>,
    /// More notifications of this group follow.
    pub continues: bool,
    /// The resource.
    pub resource: Option<String>,
    /// The volume (device and peer-device notifications).
    pub volume: Option<u32>,
    /// The resource's role (resource notifications).
    pub role: Option<DrbdRole>,
    /// I/O suspension (resource notifications).
    pub suspended: Option<Suspension>,
    /// The local disk (device notifications).
    pub disk: Option<DrbdDiskState>,
    /// The connection state (connection notifications).
    pub connection: Option<ConnState>,
    /// The peer's role (connection notifications).
    pub peer_role: Option<DrbdRole>,
    /// The replication state (peer-device notifications).
    pub replication: Option<ConnState>,
    /// The peer's disk (peer-device notifications).
    pub peer_disk: Option<DrbdDiskState>,
    /// The helper's name (helper notifications).
    pub helper: Option<String>,
}

fn ser_debug<T: std::fmt::Debug, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}"))
}

impl Serialize for StateWord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("StateWord", 6)?;
        st.serialize_field("raw", &self.0)?;
        st.serialize_field("role", &self.role())?;
        st.serialize_field("peer", &self.peer())?;
        st.serialize_field("conn", &self.conn())?;
        st.serialize_field("disk", &self.disk())?;
        st.serialize_field("pdsk", &self.pdsk())?;
        st.end()
    }
}

/// Turns one broadcast message into an event (pure; used on captured bytes in tests).
pub fn event_from_message(seq: u32, msg: &DrbdMessage, dialect: Dialect) -> DrbdEvent {
    match msg.cmd {
        DrbdCommand::Event => state_event(seq, msg),
        DrbdCommand::ResourceState
        | DrbdCommand::DeviceState
        | DrbdCommand::ConnectionState
        | DrbdCommand::PeerDeviceState
        | DrbdCommand::Helper
        | DrbdCommand::InitialStateDone
        | DrbdCommand::PathState => DrbdEvent::Notification(notification(seq, msg, dialect)),
        other => DrbdEvent::Malformed {
            reason: format!("unexpected command {other:?} on the events group"),
        },
    }
}

fn state_event(seq: u32, msg: &DrbdMessage) -> DrbdEvent {
    let Some(info) = msg.attrs.state_info.as_ref() else {
        return DrbdEvent::Malformed {
            reason: format!(
                "DRBD_EVENT for minor {} without STATE_INFO",
                msg.header.minor
            ),
        };
    };
    let ctx = msg.attrs.cfg_context.as_ref();
    let volume = info.current_state.map(|w| {
        volume_from_state(
            msg.header.minor,
            ctx.and_then(|c| c.volume).unwrap_or(0),
            StateWord(w),
            info,
        )
    });
    DrbdEvent::State(StateEvent {
        seq,
        minor: msg.header.minor,
        resource: ctx.and_then(|c| c.resource_name.clone()),
        reason: SibReason::from(info.sib_reason.unwrap_or(0)),
        prev: info.prev_state.map(StateWord),
        new: info.new_state.map(StateWord),
        volume,
        helper: info.helper.clone(),
        helper_exit_code: info.helper_exit_code,
    })
}

fn notification(seq: u32, msg: &DrbdMessage, dialect: Dialect) -> Notification {
    let a = &msg.attrs;
    let disk = |v: u32| dialect.disk_state(v);
    let conn = |v: u32| dialect.connection_state(v);
    let repl = |v: u32| dialect.replication_state(v);
    let nh = a.notification_header.as_ref().and_then(|h| h.nh_type);
    Notification {
        seq,
        cmd: msg.cmd,
        minor: msg.header.minor,
        kind: nh.map(NotifyKind::from_wire),
        continues: nh.is_some_and(|t| t & NOTIFY_CONTINUES != 0),
        resource: a.cfg_context.as_ref().and_then(|c| c.resource_name.clone()),
        volume: a.cfg_context.as_ref().and_then(|c| c.volume),
        role: a
            .resource_info
            .as_ref()
            .and_then(|r| r.res_role)
            .map(DrbdRole::from_wire),
        suspended: a.resource_info.as_ref().map(|r| Suspension {
            user: r.res_susp.unwrap_or(false),
            no_data: r.res_susp_nod.unwrap_or(false),
            fencing: r.res_susp_fen.unwrap_or(false),
        }),
        disk: a
            .device_info
            .as_ref()
            .and_then(|d| d.dev_disk_state)
            .map(disk),
        connection: a
            .connection_info
            .as_ref()
            .and_then(|c| c.conn_connection_state)
            .map(conn),
        peer_role: a
            .connection_info
            .as_ref()
            .and_then(|c| c.conn_role)
            .map(DrbdRole::from_wire),
        replication: a
            .peer_device_info
            .as_ref()
            .and_then(|p| p.peer_repl_state)
            .map(repl),
        peer_disk: a
            .peer_device_info
            .as_ref()
            .and_then(|p| p.peer_disk_state)
            .map(disk),
        helper: a.helper.as_ref().and_then(|h| h.helper_name.clone()),
    }
}

/// nlctrl's fixed family id.
const GENL_ID_CTRL: u16 = 16;

/// Decodes one datagram received on the events group (or nlctrl's notify group) into events
/// (pure).
pub fn events_from_datagram(bytes: &[u8], family_id: u16, dialect: Dialect) -> Vec<DrbdEvent> {
    match decode_datagram(bytes, family_id) {
        Ok(frames) => frames
            .into_iter()
            .filter_map(|f| match f {
                Frame::Drbd { seq, message, .. } => {
                    Some(event_from_message(seq, &message, dialect))
                }
                Frame::Other {
                    message_type: GENL_ID_CTRL,
                    bytes,
                    ..
                } => family::family_removed(&bytes)
                    .filter(|(id, name)| *id == family_id || name == family::FAMILY_NAME)
                    .map(|_| DrbdEvent::ModuleUnloaded),
                _ => None,
            })
            .collect(),
        Err(e) => vec![DrbdEvent::Malformed {
            reason: e.to_string(),
        }],
    }
}

/// A subscription to the `events` group: poll its fd for readability, then call
/// [`DrbdEvents::read`].
#[derive(Debug)]
pub struct DrbdEvents {
    sock: GenlSocket,
    family: FamilyInfo,
    dialect: Dialect,
}

impl DrbdEvents {
    /// Resolves the family and joins its `events` group, on a non-blocking socket.
    pub fn subscribe() -> Result<Self, DrbdError> {
        let io_err = |e: io::Error| DrbdError::Recv {
            op: "subscribe to drbd events",
            source: RecvError::Io(e),
        };
        let mut sock = GenlSocket::open().map_err(io_err)?;
        let family = family::resolve(&mut sock, Duration::from_secs(5))?;
        let dialect = family.dialect()?;
        let group = family.events_group.ok_or_else(|| DrbdError::Malformed {
            op: "subscribe to drbd events",
            reason: "the drbd family has no \"events\" multicast group".to_string(),
        })?;
        // nlctrl's notify group tells when the module goes away (drbdsetup does the same).
        // Resolved before joining anything, so no broadcast can come between request and reply.
        let nlctrl = family::resolve_named(&mut sock, "nlctrl", Duration::from_secs(5))?;
        sock.join_group(group).map_err(io_err)?;
        if let Some((_, notify)) = nlctrl
            .groups
            .iter()
            .find(|(name, _)| name == family::NLCTRL_NOTIFY_GROUP)
        {
            sock.join_group(*notify).map_err(io_err)?;
        }
        sock.set_non_blocking(true).map_err(io_err)?;
        Ok(DrbdEvents {
            sock,
            family,
            dialect,
        })
    }

    /// The dialect of the events.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Reads every event queued now; an empty vector when none is.
    pub fn read(&mut self) -> Result<Vec<DrbdEvent>, DrbdError> {
        let mut out = Vec::new();
        loop {
            match self.sock.recv_now() {
                Ok(bytes) => out.extend(events_from_datagram(bytes, self.family.id, self.dialect)),
                Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(RecvError::Io(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    out.push(DrbdEvent::Overrun)
                }
                Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(RecvError::Truncated(n)) => out.push(DrbdEvent::Malformed {
                    reason: format!("event datagram of {n} bytes truncated"),
                }),
                Err(source) => {
                    return Err(DrbdError::Recv {
                        op: "read drbd events",
                        source,
                    })
                }
            }
        }
    }

    /// Waits up to `timeout` for events and reads them.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<DrbdEvent>, DrbdError> {
        match self.sock.recv(timeout) {
            Ok(bytes) => {
                let mut out = events_from_datagram(bytes, self.family.id, self.dialect);
                out.extend(self.read()?);
                Ok(out)
            }
            Err(RecvError::Timeout(_)) => Ok(Vec::new()),
            Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.read(),
            Err(RecvError::Io(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                let mut out = vec![DrbdEvent::Overrun];
                out.extend(self.read()?);
                Ok(out)
            }
            Err(source) => Err(DrbdError::Recv {
                op: "wait for drbd events",
                source,
            }),
        }
    }
}

impl AsFd for DrbdEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
