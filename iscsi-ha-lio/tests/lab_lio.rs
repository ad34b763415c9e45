//! iscsi-ha-lio against the real LIO (the lab guests' Debian kernel: target_core_mod,
//! iscsi_target_mod, target_core_iblock), one boot without DRBD, /dev/vda as the iblock
//! device. The witnesses are libiscsi's tools in the initiator namespace (`iscsi-ls`,
//! `iscsi-inq` VPD 0x80/0x83, `iscsi-readcapacity16`), qemu-io holding a session across a
//! second serve, and the configfs tree itself.
//!
//! Not part of the plain `cargo test` (`test = false`): it needs root and boots VMs, so
//! `scripts/suites.d/62-lio-lab` runs it:
//! `cargo test -p iscsi-ha-lio --test lab_lio -- --test-threads=1 --nocapture`.

use std::path::Path;
use std::time::{Duration, Instant};

use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::target::{LunId, LunIdentity};
use iscsi_ha_lab::{Lab, LabOptions, Node};

const IQN: &str = "iqn.2024-01.org.iscsi-ha:lio";
const GOOD: &str = "iqn.2024-01.org.iscsi-ha:initiator";
const OTHER: &str = "iqn.2024-01.org.iscsi-ha:stranger";
const USER: &str = "iha-user";
const PASS: &str = "iha-secret-123";
const TUSER: &str = "iha-target";
const TPASS: &str = "iha-target-456";

fn spec_json(mutual: bool) -> String {
    let iqn = Iqn::new(IQN).expect("iqn");
    let id = LunIdentity::derived(&iqn, LunId::new(1).expect("lun"));
    let outgoing = if mutual {
        serde_json::json!({"user": TUSER, "password": TPASS})
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({
        "iqn": IQN,
        "luns": [{"lun": 1, "path": "/dev/vda", "read_only": false,
                  "identity": {"scsi_id": id.scsi_id, "scsi_sn": id.scsi_sn,
                               "vendor_id": null, "product_id": null}}],
        "access": {"initiator_addresses": [], "initiator_names": [GOOD], "allow_all": false,
                   "incoming": [{"user": USER, "password": PASS}], "outgoing": outgoing}
    })
    .to_string()
}

/// Two LUNs on /dev/vda (fileio opens it shared), no CHAP: LUN 1 as configured by default
/// (`write_cache = false`), LUN 2 with `write_cache = true`.
fn durability_spec_json() -> String {
    let iqn = Iqn::new(IQN).expect("iqn");
    let lun = |n: u64, cached: bool| {
        let id = LunIdentity::derived(&iqn, LunId::new(n).expect("lun"));
        serde_json::json!({"lun": n, "path": "/dev/vda", "read_only": false,
            "volatile_cache_reported": cached, "stable_writes": !cached,
            "identity": {"scsi_id": id.scsi_id, "scsi_sn": id.scsi_sn,
                         "vendor_id": null, "product_id": null}})
    };
    serde_json::json!({
        "iqn": IQN,
        "luns": [lun(1, false), lun(2, true)],
        "access": {"initiator_addresses": [], "initiator_names": [GOOD], "allow_all": false,
                   "incoming": [], "outgoing": null}
    })
    .to_string()
}

/// MODE SENSE of the caching page by a real initiator (libiscsi through the tgt crate's
/// probe): `WCE=<0|1> WCE_CHANGEABLE=<0|1>`.
fn wce(lab: &Lab, lun: u64) -> String {
    let probe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../iscsi-ha-tgt/tests/helpers/scsi_probe.py");
    initiator_ok(
        lab,
        &format!(
            "python3 {} wce {}:3260 {IQN} {lun} {GOOD}",
            probe.display(),
            lab.vip()
        ),
    )
    .trim()
    .to_string()
}

fn url(lab: &Lab, cred: &str, lun: bool) -> String {
    let tail = if lun {
        format!("{IQN}/1")
    } else {
        String::new()
    };
    format!("iscsi://{cred}@{}/{tail}", lab.vip())
}

fn initiator_ok(lab: &Lab, script: &str) -> String {
    let out = lab.initiator(script).expect("initiator");
    assert!(
        out.success(),
        "{script}: {}{}",
        out.stdout_text(),
        out.stderr_text()
    );
    out.stdout_text()
}

fn initiator_fails(lab: &Lab, script: &str) {
    let out = lab.initiator(script).expect("initiator");
    assert!(!out.success(), "{script} worked: {}", out.stdout_text());
}

/// Nothing of ours is left: no target, no storage object, no HBA.
fn assert_clean(node: &Node) {
    let left = node
        .run("ls /sys/kernel/config/target/iscsi; ls /sys/kernel/config/target/core")
        .expect("ls");
    assert!(
        !left.contains(IQN) && !left.contains("iblock_4242") && !left.contains("fileio_4242"),
        "left behind: {left}"
    );
}

#[test]
fn lio_serves_identity_chap_and_acls_and_tears_down_cleanly() {
    let started = Instant::now();
    let lab = Lab::up(LabOptions {
        drbd: None,
        ..LabOptions::default()
    })
    .expect("lab up");
    eprintln!("lab up in {:.1?}", started.elapsed());
    let node = lab.node(1);
    let bin = lab
        .copy_in(Path::new(env!("CARGO_BIN_EXE_iha-lio")))
        .expect("copy iha-lio");
    std::fs::write(lab.share_dir().join("lio.json"), spec_json(false)).expect("spec");
    std::fs::write(lab.share_dir().join("lio-mutual.json"), spec_json(true)).expect("spec");
    std::fs::write(
        lab.share_dir().join("lio-durable.json"),
        durability_spec_json(),
    )
    .expect("spec");
    let spec = "/host/lio.json";
    node.run(&format!(
        "for m in target_core_mod iscsi_target_mod target_core_iblock target_core_file; do \
           test -d /sys/module/$m || {{ echo missing module $m; exit 1; }}; done; \
         test -d /sys/kernel/config/target || mount -t configfs none /sys/kernel/config; \
         test -d /sys/kernel/config/target/core; ip addr add {}/24 dev eth0",
        lab.vip()
    ))
    .expect("LIO modules and configfs in the guest");
    let portal = format!("--portal {}:3260", lab.vip());

    // Build, then check with our own reader.
    let t = Instant::now();
    node.run(&format!("{bin} serve --spec {spec} {portal}"))
        .expect("serve");
    eprintln!("first serve: {:.1?}", t.elapsed());
    node.run(&format!("{bin} status --spec {spec}"))
        .expect("status says served");

    // A real initiator: discovery, identity, capacity.
    let right = format!("{USER}%{PASS}");
    let ls = initiator_ok(
        &lab,
        &format!("iscsi-ls -i {GOOD} -s {}", url(&lab, &right, false)),
    );
    assert!(ls.contains(IQN), "{ls}");
    let id = LunIdentity::derived(&Iqn::new(IQN).expect("iqn"), LunId::new(1).expect("lun"));
    let vpd80 = initiator_ok(
        &lab,
        &format!(
            "iscsi-inq -i {GOOD} -e 1 -c 128 {}",
            url(&lab, &right, true)
        ),
    );
    assert!(
        vpd80.contains(&id.scsi_sn),
        "serial {}: {vpd80}",
        id.scsi_sn
    );
    let vpd83 = initiator_ok(
        &lab,
        &format!(
            "iscsi-inq -i {GOOD} -e 1 -c 131 {}",
            url(&lab, &right, true)
        ),
    );
    eprintln!("VPD 0x83 as LIO gives it:\n{vpd83}");
    assert!(vpd83.contains("NAA"), "{vpd83}");
    let cap = initiator_ok(
        &lab,
        &format!("iscsi-readcapacity16 -i {GOOD} {}", url(&lab, &right, true)),
    );
    assert!(cap.contains(&(64 * 1024 * 1024).to_string()), "{cap}");

    // CHAP wrong, CHAP missing, and an initiator without an ACL are refused.
    initiator_fails(
        &lab,
        &format!(
            "iscsi-inq -i {GOOD} {}",
            url(&lab, &format!("{USER}%wrong"), true)
        ),
    );
    initiator_fails(
        &lab,
        &format!("iscsi-inq -i {GOOD} iscsi://{}/{IQN}/1", lab.vip()),
    );
    initiator_fails(
        &lab,
        &format!("iscsi-inq -i {OTHER} {}", url(&lab, &right, true)),
    );

    // A session held by qemu-io is not disturbed by serving again.
    let mut held = lab.qemu_io().expect("qemu-io");
    held.args([
        "--object",
        &format!("secret,id=s0,data={PASS}"),
        "--image-opts",
        &format!(
            "driver=iscsi,transport=tcp,portal={}:3260,target={IQN},lun=1,user={USER},\
             password-secret=s0,initiator-name={GOOD}",
            lab.vip()
        ),
        "-c",
        "write -P 0xab 0 64k",
        "-c",
        "sleep 20000",
        "-c",
        "read -P 0xab 0 64k",
    ]);
    let child = held
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("qemu-io");
    std::thread::sleep(Duration::from_secs(2));
    let acl_info = format!("cat /sys/kernel/config/target/iscsi/{IQN}/tpgt_1/acls/{GOOD}/info");
    let before = node.run(&acl_info).expect("acl info");
    assert!(before.contains("LIO Session ID"), "{before}");
    let status = node.run(&format!("{bin} status")).expect("status");
    assert!(status.contains("\"sessions\": 1"), "{status}");
    let object = "/sys/kernel/config/target/core/fileio_4242/*";
    eprintln!(
        "{}",
        node.run(&format!(
            "for f in {object}/info {object}/udev_path {object}/enable {object}/wwn/vpd_unit_serial; do echo \"$f: $(cat $f)\"; done"
        ))
        .expect("object attributes")
    );
    let t = Instant::now();
    node.run(&format!("{bin} serve --spec {spec} {portal}"))
        .expect("serve again");
    eprintln!("serve again (nothing to do): {:.1?}", t.elapsed());
    let after = node.run(&acl_info).expect("acl info");
    assert_eq!(
        before.lines().find(|l| l.contains("LIO Session ID")),
        after.lines().find(|l| l.contains("LIO Session ID")),
        "the session changed"
    );
    let out = child.wait_with_output().expect("qemu-io");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("read 65536/65536") && !text.contains("failed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Mutual CHAP: the target answers with its account.
    node.run(&format!(
        "{bin} serve --spec /host/lio-mutual.json {portal}"
    ))
    .expect("serve mutual");
    let mutual = |tpass: &str| {
        format!(
            "iscsi-inq -i {GOOD} '{}?target_user={TUSER}&target_password={tpass}'",
            url(&lab, &right, true)
        )
    };
    initiator_ok(&lab, &mutual(TPASS));
    initiator_fails(&lab, &mutual("not-the-target"));
    node.run(&format!("{bin} serve --spec {spec} {portal}"))
        .expect("serve without mutual");

    // Invariant 17 under LIO: by default a LUN reports no volatile write cache (WCE=0) and its
    // object writes through (fileio O_DSYNC: a WRITE completes once the device has it on
    // stable storage); write_cache = true reports WCE=1 and buffers. Seen by a real
    // initiator's MODE SENSE, and by the kernel's own account of the objects.
    let durable = "/host/lio-durable.json";
    node.run(&format!("{bin} serve --spec {durable} {portal}"))
        .expect("serve the durability spec");
    let status = node
        .run(&format!("{bin} status --spec {durable}"))
        .expect("the durability spec is served");
    assert_eq!(
        wce(&lab, 1),
        "WCE=0 WCE_CHANGEABLE=0",
        "write_cache = false"
    );
    assert_eq!(wce(&lab, 2), "WCE=1 WCE_CHANGEABLE=0", "write_cache = true");
    let modes = node
        .run("cat /sys/kernel/config/target/core/fileio_4242/*/info")
        .expect("fileio info");
    eprintln!("fileio objects:\n{modes}");
    assert_eq!(modes.matches("Mode: O_DSYNC").count(), 1, "{modes}");
    assert_eq!(modes.matches("Mode: Buffered-WCE").count(), 1, "{modes}");
    let parsed: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    let stable: Vec<serde_json::Value> = parsed["targets"][0]["luns"]
        .as_array()
        .expect("luns")
        .iter()
        .map(|l| l["stable_writes"].clone())
        .collect();
    assert_eq!(
        stable,
        [serde_json::json!(true), serde_json::json!(false)],
        "{status}"
    );
    node.run(&format!("{bin} stop --spec {durable}"))
        .expect("stop the durability spec");
    assert_clean(node);

    // Teardown, then interrupted builds and teardowns: the next run always finishes. A full
    // build here makes about 20 changes, so each of these stops it part-way.
    let t = Instant::now();
    node.run(&format!("{bin} stop --spec {spec}"))
        .expect("stop");
    eprintln!("teardown: {:.1?}", t.elapsed());
    assert_clean(node);
    for k in [0, 1, 3, 6, 10, 15] {
        let out = node
            .exec(&format!(
                "{bin} serve --spec {spec} {portal} --fail-after {k}"
            ))
            .expect("exec");
        assert!(
            !out.success() && out.stderr_text().contains("injected"),
            "serve --fail-after {k}: {}",
            out.stderr_text()
        );
        node.run(&format!("{bin} serve --spec {spec} {portal}"))
            .unwrap_or_else(|e| panic!("serve after an interruption at {k}: {e}"));
        node.run(&format!("{bin} status --spec {spec}"))
            .expect("served after finishing");
        let out = node
            .exec(&format!("{bin} stop --spec {spec} --fail-after {}", k / 2))
            .expect("exec");
        assert!(
            !out.success() && out.stderr_text().contains("injected"),
            "stop --fail-after {}: {}",
            k / 2,
            out.stderr_text()
        );
        node.run(&format!("{bin} stop --spec {spec}"))
            .unwrap_or_else(|e| panic!("stop after an interruption at {}: {e}", k / 2));
        assert_clean(node);
    }
    // And served once more from clean, a real login works.
    node.run(&format!("{bin} serve --spec {spec} {portal}"))
        .expect("serve");
    initiator_ok(
        &lab,
        &format!("iscsi-inq -i {GOOD} {}", url(&lab, &right, true)),
    );
    node.run(&format!("{bin} stop --spec {spec}"))
        .expect("stop");
    assert_clean(node);
    eprintln!("lio lab: {:.1?} in all", started.elapsed());
}
