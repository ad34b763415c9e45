//! Split-brain recognition and the reconnect request, on real captured bytes
//! (fixtures/drbd/genl): the GET_STATUS reply of the lab's `r0` (its NET_CONF and UUIDs) and
//! the helper events of a resync, with the state and helper name changed where a scenario
//! needs another value than the capture holds.

use std::path::PathBuf;

use iscsi_ha_core::volume::{DiskState, VolumeRole};
use iscsi_ha_drbd::events::{event_from_message, DrbdEvent};
use iscsi_ha_drbd::netconf::{
    connect_message, sockaddr_text, NetConfig, NET_CONF_DISCARD_MY_DATA, NET_CONF_TENTATIVE,
};
use iscsi_ha_drbd::split_brain::{
    assess, facts_from_messages, DataUuids, SplitBrainLog, SPLIT_BRAIN_HELPER,
};
use iscsi_ha_drbd::state::Dialect;
use iscsi_ha_drbd::wire::attr::{parse_attrs, DRBD_GENLA_F_MANDATORY};
use iscsi_ha_drbd::wire::cmd::tla;
use iscsi_ha_drbd::wire::{
    decode_datagram, encode_request, DrbdCommand, DrbdMessage, Frame, RequestFlags, SibReason,
    MINOR_NONE,
};

const FAMILY: u16 = 32;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}

/// The drbd messages of a capture with their nlmsg seq (the family id was 32 in every one).
fn messages(name: &str) -> Vec<(u32, DrbdMessage)> {
    messages_with_direction(name)
        .into_iter()
        .map(|(_, seq, m)| (seq, m))
        .collect()
}

/// The drbd messages of a capture: (sent by user space, seq, message).
fn messages_with_direction(name: &str) -> Vec<(bool, u32, DrbdMessage)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/drbd/genl")
        .join(format!("{name}.nlhex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let bytes = hex(line.split_once(' ').expect("index and hex").1.trim());
        let request = u16::from_le_bytes([bytes[6], bytes[7]]) & 1 != 0;
        for frame in decode_datagram(&bytes, FAMILY).expect("captured message decodes") {
            if let Frame::Drbd { seq, message, .. } = frame {
                out.push((request, seq, *message));
            }
        }
    }
    out
}

/// The GET_STATUS replies of `drbdsetup show all` (node1, Connected, Secondary/Secondary).
fn status_replies() -> Vec<DrbdMessage> {
    messages("status-all-show")
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.cmd == DrbdCommand::GetStatus && m.header.minor != MINOR_NONE)
        .collect()
}

/// 8.4 state word from its fields (role, peer, conn, disk, pdsk).
fn word(role: u32, peer: u32, conn: u32, disk: u32, pdsk: u32) -> u32 {
    role | peer << 2 | conn << 4 | disk << 9 | pdsk << 13
}
const PRIMARY: u32 = 1;
const SECONDARY: u32 = 2;
const UNKNOWN: u32 = 0;
const STANDALONE: u32 = 0;
const WF_CONNECTION: u32 = 8;
const CONNECTED: u32 = 10;
const UP_TO_DATE: u32 = 8;
const DUNKNOWN: u32 = 6;

fn uuid_bytes(u: DataUuids) -> Vec<u8> {
    [u.current, u.bitmap, u.history[0], u.history[1]]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

/// The captured reply of minor 1 with another state, out-of-sync count and UUIDs.
fn reply_with(state: u32, oos_bits: u64, uuids: DataUuids) -> Vec<DrbdMessage> {
    let mut replies = status_replies();
    let info = replies[0].attrs.state_info.as_mut().expect("STATE_INFO");
    info.current_state = Some(state);
    info.bits_oos = Some(oos_bits);
    info.uuids = Some(uuid_bytes(uuids));
    replies
}

const DIVERGED: DataUuids = DataUuids {
    current: 0x5A6B_7C8D_9EAF_0001,
    bitmap: 0x3ABC_942E_74F5_139C,
    history: [0, 0],
};

#[test]
fn the_captured_reply_carries_uuids_and_is_no_split_brain() {
    let replies = status_replies();
    let facts = facts_from_messages("r0", &replies).expect("facts");
    assert_eq!(facts.len(), 1);
    let uuids = facts[0].uuids.expect("uuids in the reply");
    // The reply's ed_uuid is the current UUID.
    let ed = replies[0]
        .attrs
        .state_info
        .as_ref()
        .unwrap()
        .ed_uuid
        .unwrap();
    assert_eq!(uuids.current, ed);
    assert_eq!(uuids.bitmap, 0, "connected and in sync: no bitmap UUID");
    assert_eq!(assess("r0", &facts, &[]), None);
}

#[test]
fn a_maintenance_disconnect_followed_by_writes_is_not_a_split_brain() {
    // What `drbdadm disconnect r0` on the serving Primary and then writes leave behind:
    // StandAlone, the peer unknown, a new generation (bitmap UUID set) and blocks out of
    // sync. A split brain on this side looks the same locally; only the kernel's helper call
    // tells them apart, and none was seen. Reporting this would freeze the only good host.
    for (role, oos_bits) in [(PRIMARY, 3), (PRIMARY, 262_144), (SECONDARY, 1)] {
        let replies = reply_with(
            word(role, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN),
            oos_bits,
            DIVERGED,
        );
        let facts = facts_from_messages("r0", &replies).expect("facts");
        assert_eq!(facts[0].uuids.map(|u| u.bitmap), Some(DIVERGED.bitmap));
        assert!(facts[0].volume.out_of_sync_kib.is_some_and(|k| k > 0));
        assert_eq!(
            assess("r0", &facts, &[]),
            None,
            "role {role}, {oos_bits} bits out of sync"
        );
    }
    // The same state with the helper call seen is one.
    let replies = reply_with(
        word(PRIMARY, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN),
        3,
        DIVERGED,
    );
    let facts = facts_from_messages("r0", &replies).expect("facts");
    let mut log = SplitBrainLog::new();
    log.note(&helper_event(SPLIT_BRAIN_HELPER));
    let sb = assess("r0", &facts, &log.for_resource("r0", &[1])).expect("split brain");
    assert!(
        sb.evidence.contains("split-brain handler"),
        "{}",
        sb.evidence
    );
    assert_eq!(sb.local.role, VolumeRole::Primary);
    assert_eq!(sb.local.disk, DiskState::UpToDate);
    assert_eq!(sb.local.out_of_sync_kib, Some(12));
    assert_eq!(sb.local.current_uuid.as_deref(), Some("5A6B7C8D9EAF0001"));
}

#[test]
fn a_clean_disconnect_is_not_a_split_brain() {
    // Disconnected while Primary: DRBD starts a new generation (bitmap UUID set) but nothing
    // was written since, so nothing is out of sync.
    let replies = reply_with(
        word(PRIMARY, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN),
        0,
        DIVERGED,
    );
    let facts = facts_from_messages("r0", &replies).expect("facts");
    assert_eq!(assess("r0", &facts, &[]), None);
    // Secondaries disconnected: no new generation at all.
    let replies = reply_with(
        word(SECONDARY, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN),
        0,
        DataUuids {
            bitmap: 0,
            ..DIVERGED
        },
    );
    let facts = facts_from_messages("r0", &replies).expect("facts");
    assert_eq!(assess("r0", &facts, &[]), None);
    // Waiting for the peer (link cut, not StandAlone) with changes: degraded, not split.
    let replies = reply_with(
        word(PRIMARY, UNKNOWN, WF_CONNECTION, UP_TO_DATE, DUNKNOWN),
        5,
        DIVERGED,
    );
    let facts = facts_from_messages("r0", &replies).expect("facts");
    assert_eq!(assess("r0", &facts, &[]), None);
}

/// The resync capture's helper call (`before-resync-source`) renamed to `name`.
fn helper_event(name: &str) -> DrbdEvent {
    let (seq, mut msg) = messages("events-resync")
        .into_iter()
        .find(|(_, m)| {
            m.cmd == DrbdCommand::Event
                && m.attrs
                    .state_info
                    .as_ref()
                    .is_some_and(|i| i.sib_reason == Some(3))
        })
        .expect("a HELPER_PRE event in the resync capture");
    msg.attrs.state_info.as_mut().expect("STATE_INFO").helper = Some(name.to_string());
    event_from_message(seq, &msg, Dialect::V84)
}

/// A captured state change of minor 1 with its new state replaced.
fn state_change(new: u32) -> DrbdEvent {
    let (seq, mut msg) = messages("events-connect")
        .into_iter()
        .find(|(_, m)| {
            m.cmd == DrbdCommand::Event
                && m.attrs
                    .state_info
                    .as_ref()
                    .is_some_and(|i| i.sib_reason == Some(2))
        })
        .expect("a state change in the connect capture");
    let info = msg.attrs.state_info.as_mut().expect("STATE_INFO");
    info.new_state = Some(new);
    info.current_state = Some(new);
    event_from_message(seq, &msg, Dialect::V84)
}

#[test]
fn the_split_brain_helper_event_confirms_it_until_the_connection_is_up_again() {
    let event = helper_event(SPLIT_BRAIN_HELPER);
    match &event {
        DrbdEvent::State(e) => {
            assert_eq!(e.reason, SibReason::HelperPre);
            assert_eq!(e.resource.as_deref(), Some("r0"));
            assert_eq!(e.minor, 1);
        }
        other => panic!("{other:?}"),
    }
    let mut log = SplitBrainLog::new();
    log.note(&helper_event("before-resync-source"));
    assert!(log.is_empty(), "other helpers are not split brains");
    log.note(&event);
    log.note(&state_change(word(
        SECONDARY, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN,
    )));
    let seen = log.for_resource("r0", &[1]);
    assert_eq!(seen.len(), 1);

    // Even with nothing out of sync on this side (the peer wrote, this side did not), the
    // helper call is proof.
    let replies = reply_with(
        word(SECONDARY, UNKNOWN, STANDALONE, UP_TO_DATE, DUNKNOWN),
        0,
        DIVERGED,
    );
    let facts = facts_from_messages("r0", &replies).expect("facts");
    let sb = assess("r0", &facts, &seen).expect("split brain");
    assert!(
        sb.evidence.contains("split-brain handler"),
        "{}",
        sb.evidence
    );
    assert!(sb.evidence.contains("StandAlone"), "{}", sb.evidence);
    assert_eq!(sb.local.role, VolumeRole::Secondary);
    assert_eq!(sb.local.out_of_sync_kib, Some(0));

    // Connected again: over, in the log and in the assessment.
    let connected = reply_with(
        word(SECONDARY, SECONDARY, CONNECTED, UP_TO_DATE, UP_TO_DATE),
        0,
        DataUuids::default(),
    );
    let facts = facts_from_messages("r0", &connected).expect("facts");
    assert_eq!(assess("r0", &facts, &seen), None);
    log.note(&state_change(word(
        SECONDARY, SECONDARY, CONNECTED, UP_TO_DATE, UP_TO_DATE,
    )));
    assert!(log.for_resource("r0", &[1]).is_empty());
}

#[test]
fn the_running_net_configuration_is_read_from_the_status_reply() {
    let replies = status_replies();
    let config = NetConfig::from_messages("r0", &replies).expect("r0 has a connection");
    assert_eq!(sockaddr_text(&config.my_addr), "10.99.0.1:7789");
    assert_eq!(config.peer_text(), "10.99.0.2:7789");
    let fields = config.fields().expect("NET_CONF fields");
    let u32_field = |n: u16| {
        let v = &fields.iter().find(|f| f.number == n).expect("field").value;
        u32::from_ne_bytes(v.as_slice().try_into().expect("u32"))
    };
    // drbdsetup show printed connect-int 1 and ping-int 1 (non-defaults); protocol C = 3.
    assert_eq!(u32_field(6), 3);
    assert_eq!(u32_field(7), 1);
    assert_eq!(u32_field(9), 1);
    assert!(
        !config.secret_withheld(),
        "captured as root: the (empty) secret is there"
    );
    assert_eq!(NetConfig::from_messages("r9", &replies), None);
    // The JSON the adapter keeps round-trips.
    let json = serde_json::to_string(&config).expect("json");
    assert_eq!(
        serde_json::from_str::<NetConfig>(&json).expect("back"),
        config
    );
}

#[test]
fn the_connect_request_replays_the_configuration_with_discard_my_data() {
    let config = NetConfig::from_messages("r0", &status_replies()).expect("config");
    for discard in [false, true] {
        let msg = connect_message(&config, discard).expect("connect message");
        assert_eq!(msg.cmd, DrbdCommand::Connect);
        assert_eq!(msg.cmd.number(), 10);
        assert_eq!(msg.header.minor, MINOR_NONE);
        let ctx = msg.attrs.cfg_context.as_ref().expect("context");
        assert_eq!(ctx.resource_name.as_deref(), Some("r0"));
        assert_eq!(ctx.my_addr.as_ref(), Some(&config.my_addr));
        assert_eq!(ctx.peer_addr.as_ref(), Some(&config.peer_addr));
        // Encoded and decoded as the kernel would read it.
        let bytes = encode_request(FAMILY, 7, RequestFlags::Request, &msg).expect("encode");
        let frames = decode_datagram(&bytes, FAMILY).expect("decode");
        let Frame::Drbd { message, .. } = &frames[0] else {
            panic!("{frames:?}")
        };
        let net = message
            .attrs
            .other
            .iter()
            .find(|a| a.number == tla::NET_CONF)
            .expect("NET_CONF");
        let fields = parse_attrs("NET_CONF", &net.value).expect("fields");
        let original = config.fields().expect("fields");
        for f in &original {
            if f.number == NET_CONF_DISCARD_MY_DATA || f.number == NET_CONF_TENTATIVE {
                continue;
            }
            let sent = fields
                .iter()
                .find(|s| s.number == f.number)
                .unwrap_or_else(|| panic!("field {} replayed", f.number));
            assert_eq!(sent.value, f.value, "field {}", f.number);
            assert_eq!(
                sent.flags & DRBD_GENLA_F_MANDATORY != 0,
                f.number <= 29,
                "field {} mandatory as drbdsetup marks it",
                f.number
            );
        }
        let dmd = fields.iter().find(|s| s.number == NET_CONF_DISCARD_MY_DATA);
        assert_eq!(dmd.map(|f| f.value.clone()), discard.then(|| vec![1]));
        assert!(!fields.iter().any(|s| s.number == NET_CONF_TENTATIVE));
        assert!(fields.windows(2).all(|w| w[0].number < w[1].number));
    }
}

#[test]
fn a_truncated_net_configuration_is_an_error_not_a_panic() {
    let mut config = NetConfig::from_messages("r0", &status_replies()).expect("config");
    // The second field says 5 bytes; 3 are left.
    config.net_conf.truncate(11);
    assert!(connect_message(&config, true).is_err());
    assert!(config.secret_withheld());
}

#[test]
fn short_uuids_are_ignored() {
    assert_eq!(DataUuids::from_bytes(&[0; 31]), None);
    let u = DataUuids::from_bytes(&uuid_bytes(DIVERGED)).expect("32 bytes");
    assert_eq!(u, DIVERGED);
}

/// The CONNECT request of a capture.
fn captured_connect(name: &str) -> DrbdMessage {
    let mut connects: Vec<DrbdMessage> = messages_with_direction(name)
        .into_iter()
        .filter(|(request, _, m)| *request && m.cmd == DrbdCommand::Connect)
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(connects.len(), 1, "{name}: one CONNECT request");
    connects.remove(0)
}

fn net_conf_fields(msg: &DrbdMessage) -> Vec<iscsi_ha_drbd::wire::attr::RawAttr> {
    let raw = msg
        .attrs
        .other
        .iter()
        .find(|a| a.number == tla::NET_CONF)
        .expect("NET_CONF");
    parse_attrs("NET_CONF", &raw.value).expect("NET_CONF fields")
}

/// node2's running configuration, from `drbdsetup-84 show r0` (GET_STATUS dump).
fn node2_config() -> NetConfig {
    let replies: Vec<DrbdMessage> = messages_with_direction("show-r0")
        .into_iter()
        .filter(|(request, _, m)| !request && m.cmd == DrbdCommand::GetStatus)
        .map(|(_, _, m)| m)
        .collect();
    NetConfig::from_messages("r0", &replies).expect("r0's configuration in drbdsetup show")
}

#[test]
fn our_connect_matches_drbdsetups_connect_discard_my_data_field_for_field() {
    // drbdsetup-84 connect r0 ipv4:10.99.0.2:7789 ipv4:10.99.0.1:7789 --connect-int=1
    //   --ping-timeout=5 --ping-int=1 --protocol=C --discard-my-data
    let theirs = captured_connect("connect-discard-my-data");
    let config = node2_config();
    assert_eq!(config.peer_text(), "10.99.0.1:7789");
    let ours = connect_message(&config, true).expect("connect message");
    assert_eq!(ours.header, theirs.header);
    assert_eq!(ours.version, theirs.version);
    assert_eq!(ours.attrs.cfg_context, theirs.attrs.cfg_context);
    let (their_net, our_net) = (net_conf_fields(&theirs), net_conf_fields(&ours));
    assert_eq!(
        their_net.iter().map(|f| f.number).collect::<Vec<_>>(),
        [7, 10, 9, 6, 25],
        "drbdsetup sends only the options given"
    );
    for f in &their_net {
        let mine = our_net
            .iter()
            .find(|o| o.number == f.number)
            .unwrap_or_else(|| panic!("field {} missing", f.number));
        assert_eq!(mine, f, "NET_CONF field {}: value and flags", f.number);
    }
    // Without discarding, the same but for the flag.
    let plain = connect_message(&config, false).expect("connect message");
    assert!(!net_conf_fields(&plain)
        .iter()
        .any(|f| f.number == NET_CONF_DISCARD_MY_DATA));
}

#[test]
fn the_captured_connect_of_iha_drbd_is_the_replayed_configuration() {
    // What `iha-drbd connect r0 --discard-my-data` sent in the lab (the kernel answered
    // SS_SUCCESS and the nodes connected), against what this code builds from drbdsetup's
    // view of the same configuration.
    let sent = captured_connect("connect-discard-my-data-ours");
    let built = connect_message(&node2_config(), true).expect("connect message");
    assert_eq!(sent, built);
    let reply = messages_with_direction("connect-discard-my-data-ours")
        .into_iter()
        .find(|(request, _, m)| !request && m.cmd == DrbdCommand::Connect)
        .expect("the kernel's reply")
        .2;
    assert_eq!(reply.header.ret_code, 1, "SS_SUCCESS");
}

#[test]
fn the_events2_helper_notification_is_recognised_too() {
    use iscsi_ha_drbd::events::{Notification, NotifyKind};
    use iscsi_ha_drbd::state::ConnState;
    let helper = |kind, name: &str| Notification {
        seq: 9,
        cmd: DrbdCommand::Helper,
        minor: 1,
        kind: Some(kind),
        continues: false,
        resource: Some("r0".to_string()),
        volume: Some(0),
        role: None,
        suspended: None,
        disk: None,
        connection: None,
        peer_role: None,
        replication: None,
        peer_disk: None,
        helper: Some(name.to_string()),
    };
    let mut log = SplitBrainLog::new();
    log.note(&DrbdEvent::Notification(helper(
        NotifyKind::Call,
        "fence-peer",
    )));
    log.note(&DrbdEvent::Notification(helper(
        NotifyKind::Response,
        SPLIT_BRAIN_HELPER,
    )));
    assert!(
        log.is_empty(),
        "only the call of the split-brain helper counts"
    );
    log.note(&DrbdEvent::Notification(helper(
        NotifyKind::Call,
        SPLIT_BRAIN_HELPER,
    )));
    assert_eq!(log.for_resource("r0", &[]).len(), 1);
    assert!(log.for_resource("r1", &[1]).is_empty());
    // The connection notification (minor ~0, by resource) that it is up again clears it.
    let mut up = helper(NotifyKind::Change, "");
    up.cmd = DrbdCommand::ConnectionState;
    up.minor = MINOR_NONE;
    up.helper = None;
    up.connection = Some(ConnState::StandAlone);
    log.note(&DrbdEvent::Notification(up.clone()));
    assert_eq!(log.for_resource("r0", &[]).len(), 1);
    up.connection = Some(ConnState::Connected);
    log.note(&DrbdEvent::Notification(up));
    assert!(log.is_empty());
}

proptest::proptest! {
    /// Whatever a kept configuration holds (a damaged file, a lying kernel), building the
    /// CONNECT request is an error or a request, never a panic, and a request always carries
    /// the discard flag exactly when asked.
    #[test]
    fn connect_message_is_total_on_any_net_conf(
        net_conf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        my_addr in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        discard in proptest::prelude::any::<bool>(),
    ) {
        let config = NetConfig {
            resource: "r0".to_string(),
            my_addr: my_addr.clone(),
            peer_addr: my_addr,
            net_conf,
        };
        let _ = config.secret_withheld();
        let _ = config.peer_text();
        if let Ok(msg) = connect_message(&config, discard) {
            let fields = net_conf_fields(&msg);
            let flagged = fields.iter().any(|f| f.number == NET_CONF_DISCARD_MY_DATA);
            proptest::prop_assert_eq!(flagged, discard);
        }
    }

    /// The UUID field of any length reads as four words or nothing.
    #[test]
    fn uuids_are_total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let u = DataUuids::from_bytes(&bytes);
        proptest::prop_assert_eq!(u.is_some(), bytes.len() >= 32);
    }
}
