//! Finding the `drbd` generic netlink family through nlctrl: its id, version (the dialect),
//! header size, the `events` multicast group and the commands the kernel offers.

use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs, OpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;

use crate::socket::{GenlSocket, RecvError};
use crate::state::Dialect;
use crate::wire::{DrbdCommand, DRBD_HEADER_LEN};

/// The family's name.
pub const FAMILY_NAME: &str = "drbd";
/// The multicast group DRBD broadcasts on.
pub const EVENTS_GROUP: &str = "events";
/// nlctrl's own multicast group, where it announces families coming and going.
pub const NLCTRL_NOTIFY_GROUP: &str = "notify";

/// What nlctrl says about the `drbd` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyInfo {
    /// The dynamic family id (`nlmsg_type` of its messages).
    pub id: u16,
    /// The family version: 1 for 8.4, 2 for DRBD 9.
    pub version: u32,
    /// The family header size (8 for both dialects).
    pub hdrsize: u32,
    /// The id of the `events` multicast group, if registered.
    pub events_group: Option<u32>,
    /// Every multicast group of the family, by name.
    pub groups: Vec<(String, u32)>,
    /// The command numbers the kernel accepts (doit or dumpit).
    pub ops: Vec<u32>,
}

/// Why the family could not be resolved or used.
#[derive(Debug, thiserror::Error)]
pub enum FamilyError {
    /// nlctrl knows no `drbd` family: the module is not loaded.
    #[error("the drbd kernel module is not loaded (no \"drbd\" generic netlink family)")]
    ModuleNotLoaded,
    /// The family has a version this adapter does not know.
    #[error("drbd generic netlink family version {0} is not known (1 = 8.4, 2 = DRBD 9)")]
    UnknownVersion(u32),
    /// The family header size is not DRBD's 8 bytes.
    #[error("drbd family header size is {0}, expected 8")]
    BadHeaderSize(u32),
    /// nlctrl's reply could not be understood.
    #[error("malformed nlctrl reply: {0}")]
    Malformed(String),
    /// nlctrl answered with an error other than "no such family".
    #[error("nlctrl refused: errno {0}")]
    Errno(i32),
    /// The socket failed or timed out.
    #[error(transparent)]
    Recv(#[from] RecvError),
}

impl FamilyInfo {
    /// The dialect the kernel speaks.
    pub fn dialect(&self) -> Result<Dialect, FamilyError> {
        let d = Dialect::from_family_version(self.version)
            .ok_or(FamilyError::UnknownVersion(self.version))?;
        if self.hdrsize as usize != DRBD_HEADER_LEN {
            return Err(FamilyError::BadHeaderSize(self.hdrsize));
        }
        Ok(d)
    }

    /// Whether the kernel offers a command (the events2 commands 30-41 came later in 8.4).
    pub fn offers(&self, cmd: DrbdCommand) -> bool {
        self.ops.contains(&u32::from(cmd.number()))
    }
}

/// Encodes `CTRL_CMD_GETFAMILY name=drbd`.
pub fn getfamily_request(seq: u32) -> Vec<u8> {
    getfamily_request_for(FAMILY_NAME, seq)
}

/// Encodes `CTRL_CMD_GETFAMILY` for any family (`nlctrl` itself, for its notify group).
pub fn getfamily_request_for(name: &str, seq: u32) -> Vec<u8> {
    let genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Reads nlctrl's reply to [`getfamily_request`].
pub fn parse_getfamily_reply(bytes: &[u8]) -> Result<FamilyInfo, FamilyError> {
    let msg = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(bytes)
        .map_err(|e| FamilyError::Malformed(e.to_string()))?;
    let ctrl = match msg.payload {
        NetlinkPayload::InnerMessage(genl) => genl.payload,
        NetlinkPayload::Error(err) => {
            let code = err.raw_code();
            return Err(if code == -libc::ENOENT {
                FamilyError::ModuleNotLoaded
            } else {
                FamilyError::Errno(code)
            });
        }
        other => {
            return Err(FamilyError::Malformed(format!(
                "unexpected message type {}",
                other.message_type()
            )))
        }
    };
    let mut id = None;
    let mut version = None;
    let mut hdrsize = 0;
    let mut events_group = None;
    let mut all_groups = Vec::new();
    let mut ops = Vec::new();
    for nla in ctrl.nlas {
        match nla {
            GenlCtrlAttrs::FamilyId(i) => id = Some(i),
            GenlCtrlAttrs::Version(v) => version = Some(v),
            GenlCtrlAttrs::HdrSize(h) => hdrsize = h,
            GenlCtrlAttrs::McastGroups(groups) => {
                for group in groups {
                    let name = group.iter().find_map(|a| match a {
                        McastGrpAttrs::Name(n) => Some(n.as_str()),
                        _ => None,
                    });
                    let gid = group.iter().find_map(|a| match a {
                        McastGrpAttrs::Id(i) => Some(*i),
                        _ => None,
                    });
                    if name == Some(EVENTS_GROUP) {
                        events_group = gid;
                    }
                    if let (Some(name), Some(gid)) = (name, gid) {
                        all_groups.push((name.to_string(), gid));
                    }
                }
            }
            GenlCtrlAttrs::Ops(list) => {
                ops.extend(list.iter().filter_map(|op| {
                    op.iter().find_map(|a| match a {
                        OpAttrs::Id(i) => Some(*i),
                        _ => None,
                    })
                }));
            }
            _ => {}
        }
    }
    Ok(FamilyInfo {
        id: id.ok_or_else(|| FamilyError::Malformed("no family id".into()))?,
        version: version.ok_or_else(|| FamilyError::Malformed("no family version".into()))?,
        hdrsize,
        events_group,
        groups: all_groups,
        ops,
    })
}

/// What an nlctrl broadcast says about the families, if it is about one going away.
pub fn family_removed(bytes: &[u8]) -> Option<(u16, String)> {
    let msg = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(bytes).ok()?;
    let NetlinkPayload::InnerMessage(genl) = msg.payload else {
        return None;
    };
    if genl.payload.cmd != GenlCtrlCmd::DelFamily {
        return None;
    }
    let id = genl.payload.nlas.iter().find_map(|a| match a {
        GenlCtrlAttrs::FamilyId(i) => Some(*i),
        _ => None,
    })?;
    let name = genl
        .payload
        .nlas
        .iter()
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Some((id, name))
}

/// Asks nlctrl about the `drbd` family.
pub fn resolve(sock: &mut GenlSocket, timeout: Duration) -> Result<FamilyInfo, FamilyError> {
    resolve_named(sock, FAMILY_NAME, timeout)
}

/// Asks nlctrl about a family by name.
pub fn resolve_named(
    sock: &mut GenlSocket,
    name: &str,
    timeout: Duration,
) -> Result<FamilyInfo, FamilyError> {
    let seq = sock.next_seq();
    sock.send(&getfamily_request_for(name, seq))
        .map_err(|e| FamilyError::Recv(RecvError::Io(e)))?;
    let reply = sock.recv(timeout)?;
    parse_getfamily_reply(reply)
}
