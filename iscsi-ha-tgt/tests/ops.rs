//! Each typed operation against a real tgtd, with tgtadm as the witness where it helps.

mod common;

use std::time::Duration;

use common::{run, text, Bench, INITIATOR};
use iscsi_ha_tgt::ops::{LunBacking, LunSettings, State};
use iscsi_ha_tgt::wire::{AccountDirection, ReplyCode};
use iscsi_ha_tgt::TgtError;

const NAME: &str = "iqn.2024-01.com.example:ops";

fn refused_with(result: Result<(), TgtError>, code: ReplyCode) {
    match result {
        Err(TgtError::Refused { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected tgtd to refuse with {code}, got {other:?}"),
    }
}

#[test]
fn system_show_state_and_refusals() {
    let bench = Bench::new();
    let _tgtd = bench.start_tgtd();
    let tgt = bench.tgt();
    let system = tgt.system_show().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(system.state.as_deref(), Some("ready"));
    assert_eq!(system.lld_state("iscsi"), Some("ready"));

    tgt.target_new(1, NAME).unwrap_or_else(|e| panic!("{e}"));
    tgt.lun_new(1, 1, &LunBacking::rdwr(bench.disk("s.img", 4)))
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.acl_bind_all(1).unwrap_or_else(|e| panic!("{e}"));

    // tgtd's own refusals come back typed.
    refused_with(tgt.target_new(1, NAME), ReplyCode::TargetExist);
    refused_with(tgt.target_delete(7, false), ReplyCode::NoTarget);
    refused_with(tgt.acl_bind_all(1), ReplyCode::AclExist);
    refused_with(tgt.acl_unbind_name(1, INITIATOR), ReplyCode::AclNoExist);
    refused_with(
        tgt.lun_new(1, 1, &LunBacking::rdwr(bench.disk("t.img", 1))),
        ReplyCode::LunExist,
    );
    refused_with(tgt.account_delete("nobody"), ReplyCode::NoUser);
    // tgtd refuses to exit while it holds a target.
    refused_with(tgt.system_delete(), ReplyCode::InvalidRequest);

    // Offline system: new logins fail; ready again: they work.
    tgt.system_set_state(State::Offline)
        .unwrap_or_else(|e| panic!("{e}"));
    let offline = run("iscsi-inq", &["-i", INITIATOR, &bench.url(NAME, 1, None)]);
    assert!(!offline.status.success(), "{}", text(&offline));
    tgt.system_set_state(State::Ready)
        .unwrap_or_else(|e| panic!("{e}"));
    let ready = run("iscsi-inq", &["-i", INITIATOR, &bench.url(NAME, 1, None)]);
    assert!(ready.status.success(), "{}", text(&ready));

    // Target offline: the same.
    tgt.target_set_state(1, State::Offline)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(bench.tgtadm_show().contains("        State: offline\n"));
    tgt.target_set_state(1, State::Ready)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn target_params_luns_acls_and_accounts() {
    let bench = Bench::new();
    let _tgtd = bench.start_tgtd();
    let tgt = bench.tgt();
    tgt.target_new(3, NAME).unwrap_or_else(|e| panic!("{e}"));
    tgt.target_update(3, "MaxRecvDataSegmentLength", "65536")
        .unwrap_or_else(|e| panic!("{e}"));
    let params = tgt.target_params(3).unwrap_or_else(|e| panic!("{e}"));
    assert!(params.contains(&("MaxRecvDataSegmentLength".into(), "65536".into())));
    refused_with(
        tgt.target_update(3, "NoSuchKey", "1"),
        ReplyCode::InvalidRequest,
    );

    let backing = LunBacking {
        path: bench.disk("b.img", 8),
        bstype: "rdwr".into(),
        block_size: Some(4096),
        bsoflags: Some("sync".into()),
    };
    tgt.lun_new(3, 2, &backing)
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.lun_update(
        3,
        2,
        &LunSettings {
            scsi_id: Some("id with  spaces".into()),
            scsi_sn: Some("SN-2".into()),
            vendor_id: Some("ACME".into()),
            product_id: Some("Widget".into()),
            readonly: Some(true),
            write_cache: Some(false),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let targets = tgt.targets().unwrap_or_else(|e| panic!("{e}"));
    let lun = targets
        .first()
        .and_then(|t| t.data_luns().next().cloned())
        .unwrap_or_else(|| panic!("no LUN in {targets:?}"));
    assert_eq!(lun.lun, 2);
    assert_eq!(lun.scsi_id.as_deref(), Some("id with  spaces"));
    assert_eq!(lun.scsi_sn.as_deref(), Some("SN-2"));
    assert_eq!(lun.readonly, Some(true));
    assert_eq!(lun.block_size, Some(4096));
    assert_eq!(lun.backing_flags.as_deref(), Some("sync"));
    assert_eq!(lun.path.as_deref(), Some(backing.path.as_str()));

    tgt.acl_bind_address(3, "192.168.7.9/24")
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.acl_bind_name(3, INITIATOR)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = tgt.targets().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t[0].acl_addresses(), vec!["192.168.7.0/24".to_string()]);
    assert_eq!(t[0].acl_names(), vec![INITIATOR.to_string()]);
    tgt.acl_unbind_address(3, "192.168.7.0/24")
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.acl_unbind_name(3, INITIATOR)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tgt.targets().unwrap_or_else(|e| panic!("{e}"))[0]
        .acl
        .is_empty());

    tgt.account_new("alice", "secretpass12")
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.account_new("tgtout", "outsecret123")
        .unwrap_or_else(|e| panic!("{e}"));
    refused_with(
        tgt.account_new("alice", "secretpass12"),
        ReplyCode::UserExist,
    );
    tgt.account_bind(3, "alice", AccountDirection::Incoming)
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.account_bind(3, "tgtout", AccountDirection::Outgoing)
        .unwrap_or_else(|e| panic!("{e}"));
    refused_with(
        tgt.account_bind(3, "alice", AccountDirection::Outgoing),
        ReplyCode::OutAccountExist,
    );
    let mut accounts = tgt.accounts().unwrap_or_else(|e| panic!("{e}"));
    accounts.sort();
    assert_eq!(accounts, vec!["alice".to_string(), "tgtout".to_string()]);
    let t = tgt.targets().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t[0].incoming_users, vec!["alice".to_string()]);
    assert_eq!(t[0].outgoing_user.as_deref(), Some("tgtout"));
    tgt.account_unbind(3, "tgtout", AccountDirection::Outgoing)
        .unwrap_or_else(|e| panic!("{e}"));
    // Deleting an account unbinds it everywhere.
    tgt.account_delete("alice")
        .unwrap_or_else(|e| panic!("{e}"));
    let t = tgt.targets().unwrap_or_else(|e| panic!("{e}"));
    assert!(t[0].incoming_users.is_empty() && t[0].outgoing_user.is_none());

    tgt.lun_delete(3, 2).unwrap_or_else(|e| panic!("{e}"));
    tgt.target_delete(3, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tgt.targets().unwrap_or_else(|e| panic!("{e}")).is_empty());
}

#[test]
fn connections_are_listed_and_dropped() {
    let bench = Bench::new();
    let _tgtd = bench.start_tgtd();
    let tgt = bench.tgt();
    tgt.target_new(1, NAME).unwrap_or_else(|e| panic!("{e}"));
    tgt.lun_new(1, 1, &LunBacking::rdwr(bench.disk("c.img", 32)))
        .unwrap_or_else(|e| panic!("{e}"));
    tgt.acl_bind_name(1, INITIATOR)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reader = bench.reader(NAME, 1, None);
    assert!(
        reader.makes_progress(Duration::from_secs(20)),
        "{}",
        reader.output()
    );

    let conns = tgt.connections(1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].initiator.as_deref(), Some(INITIATOR));
    assert_eq!(conns[0].address.as_deref(), Some("127.0.0.1"));
    let nexus = tgt.targets().unwrap_or_else(|e| panic!("{e}"))[0]
        .nexuses
        .clone();
    assert_eq!(nexus.len(), 1);
    assert_eq!(nexus[0].id, conns[0].sid);

    tgt.connection_delete(1, conns[0].sid, conns[0].cid)
        .unwrap_or_else(|e| panic!("{e}"));
    // The session is gone (libiscsi may log in again, under a new session id).
    let old = conns[0].sid;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut still_there = true;
    while still_there && std::time::Instant::now() < deadline {
        let now = tgt.connections(1).unwrap_or_else(|e| panic!("{e}"));
        still_there = now.iter().any(|c| c.sid == old);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !still_there,
        "session {old} survived its dropped connection"
    );
    drop(reader);
    refused_with(tgt.connection_delete(1, 999, 0), ReplyCode::NoSession);
    tgt.target_delete(1, true).unwrap_or_else(|e| panic!("{e}"));
}
