//! Property tests: encode/decode round trips of messages, and decoders that are total (no
//! panic, an error at worst) on arbitrary and on mutated bytes.

use iscsi_ha_drbd::events::events_from_datagram;
use iscsi_ha_drbd::family::parse_getfamily_reply;
use iscsi_ha_drbd::procfs;
use iscsi_ha_drbd::state::Dialect;
use iscsi_ha_drbd::wire::attr::{RawAttr, DRBD_GENLA_F_MANDATORY};
use iscsi_ha_drbd::wire::sets::{
    CfgContext, CfgReply, ConnectionInfo, NotificationHeader, ResourceInfo, SetRoleParms, StateInfo,
};
use iscsi_ha_drbd::wire::{
    decode_datagram, encode_request, DrbdAttrs, DrbdCommand, DrbdHeader, DrbdMessage, Frame,
    RequestFlags,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9_.+-]{0,40}")
}

fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..40))
}

/// Unknown fields: numbers above every known field of the sets generated here.
fn unknown() -> impl Strategy<Value = Vec<RawAttr>> {
    prop::collection::vec(
        (
            40u16..0x3FFF,
            prop_oneof![Just(0), Just(DRBD_GENLA_F_MANDATORY)],
            prop::collection::vec(any::<u8>(), 0..12),
        )
            .prop_map(|(number, flags, value)| RawAttr {
                number,
                flags,
                value,
            }),
        0..3,
    )
}

fn cfg_context() -> impl Strategy<Value = CfgContext> {
    (
        prop::option::of(any::<u32>()),
        text(),
        bytes(),
        bytes(),
        text(),
        prop::option::of(any::<u32>()),
        unknown(),
    )
        .prop_map(
            |(volume, resource_name, my_addr, peer_addr, conn_name, peer_node_id, unknown)| {
                CfgContext {
                    volume,
                    resource_name,
                    my_addr,
                    peer_addr,
                    conn_name,
                    peer_node_id,
                    unknown,
                }
            },
        )
}

fn state_info() -> impl Strategy<Value = StateInfo> {
    let u32o = || prop::option::of(any::<u32>());
    let u64o = || prop::option::of(any::<u64>());
    (
        (u32o(), u32o(), u64o(), u64o(), u32o(), u32o(), bytes()),
        (u64o(), u64o(), u64o(), u64o(), text(), u32o(), u64o()),
        unknown(),
    )
        .prop_map(|(a, b, unknown)| StateInfo {
            sib_reason: a.0,
            current_state: a.1,
            capacity: a.2,
            ed_uuid: a.3,
            prev_state: a.4,
            new_state: a.5,
            uuids: a.6,
            bits_total: b.0,
            bits_oos: b.1,
            bits_rs_total: b.2,
            bits_rs_failed: b.3,
            helper: b.4,
            helper_exit_code: b.5,
            send_cnt: b.6,
            unknown,
            ..StateInfo::default()
        })
}

fn attrs() -> impl Strategy<Value = DrbdAttrs> {
    (
        prop::option::of(text().prop_map(|info_text| CfgReply {
            info_text,
            unknown: Vec::new(),
        })),
        prop::option::of(cfg_context()),
        prop::option::of(prop::option::of(any::<bool>()).prop_map(|assume_uptodate| {
            SetRoleParms {
                assume_uptodate,
                unknown: Vec::new(),
            }
        })),
        prop::option::of(state_info()),
        prop::option::of(
            (
                prop::option::of(any::<u32>()),
                prop::option::of(any::<bool>()),
            )
                .prop_map(|(res_role, res_susp)| ResourceInfo {
                    res_role,
                    res_susp,
                    ..ResourceInfo::default()
                }),
        ),
        prop::option::of(
            (
                prop::option::of(any::<u32>()),
                prop::option::of(any::<u32>()),
            )
                .prop_map(|(conn_connection_state, conn_role)| ConnectionInfo {
                    conn_connection_state,
                    conn_role,
                    unknown: Vec::new(),
                }),
        ),
        prop::option::of(
            prop::option::of(any::<u32>()).prop_map(|nh_type| NotificationHeader {
                nh_type,
                unknown: Vec::new(),
            }),
        ),
        // Unknown top-level sets (numbers DRBD has not assigned to a set this crate reads).
        prop::collection::vec(
            (30u16..0x3FFF, prop::collection::vec(any::<u8>(), 0..16)).prop_map(
                |(number, value)| RawAttr {
                    number,
                    flags: 0,
                    value,
                },
            ),
            0..2,
        ),
    )
        .prop_map(
            |(
                cfg_reply,
                cfg_context,
                set_role_parms,
                state_info,
                resource_info,
                connection_info,
                notification_header,
                other,
            )| DrbdAttrs {
                cfg_reply,
                cfg_context,
                set_role_parms,
                state_info,
                resource_info,
                connection_info,
                notification_header,
                other,
                ..DrbdAttrs::default()
            },
        )
}

fn message() -> impl Strategy<Value = DrbdMessage> {
    (any::<u8>(), 1u8..3, any::<u32>(), any::<i32>(), attrs()).prop_map(
        |(cmd, version, minor, ret_code, attrs)| DrbdMessage {
            cmd: DrbdCommand::from(cmd),
            version,
            header: DrbdHeader { minor, ret_code },
            attrs,
        },
    )
}

proptest! {
    #[test]
    fn messages_round_trip(msg in message(), seq in any::<u32>(), family in 16u16..0x400) {
        let bytes = encode_request(family, seq, RequestFlags::Request, &msg).unwrap();
        let frames = decode_datagram(&bytes, family).unwrap();
        prop_assert_eq!(frames.len(), 1);
        match &frames[0] {
            Frame::Drbd { seq: s, message, .. } => {
                prop_assert_eq!(*s, seq);
                prop_assert_eq!(message.as_ref(), &msg);
            }
            other => prop_assert!(false, "unexpected frame {:?}", other),
        }
    }

    #[test]
    fn datagram_decoder_is_total(bytes in prop::collection::vec(any::<u8>(), 0..512), family in any::<u16>()) {
        let _ = decode_datagram(&bytes, family);
        let _ = events_from_datagram(&bytes, family, Dialect::V84);
        let _ = events_from_datagram(&bytes, family, Dialect::V9);
        let _ = parse_getfamily_reply(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        msg in message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_request(0x1c, 1, RequestFlags::Dump, &msg).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let end = cut.index(bytes.len() + 1);
        let _ = decode_datagram(&bytes[..end], 0x1c);
        let _ = events_from_datagram(&bytes[..end], 0x1c, Dialect::V84);
        let _ = parse_getfamily_reply(&bytes[..end]);
    }

    #[test]
    fn proc_parser_is_total(text in "(version: |[0-9 :]|cs:|ro:|ds:|ns:|oos:|\\[|\\]|sync'ed:|finish:|[A-Za-z/%()=>.,\\t\\n-]){0,200}") {
        let _ = procfs::parse(&text);
    }

    #[test]
    fn proc_parser_is_total_on_any_string(text in any::<String>()) {
        let _ = procfs::parse(&text);
    }
}
