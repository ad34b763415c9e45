//! Property tests: encode/decode round trips, and decoders, parsers and guards total on any
//! input (an error or a kept unknown line, never a panic).

use iscsi_ha_tgt::guard;
use iscsi_ha_tgt::show::{
    parse_accounts, parse_connections, parse_params, parse_portals, parse_system, parse_targets,
    LunInfo, NexusConnection, NexusInfo, TargetInfo,
};
use iscsi_ha_tgt::wire::{
    AccountDirection, Body, Lld, Mode, Op, Reply, ReplyCode, ReplyHeader, Request, MAX_BODY_LEN,
};
use proptest::prelude::*;

fn arb_request() -> impl Strategy<Value = Request> {
    (
        (any::<u32>(), any::<u32>(), "[a-z]{0,63}"),
        (any::<i32>(), any::<u64>(), any::<u64>(), any::<u32>()),
        (
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            any::<u32>(),
            any::<bool>(),
        ),
        proptest::option::of("[ -~]{0,300}"),
    )
        .prop_map(
            |((mode, op, lld), (tid, sid, lun, cid), (host_no, dt, out, pack, force), body)| {
                let mut r = Request::new(Mode::from_code(mode), Op::from_code(op));
                r.lld = Lld::new(&lld).unwrap_or_else(|_| Lld::iscsi());
                r.tid = tid;
                r.sid = sid;
                r.lun = lun;
                r.cid = cid;
                r.host_no = host_no;
                r.device_type = dt;
                r.ac_dir = if out {
                    AccountDirection::Outgoing
                } else {
                    AccountDirection::Incoming
                };
                r.pack = pack;
                r.force = force;
                r.body = body.and_then(|b| Body::raw(b).ok());
                r
            },
        )
}

proptest! {
    #[test]
    fn requests_round_trip(req in arb_request()) {
        let bytes = req.encode();
        prop_assert_eq!(bytes.len(), 120 + req.body.as_ref().map_or(0, Body::wire_len));
        prop_assert_eq!(Request::decode(&bytes), Ok(req));
    }

    #[test]
    fn replies_round_trip(code in any::<u32>(), text in "[^\u{0}]{0,500}") {
        let reply = Reply { code: ReplyCode::from_code(code), text };
        prop_assert_eq!(Reply::decode(&reply.encode()), Ok(reply));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::decode(&bytes);
        let _ = Reply::decode(&bytes);
        let _ = ReplyHeader::decode(&bytes);
    }

    #[test]
    fn request_decode_survives_corrupted_valid_bytes(
        req in arb_request(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = req.encode();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        let _ = Request::decode(&bytes);
    }

    #[test]
    fn bodies_split_back_into_their_pairs(
        pairs in proptest::collection::vec(("[a-zA-Z_-]{1,12}", "[^,\u{0}]{0,40}"), 0..12),
    ) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match Body::params(&refs) {
            Ok(body) => {
                prop_assert!(body.wire_len() <= MAX_BODY_LEN);
                if !pairs.is_empty() {
                    let back: Vec<(String, String)> = body
                        .as_str()
                        .split(',')
                        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                        .collect();
                    prop_assert_eq!(back, pairs);
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("refused")),
        }
    }

    #[test]
    fn parsers_are_total(text in "[ -~\n\t]{0,2000}") {
        let _ = parse_targets(&text);
        let _ = parse_system(&text);
        let _ = parse_accounts(&text);
        let _ = parse_connections(&text);
        let _ = parse_params(&text);
        let _ = parse_portals(&text);
    }

    #[test]
    fn parsers_are_total_on_tgtd_like_lines(
        lines in proptest::collection::vec(
            (0_usize..6, prop::sample::select(vec![
                "Target 1: iqn.x", "Target x: y", "System information:", "Driver: iscsi",
                "State: ready", "I_T nexus information:", "I_T nexus: 3", "I_T nexus: -1",
                "Initiator: iqn.a alias: none", "Connection: 0", "Connection: z",
                "IP Address: 127.0.0.1", "LUN information:", "LUN: 1", "LUN: 99999999999999999999",
                "Size: 67 MB, Block size: 512", "Size: garbage", "Readonly: Maybe", "SCSI ID: a  b ",
                "Backing store path: None", "Backing store flags: ", "Account information:",
                "alice", "bob (outgoing)", "ACL information:", "ALL", "Session: 2", "x=y", "=",
                "Portal: 1.2.3.4:3260,1", ":", "", "LLDs:", "iscsi: ready", "iSNS:",
            ])),
            0..60,
        )
    ) {
        let text: String = lines
            .iter()
            .map(|(level, line)| format!("{}{}\n", "    ".repeat(*level), line))
            .collect();
        let _ = parse_targets(&text);
        let _ = parse_system(&text);
        let _ = parse_accounts(&text);
        let _ = parse_connections(&text);
    }

    #[test]
    fn acl_guard_is_total_and_normalises(text in "[ -~]{0,60}") {
        let _ = guard::acl_address(&text);
    }

    #[test]
    fn acl_ranges_come_out_with_zero_host_bits(addr in any::<u32>(), prefix in 1_u8..=32) {
        let ip = std::net::Ipv4Addr::from(addr);
        let text = guard::acl_address(&format!("{ip}/{prefix}"));
        prop_assert!(text.is_ok());
        let text = text.unwrap_or_default();
        let (net, len) = text.split_once('/').unwrap_or((text.as_str(), "32"));
        let net: std::net::Ipv4Addr = net.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        let len: u32 = len.parse().unwrap_or(99);
        prop_assert_eq!(len, u32::from(prefix));
        let host_mask = u32::MAX.checked_shr(len).unwrap_or(0);
        prop_assert_eq!(u32::from(net) & host_mask, 0);
        prop_assert!(!text.ends_with("/32"), "tgtd never matches /32: {}", text);
    }

    #[test]
    fn show_target_round_trips(targets in proptest::collection::vec(arb_target(), 0..4)) {
        let text = render(&targets);
        let (parsed, stray) = parse_targets(&text);
        prop_assert!(stray.is_empty());
        prop_assert_eq!(parsed, targets);
    }
}

fn arb_lun() -> impl Strategy<Value = LunInfo> {
    (
        0_u64..20,
        "[A-Za-z0-9][A-Za-z0-9 -]{0,20}[A-Za-z0-9]",
        "[A-Za-z0-9-]{1,20}",
        any::<bool>(),
        proptest::option::of("/[a-z0-9/._-]{1,30}"),
        prop::sample::select(vec!["", "sync", "direct", "sync:direct"]),
    )
        .prop_map(|(lun, id, sn, ro, path, flags)| LunInfo {
            lun,
            device_type: Some("disk".into()),
            scsi_id: Some(id),
            scsi_sn: Some(sn),
            size: Some("67 MB".into()),
            block_size: Some(512),
            online: Some(true),
            removable: Some(false),
            readonly: Some(ro),
            backing_type: Some("rdwr".into()),
            path,
            backing_flags: Some(flags.to_string()),
        })
}

fn arb_target() -> impl Strategy<Value = TargetInfo> {
    (
        1_i32..1000,
        "iqn\\.2024-01\\.com\\.example:[a-z0-9.-]{1,20}",
        any::<bool>(),
        proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<u32>(), 0..3)),
            0..3,
        ),
        proptest::collection::vec(arb_lun(), 0..4),
        proptest::collection::vec("[a-z]{1,10}", 0..3),
        proptest::option::of("[a-z]{1,10}"),
        proptest::collection::vec(
            prop::sample::select(vec![
                "ALL",
                "10.0.0.0/8",
                "127.0.0.1",
                "iqn.2024-01.com.example:i",
            ]),
            0..4,
        ),
    )
        .prop_map(
            |(tid, name, ready, nexuses, luns, users, out, acl)| TargetInfo {
                tid,
                name,
                driver: Some("iscsi".into()),
                state: Some(if ready { "ready" } else { "offline" }.into()),
                nexuses: nexuses
                    .into_iter()
                    .map(|(id, cids)| NexusInfo {
                        id,
                        initiator: Some("iqn.2024-01.com.example:init".into()),
                        connections: cids
                            .into_iter()
                            .map(|cid| NexusConnection {
                                cid,
                                address: Some("127.0.0.1".into()),
                            })
                            .collect(),
                    })
                    .collect(),
                luns,
                incoming_users: users,
                outgoing_user: out,
                acl: acl.into_iter().map(String::from).collect(),
                unknown: vec![],
            },
        )
}

/// Renders targets the way tgtd's `tgt_target_show_all` prints them.
fn render(targets: &[TargetInfo]) -> String {
    let yn = |b: Option<bool>| if b == Some(true) { "Yes" } else { "No" };
    let mut out = String::new();
    for t in targets {
        out += &format!(
            "Target {}: {}\n    System information:\n        Driver: {}\n        State: {}\n",
            t.tid,
            t.name,
            t.driver.as_deref().unwrap_or(""),
            t.state.as_deref().unwrap_or("")
        );
        out += "    I_T nexus information:\n";
        for n in &t.nexuses {
            out += &format!("        I_T nexus: {}\n", n.id);
            out += &format!(
                "            Initiator: {} alias: none\n",
                n.initiator.as_deref().unwrap_or("")
            );
            for c in &n.connections {
                out += &format!("            Connection: {}\n", c.cid);
                out += &format!(
                    "                IP Address: {}\n",
                    c.address.as_deref().unwrap_or("")
                );
            }
        }
        out += "    LUN information:\n";
        for l in &t.luns {
            out += &format!("        LUN: {}\n", l.lun);
            out += &format!(
                "            Type: {}\n",
                l.device_type.as_deref().unwrap_or("")
            );
            out += &format!(
                "            SCSI ID: {}\n",
                l.scsi_id.as_deref().unwrap_or("")
            );
            out += &format!(
                "            SCSI SN: {}\n",
                l.scsi_sn.as_deref().unwrap_or("")
            );
            out += &format!(
                "            Size: {}, Block size: {}\n",
                l.size.as_deref().unwrap_or(""),
                l.block_size.unwrap_or(0)
            );
            out += &format!("            Online: {}\n", yn(l.online));
            out += &format!("            Removable media: {}\n", yn(l.removable));
            out += "            Prevent removal: No\n";
            out += &format!("            Readonly: {}\n", yn(l.readonly));
            out += "            SWP: No\n            Thin-provisioning: No\n";
            out += &format!(
                "            Backing store type: {}\n",
                l.backing_type.as_deref().unwrap_or("")
            );
            out += &format!(
                "            Backing store path: {}\n",
                l.path.as_deref().unwrap_or("None")
            );
            out += &format!(
                "            Backing store flags: {}\n",
                l.backing_flags.as_deref().unwrap_or("")
            );
        }
        out += "    Account information:\n";
        for u in &t.incoming_users {
            out += &format!("        {u}\n");
        }
        if let Some(u) = &t.outgoing_user {
            out += &format!("        {u} (outgoing)\n");
        }
        out += "    ACL information:\n";
        for a in &t.acl {
            out += &format!("        {a}\n");
        }
    }
    out
}
