//! The lab's self-test: real VMs, the real DRBD 8.4 module, real tgtd and real initiators.
//!
//! Not part of the plain `cargo test` (its target has `test = false`): it needs root and the
//! lab's packages, takes about a minute per test under TCG and wants both cores, so
//! `scripts/suites.d/50-lab` runs it serially:
//! `cargo test -p iscsi-ha-lab --test lab -- --test-threads=1`.

use std::path::Path;
use std::time::{Duration, Instant};

use iscsi_ha_lab::{accel, capture, net, DrbdOptions, Lab, LabOptions, MinorState};

fn lab_with_primary(primary: u8) -> Lab {
    Lab::up(LabOptions {
        drbd: Some(DrbdOptions {
            primary: Some(primary),
            ..DrbdOptions::default()
        }),
        ..LabOptions::default()
    })
    .expect("the lab comes up (run as root after scripts/install-packages)")
}

fn minor1(states: &[MinorState]) -> &MinorState {
    states
        .iter()
        .find(|m| m.minor == 1)
        .expect("minor 1 in /proc/drbd")
}

/// Writes `marker` at `offset` of the Primary's DRBD device, flushed (protocol C: it is on
/// both disks when dd returns).
fn write_marker(lab: &Lab, node: u8, offset_blocks: u32, marker: &str) {
    lab.node(node)
        .run(&format!(
            "printf %s '{marker}' | dd of=/dev/drbd1 bs=512 seek={offset_blocks} count=1 \
             conv=sync,fsync 2>/dev/null"
        ))
        .expect("write on the Primary");
}

/// Reads the backing disk directly (a Secondary cannot open /dev/drbd1; with internal
/// metadata the data starts at offset 0 of /dev/vda).
fn read_backing(lab: &Lab, node: u8, offset_blocks: u32, len: usize) -> String {
    lab.node(node)
        .run(&format!(
            "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip={offset_blocks} \
             count=1 2>/dev/null | head -c {len}"
        ))
        .expect("read the backing disk")
}

fn wait_peer_lost(lab: &Lab, observer: u8, what: &str) -> Duration {
    let started = Instant::now();
    let states = lab
        .node(observer)
        .wait_drbd(what, Duration::from_secs(20), |m| {
            m.iter().any(|r| r.minor == 1 && r.cs != "Connected")
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let took = started.elapsed();
    eprintln!(
        "{what}: node{observer} saw cs:{} after {:.2} s",
        minor1(&states).cs,
        took.as_secs_f64()
    );
    took
}

#[test]
fn replication_share_target_and_initiator() {
    let started = Instant::now();
    let lab = lab_with_primary(1);
    eprintln!(
        "warm up (boot + DRBD): {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The accelerator verdict is recorded and reused.
    let verdict = lab
        .accel_verdict()
        .expect("an owned lab knows its verdict")
        .clone();
    assert!(!verdict.reason.is_empty());
    eprintln!("accelerator: {} ({})", verdict.accel, verdict.reason);
    if std::env::var_os(accel::ACCEL_ENV).is_none() {
        let again = accel::choose(lab.dirs(), lab.image()).unwrap();
        assert_eq!(again, verdict, "the cached verdict is reused");
    }

    // Both nodes: Connected, UpToDate/UpToDate, Primary on node1.
    let n1 = lab.node(1).drbd_minors().unwrap();
    let n2 = lab.node(2).drbd_minors().unwrap();
    assert!(minor1(&n1).is_healthy(), "{n1:?}");
    assert!(minor1(&n2).is_healthy(), "{n2:?}");
    assert_eq!(
        (minor1(&n1).role.as_str(), minor1(&n1).peer_role.as_str()),
        ("Primary", "Secondary")
    );
    assert_eq!(minor1(&n2).role, "Secondary");
    assert!(lab
        .node(1)
        .run("drbdadm role r0")
        .unwrap()
        .starts_with("Primary/Secondary"));

    // Data written on the Primary is on the Secondary's disk.
    write_marker(&lab, 1, 0, "iha-lab-replicated");
    assert_eq!(read_backing(&lab, 2, 0, 18), "iha-lab-replicated");

    // A Rust binary of ours runs in the guest from the share, no initramfs rebuild.
    let guest_bin = lab
        .copy_in(Path::new(env!("CARGO_BIN_EXE_iha-lab")))
        .unwrap();
    assert_eq!(guest_bin, "/host/bin/iha-lab");
    let version = lab.node(2).run(&format!("{guest_bin} --version")).unwrap();
    assert!(version.starts_with("iha-lab "), "{version}");

    // The command channel reports status, stdout and stderr separately, and times out.
    let out = lab.node(1).exec("echo out; echo err >&2; exit 7").unwrap();
    assert_eq!(
        (
            out.status,
            out.stdout_text().as_str(),
            out.stderr_text().as_str()
        ),
        (7, "out\n", "err\n")
    );
    let err = lab
        .node(1)
        .exec_timeout("sleep 30", Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(err, iscsi_ha_lab::LabError::CommandTimeout { .. }),
        "{err}"
    );
    assert_eq!(
        lab.node(1).run("echo still-there").unwrap(),
        "still-there\n"
    );
    let err = lab
        .initiator_timeout("sleep 30", Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(err, iscsi_ha_lab::LabError::CommandTimeout { .. }),
        "{err}"
    );

    // A target set up by hand with tgtd on the floating address, read by the initiator.
    let vip = lab.vip();
    let iqn = "iqn.2024-01.lab:drbd1";
    lab.node(1)
        .run(&format!(
            "ip addr add {vip}/24 dev eth0 && arping -U -c 1 -I eth0 {vip} >/dev/null
             (tgtd -f >/tmp/tgtd.log 2>&1 &)
             n=0; until tgtadm --lld iscsi --mode sys --op show >/dev/null 2>&1; do
               n=$((n+1)); [ $n -lt 100 ] || exit 1; sleep 0.1; done
             tgtadm --lld iscsi --op new --mode target --tid 1 -T {iqn} &&
             tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b /dev/drbd1 &&
             tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL"
        ))
        .unwrap();
    let ls = lab
        .initiator(&format!("iscsi-ls -s iscsi://{vip}"))
        .unwrap();
    assert!(ls.success(), "iscsi-ls: {ls:?}");
    let listing = ls.stdout_text();
    assert!(
        listing.contains(iqn) && listing.contains("Lun:1"),
        "{listing}"
    );
    eprintln!("initiator sees: {}", listing.trim());

    // qemu-io (7.2, iscsi driver) writes a pattern through the target; it lands on both disks.
    let url = format!("iscsi://{vip}/{iqn}/1");
    let out = lab
        .qemu_io()
        .unwrap()
        .args([
            "-f",
            "raw",
            "-c",
            "write -P 0xab 1M 64k",
            "-c",
            "read -P 0xab 1M 64k",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && !String::from_utf8_lossy(&out.stdout).contains("Pattern verification failed"),
        "qemu-io: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let on_secondary = lab
        .node(2)
        .run("echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=1024 skip=1024 count=64 2>/dev/null | od -An -v -tx1 | tr -s ' \\n' '\\n' | sort -u | grep .")
        .unwrap();
    assert_eq!(
        on_secondary.trim(),
        "ab",
        "the pattern is on the Secondary's disk"
    );
}

#[test]
fn every_fault_has_the_effect_it_claims() {
    let lab = lab_with_primary(1);

    // Pause (a hung host): the peer loses the connection, and it comes back on resume.
    lab.node(2).pause().unwrap();
    assert!(lab.node(2).is_paused().unwrap());
    wait_peer_lost(&lab, 1, "node2 paused");
    lab.node(2).resume().unwrap();
    assert!(!lab.node(2).is_paused().unwrap());
    lab.wait_healthy(Duration::from_secs(30)).unwrap();

    // Link cut (a dead switch port): the peer sees it; restoring reconnects.
    lab.node(2).cut_link().unwrap();
    let took = wait_peer_lost(&lab, 1, "node2 link cut");
    assert!(took < Duration::from_secs(15));
    let ping = lab.initiator("ping -c 1 -W 1 10.99.0.2").unwrap();
    assert!(
        !ping.success(),
        "node2 must be unreachable with its link cut"
    );
    lab.node(2).restore_link().unwrap();
    lab.wait_healthy(Duration::from_secs(30)).unwrap();

    // Kill the Primary (a power cut): the peer sees the connection lost within seconds and can
    // take over.
    write_marker(&lab, 1, 8, "before-the-crash");
    let pid = lab.node(1).pid().expect("node1 runs");
    lab.node(1).kill().unwrap();
    assert!(!lab.node(1).is_running());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "qemu {pid} is gone (reaped)"
    );
    let took = wait_peer_lost(&lab, 2, "node1 (Primary) killed");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    lab.node(2).run("drbdadm primary r0").unwrap();
    assert_eq!(minor1(&lab.node(2).drbd_minors().unwrap()).role, "Primary");
    assert!(matches!(
        lab.node(1).exec("true"),
        Err(iscsi_ha_lab::LabError::NodeDown(_))
    ));

    // Reboot into the same disk: node1 comes back with its data and rejoins as Secondary.
    lab.reboot_node(1).unwrap();
    assert_eq!(read_backing(&lab, 1, 8, 16), "before-the-crash");
    lab.wait_healthy(Duration::from_secs(60)).unwrap();
    let n1 = lab.node(1).drbd_minors().unwrap();
    assert_eq!(
        (minor1(&n1).role.as_str(), minor1(&n1).peer_role.as_str()),
        ("Secondary", "Primary")
    );

    // Dropping the lab removes its VMs and namespaces.
    let pids: Vec<i32> = lab.nodes().iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 2);
    drop(lab);
    assert_gone(&pids);
}

fn assert_gone(pids: &[i32]) {
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = !stat.is_empty()
            && !stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        assert!(!alive, "qemu {pid} survived the lab");
    }
    for ns in [net::NET_NS, net::INITIATOR_NS] {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "namespace {ns} survived the lab"
        );
    }
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let lab = Lab::up(LabOptions {
            drbd: None,
            ..LabOptions::default()
        })
        .expect("the lab comes up");
        let pids: Vec<i32> = lab.nodes().iter().filter_map(|n| n.pid()).collect();
        tx.send(pids).unwrap();
        panic!("deliberate panic with a lab up");
    });
    assert!(handle.join().is_err(), "the thread panicked");
    let pids = rx.recv().unwrap();
    assert_eq!(pids.len(), 2);
    assert_gone(&pids);
}

/// `iha-lab capture-drbd` end to end: every scenario yields a capture with drbd messages.
/// The lab is created in a thread that ends before it is used: its VMs must not die with
/// that thread.
#[test]
fn drbd_genl_capture_regenerates_every_scenario() {
    let lab = std::thread::spawn(|| Lab::up(LabOptions::default()).expect("the lab comes up"))
        .join()
        .expect("the lab thread");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        lab.nodes().iter().all(|n| n.is_running()),
        "VMs outlive the creating thread"
    );
    let out = std::env::temp_dir().join(format!("iha-lab-capture-{}", std::process::id()));
    let fixtures = capture::capture_drbd(&lab, &out).unwrap();
    assert_eq!(fixtures.len(), capture::SCENARIOS.len());
    for f in &fixtures {
        eprintln!("{}: {} packets, {} messages", f.name, f.packets, f.messages);
        assert!(f.messages >= 4, "{}: {} messages", f.name, f.messages);
        for ext in ["pcap", "nlhex", "txt"] {
            assert!(out.join(format!("{}.{ext}", f.name)).is_file());
        }
    }
    let refused = std::fs::read_to_string(out.join("primary-refused.txt")).unwrap();
    assert!(refused.contains("[exit status 11]"), "{refused}");
    std::fs::remove_dir_all(&out).unwrap();
}
