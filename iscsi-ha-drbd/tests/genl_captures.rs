//! The decoder on real bytes: drbdsetup-84 talking to the in-tree DRBD 8.4 module in the lab
//! (fixtures/drbd/genl, captured with nlmon; see its README). Every message decodes, every
//! decoded message survives an encode/decode round trip, and each scenario reads as
//! drbdsetup's own output (the `.txt` beside it) says.

use std::path::PathBuf;

use iscsi_ha_core::ports::VolumeError;
use iscsi_ha_drbd::adapter::volume_error;
use iscsi_ha_drbd::client::{resume_io_message, role_message, status_dump_message};
use iscsi_ha_drbd::dumps::resources_from_dumps;
use iscsi_ha_drbd::events::{event_from_message, DrbdEvent, NotifyKind};
use iscsi_ha_drbd::family::{parse_getfamily_reply, FamilyInfo};
use iscsi_ha_drbd::retcode::{ReplyCode, StateRv};
use iscsi_ha_drbd::state::{ConnState, Dialect, DrbdDiskState as D, DrbdRole as R};
use iscsi_ha_drbd::status::{group_replies, StatusReply};
use iscsi_ha_drbd::wire::{
    decode_datagram, encode_request, DrbdCommand, DrbdMessage, Frame, RequestFlags,
};
use iscsi_ha_drbd::{DrbdError, RoleRequest};

const NLM_F_REQUEST: u16 = 1;

/// One captured netlink message.
struct Captured {
    bytes: Vec<u8>,
}

impl Captured {
    fn flags(&self) -> u16 {
        u16::from_le_bytes([self.bytes[6], self.bytes[7]])
    }
    fn message_type(&self) -> u16 {
        u16::from_le_bytes([self.bytes[4], self.bytes[5]])
    }
    fn is_request(&self) -> bool {
        self.flags() & NLM_F_REQUEST != 0
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}

fn load(name: &str) -> Vec<Captured> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/drbd/genl")
        .join(format!("{name}.nlhex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| Captured {
            bytes: hex(l.split_once(' ').expect("index and hex").1.trim()),
        })
        .collect()
}

/// The family as nlctrl described it in the capture.
fn family(msgs: &[Captured]) -> FamilyInfo {
    let reply = msgs
        .iter()
        .find(|m| m.message_type() == 16 && !m.is_request())
        .expect("an nlctrl reply in the capture");
    parse_getfamily_reply(&reply.bytes).expect("nlctrl reply decodes")
}

/// Every drbd message of a capture, decoded, with its direction and nlmsg seq; asserts the
/// round trip on each.
fn drbd_messages(name: &str) -> (FamilyInfo, Vec<(bool, u32, DrbdMessage)>) {
    let msgs = load(name);
    let fam = family(&msgs);
    let mut out = Vec::new();
    for m in &msgs {
        let frames = decode_datagram(&m.bytes, fam.id)
            .unwrap_or_else(|e| panic!("{name}: a captured message does not decode: {e}"));
        for f in frames {
            if let Frame::Drbd { seq, message, .. } = f {
                let again = encode_request(fam.id, seq, RequestFlags::Request, &message)
                    .expect("re-encode");
                let back = decode_datagram(&again, fam.id).expect("decode re-encoded");
                assert!(
                    matches!(&back[0], Frame::Drbd { message: b, .. } if **b == *message),
                    "{name}: round trip changed {message:?}"
                );
                out.push((m.is_request(), seq, *message));
            }
        }
    }
    (fam, out)
}

fn events(name: &str) -> Vec<DrbdEvent> {
    let (_, msgs) = drbd_messages(name);
    msgs.iter()
        .filter(|(user, _, m)| {
            !user
                && matches!(
                    m.cmd,
                    DrbdCommand::Event
                        | DrbdCommand::ResourceState
                        | DrbdCommand::DeviceState
                        | DrbdCommand::ConnectionState
                        | DrbdCommand::PeerDeviceState
                        | DrbdCommand::Helper
                        | DrbdCommand::InitialStateDone
                )
        })
        .map(|(_, seq, m)| event_from_message(*seq, m, Dialect::V84))
        .collect()
}

#[test]
fn the_family_in_the_captures_is_84_with_an_events_group() {
    let msgs = load("primary");
    let fam = family(&msgs);
    assert_eq!(fam.id, 32);
    assert_eq!(fam.dialect().expect("dialect"), Dialect::V84);
    assert_eq!(fam.events_group, Some(9));
    assert!(fam.offers(DrbdCommand::GetStatus));
    assert!(fam.offers(DrbdCommand::GetInitialState));
}

#[test]
fn primary_request_matches_drbdsetup_and_the_reply_succeeds() {
    let msgs = load("primary");
    let (fam, decoded) = drbd_messages("primary");
    let (_, seq, request) = decoded.iter().find(|(user, _, _)| *user).expect("request");
    assert_eq!(
        *request,
        role_message(1, RoleRequest::Primary { force: false })
    );
    // Byte for byte as drbdsetup sent it, but for the port id drbdsetup writes into nlmsg_pid.
    let captured = &msgs
        .iter()
        .find(|m| m.is_request() && m.message_type() == fam.id)
        .expect("raw")
        .bytes;
    let ours = encode_request(fam.id, *seq, RequestFlags::Request, request).expect("encode");
    assert_eq!(ours[..12], captured[..12]);
    assert_eq!(ours[16..], captured[16..]);
    let (_, _, reply) = decoded.iter().find(|(user, _, _)| !user).expect("reply");
    assert_eq!(reply.cmd, DrbdCommand::Primary);
    assert_eq!(reply.header.minor, 1);
    assert_eq!(
        ReplyCode::classify(reply.header.ret_code, Dialect::V84),
        ReplyCode::Success(1)
    );
}

#[test]
fn refused_primary_is_two_primaries_and_maps_to_peer_primary() {
    let (_, decoded) = drbd_messages("primary-refused");
    let (_, _, reply) = decoded.iter().find(|(user, _, _)| !user).expect("reply");
    let code = ReplyCode::classify(reply.header.ret_code, Dialect::V84);
    assert_eq!(code, ReplyCode::StateRefused(StateRv::TwoPrimaries));
    let err = DrbdError::StateRefused {
        op: "primary",
        minor: 1,
        rv: StateRv::TwoPrimaries,
        info: reply
            .attrs
            .cfg_reply
            .as_ref()
            .and_then(|r| r.info_text.clone()),
    };
    assert_eq!(volume_error(err), VolumeError::PeerPrimary);
}

#[test]
fn secondary_request_and_reply() {
    let (_, decoded) = drbd_messages("secondary");
    let (_, _, request) = decoded.iter().find(|(user, _, _)| *user).expect("request");
    assert_eq!(*request, role_message(1, RoleRequest::Secondary));
    let (_, _, reply) = decoded.iter().find(|(user, _, _)| !user).expect("reply");
    assert!(ReplyCode::classify(reply.header.ret_code, Dialect::V84).is_success());
}

#[test]
fn status_of_one_minor_reads_secondary_secondary() {
    let (_, decoded) = drbd_messages("status-minor");
    let (_, _, reply) = decoded
        .iter()
        .find(|(user, _, m)| !user && m.cmd == DrbdCommand::GetStatus)
        .expect("reply");
    let status = StatusReply::from_message(reply).expect("status");
    assert_eq!(status.resource, "r0");
    let v = status.volume.expect("volume");
    // drbdsetup-84 role 1 printed "Secondary/Secondary".
    assert_eq!((v.role, v.peer_role), (R::Secondary, R::Secondary));
    assert_eq!(v.cstate, ConnState::Connected);
    assert_eq!((v.disk, v.peer_disk), (D::UpToDate, D::UpToDate));
    assert_eq!(v.out_of_sync_kib, Some(0));
    assert_eq!(v.capacity_kib, Some(65496));
}

#[test]
fn status_dump_reads_every_minor() {
    let (_, decoded) = drbd_messages("status-all-show");
    let (_, _, request) = decoded.iter().find(|(user, _, _)| *user).expect("request");
    assert_eq!(request.cmd, DrbdCommand::GetStatus);
    assert_eq!(request.header.minor, u32::MAX);
    assert_eq!(request.attrs, status_dump_message(None).attrs);
    let replies: Vec<StatusReply> = decoded
        .iter()
        .filter(|(user, _, m)| !user && m.cmd == DrbdCommand::GetStatus)
        .map(|(_, _, m)| StatusReply::from_message(m).expect("status"))
        .collect();
    let resources = group_replies(replies);
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].name, "r0");
    assert_eq!(resources[0].volumes.len(), 1);
    assert_eq!(resources[0].volumes[0].minor, 1);
}

#[test]
fn events2_style_dumps_decode() {
    let (_, decoded) = drbd_messages("status-all-events2");
    let replies: Vec<&DrbdMessage> = decoded
        .iter()
        .filter(|(u, _, _)| !u)
        .map(|(_, _, m)| m)
        .collect();
    let res = replies
        .iter()
        .find(|m| m.cmd == DrbdCommand::GetResources)
        .expect("resources");
    assert_eq!(
        res.attrs.resource_info.as_ref().and_then(|r| r.res_role),
        Some(2)
    );
    let dev = replies
        .iter()
        .find(|m| m.cmd == DrbdCommand::GetDevices)
        .expect("devices");
    assert_eq!(
        dev.attrs
            .device_info
            .as_ref()
            .and_then(|d| d.dev_disk_state),
        Some(8)
    );
    let conn = replies
        .iter()
        .find(|m| m.cmd == DrbdCommand::GetConnections)
        .expect("conns");
    let ci = conn
        .attrs
        .connection_info
        .as_ref()
        .expect("connection info");
    // 8.4's connection object reports 9 while connected; drbdsetup-84 prints "Connected".
    assert_eq!(ci.conn_connection_state, Some(9));
    assert_eq!(
        ci.conn_connection_state
            .map(ConnState::from_wire_84_connection),
        Some(ConnState::Connected)
    );
    assert_eq!(ci.conn_role.map(R::from_wire), Some(R::Secondary));
    let peer = replies
        .iter()
        .find(|m| m.cmd == DrbdCommand::GetPeerDevices)
        .expect("peers");
    let pi = peer
        .attrs
        .peer_device_info
        .as_ref()
        .expect("peer device info");
    assert_eq!(pi.peer_disk_state.map(D::from_wire_84), Some(D::UpToDate));
}

fn state_changes(evs: &[DrbdEvent]) -> Vec<(ConnState, R, R, D, D)> {
    evs.iter()
        .filter_map(|e| match e {
            DrbdEvent::State(s) => s
                .new
                .map(|n| (n.conn(), n.role(), n.peer(), n.disk(), n.pdsk())),
            _ => None,
        })
        .collect()
}

#[test]
fn role_change_events() {
    let evs = events("events-role-change");
    let changes = state_changes(&evs);
    // As drbdsetup printed: ST-new Primary/Secondary, then ST-new Secondary/Secondary.
    let roles: Vec<(R, R)> = changes.iter().map(|c| (c.1, c.2)).collect();
    assert_eq!(
        roles,
        vec![(R::Primary, R::Secondary), (R::Secondary, R::Secondary)]
    );
    let firsts: Vec<u32> = evs
        .iter()
        .filter_map(|e| match e {
            DrbdEvent::State(s) if s.prev.is_some() => Some(s.seq),
            _ => None,
        })
        .collect();
    assert_eq!(firsts, vec![12, 13]);
}

#[test]
fn connect_events_show_the_disconnect_and_reconnect() {
    let changes = state_changes(&events("events-connect"));
    let conns: Vec<ConnState> = changes.iter().map(|c| c.0).collect();
    assert!(conns.contains(&ConnState::WFConnection), "{conns:?}");
    assert_eq!(conns.last(), Some(&ConnState::Connected), "{conns:?}");
    let last = changes.last().expect("a change");
    assert_eq!((last.3, last.4), (D::UpToDate, D::UpToDate));
}

#[test]
fn resync_events_show_progress_and_helpers() {
    let evs = events("events-resync");
    let conns: Vec<ConnState> = state_changes(&evs).iter().map(|c| c.0).collect();
    assert_eq!(
        conns,
        vec![
            ConnState::StartingSyncS,
            ConnState::SyncSource,
            ConnState::Connected
        ]
    );
    let progress: Vec<f32> = evs
        .iter()
        .filter_map(|e| match e {
            DrbdEvent::State(s) if s.reason == iscsi_ha_drbd::wire::SibReason::SyncProgress => s
                .volume
                .as_ref()
                .and_then(|v| v.resync)
                .map(|p| p.percent_done),
            _ => None,
        })
        .collect();
    // The first progress event has 4086 of 16374 bits left: 75.0 % done. drbdsetup printed
    // "SP 81.3" because it shifts both counts right by 10 bits before dividing
    // (1000 - 1000 * (4086 >> 10) / ((16374 >> 10) + 1) = 813 per mille); the exact figure
    // is the one the core gets.
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert!((progress[0] - 75.05).abs() < 0.01, "{progress:?}");
    assert!((progress[1] - 100.0).abs() < 0.1, "{progress:?}");
    let helpers: Vec<(String, Option<u32>)> = evs
        .iter()
        .filter_map(|e| match e {
            DrbdEvent::State(s) => s.helper.clone().map(|h| (h, s.helper_exit_code)),
            _ => None,
        })
        .collect();
    assert!(
        helpers.iter().any(|(h, _)| h == "before-resync-source"),
        "{helpers:?}"
    );
    assert!(evs.iter().any(|e| matches!(e, DrbdEvent::Notification(n) if n.cmd == DrbdCommand::Helper && n.helper.as_deref() == Some("before-resync-source"))));
}

#[test]
fn events2_notifications_follow_the_role_change() {
    let evs = events("events2-role-change");
    let notes: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            DrbdEvent::Notification(n) => Some(n),
            _ => None,
        })
        .collect();
    // The initial state: exists for resource, connection, device, peer device, then done.
    assert_eq!(notes[0].kind, Some(NotifyKind::Exists));
    assert_eq!(notes[0].role, Some(R::Secondary));
    assert!(notes.iter().any(|n| n.cmd == DrbdCommand::InitialStateDone));
    assert!(notes
        .iter()
        .any(|n| n.cmd == DrbdCommand::DeviceState && n.disk == Some(D::UpToDate)));
    assert!(notes.iter().any(
        |n| n.cmd == DrbdCommand::ConnectionState && n.connection == Some(ConnState::Connected)
    ));
    let roles: Vec<R> = notes
        .iter()
        .filter(|n| n.cmd == DrbdCommand::ResourceState && n.kind == Some(NotifyKind::Change))
        .filter_map(|n| n.role)
        .collect();
    assert_eq!(roles, vec![R::Primary, R::Secondary]);
}

#[test]
fn events2_dumps_give_the_same_status_as_get_status() {
    let (_, decoded) = drbd_messages("status-all-events2");
    let replies: Vec<DrbdMessage> = decoded
        .into_iter()
        .filter(|(u, _, _)| !u)
        .map(|(_, _, m)| m)
        .collect();
    let via_dumps = resources_from_dumps(Dialect::V84, &replies);
    // drbdsetup printed: r0 role:Secondary, volume:0 minor:1 disk:UpToDate size:65496,
    // peer connection:Connected role:Secondary, replication:Established peer-disk:UpToDate.
    assert_eq!(via_dumps.len(), 1);
    assert_eq!(via_dumps[0].name, "r0");
    let v = &via_dumps[0].volumes[0];
    assert_eq!((v.minor, v.volume), (1, 0));
    assert_eq!((v.role, v.peer_role), (R::Secondary, R::Secondary));
    assert_eq!(v.cstate, ConnState::Connected);
    assert_eq!((v.disk, v.peer_disk), (D::UpToDate, D::UpToDate));
    assert_eq!(v.capacity_kib, Some(65496));
    assert_eq!(v.out_of_sync_kib, Some(0));
    assert!(!v.suspended.any());

    // The GET_STATUS doit of the same steady state reads the same.
    let (_, minor) = drbd_messages("status-minor");
    let (_, _, reply) = minor
        .iter()
        .find(|(user, _, m)| !user && m.cmd == DrbdCommand::GetStatus)
        .expect("reply");
    let from_get_status = StatusReply::from_message(reply)
        .expect("status")
        .volume
        .expect("volume");
    assert_eq!(*v, from_get_status);
}

#[test]
fn resume_io_request_matches_drbdsetup_and_both_replies_succeed() {
    let msgs = load("resume-io");
    let (fam, theirs) = drbd_messages("resume-io");
    let (_, seq, request) = theirs.iter().find(|(user, _, _)| *user).expect("request");
    assert_eq!(*request, resume_io_message(1));
    // Byte for byte as drbdsetup sent it, but for the port id drbdsetup writes into nlmsg_pid.
    let captured = &msgs
        .iter()
        .find(|m| m.is_request() && m.message_type() == fam.id)
        .expect("raw")
        .bytes;
    let ours = encode_request(fam.id, *seq, RequestFlags::Request, request).expect("encode");
    assert_eq!(ours[..12], captured[..12]);
    assert_eq!(ours[16..], captured[16..]);
    // Not suspended (drbdsetup ran after ours): SS_NOTHING_TO_DO, which succeeds.
    let (_, _, reply) = theirs.iter().find(|(user, _, _)| !user).expect("reply");
    assert_eq!((reply.cmd, reply.header.minor), (DrbdCommand::ResumeIo, 1));
    assert_eq!(
        ReplyCode::classify(reply.header.ret_code, Dialect::V84),
        ReplyCode::Success(2)
    );
}

#[test]
fn ours_resumes_a_fencing_freeze_the_status_showed() {
    let (_, decoded) = drbd_messages("resume-io-ours");
    let status = decoded
        .iter()
        .find(|(user, _, m)| !user && m.cmd == DrbdCommand::GetStatus)
        .map(|(_, _, m)| StatusReply::from_message(m).expect("status"))
        .expect("our GET_STATUS reply");
    let v = status.volume.expect("volume");
    assert_eq!((v.role, v.peer_role), (R::Primary, R::Unknown));
    assert!(v.suspended.fencing && !v.suspended.user && !v.suspended.no_data);
    let requests: Vec<&DrbdMessage> = decoded
        .iter()
        .filter(|(user, _, m)| *user && m.cmd == DrbdCommand::ResumeIo)
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(requests, vec![&resume_io_message(1)]);
    let (_, _, reply) = decoded
        .iter()
        .find(|(user, _, m)| !user && m.cmd == DrbdCommand::ResumeIo)
        .expect("reply");
    // Frozen: the state change happened, SS_SUCCESS.
    assert_eq!(
        ReplyCode::classify(reply.header.ret_code, Dialect::V84),
        ReplyCode::Success(1)
    );
}
