//! Test vectors built from the kernel's layout (drbd_genl.h, genl_magic_struct.h, netlink.h),
//! little-endian x86_64 as in the lab. Requests are spelled out byte by byte; kernel replies
//! are assembled with a tiny attribute writer so each field stays readable.

use iscsi_ha_core::ports::VolumeError;
use iscsi_ha_drbd::adapter::volume_error;
use iscsi_ha_drbd::events::{event_from_message, DrbdEvent, NotifyKind};
use iscsi_ha_drbd::family::{getfamily_request, parse_getfamily_reply, FamilyError};
use iscsi_ha_drbd::retcode::{ReplyCode, StateRv};
use iscsi_ha_drbd::state::{ConnState, Dialect, DrbdDiskState, DrbdRole, StateWord};
use iscsi_ha_drbd::status::{group_replies, StatusReply};
use iscsi_ha_drbd::wire::sets::{CfgContext, SetRoleParms};
use iscsi_ha_drbd::wire::{
    decode_datagram, encode_request, DrbdAttrs, DrbdCommand, DrbdHeader, DrbdMessage, Frame,
    RequestFlags, SibReason, MINOR_NONE,
};
use iscsi_ha_drbd::DrbdError;

const FAMILY: u16 = 0x1c;

fn nla(ty: u16, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).expect("attribute fits");
    let mut out = Vec::new();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(value);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

fn nest(ty: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    nla(ty, &parts.concat())
}

fn nlmsg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        &u32::try_from(16 + payload.len())
            .expect("message fits")
            .to_le_bytes(),
    );
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn drbd_payload(cmd: u8, minor: u32, ret: i32, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![cmd, 1, 0, 0];
    out.extend_from_slice(&minor.to_le_bytes());
    out.extend_from_slice(&ret.to_le_bytes());
    out.extend(attrs.concat());
    out
}

fn state_info(word: StateWord, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![
        nla(0x4001, &1u32.to_le_bytes()),   // sib_reason = GET_STATUS_REPLY
        nla(0x0002, &word.0.to_le_bytes()), // current_state (no mandatory bit)
        nla(0x4003, &131_072u64.to_le_bytes()), // capacity: 64 MiB in sectors
        nla(0x4009, &16_384u64.to_le_bytes()), // bits_total
        nla(0x400a, &0u64.to_le_bytes()),   // bits_oos
    ];
    parts.extend_from_slice(extra);
    nest(8, &parts)
}

fn context(name: &str, volume: u32) -> Vec<u8> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    nest(2, &[nla(0x4001, &volume.to_le_bytes()), nla(0x4002, &n)])
}

#[test]
fn get_status_dump_request_layout() {
    let msg = DrbdMessage {
        cmd: DrbdCommand::GetStatus,
        version: 1,
        header: DrbdHeader {
            minor: MINOR_NONE,
            ret_code: 0,
        },
        attrs: DrbdAttrs {
            cfg_context: Some(CfgContext {
                resource_name: Some("r0".to_string()),
                ..CfgContext::default()
            }),
            ..DrbdAttrs::default()
        },
    };
    let bytes = encode_request(FAMILY, 7, RequestFlags::Dump, &msg).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        // nlmsghdr: len 40, type 0x1c, flags REQUEST|DUMP (0x301), seq 7, pid 0
        40, 0, 0, 0,  0x1c, 0,  0x01, 0x03,  7, 0, 0, 0,  0, 0, 0, 0,
        // genlmsghdr: cmd GET_STATUS (2), version 1, reserved
        2, 1, 0, 0,
        // drbd_genlmsghdr: minor ~0, flags 0
        0xff, 0xff, 0xff, 0xff,  0, 0, 0, 0,
        // CFG_CONTEXT (2 | NLA_F_NESTED), len 12
        12, 0, 2, 0x80,
        //   ctx_resource_name (2 | MANDATORY), len 7, "r0\0" + pad
        7, 0, 0x02, 0x40,  b'r', b'0', 0, 0,
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn forced_primary_request_carries_assume_uptodate() {
    let msg = DrbdMessage {
        cmd: DrbdCommand::Primary,
        version: 1,
        header: DrbdHeader {
            minor: 1,
            ret_code: 0,
        },
        attrs: DrbdAttrs {
            set_role_parms: Some(SetRoleParms {
                assume_uptodate: Some(true),
                ..SetRoleParms::default()
            }),
            ..DrbdAttrs::default()
        },
    };
    let bytes = encode_request(FAMILY, 9, RequestFlags::Request, &msg).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        40, 0, 0, 0,  0x1c, 0,  0x01, 0x00,  9, 0, 0, 0,  0, 0, 0, 0,
        14, 1, 0, 0,                 // PRIMARY, version 1
        1, 0, 0, 0,  0, 0, 0, 0,     // minor 1
        12, 0, 6, 0x80,              // SET_ROLE_PARMS | NLA_F_NESTED
        5, 0, 0x01, 0x40,  1, 0, 0, 0, // assume_uptodate (1 | MANDATORY) = u8 1
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn resume_io_request_is_the_minor_and_nothing_else() {
    let msg = iscsi_ha_drbd::client::resume_io_message(3);
    let bytes = encode_request(FAMILY, 5, RequestFlags::Request, &msg).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        28, 0, 0, 0,  0x1c, 0,  0x01, 0x00,  5, 0, 0, 0,  0, 0, 0, 0,
        24, 1, 0, 0,                 // RESUME_IO, version 1
        3, 0, 0, 0,  0, 0, 0, 0,     // minor 3, no attribute
    ];
    assert_eq!(bytes, expected);
    // A refusal of the state change keeps DRBD's reason; no minor is no such resource.
    let frames =
        decode_datagram(&nlmsg(FAMILY, 0, 5, &drbd_payload(24, 3, 127, &[])), FAMILY).unwrap();
    let Frame::Drbd { message, .. } = &frames[0] else {
        panic!("not drbd")
    };
    assert_eq!(message.cmd, DrbdCommand::ResumeIo);
    assert_eq!(
        ReplyCode::classify(message.header.ret_code, Dialect::V84),
        ReplyCode::Error(iscsi_ha_drbd::retcode::ErrCode::MinorInvalid)
    );
    assert_eq!(
        volume_error(DrbdError::NoSuchMinor(3)),
        VolumeError::NoSuchResource("minor 3".to_string())
    );
}

#[test]
fn get_status_dump_reply_decodes_into_typed_status() {
    let connected = StateWord::compose(1, 2, 10, 8, 8); // Primary/Secondary Connected UpToDate
    let standalone = StateWord::compose(2, 0, 0, 5, 6); // Secondary/Unknown StandAlone Outdated/DUnknown
    let mut datagram = nlmsg(
        FAMILY,
        2, // NLM_F_MULTI
        5,
        &drbd_payload(2, 1, 101, &[context("r0", 0), state_info(connected, &[])]),
    );
    datagram.extend(nlmsg(
        FAMILY,
        2,
        5,
        &drbd_payload(2, 2, 101, &[context("r1", 0), state_info(standalone, &[])]),
    ));
    // A resource without volumes: minor ~0, context only.
    datagram.extend(nlmsg(
        FAMILY,
        2,
        5,
        &drbd_payload(2, MINOR_NONE, 101, &[context("empty", 0)]),
    ));
    datagram.extend(nlmsg(3, 2, 5, &0i32.to_le_bytes())); // NLMSG_DONE

    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    assert_eq!(frames.len(), 4);
    assert!(matches!(frames[3], Frame::Done { seq: 5, code: 0 }));
    let replies: Vec<StatusReply> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Drbd { message, .. } => Some(StatusReply::from_message(message).unwrap()),
            _ => None,
        })
        .collect();
    let resources = group_replies(replies);
    assert_eq!(resources.len(), 3);
    let r0 = &resources[0].volumes[0];
    assert_eq!(resources[0].name, "r0");
    assert_eq!((r0.minor, r0.volume), (1, 0));
    assert_eq!(
        (r0.role, r0.peer_role),
        (DrbdRole::Primary, DrbdRole::Secondary)
    );
    assert_eq!(r0.cstate, ConnState::Connected);
    assert_eq!(
        (r0.disk, r0.peer_disk),
        (DrbdDiskState::UpToDate, DrbdDiskState::UpToDate)
    );
    assert_eq!(r0.capacity_kib, Some(65_536));
    assert_eq!(r0.out_of_sync_kib, Some(0));
    assert_eq!(r0.resync, None);
    let r1 = &resources[1].volumes[0];
    assert_eq!(r1.cstate, ConnState::StandAlone);
    assert_eq!(r1.peer_disk, DrbdDiskState::DUnknown);
    assert!(resources[2].volumes.is_empty());

    let core = resources[1].to_core(iscsi_ha_core::resource::ResourceName::new("r1").unwrap());
    assert_eq!(
        core.connection,
        iscsi_ha_core::volume::Connection::StandAlone
    );
    assert_eq!(core.connection_detail, "StandAlone");
    assert_eq!(core.disk, iscsi_ha_core::volume::DiskState::Outdated);
}

#[test]
fn syncing_status_reports_progress() {
    // SyncSource (16), Primary/Secondary, UpToDate/Inconsistent; 1000 of 4000 bits left.
    let word = StateWord::compose(1, 2, 16, 8, 4);
    let extra = [
        nla(0x400b, &4000u64.to_le_bytes()), // bits_rs_total
        nla(0x400c, &0u64.to_le_bytes()),    // bits_rs_failed
    ];
    let si = nest(
        8,
        &[
            nla(0x4001, &1u32.to_le_bytes()),
            nla(0x0002, &word.0.to_le_bytes()),
            nla(0x400a, &1000u64.to_le_bytes()),
            extra[0].clone(),
            extra[1].clone(),
        ],
    );
    let datagram = nlmsg(
        FAMILY,
        2,
        1,
        &drbd_payload(2, 1, 101, &[context("r0", 0), si]),
    );
    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    let Frame::Drbd { message, .. } = &frames[0] else {
        panic!("not drbd")
    };
    let reply = StatusReply::from_message(message).unwrap();
    let v = reply.volume.unwrap();
    let p = v.resync.unwrap();
    assert_eq!((p.total_kib, p.left_kib), (16_000, 4_000));
    assert!((p.percent_done - 75.0).abs() < 0.01);
    assert_eq!(v.out_of_sync_kib, Some(4_000));
}

#[test]
fn refused_primary_reply_maps_to_peer_primary() {
    let mut text = b"State change failed: (-1) Multiple primaries not allowed by config".to_vec();
    text.push(0);
    let datagram = nlmsg(
        FAMILY,
        0,
        9,
        &drbd_payload(14, 1, -1, &[nest(1, &[nla(0x4001, &text)])]),
    );
    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    let Frame::Drbd { message, .. } = &frames[0] else {
        panic!("not drbd")
    };
    assert_eq!(message.cmd, DrbdCommand::Primary);
    assert_eq!(
        ReplyCode::classify(message.header.ret_code, Dialect::V84),
        ReplyCode::StateRefused(StateRv::TwoPrimaries)
    );
    let info = message
        .attrs
        .cfg_reply
        .as_ref()
        .and_then(|r| r.info_text.clone());
    assert!(info.unwrap().contains("Multiple primaries"));
    let err = DrbdError::StateRefused {
        op: "primary",
        minor: 1,
        rv: StateRv::TwoPrimaries,
        info: None,
    };
    assert_eq!(volume_error(err), VolumeError::PeerPrimary);
    let in_use = DrbdError::StateRefused {
        op: "secondary",
        minor: 1,
        rv: StateRv::from_code(-12, Dialect::V84),
        info: None,
    };
    assert_eq!(volume_error(in_use), VolumeError::DeviceInUse);
}

#[test]
fn permission_error_before_the_reply_is_an_nlmsg_error() {
    let mut payload = (-libc::EPERM).to_le_bytes().to_vec();
    payload.extend(nlmsg(FAMILY, 1, 4, &[14, 1, 0, 0]));
    let datagram = nlmsg(2, 0, 4, &payload);
    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    assert_eq!(
        frames,
        vec![Frame::Error {
            seq: 4,
            code: -libc::EPERM
        }]
    );
}

#[test]
fn state_change_event_decodes_prev_and_new() {
    let prev = StateWord::compose(2, 2, 10, 8, 8);
    let new = StateWord::compose(2, 1, 10, 8, 8);
    let si = nest(
        8,
        &[
            nla(0x4001, &2u32.to_le_bytes()), // STATE_CHANGE
            nla(0x0002, &new.0.to_le_bytes()),
            nla(0x4005, &prev.0.to_le_bytes()),
            nla(0x4006, &new.0.to_le_bytes()),
        ],
    );
    let datagram = nlmsg(
        FAMILY,
        0,
        1234,
        &drbd_payload(1, 1, 0, &[context("r0", 0), si]),
    );
    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    let Frame::Drbd { seq, message, .. } = &frames[0] else {
        panic!("not drbd")
    };
    let DrbdEvent::State(ev) = event_from_message(*seq, message, Dialect::V84) else {
        panic!("not a state event")
    };
    assert_eq!(ev.seq, 1234);
    assert_eq!(ev.reason, SibReason::StateChange);
    assert_eq!(ev.prev.unwrap().peer(), DrbdRole::Secondary);
    assert_eq!(ev.new.unwrap().peer(), DrbdRole::Primary);
    assert_eq!(ev.resource.as_deref(), Some("r0"));
}

#[test]
fn events2_connection_notification_decodes_per_dialect() {
    let conn = nest(
        17,
        &[nla(1, &8u32.to_le_bytes()), nla(2, &1u32.to_le_bytes())],
    );
    let nh = nest(23, &[nla(0x4001, &(2u32 | 0x8000).to_le_bytes())]);
    let datagram = nlmsg(
        FAMILY,
        0,
        77,
        &drbd_payload(36, MINOR_NONE, 0, &[context("r0", 0), conn, nh]),
    );
    let frames = decode_datagram(&datagram, FAMILY).unwrap();
    let Frame::Drbd { seq, message, .. } = &frames[0] else {
        panic!("not drbd")
    };
    let DrbdEvent::Notification(n84) = event_from_message(*seq, message, Dialect::V84) else {
        panic!("not a notification")
    };
    assert_eq!(n84.kind, Some(NotifyKind::Change));
    assert!(n84.continues);
    assert_eq!(n84.connection, Some(ConnState::WFConnection));
    assert_eq!(n84.peer_role, Some(DrbdRole::Primary));
    let DrbdEvent::Notification(n9) = event_from_message(*seq, message, Dialect::V9) else {
        panic!("not a notification")
    };
    assert_eq!(n9.connection, Some(ConnState::Connecting));
}

#[test]
fn nlctrl_reply_gives_id_version_group_and_ops() {
    let ops = nest(
        6,
        &[
            nest(
                1,
                &[nla(1, &2u32.to_le_bytes()), nla(2, &0u32.to_le_bytes())],
            ),
            nest(
                2,
                &[nla(1, &14u32.to_le_bytes()), nla(2, &1u32.to_le_bytes())],
            ),
            nest(
                3,
                &[nla(1, &38u32.to_le_bytes()), nla(2, &0u32.to_le_bytes())],
            ),
        ],
    );
    let groups = nest(
        7,
        &[nest(1, &[nla(2, &9u32.to_le_bytes()), nla(1, b"events\0")])],
    );
    let mut payload = vec![1, 2, 0, 0]; // CTRL_CMD_NEWFAMILY, version 2
    payload.extend(nla(1, &FAMILY.to_le_bytes()));
    payload.extend(nla(2, b"drbd\0"));
    payload.extend(nla(3, &1u32.to_le_bytes()));
    payload.extend(nla(4, &8u32.to_le_bytes()));
    payload.extend(nla(5, &24u32.to_le_bytes()));
    payload.extend(ops);
    payload.extend(groups);
    let reply = nlmsg(0x10, 0, 1, &payload);
    let info = parse_getfamily_reply(&reply).unwrap();
    assert_eq!(info.id, FAMILY);
    assert_eq!(info.dialect().unwrap(), Dialect::V84);
    assert_eq!(info.events_group, Some(9));
    assert!(info.offers(DrbdCommand::GetInitialState));
    assert!(!info.offers(DrbdCommand::GetResources));

    // And the request names the family.
    let req = getfamily_request(1);
    assert!(req.windows(5).any(|w| w == b"drbd\0"));
}

#[test]
fn missing_family_is_module_not_loaded() {
    let mut payload = (-libc::ENOENT).to_le_bytes().to_vec();
    payload.extend(getfamily_request(1)[..16].iter());
    let reply = nlmsg(2, 0, 1, &payload);
    assert!(matches!(
        parse_getfamily_reply(&reply),
        Err(FamilyError::ModuleNotLoaded)
    ));
    assert_eq!(
        volume_error(DrbdError::Family(FamilyError::ModuleNotLoaded)),
        VolumeError::Unavailable("the drbd kernel module is not loaded".to_string().into())
    );
}

#[test]
fn drbd9_family_is_detected_and_refused_explicitly() {
    let mut payload = vec![1, 2, 0, 0];
    payload.extend(nla(1, &FAMILY.to_le_bytes()));
    payload.extend(nla(3, &2u32.to_le_bytes()));
    payload.extend(nla(4, &8u32.to_le_bytes()));
    let info = parse_getfamily_reply(&nlmsg(0x10, 0, 1, &payload)).unwrap();
    assert_eq!(info.dialect().unwrap(), Dialect::V9);
    let err = volume_error(DrbdError::Drbd9Unsupported("status"));
    assert!(
        matches!(err, VolumeError::Unsupported(t) if t.text().contains("DRBD 9 not supported yet"))
    );
}

#[test]
fn drbd9_dumps_use_drbd9_tables() {
    use iscsi_ha_drbd::dumps::resources_from_dumps;
    use iscsi_ha_drbd::wire::sets::{
        ConnectionInfo, DeviceInfo, DeviceStatistics, PeerDeviceInfo, PeerDeviceStatistics,
        ResourceInfo,
    };
    let ctx = |volume: Option<u32>| CfgContext {
        resource_name: Some("r0".to_string()),
        volume,
        ..CfgContext::default()
    };
    let msg = |cmd: DrbdCommand, minor: u32, attrs: DrbdAttrs| DrbdMessage {
        cmd,
        version: 2,
        header: DrbdHeader {
            minor,
            ret_code: 101,
        },
        attrs,
    };
    let messages = vec![
        msg(
            DrbdCommand::GetResources,
            MINOR_NONE,
            DrbdAttrs {
                cfg_context: Some(ctx(None)),
                resource_info: Some(ResourceInfo {
                    res_role: Some(1),
                    res_susp_fen: Some(true),
                    ..ResourceInfo::default()
                }),
                ..DrbdAttrs::default()
            },
        ),
        msg(
            DrbdCommand::GetDevices,
            5,
            DrbdAttrs {
                cfg_context: Some(ctx(Some(0))),
                device_info: Some(DeviceInfo {
                    dev_disk_state: Some(9), // UpToDate in DRBD 9 (8.4: 9 is out of range)
                    ..DeviceInfo::default()
                }),
                device_statistics: Some(DeviceStatistics {
                    dev_size: Some(2048),
                    ..DeviceStatistics::default()
                }),
                ..DrbdAttrs::default()
            },
        ),
        msg(
            DrbdCommand::GetConnections,
            MINOR_NONE,
            DrbdAttrs {
                cfg_context: Some(ctx(None)),
                connection_info: Some(ConnectionInfo {
                    conn_connection_state: Some(9), // Connected in DRBD 9
                    conn_role: Some(2),
                    ..ConnectionInfo::default()
                }),
                ..DrbdAttrs::default()
            },
        ),
        msg(
            DrbdCommand::GetPeerDevices,
            MINOR_NONE,
            DrbdAttrs {
                cfg_context: Some(ctx(Some(0))),
                peer_device_info: Some(PeerDeviceInfo {
                    peer_repl_state: Some(16), // SyncSource
                    peer_disk_state: Some(5),  // Inconsistent in DRBD 9 (8.4: Outdated)
                    ..PeerDeviceInfo::default()
                }),
                peer_device_statistics: Some(PeerDeviceStatistics {
                    peer_dev_out_of_sync: Some(800),
                    peer_dev_rs_total: Some(1600),
                    ..PeerDeviceStatistics::default()
                }),
                ..DrbdAttrs::default()
            },
        ),
    ];
    // Every message also survives the wire.
    for m in &messages {
        let bytes = encode_request(FAMILY, 1, RequestFlags::Request, m).unwrap();
        let frames = decode_datagram(&bytes, FAMILY).unwrap();
        assert!(matches!(&frames[0], Frame::Drbd { message, .. } if **message == *m));
    }
    let r = resources_from_dumps(Dialect::V9, &messages);
    let v = &r[0].volumes[0];
    assert_eq!(v.minor, 5);
    assert_eq!(
        (v.role, v.peer_role),
        (DrbdRole::Primary, DrbdRole::Secondary)
    );
    assert_eq!(v.cstate, ConnState::SyncSource);
    assert_eq!(
        (v.disk, v.peer_disk),
        (DrbdDiskState::UpToDate, DrbdDiskState::Inconsistent)
    );
    assert!(v.suspended.fencing);
    assert_eq!(v.capacity_kib, Some(1024));
    assert_eq!(v.out_of_sync_kib, Some(400));
    let p = v.resync.unwrap();
    assert_eq!((p.total_kib, p.left_kib), (800, 400));
    // Without a connection the resource is StandAlone with an unknown peer.
    let alone: Vec<DrbdMessage> = messages
        .into_iter()
        .filter(|m| m.cmd != DrbdCommand::GetConnections)
        .collect();
    let r = resources_from_dumps(Dialect::V9, &alone);
    assert_eq!(r[0].volumes[0].cstate, ConnState::StandAlone);
    assert_eq!(r[0].volumes[0].peer_role, DrbdRole::Unknown);
}

#[test]
fn nlctrl_delfamily_of_drbd_is_module_unloaded() {
    use iscsi_ha_drbd::events::events_from_datagram;
    let mut payload = vec![2, 2, 0, 0]; // CTRL_CMD_DELFAMILY
    payload.extend(nla(1, &FAMILY.to_le_bytes()));
    payload.extend(nla(2, b"drbd\0"));
    let datagram = nlmsg(0x10, 0, 0, &payload);
    assert_eq!(
        events_from_datagram(&datagram, FAMILY, Dialect::V84),
        vec![DrbdEvent::ModuleUnloaded]
    );
    // Another family going away is not ours.
    let mut other = vec![2, 2, 0, 0];
    other.extend(nla(1, &0x33u16.to_le_bytes()));
    other.extend(nla(2, b"nl80211\0"));
    assert!(events_from_datagram(&nlmsg(0x10, 0, 0, &other), FAMILY, Dialect::V84).is_empty());
    // A new family (NEWFAMILY) is not an unload either.
    payload[0] = 1;
    assert!(events_from_datagram(&nlmsg(0x10, 0, 0, &payload), FAMILY, Dialect::V84).is_empty());
}
