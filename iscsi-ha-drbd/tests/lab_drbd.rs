//! iscsi-ha-drbd against the real DRBD 8.4 kernel module in the two-VM lab (one boot, four
//! resources; r0 with fencing resource-and-stonith and a fence-peer handler the test writes).
//! The witnesses are the 8.4 tools (`drbdsetup role|cstate|dstate <minor>`, `drbdsetup
//! status`), `/proc/drbd` read by the lab's own parser, the handler's log, a background `dd`
//! and the kernel log. With `IHA_DRBD_FIXTURES_OUT` set (an absolute path) the fencing
//! section keeps its RESUME_IO captures as fixtures.
//!
//! Not part of the plain `cargo test` (the target has `test = false`): it needs root and boots
//! VMs, so `scripts/suites.d/60-drbd-lab` runs it:
//! `cargo test -p iscsi-ha-drbd --test lab_drbd -- --test-threads=1 --nocapture`.

use std::time::{Duration, Instant};

use iscsi_ha_drbd::client::resume_io_message;
use iscsi_ha_drbd::wire::{DrbdCommand, DrbdMessage};
use iscsi_ha_lab::drbd::{parse_proc_drbd, DrbdFencing};
use iscsi_ha_lab::{DrbdOptions, Lab, LabOptions, Node, ResourceSpec};

mod nlmon;
use nlmon::record;

const RESOURCES: u32 = 4;

fn name(i: u32) -> String {
    format!("r{i}")
}

/// Our status of every resource on `node` equals what the witnesses say.
fn assert_status_matches_witnesses(node: &Node, bin: &str) {
    let ours = node
        .run(&format!("{bin} status --json"))
        .expect("iha-drbd status");
    let ours: serde_json::Value = serde_json::from_str(&ours).expect("status JSON");
    let resources = ours.as_array().expect("a list of resources");
    assert_eq!(resources.len(), RESOURCES as usize, "{ours}");
    let proc = parse_proc_drbd(&node.run("cat /proc/drbd").expect("/proc/drbd"));
    // DRBD 9's way (the events2-era dumps) reads the same on this 8.4 module.
    let via_dumps = node
        .run(&format!("{bin} status --json --via-dumps"))
        .expect("iha-drbd status --via-dumps");
    let via_dumps: serde_json::Value = serde_json::from_str(&via_dumps).expect("status JSON");
    // Out-of-sync is per peer in the dumps: without a connection there is no peer device and
    // so no figure, where GET_STATUS still shows the local bitmap's count.
    let mut ours_cmp = ours.clone();
    if let (Some(a), Some(b)) = (via_dumps.as_array(), ours_cmp.as_array_mut()) {
        for (ra, rb) in a.iter().zip(b.iter_mut()) {
            for (va, vb) in ra["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(rb["volumes"].as_array_mut().into_iter().flatten())
            {
                if va["out_of_sync_kib"].is_null() && va["cstate"] == "StandAlone" {
                    vb["out_of_sync_kib"] = serde_json::Value::Null;
                }
            }
        }
    }
    assert_eq!(
        via_dumps, ours_cmp,
        "GET_STATUS and the events2 dumps disagree"
    );
    // Our own /proc parser agrees with our netlink status too (the adapter's cross-check).
    let agree = node
        .run(&format!("{bin} cross-check"))
        .expect("cross-check");
    assert!(
        agree.contains(&format!("{RESOURCES} volumes agree")),
        "{agree}"
    );
    let drbdsetup_status = node.run("drbdsetup status").expect("drbdsetup status");
    for r in resources {
        let rname = r["name"].as_str().expect("name");
        let vols = r["volumes"].as_array().expect("volumes");
        assert_eq!(vols.len(), 1, "{r}");
        let v = &vols[0];
        let minor = v["minor"].as_u64().expect("minor");
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        // drbdsetup-84 <minor> role|cstate|dstate.
        let role = node.run(&format!("drbdsetup role {minor}")).expect("role");
        assert_eq!(
            role.trim(),
            format!("{}/{}", field("role"), field("peer_role")),
            "{rname}"
        );
        let cstate = node
            .run(&format!("drbdsetup cstate {minor}"))
            .expect("cstate");
        assert_eq!(cstate.trim(), field("cstate"), "{rname}");
        let dstate = node
            .run(&format!("drbdsetup dstate {minor}"))
            .expect("dstate");
        assert_eq!(
            dstate.trim(),
            format!("{}/{}", field("disk"), field("peer_disk")),
            "{rname}"
        );
        // /proc/drbd through the lab's parser (independent of ours).
        let m = proc
            .iter()
            .find(|m| u64::from(m.minor) == minor)
            .unwrap_or_else(|| panic!("minor {minor} in /proc/drbd"));
        assert_eq!(
            (
                m.cs.as_str(),
                m.role.as_str(),
                m.peer_role.as_str(),
                m.disk.as_str(),
                m.peer_disk.as_str()
            ),
            (
                field("cstate").as_str(),
                field("role").as_str(),
                field("peer_role").as_str(),
                field("disk").as_str(),
                field("peer_disk").as_str()
            ),
            "{rname} minor {minor}"
        );
        // drbdsetup status names the resource and its role.
        assert!(
            drbdsetup_status.contains(&format!("{rname} role:{}", field("role"))),
            "drbdsetup status lacks {rname} role:{}:\n{drbdsetup_status}",
            field("role")
        );
    }
}

fn role_of(node: &Node, minor: u32) -> String {
    node.run(&format!("drbdsetup role {minor}"))
        .expect("drbdsetup role")
        .trim()
        .to_string()
}

fn wait_for(node: &Node, what: &str, script: &str, timeout: Duration) -> String {
    let started = Instant::now();
    loop {
        let out = node.exec(script).expect("exec");
        if out.success() {
            return out.stdout_text();
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fence-peer handler of r0 on node1. It logs each call and its exit, sleeps
/// `/tmp/fence-peer.sleep` seconds (so a write can be started while DRBD waits for it) and
/// exits with the code in `/tmp/fence-peer.exit` (DRBD: 3/4/7 resume I/O, others keep it frozen).
const FENCE_PEER: &str = "/tmp/fence-peer.sh";

const FENCE_PEER_SCRIPT: &str = r#"cat >/tmp/fence-peer.sh <<'EOF'
#!/bin/sh
code=$(cat /tmp/fence-peer.exit)
echo "$(date +%s) called: DRBD_RESOURCE=$DRBD_RESOURCE DRBD_MINOR=$DRBD_MINOR DRBD_PEER_ADDRESS=$DRBD_PEER_ADDRESS" >>/tmp/fence-peer.log
sleep "$(cat /tmp/fence-peer.sleep 2>/dev/null || echo 0)"
echo "$(date +%s) exit $code" >>/tmp/fence-peer.log
exit "$code"
EOF
chmod +x /tmp/fence-peer.sh
: >/tmp/fence-peer.log"#;

/// Starts a 4 KiB O_DIRECT write to r0's device in the background; `/tmp/dd.rc` appears with
/// its exit status once it completed.
const START_WRITE: &str = "rm -f /tmp/dd.rc
(dd if=/dev/urandom of=/dev/drbd1 bs=4096 count=1 oflag=direct 2>/tmp/dd.err; \
 echo $? >/tmp/dd.rc) >/dev/null 2>&1 &";

/// Minor 1 is Primary without its peer and I/O suspended (the `s` after the protocol letter).
const FROZEN: &str =
    "grep -qE '^ ?1: cs:[A-Za-z]+ ro:Primary/Unknown ds:UpToDate/[A-Za-z]+ C s' /proc/drbd";

fn calls(node: &Node) -> usize {
    node.run("grep -c called /tmp/fence-peer.log || true")
        .expect("the handler's log")
        .trim()
        .parse()
        .unwrap_or(0)
}

fn port_status(node: &Node, bin: &str) -> serde_json::Value {
    let out = node
        .run(&format!("{bin} port-status r0"))
        .expect("port-status");
    serde_json::from_str(&out).expect("port-status JSON")
}

fn suspension(node: &Node, bin: &str) -> serde_json::Value {
    let out = node
        .run(&format!("{bin} status r0 --json"))
        .expect("status r0");
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    v[0]["volumes"][0]["suspended"].clone()
}

/// The RESUME_IO requests among recorded requests.
fn resume_requests(requests: &[DrbdMessage]) -> Vec<&DrbdMessage> {
    requests
        .iter()
        .filter(|m| m.cmd == DrbdCommand::ResumeIo)
        .collect()
}

/// Restores node2's link and reports how r0 comes back (resync or split brain, as DRBD
/// decides); a split brain is resolved in node1's favour so the suite goes on.
fn reconnect_and_report(lab: &Lab, what: &str) {
    let (n1, n2) = (lab.node(1), lab.node(2));
    n2.restore_link().expect("restore node2's link");
    let settled = "drbdsetup cstate 1 | grep -qvE \
                   'WFConnection|Unconnected|WFReportParams|NetworkFailure|BrokenPipe|Timeout|TearDown|Disconnecting'";
    wait_for(n1, "r0 out of connecting", settled, Duration::from_secs(60));
    wait_for(n2, "r0 out of connecting", settled, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let report = |n: &Node| {
        n.run(
            // Resource lines are `drbd r0: ...`, the minor's `block drbd1: ...` (8.4).
            "drbdsetup cstate 1; drbdsetup dstate 1; drbdsetup get-gi 1; \
             dmesg | grep -E 'drbd r0:|drbd1:' \
             | grep -E 'Split-Brain|SyncSource|SyncTarget|uuid_compare|Resync done|new current UUID|helper' \
             | tail -n 10",
        )
        .unwrap_or_default()
    };
    eprintln!(
        "{what}: reconnect on node1:\n{}\nnode2:\n{}",
        report(n1),
        report(n2)
    );
    let standalone = |n: &Node| {
        n.exec("drbdsetup cstate 1 | grep -q StandAlone")
            .is_ok_and(|o| o.success())
    };
    if standalone(n1) || standalone(n2) {
        eprintln!("{what}: split brain; node2 discards its data");
        n2.run(
            "drbdadm secondary r0; drbdadm disconnect r0; \
             drbdadm connect --discard-my-data r0",
        )
        .expect("node2 discards");
        if standalone(n1) {
            n1.run("drbdadm connect r0").expect("node1 connects");
        }
    }
    lab.wait_healthy(Duration::from_secs(90))
        .expect("healthy again");
}

/// Fencing resource-and-stonith on r0, node1 Primary: the link cut, node1 freezes r0's I/O
/// and calls the handler; a handler exiting 1 leaves it frozen until our resume_io, one
/// exiting 7 lets it go on by itself. Records our RESUME_IO and drbdsetup's.
fn fencing(lab: &Lab, bin: &str) {
    let (n1, n2) = (lab.node(1), lab.node(2));
    assert_eq!(role_of(n1, 1), "Primary/Secondary");
    n1.run(FENCE_PEER_SCRIPT).expect("write the handler");
    n1.run("echo 1 >/tmp/fence-peer.exit; echo 0 >/tmp/fence-peer.sleep")
        .expect("handler: exit 1");

    eprintln!("== fencing, handler exits 1: frozen until resume_io");
    let cut = Instant::now();
    n2.cut_link().expect("cut node2's link");
    wait_for(n1, "r0 frozen", FROZEN, Duration::from_secs(30));
    wait_for(
        n1,
        "the handler's exit",
        "grep -q 'exit 1' /tmp/fence-peer.log",
        Duration::from_secs(30),
    );
    let log = n1.run("cat /tmp/fence-peer.log").expect("log");
    eprintln!(
        "frozen and handler done {:.1} s after the cut; handler log:\n{log}",
        cut.elapsed().as_secs_f64()
    );
    assert_eq!(calls(n1), 1);
    assert!(log.contains("called: DRBD_RESOURCE=r0 "), "{log}");
    n1.run(START_WRITE).expect("start the write");
    std::thread::sleep(Duration::from_secs(4));
    let done = n1.exec("test -e /tmp/dd.rc").expect("exec");
    assert!(
        !done.success(),
        "the write completed while frozen: rc {}",
        n1.run("cat /tmp/dd.rc").unwrap_or_default()
    );
    n1.run(FROZEN).expect("still frozen after 4 s");
    let susp = suspension(n1, bin);
    eprintln!("our suspension while frozen: {susp}");
    assert_eq!(susp["fencing"], true, "{susp}");
    let port = port_status(n1, bin);
    eprintln!("port status while frozen: {port}");
    assert_eq!(port["suspended"], true, "{port}");
    assert_eq!(port["role"], "Primary", "{port}");

    let resumed = Instant::now();
    let ours = record(
        lab,
        n1,
        "resume-io-ours",
        "iha-drbd resume-io r0 on node1, r0 frozen by fencing (handler exited 1, write held): \
         our GET_STATUS dump, then RESUME_IO for minor 1",
        &format!("{bin} resume-io r0"),
    );
    wait_for(
        n1,
        "the held write completes",
        "test -e /tmp/dd.rc",
        Duration::from_secs(20),
    );
    eprintln!(
        "held write completed {:.2} s after resume-io started: rc {}",
        resumed.elapsed().as_secs_f64(),
        n1.run("cat /tmp/dd.rc /tmp/dd.err").unwrap_or_default()
    );
    assert_eq!(n1.run("cat /tmp/dd.rc").expect("rc").trim(), "0");
    let ours = resume_requests(&ours);
    assert_eq!(ours, vec![&resume_io_message(1)]);
    let susp = suspension(n1, bin);
    assert_eq!(susp["fencing"], false, "{susp}");
    assert_eq!(port_status(n1, bin)["suspended"], false);
    assert!(
        !n1.exec(FROZEN).expect("exec").success(),
        "/proc/drbd still shows r0 suspended"
    );

    // drbdsetup's request, on the resumed minor (so its reply is the "nothing to do" one).
    let theirs = record(
        lab,
        n1,
        "resume-io",
        "drbdsetup-84 resume-io 1 on node1, r0 Primary, disconnected, no longer suspended",
        "drbdsetup resume-io 1",
    );
    assert_eq!(
        resume_requests(&theirs),
        ours,
        "drbdsetup's RESUME_IO differs from ours"
    );
    let again = n1
        .exec(&format!("{bin} resume-io r0"))
        .expect("resume again");
    assert!(
        again.success(),
        "resuming a resource that is not suspended: {}",
        again.stderr_text()
    );
    reconnect_and_report(lab, "after resume_io");

    eprintln!("== fencing, handler exits 7 after 4 s: I/O resumes by itself");
    n1.run("echo 7 >/tmp/fence-peer.exit; echo 4 >/tmp/fence-peer.sleep")
        .expect("handler: exit 7 after 4 s");
    n2.cut_link().expect("cut node2's link");
    wait_for(n1, "r0 frozen", FROZEN, Duration::from_secs(30));
    wait_for(
        n1,
        "the second call",
        "test $(grep -c called /tmp/fence-peer.log) -ge 2",
        Duration::from_secs(30),
    );
    n1.run(START_WRITE).expect("start the write");
    let started = Instant::now();
    let held = !n1.exec("test -e /tmp/dd.rc").expect("exec").success()
        && n1.exec(FROZEN).expect("exec").success();
    eprintln!("write started while the handler sleeps; held at first: {held}");
    wait_for(
        n1,
        "the write completes without resume-io",
        "test -e /tmp/dd.rc",
        Duration::from_secs(30),
    );
    let log = n1.run("cat /tmp/fence-peer.log").expect("log");
    eprintln!(
        "write completed {:.1} s after it started; handler log:\n{log}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(n1.run("cat /tmp/dd.rc").expect("rc").trim(), "0");
    assert!(log.contains("exit 7"), "{log}");
    let port = port_status(n1, bin);
    eprintln!("port status after exit 7: {port}");
    assert_eq!(port["suspended"], false, "{port}");
    assert_eq!(
        port["peer_disk"], "Outdated",
        "exit 7 marks the peer Outdated: {port}"
    );
    reconnect_and_report(lab, "after exit 7");
    assert_eq!(calls(n1), 2, "one handler call per cut");
}

#[test]
fn drbd_adapter_against_the_real_module() {
    let lab = Lab::up(LabOptions {
        resources: (0..RESOURCES)
            .map(|i| ResourceSpec::new(name(i), i + 1, 8))
            .collect(),
        drbd: Some(DrbdOptions {
            primary: Some(1),
            // Only r0 is fenced; its handler is written by the fencing section below.
            fencing: vec![DrbdFencing {
                resource: name(0),
                fence_peer: FENCE_PEER.to_string(),
            }],
            ..DrbdOptions::default()
        }),
        ..LabOptions::default()
    })
    .expect("the lab comes up (run as root after scripts/install-packages)");
    let bin = lab
        .copy_in(env!("CARGO_BIN_EXE_iha-drbd").as_ref())
        .expect("copy iha-drbd into the share");
    let (n1, n2) = (lab.node(1), lab.node(2));

    eprintln!("== family");
    let family = n1.run(&format!("{bin} family")).expect("family");
    eprintln!("{family}");
    assert!(family.contains("version 1 dialect V84"), "{family}");
    assert!(family.contains("events-group Some("), "{family}");

    eprintln!("== status equals the witnesses on both nodes");
    assert_status_matches_witnesses(n1, &bin);
    assert_status_matches_witnesses(n2, &bin);
    let port = n2
        .run(&format!("{bin} port-status r0"))
        .expect("port-status");
    assert!(port.contains(r#""peer_role":"Primary""#), "{port}");
    assert!(port.contains(r#""connection":"Connected""#), "{port}");

    eprintln!("== demote and promote");
    n1.run(&format!("{bin} secondary r0"))
        .expect("demote on node1");
    assert_eq!(role_of(n1, 1), "Secondary/Secondary");
    n2.run(&format!("{bin} primary r0"))
        .expect("promote on node2");
    assert_eq!(role_of(n2, 1), "Primary/Secondary");
    assert_eq!(role_of(n1, 1), "Secondary/Primary");
    assert_status_matches_witnesses(n1, &bin);

    eprintln!("== promoting while the peer is Primary fails with PeerPrimary and changes nothing");
    let refused = n1.exec(&format!("{bin} primary r0")).expect("exec");
    assert!(!refused.success(), "promotion must be refused");
    assert!(
        refused.stderr_text().contains("error-kind: PeerPrimary"),
        "{}",
        refused.stderr_text()
    );
    assert_eq!(role_of(n1, 1), "Secondary/Primary");
    assert_eq!(role_of(n2, 1), "Primary/Secondary");
    assert_eq!(
        n1.run("drbdsetup cstate 1").expect("cstate").trim(),
        "Connected"
    );
    // Demoting a device in use is refused with DeviceInUse.
    let busy = n2
        .exec(&format!("sh -c 'exec 3</dev/drbd1; {bin} secondary r0'"))
        .expect("exec");
    assert!(!busy.success(), "demoting an open device must be refused");
    assert!(
        busy.stderr_text().contains("error-kind: DeviceInUse"),
        "{}",
        busy.stderr_text()
    );
    assert_eq!(role_of(n2, 1), "Primary/Secondary");
    n2.run(&format!("{bin} secondary r0"))
        .expect("demote node2");
    n1.run(&format!("{bin} primary r0"))
        .expect("promote node1 back");

    eprintln!("== a peer's role change reaches our events fd");
    n1.run(&format!("{bin} secondary r1"))
        .expect("free r1 on node1");
    n1.run(&format!(
        "{bin} role-server --listen 10.99.0.1:7999 >/tmp/role-server.log 2>&1 &"
    ))
    .expect("start role-server");
    wait_for(
        n1,
        "role-server listening",
        "grep -q listening /tmp/role-server.log",
        Duration::from_secs(10),
    );
    let latency = n2
        .run(&format!(
            "{bin} peer-latency --peer 10.99.0.1:7999 --resource r1 --rounds 5"
        ))
        .expect("peer-latency");
    eprintln!("peer role change -> our event (upper bound, includes the peer's call): {latency}");
    let samples: serde_json::Value = serde_json::from_str(&latency).expect("latency JSON");
    assert_eq!(samples["samples"].as_array().map(Vec::len), Some(10));
    assert_eq!(role_of(n2, 2), "Secondary/Secondary");

    eprintln!("== a disconnect shows in status and events");
    n2.run(&format!(
        "{bin} events --json --timeout-ms 20000 >/tmp/events.log 2>&1 &"
    ))
    .expect("start events");
    wait_for(
        n2,
        "events subscribed",
        "grep -q subscribed /tmp/events.log",
        Duration::from_secs(10),
    );
    n1.run(&format!("{bin} disconnect r2"))
        .expect("disconnect r2 on node1");
    let s1 = n1.run(&format!("{bin} status r2")).expect("status r2");
    assert!(s1.contains("cs:StandAlone"), "{s1}");
    assert!(s1.contains("peer:Unknown"), "{s1}");
    wait_for(
        n2,
        "node2 sees the peer gone",
        &format!("{bin} status r2 | grep -qE 'cs:(WFConnection|Unconnected|NetworkFailure|BrokenPipe|TearDown)'"),
        Duration::from_secs(15),
    );
    assert_status_matches_witnesses(n1, &bin);
    let events = wait_for(
        n2,
        "the disconnect event",
        r#"grep '"resource":"r2"' /tmp/events.log | grep -E '"conn":"(WFConnection|Unconnected|NetworkFailure|BrokenPipe|TearDown)"'"#,
        Duration::from_secs(15),
    );
    eprintln!("node2's events for the disconnect:\n{events}");
    n1.run("drbdadm connect r2").expect("reconnect r2");
    lab.wait_healthy(Duration::from_secs(60))
        .expect("healthy again");
    assert_status_matches_witnesses(n2, &bin);

    fencing(&lab, &bin);

    eprintln!("== unloading the module: an event, then the typed 'not loaded' state");
    n2.run(&format!(
        "{bin} events --json --timeout-ms 30000 >/tmp/events2.log 2>&1 &"
    ))
    .expect("start events");
    wait_for(
        n2,
        "events subscribed",
        "grep -q subscribed /tmp/events2.log",
        Duration::from_secs(10),
    );
    n2.run("drbdadm down all && rmmod drbd")
        .expect("drbdadm down all; rmmod drbd");
    wait_for(
        n2,
        "the module-unloaded event",
        r#"grep -q '"type":"module-unloaded"' /tmp/events2.log"#,
        Duration::from_secs(10),
    );
    let gone = n2.exec(&format!("{bin} port-status r0")).expect("exec");
    assert!(!gone.success());
    assert!(
        gone.stderr_text().contains("error-kind: Unavailable")
            && gone
                .stderr_text()
                .contains("the drbd kernel module is not loaded"),
        "{}",
        gone.stderr_text()
    );
    let family = n2.exec(&format!("{bin} family")).expect("exec");
    assert!(!family.success());
    assert!(
        family.stderr_text().contains("not loaded"),
        "{}",
        family.stderr_text()
    );
}
