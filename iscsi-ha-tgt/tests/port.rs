//! The `IscsiTarget` port against a real tgtd, checked by a real initiator (libiscsi).

mod common;

use std::time::{Duration, Instant};

use common::{chap, run, spec, text, Bench, INITIATOR, STRANGER};
use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_core::target::LunIdentity;
use iscsi_ha_tgt::adapter::observe;
use iscsi_ha_tgt::show::parse_targets;

#[test]
fn serve_from_empty_is_what_a_real_initiator_sees() {
    let bench = Bench::new();
    let d1 = bench.disk("d1.img", 64);
    let d2 = bench.disk("d2.img", 32);
    let mut spec = spec("served", &[d1, d2]);
    spec.luns[1].identity = LunIdentity::new(
        "iha-served-2".into(),
        "SN-SERVED-2".into(),
        Some("ACME".into()),
        Some("Widget".into()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    spec.luns[1].read_only = true;
    spec.access.initiator_addresses = vec!["127.0.0.1/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let mut target = bench.managed_target();

    assert!(!target.status().map(|s| s.daemon_running).unwrap_or(true));
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(spec.is_served_by(&status), "{status:#?}");
    let observed = status.find(&spec.iqn).cloned().unwrap_or_default();
    assert_eq!(
        observed.initiator_addresses,
        vec!["127.0.0.0/8".to_string()]
    );
    assert_eq!(observed.initiator_names, vec![INITIATOR.to_string()]);

    // tgtadm, the witness, sees the same.
    let (witness, stray) = parse_targets(&bench.tgtadm_show());
    assert!(stray.is_empty());
    let witness: Vec<_> = witness.iter().map(observe).collect();
    assert_eq!(witness, status.targets);

    // The initiator: discovery, INQUIRY, VPD serial and id, capacity.
    let ls = bench.discover(INITIATOR);
    let ls_text = text(&ls);
    assert!(ls_text.contains(spec.iqn.as_str()), "{ls_text}");
    assert!(
        ls_text.contains("Lun:1") && ls_text.contains("Lun:2"),
        "{ls_text}"
    );
    let iqn = spec.iqn.to_string();
    let inq = run("iscsi-inq", &["-i", INITIATOR, &bench.url(&iqn, 2, None)]);
    let inq_text = text(&inq);
    assert!(inq.status.success(), "{inq_text}");
    assert!(inq_text.contains("Vendor:ACME"), "{inq_text}");
    assert!(inq_text.contains("Product:Widget"), "{inq_text}");
    let serial = run(
        "iscsi-inq",
        &[
            "-e",
            "1",
            "-c",
            "128",
            "-i",
            INITIATOR,
            &bench.url(&iqn, 2, None),
        ],
    );
    assert!(text(&serial).contains("SN-SERVED-2]"), "{}", text(&serial));
    let id = run(
        "iscsi-inq",
        &[
            "-e",
            "1",
            "-c",
            "131",
            "-i",
            INITIATOR,
            &bench.url(&iqn, 1, None),
        ],
    );
    let derived = &spec.luns[0].identity.scsi_id;
    assert!(text(&id).contains(&format!("[{derived}]")), "{}", text(&id));
    let cap = run(
        "iscsi-readcapacity16",
        &["-i", INITIATOR, &bench.url(&iqn, 1, None)],
    );
    assert!(text(&cap).contains("Total size:67108864"), "{}", text(&cap));
    let cap2 = run(
        "iscsi-readcapacity16",
        &["-i", INITIATOR, &bench.url(&iqn, 2, None)],
    );
    assert!(
        text(&cap2).contains("Total size:33554432"),
        "{}",
        text(&cap2)
    );

    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
    let after = target.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(!after.daemon_running);
    assert!(
        !bench.client().socket().exists(),
        "the socket file is left behind"
    );
}

#[test]
fn chap_logs_in_with_the_right_secret_only() {
    let bench = Bench::new();
    let mut spec = spec("chap", &[bench.disk("c.img", 16)]);
    spec.access.incoming = vec![chap("alice", "secretpass12")];
    spec.access.outgoing = Some(chap("tgtout", "outsecret123"));
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(spec.is_served_by(&status), "{status:#?}");

    let iqn = spec.iqn.to_string();
    let right = run(
        "iscsi-readcapacity16",
        &[
            "-i",
            INITIATOR,
            &bench.url(&iqn, 1, Some(("alice", "secretpass12"))),
        ],
    );
    assert!(right.status.success(), "{}", text(&right));
    let mutual = format!(
        "{}?target_user=tgtout&target_password=outsecret123",
        bench.url(&iqn, 1, Some(("alice", "secretpass12")))
    );
    let mutual = run("iscsi-readcapacity16", &["-i", INITIATOR, &mutual]);
    assert!(mutual.status.success(), "{}", text(&mutual));
    let wrong = run(
        "iscsi-readcapacity16",
        &[
            "-i",
            INITIATOR,
            &bench.url(&iqn, 1, Some(("alice", "wrongsecret1"))),
        ],
    );
    assert!(!wrong.status.success(), "{}", text(&wrong));
    let none = run(
        "iscsi-readcapacity16",
        &["-i", INITIATOR, &bench.url(&iqn, 1, None)],
    );
    assert!(!none.status.success(), "{}", text(&none));

    // A changed secret replaces the account; the old one stops working.
    spec.access.incoming = vec![chap("alice", "newsecret123")];
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let old = run(
        "iscsi-readcapacity16",
        &[
            "-i",
            INITIATOR,
            &bench.url(&iqn, 1, Some(("alice", "secretpass12"))),
        ],
    );
    assert!(!old.status.success(), "{}", text(&old));
    let new = run(
        "iscsi-readcapacity16",
        &[
            "-i",
            INITIATOR,
            &bench.url(&iqn, 1, Some(("alice", "newsecret123"))),
        ],
    );
    assert!(new.status.success(), "{}", text(&new));
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}

#[test]
fn initiators_outside_the_acl_are_refused() {
    let bench = Bench::new();
    let mut spec = spec("acl", &[bench.disk("a.img", 16)]);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let iqn = spec.iqn.to_string();

    // By name: the stranger is refused, in discovery and at login.
    let stranger = run("iscsi-inq", &["-i", STRANGER, &bench.url(&iqn, 1, None)]);
    assert!(!stranger.status.success(), "{}", text(&stranger));
    assert!(!text(&bench.discover(STRANGER)).contains(&iqn));
    let friend = run("iscsi-inq", &["-i", INITIATOR, &bench.url(&iqn, 1, None)]);
    assert!(friend.status.success(), "{}", text(&friend));

    // By address only: 127.0.0.1 is outside 10.9.8.0/24.
    spec.access.initiator_names.clear();
    spec.access.initiator_addresses = vec!["10.9.8.7/24".parse().unwrap_or_else(|e| panic!("{e}"))];
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
    let outside = run("iscsi-inq", &["-i", INITIATOR, &bench.url(&iqn, 1, None)]);
    assert!(!outside.status.success(), "{}", text(&outside));

    // A range written with host bits (127.0.0.1/8) is normalised, so tgtd matches it.
    spec.access.initiator_addresses = vec!["127.0.0.1/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let inside = run("iscsi-inq", &["-i", STRANGER, &bench.url(&iqn, 1, None)]);
    assert!(inside.status.success(), "{}", text(&inside));
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}

#[test]
fn serving_again_keeps_a_running_reader() {
    let bench = Bench::new();
    let mut spec = spec("steady", &[bench.disk("s1.img", 64)]);
    spec.access.incoming = vec![chap("steady", "steadysecret1")];
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let iqn = spec.iqn.to_string();
    let mut reader = bench.reader(&iqn, 1, Some(("steady", "steadysecret1")));
    assert!(
        reader.makes_progress(Duration::from_secs(20)),
        "{}",
        reader.output()
    );
    let before = target.status().unwrap_or_else(|e| panic!("{e}"));
    let nexus_before = bench
        .tgt()
        .targets()
        .unwrap_or_else(|e| panic!("{e}"))
        .first()
        .map(|t| t.nexuses.clone());
    assert_eq!(before.find(&spec.iqn).map(|t| t.sessions), Some(1));

    target
        .serve(&spec)
        .unwrap_or_else(|e| panic!("serve again: {e}"));
    assert!(
        reader.makes_progress(Duration::from_secs(10)),
        "{}",
        reader.output()
    );
    let after = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(before, after, "a second serve changed something");
    let nexus_after = bench
        .tgt()
        .targets()
        .unwrap_or_else(|e| panic!("{e}"))
        .first()
        .map(|t| t.nexuses.clone());
    assert_eq!(nexus_before, nexus_after, "the session was replaced");

    // A real change (one more LUN) while the reader runs does not disturb it either.
    spec.luns.push(iscsi_ha_core::target::LunSpec {
        lun: common::lun_id(2),
        path: bench.disk("s2.img", 16),
        identity: LunIdentity::derived(&spec.iqn, common::lun_id(2)),
        read_only: false,
        volatile_cache_reported: false,
        stable_writes: true,
    });
    target
        .serve(&spec)
        .unwrap_or_else(|e| panic!("serve with a new LUN: {e}"));
    assert!(
        reader.makes_progress(Duration::from_secs(10)),
        "{}",
        reader.output()
    );
    assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
    assert!(reader.is_running());
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}

#[test]
fn stop_under_io_finishes_in_bounded_time() {
    let bench = Bench::new();
    let spec = spec("busy", &[bench.disk("b.img", 64)]);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let iqn = spec.iqn.to_string();
    let mut reader = bench.reader(&iqn, 1, None);
    assert!(
        reader.makes_progress(Duration::from_secs(20)),
        "{}",
        reader.output()
    );

    let start = Instant::now();
    target
        .stop(&spec)
        .unwrap_or_else(|e| panic!("stop under I/O: {e}"));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "stop took {took:?}");
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(!spec.is_present_in(&status));
    assert!(!status.daemon_running);
    assert!(!bench.client().socket().exists());
    // The reader lost its target.
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!reader.is_running(), "{}", reader.output());
}

#[test]
fn adopted_tgtd_keeps_running_after_stop() {
    let bench = Bench::new();
    let _tgtd = bench.start_tgtd();
    let spec = spec("adopted", &[bench.disk("ad.img", 16)]);
    let mut config = iscsi_ha_tgt::TgtConfig::adopt(bench.control_port);
    config.request_timeout = Duration::from_secs(20);
    let mut target = iscsi_ha_tgt::TgtTarget::new(config);
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.daemon_running && status.targets.is_empty(),
        "{status:#?}"
    );
    assert!(bench
        .tgt()
        .accounts()
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty());
}

#[test]
fn allow_all_and_names_round_trip() {
    let bench = Bench::new();
    let mut spec = spec("open", &[bench.disk("o.img", 16)]);
    spec.access.allow_all = true;
    spec.access
        .initiator_names
        .push(Iqn::new("iqn.2024-01.com.example:other").unwrap_or_else(|e| panic!("{e}")));
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.is_served_by(&status), "{status:#?}");
    // tgtd's ALL entry is reported as every initiator allowed, not as an address range.
    let observed = status.find(&spec.iqn).cloned().unwrap_or_default();
    assert!(observed.allow_all, "{observed:#?}");
    assert!(observed.initiator_addresses.is_empty(), "{observed:#?}");
    let anyone = run(
        "iscsi-inq",
        &["-i", STRANGER, &bench.url(spec.iqn.as_str(), 1, None)],
    );
    assert!(anyone.status.success(), "{}", text(&anyone));
    // Closing it again removes ALL.
    spec.access.allow_all = false;
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.is_served_by(&status), "{status:#?}");
    assert!(status.find(&spec.iqn).is_some_and(|t| !t.allow_all));
    let stranger = run(
        "iscsi-inq",
        &["-i", STRANGER, &bench.url(spec.iqn.as_str(), 1, None)],
    );
    assert!(!stranger.status.success(), "{}", text(&stranger));
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}
