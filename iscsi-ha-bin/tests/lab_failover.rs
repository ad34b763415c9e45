//! Failover end to end in the two-VM lab: the real DRBD 8.4 module, tgtd started by our daemon,
//! the VIP moved by our daemon, and an initiator outside both VMs (qemu-io over iSCSI in the
//! lab's initiator namespace) reading and writing through the VIP while roles flip and hosts
//! die. One lab boot runs the scenarios of issue 7 in order, then step 9 with the kernel's LIO
//! target instead of tgtd (issue 15), then step 10 with tgtd again and an IPv6 VIP (issue 16),
//! then step 11 with LIO behind that IPv6 VIP (its portal on `[fd99::100]:3260`); each prints
//! what it measured.
//! Needs root and the lab's prerequisites; fails with the lab's message when they are missing.

#![allow(clippy::unwrap_used)]

mod bare_root;

use iscsi_ha_lab::adverts::AdvertWatch;
use iscsi_ha_lab::cluster::{Binaries, Cluster};
use iscsi_ha_lab::net::{node_ip6, VipFamily, VIP6};
use iscsi_ha_lab::Lab;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Blocks written by the initiator: (offset, pattern). 64 KiB each, spread over the disk.
const BLOCKS: [(u64, u8); 6] = [
    (0, 0x11),
    (1 << 20, 0x22),
    (5 << 20, 0x33),
    (17 << 20, 0x44),
    (33 << 20, 0x55),
    (60 << 20, 0x66),
];
const BLOCK: u64 = 64 * 1024;
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);

fn binaries() -> Binaries {
    Binaries {
        iscsi_ha: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-ha")),
        iscsi_cfg: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-cfg")),
    }
}

/// Changes what a reload refuses (the backend, the VIP) the way the README says: node1 (the
/// master) releases, both daemons stop, a tgtd left running (invariant 15) is stopped by hand
/// when the backend changes (LIO's portal on the VIP would meet tgtd's), the new file is
/// written, both daemons start and node1 is made master again. Returns how long node1 took
/// to serve after its role file said master.
fn reconfigure_while_nobody_serves(
    lab: &Lab,
    c: &Cluster<'_>,
    config_text: &str,
    stop_tgtd: bool,
) -> Duration {
    c.set_role(1, "slave").unwrap();
    c.wait(1, "released", SERVE_TIMEOUT, |c| {
        let s = c.status(1)?;
        Ok(s["target"]["running"] == false && s["vip"]["here"] == false)
    })
    .unwrap();
    for id in [1, 2] {
        c.stop_daemon(id).unwrap();
        if stop_tgtd {
            lab.node(id)
                .run("kill -KILL $(pidof tgtd) 2>/dev/null; for i in $(seq 50); do pidof tgtd >/dev/null || exit 0; sleep 0.1; done; exit 1")
                .unwrap();
        }
    }
    c.write_config(config_text).unwrap();
    for id in [1, 2] {
        c.start_daemon(id).unwrap();
    }
    c.set_role(1, "master").unwrap();
    c.wait_serving(1, SERVE_TIMEOUT).unwrap()
}

fn step(name: &str) {
    eprintln!("\n=== {name}");
}

fn write_blocks(c: &Cluster<'_>, xor: u8) {
    for (offset, pattern) in BLOCKS {
        c.write_pattern(pattern ^ xor, offset, BLOCK).unwrap();
    }
}

fn assert_blocks(c: &Cluster<'_>, xor: u8, when: &str) {
    for (offset, pattern) in BLOCKS {
        assert!(
            c.read_pattern(pattern ^ xor, offset, BLOCK, Duration::from_secs(30))
                .unwrap(),
            "{when}: block at {offset} does not read back as {:#04x}",
            pattern ^ xor
        );
    }
}

/// What an initiator reads of LUN 1's identity through the VIP: VPD page `page` (0x80 unit
/// serial, 0x83 device identification), as libiscsi's `iscsi-inq` prints it.
fn vpd(c: &Cluster<'_>, page: u8) -> String {
    let out = c
        .lab()
        .initiator(&format!("iscsi-inq -e 1 -c {page} {}", c.lun_url()))
        .unwrap();
    assert!(
        out.success(),
        "iscsi-inq page {page}: {}",
        out.stderr_text()
    );
    out.stdout_text()
}

/// The unit serial in `iscsi-inq`'s page 0x80 (`Unit Serial Number:[...]`), without the
/// padding: tgtd right-aligns it in 36 bytes with leading spaces, LIO sends it bare.
fn serial(page: &str) -> String {
    page.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(serial, _)| serial.trim().to_string())
        .unwrap_or_else(|| panic!("no serial in {page:?}"))
}

fn holds(c: &Cluster<'_>, id: u8) -> Vec<String> {
    c.status(id).unwrap()["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

fn alerts_matching(c: &Cluster<'_>, id: u8, needle: &str) -> usize {
    c.status(id).unwrap()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["message"].as_str().unwrap().contains(needle))
        .count()
}

#[test]
fn failover_end_to_end_in_the_lab() {
    let started = Instant::now();
    let lab = Lab::up(iscsi_ha_lab::cluster::lab_options())
        .unwrap_or_else(|e| panic!("the lab did not come up: {e}"));
    step("0. the .rpm's binaries run in a root of their own (glibc 2.17 build)");
    bare_root::packaged_binaries_run_in_a_bare_root(&lab, 1);
    let mut c = Cluster::deploy(
        &lab,
        &binaries(),
        "\n[monitor]\nmax_starts = 3\nretry_delay = \"500ms\"\n",
    )
    .unwrap();

    step("1. cold start: node1 master, node2 slave");
    c.set_role(1, "master").unwrap();
    let t = c.wait_serving(1, SERVE_TIMEOUT).unwrap();
    eprintln!("node1 serving {t:?} after its role file said master");
    assert_eq!(c.status(2).unwrap()["resources"][0]["role"], "Secondary");
    write_blocks(&c, 0);
    assert_blocks(&c, 0, "after the cold start");

    step("1b. doctor on the Secondary against the real r0 (fenced as the design needs)");
    let doctor = |id: u8| -> serde_json::Value {
        let out = lab
            .node(id)
            .exec("/host/bin/iscsi-ha doctor /host/etc/iscsi-ha.toml --json")
            .unwrap();
        serde_json::from_str(&out.stdout_text())
            .unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout_text(), out.stderr_text()))
    };
    let level = |report: &serde_json::Value, check: &str| -> String {
        let found: Vec<&serde_json::Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == check)
            .collect();
        assert_eq!(found.len(), 1, "{check}: {report:#}");
        format!(
            "{} {}",
            found[0]["level"].as_str().unwrap(),
            found[0]["what"].as_str().unwrap()
        )
    };
    let report = doctor(2);
    for check in [
        "drbd.module",
        "drbd.r0.protocol",
        "drbd.r0.fencing",
        "drbd.r0.fence-peer",
        "drbd.r0.after-sb-0pri",
        "drbd.r0.after-sb-1pri",
        "drbd.r0.after-sb-2pri",
    ] {
        let l = level(&report, check);
        assert!(l.starts_with("ok "), "{check}: {l}");
    }
    assert!(level(&report, "drbd.r0.protocol").contains("the kernel runs protocol C"));
    assert!(level(&report, "drbd.module").contains("DRBD 8.4"));
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["check"] != "drbd.netlink"));
    // drbdsetup as a tool: the kernel's fencing policy changed under drbd.conf is what doctor reads.
    let minor = "$(drbdadm sh-minor r0)";
    lab.node(2)
        .run(&format!(
            "drbdsetup disk-options {minor} --fencing=dont-care"
        ))
        .unwrap();
    let l = level(&doctor(2), "drbd.r0.fencing");
    assert!(
        l.starts_with("error the kernel runs fencing dont-care"),
        "{l}"
    );
    lab.node(2)
        .run(&format!(
            "drbdsetup disk-options {minor} --fencing=resource-and-stonith"
        ))
        .unwrap();
    assert!(level(&doctor(2), "drbd.r0.fencing").starts_with("ok "));
    assert_eq!(report["fingerprint"], doctor(1)["fingerprint"]);

    step("2. planned switch: node1 -> node2");
    let f = c.failover(1, 2, BLOCKS[0].1, SERVE_TIMEOUT).unwrap();
    eprintln!(
        "planned switch: role change -> serving {:?} ({} reads; role writes took {:?})",
        f.role_change_to_serving, f.attempts, f.role_write
    );
    assert_blocks(&c, 0, "after the planned switch");
    assert_eq!(c.status(1).unwrap()["resources"][0]["role"], "Secondary");
    assert_eq!(c.status(1).unwrap()["vip"]["here"], false);

    step("3. the master (node2) dies; node1's role becomes master");
    lab.node(2).kill().unwrap();
    let t0 = Instant::now();
    c.set_role(1, "master").unwrap();
    c.wait_serving(1, SERVE_TIMEOUT).unwrap();
    while !c
        .read_pattern(BLOCKS[0].1, 0, 4096, Duration::from_secs(5))
        .unwrap()
    {
        assert!(
            t0.elapsed() < SERVE_TIMEOUT,
            "node1 serves but the initiator cannot read"
        );
    }
    eprintln!(
        "survivor serving {:?} after its role change (DRBD had to notice the dead peer)",
        t0.elapsed()
    );
    assert_blocks(&c, 0, "after the master died: no acknowledged write lost");
    write_blocks(&c, 0xff);
    lab.reboot_node(2).unwrap();
    c.set_role(2, "slave").unwrap();
    c.start_daemon(2).unwrap();
    lab.node(2)
        .wait_drbd(
            "back as Secondary and resynced",
            Duration::from_secs(120),
            |m| {
                m.first().is_some_and(|m| {
                    m.is_healthy() && m.role == "Secondary" && m.peer_role == "Primary"
                })
            },
        )
        .unwrap();
    let s2 = c.status(2).unwrap();
    assert_eq!(
        s2["resources"][0]["role"], "Secondary",
        "the returning node stays Secondary: {s2}"
    );
    assert_eq!(s2["target"]["running"], false);

    step("4. tgtd killed on the master (node1): restarted, until its budget runs out");
    // Each tgtd the daemon starts logs "tgtd started"; count them to know a restart happened
    // (a status read right after the kill may still predate the daemon noticing it).
    let starts = |c: &Cluster<'_>| c.daemon_log(1).matches("tgtd started").count();
    let kill_tgtd = || lab.node(1).run("kill -9 $(pidof tgtd)").unwrap();
    let before = starts(&c);
    let t0 = Instant::now();
    kill_tgtd();
    c.wait(1, "tgtd restarted", SERVE_TIMEOUT, |c| {
        Ok(starts(c) > before && c.status(1)?["target"]["running"] == true)
    })
    .unwrap();
    eprintln!("tgtd restarted {:?} after it was killed", t0.elapsed());
    assert_blocks(&c, 0xff, "after tgtd was restarted");
    // max_starts = 3: serving as master is the role change itself and is not counted; each
    // restart after a death is. The restart above was the first; two more are allowed.
    for n in ["second", "third"] {
        let before = starts(&c);
        kill_tgtd();
        c.wait(1, &format!("the {n} restart"), SERVE_TIMEOUT, |c| {
            Ok(starts(c) > before && c.status(1)?["target"]["running"] == true)
        })
        .unwrap();
    }
    kill_tgtd();
    c.wait(1, "the budget to be used up", SERVE_TIMEOUT, |c| {
        Ok(!c.status(1)?["exhausted"].as_array().unwrap().is_empty())
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let s1 = c.status(1).unwrap();
    assert_eq!(
        s1["target"]["running"], false,
        "left alone once the budget is used up: {s1}"
    );
    assert_eq!(alerts_matching(&c, 1, "keeps failing"), 1);
    let out = c.iscsi_cfg(1, "reset").unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    c.wait_serving(1, SERVE_TIMEOUT).unwrap();
    assert_blocks(&c, 0xff, "after the operator's reset");

    step("5. role unknown on the master: nothing changes, one alert");
    c.remove_role(1).unwrap();
    c.wait(1, "role unknown", Duration::from_secs(10), |c| {
        Ok(c.status(1)?["host_role"] == "unknown")
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let s1 = c.status(1).unwrap();
    assert_eq!(s1["target"]["running"], true, "unknown holds: {s1}");
    assert_eq!(s1["vip"]["here"], true);
    assert_eq!(alerts_matching(&c, 1, "role unknown"), 1);
    assert_blocks(&c, 0xff, "while the role is unknown");
    c.set_role(1, "master").unwrap();

    step("6. peer still Primary: promotion held until it demotes");
    c.set_role(2, "master").unwrap();
    c.wait(2, "the peer-Primary hold", Duration::from_secs(10), |c| {
        Ok(holds(c, 2).iter().any(|h| h.contains("peer is Primary")))
    })
    .unwrap();
    assert_eq!(c.status(2).unwrap()["resources"][0]["role"], "Secondary");
    // Held, and reported in status at once; alerted only when the hold lasts (it is also the
    // normal middle of a planned switch).
    c.wait(
        2,
        "the lasting hold alerted",
        Duration::from_secs(30),
        |c| Ok(alerts_matching(c, 2, "peer is Primary") == 1),
    )
    .unwrap();
    let t0 = Instant::now();
    c.set_role(1, "slave").unwrap();
    c.wait_serving(2, SERVE_TIMEOUT).unwrap();
    eprintln!(
        "node2 serving {:?} after node1 was told to demote",
        t0.elapsed()
    );
    assert_blocks(&c, 0xff, "after the held promotion went through");

    step("7. someone deletes the VIP on the master (node2)");
    let t0 = Instant::now();
    lab.node(2)
        .run("ip addr del 10.99.0.100/24 dev eth0")
        .unwrap();
    c.wait(2, "the VIP restored", Duration::from_secs(10), |c| {
        Ok(c.daemon_log(2).matches("assign VIP: done").count() >= 2
            && c.status(2)?["vip"]["here"] == true)
    })
    .unwrap();
    eprintln!("VIP restored {:?} after it was deleted", t0.elapsed());
    assert_blocks(&c, 0xff, "after the VIP was restored");

    step("8. manual mode moves service away, with the original's refusals");
    let out = c.iscsi_cfg(1, "become-primary").unwrap();
    assert!(
        !out.success() && out.stderr_text().contains("not in manual mode"),
        "{}",
        out.stderr_text()
    );
    assert!(c.iscsi_cfg(2, "manual-mode-enable").unwrap().success());
    assert!(c.iscsi_cfg(1, "manual-mode-enable").unwrap().success());
    let out = c.iscsi_cfg(1, "become-primary").unwrap();
    assert!(!out.success(), "refused while node2 is Primary");
    assert!(
        out.stderr_text().contains("the peer is Primary"),
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("become-secondary"),
        "the refusal says what to do"
    );
    let out = c.iscsi_cfg(2, "become-secondary").unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    let out = c.iscsi_cfg(1, "become-primary").unwrap();
    assert!(out.success(), "{}{}", out.stdout_text(), out.stderr_text());
    c.wait_serving(1, SERVE_TIMEOUT).unwrap();
    assert_blocks(&c, 0xff, "after the manual switch");
    let out = c.iscsi_cfg(1, "manual-mode-disable").unwrap();
    assert!(
        !out.success(),
        "node1's pool role (slave) contradicts its DRBD role (Primary)"
    );
    assert!(
        out.stderr_text().contains("become-secondary first")
            || out.stderr_text().contains("become-"),
        "{}",
        out.stderr_text()
    );
    c.set_role(1, "master").unwrap();
    c.set_role(2, "slave").unwrap();
    assert!(c.iscsi_cfg(1, "manual-mode-disable").unwrap().success());
    assert!(c.iscsi_cfg(2, "manual-mode-disable").unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    c.wait_serving(1, SERVE_TIMEOUT).unwrap();
    assert_blocks(&c, 0xff, "after manual mode was disabled");

    step("9. backend = \"lio\": the kernel's target serves the same disk; planned switches both ways");
    let tgt_serial = serial(&vpd(&c, 0x80));
    assert!(!tgt_serial.is_empty());
    let tgt_ids = vpd(&c, 0x83);
    // A backend is changed while no host serves.
    let lio = iscsi_ha_lab::cluster::lab_config_for(
        "lio",
        "\n[monitor]\nmax_starts = 3\nretry_delay = \"500ms\"\n",
    );
    let t = reconfigure_while_nobody_serves(&lab, &c, &lio, true);
    eprintln!("node1 serving through LIO {t:?} after its role file said master");
    for id in [1, 2] {
        let out = lab.node(id).exec("pidof tgtd").unwrap();
        assert!(!out.success(), "node{id}: no tgtd with backend = lio");
    }
    assert_blocks(&c, 0xff, "what tgt served, read through LIO");
    // Identity from the configuration alone: the unit serial is the configured scsi_sn under
    // either backend; LIO derives its NAA from that serial, tgt from its target id and LUN.
    let lio_ids = vpd(&c, 0x83);
    assert_eq!(
        serial(&vpd(&c, 0x80)),
        tgt_serial,
        "the unit serial changed with the backend"
    );
    eprintln!("VPD 0x83 under tgt:\n{tgt_ids}\nVPD 0x83 under LIO:\n{lio_ids}");
    let tpg = format!(
        "/sys/kernel/config/target/iscsi/{}/tpgt_1",
        iscsi_ha_lab::cluster::IQN
    );
    let np = lab
        .node(1)
        .run(&format!("ls {tpg}/np; cat {tpg}/enable"))
        .unwrap();
    assert_eq!(
        np.split_whitespace().collect::<Vec<_>>(),
        ["10.99.0.100:3260", "1"],
        "{np}"
    );
    let modes = lab
        .node(1)
        .run("cat /sys/kernel/config/target/core/fileio_4242/*/info")
        .unwrap();
    assert!(
        modes.contains("File: /dev/drbd1") && modes.contains("Mode: O_DSYNC"),
        "{modes}"
    );
    let f = c.failover(1, 2, 0x11 ^ 0xff, SERVE_TIMEOUT).unwrap();
    eprintln!(
        "LIO planned switch 1->2: {:?} ({} reads)",
        f.role_change_to_serving, f.attempts
    );
    let gone = lab
        .node(1)
        .run("ls /sys/kernel/config/target/iscsi /sys/kernel/config/target/core")
        .unwrap();
    assert!(
        !gone.contains("iscsi-ha:disk") && !gone.contains("fileio_4242"),
        "node1 left: {gone}"
    );
    assert_eq!(c.status(1).unwrap()["resources"][0]["role"], "Secondary");
    assert_eq!(
        vpd(&c, 0x83),
        lio_ids,
        "node2's LIO gives another identity than node1's"
    );
    assert_eq!(serial(&vpd(&c, 0x80)), tgt_serial);
    write_blocks(&c, 0x0f);
    assert_blocks(&c, 0x0f, "written through LIO on node2");
    let f = c.failover(2, 1, 0x11 ^ 0x0f, SERVE_TIMEOUT).unwrap();
    eprintln!(
        "LIO planned switch 2->1: {:?} ({} reads)",
        f.role_change_to_serving, f.attempts
    );
    assert_blocks(&c, 0x0f, "after switching back through LIO");
    assert_eq!(c.status(2).unwrap()["resources"][0]["role"], "Secondary");

    step("10. an IPv6 VIP (fd99::100/64, tgtd): planned switches both ways, announced by unsolicited NA");
    let t10 = Instant::now();
    // The guests' own IPv6 addresses are final (not tentative) from boot, and DAD is back on
    // for what comes after (the daemon's VIP is added with IFA_F_NODAD by itself).
    for id in [1, 2] {
        let own = lab
            .node(id)
            .run("grep ' eth0$' /proc/net/if_inet6; cat /proc/sys/net/ipv6/conf/eth0/accept_dad")
            .unwrap();
        let want = format!("{:032x}", u128::from(node_ip6(id)));
        let line = own
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("node{id}: no {} on eth0: {own}", node_ip6(id)));
        let flags = u32::from_str_radix(line.split_whitespace().nth(4).unwrap(), 16).unwrap();
        assert_eq!(
            flags & 0x40,
            0,
            "node{id}: {} tentative: {line}",
            node_ip6(id)
        );
        assert_eq!(own.lines().last(), Some("1"), "node{id}: accept_dad: {own}");
    }
    // The VIP changes, so both daemons restart (reload refuses a new VIP) while nobody
    // serves; LIO's target goes with node1's release. The initiator reads through the IPv6
    // VIP from then on.
    let tgt6 = iscsi_ha_lab::cluster::lab_config_for_family(
        "tgt",
        1,
        VipFamily::V6,
        "\n[monitor]\nmax_starts = 3\nretry_delay = \"500ms\"\n",
    );
    c.use_vip(VipFamily::V6);
    reconfigure_while_nobody_serves(&lab, &c, &tgt6, false);
    assert!(c.lun_url().starts_with("iscsi://[fd99::100]/"));
    // Written through LIO over IPv4, read through tgtd over IPv6 (an IPv6-only access list).
    assert!(c
        .read_pattern(0x11 ^ 0x0f, 0, BLOCK, Duration::from_secs(30))
        .unwrap());
    let vip_on = |id: u8| -> bool {
        lab.node(id)
            .run("ip -6 addr show dev eth0")
            .unwrap()
            .contains(&format!("inet6 {VIP6}/64"))
    };
    for (from, to) in [(1, 2), (2, 1)] {
        let watch = AdvertWatch::start(&lab).unwrap();
        let f = c.failover(from, to, 0x11 ^ 0x0f, SERVE_TIMEOUT).unwrap();
        eprintln!(
            "IPv6 planned switch {from}->{to}: {:?} ({} reads)",
            f.role_change_to_serving, f.attempts
        );
        let (adverts, seen) = watch.stop().unwrap();
        let to_mac = format!("52:54:00:99:00:{to:02x}");
        assert!(
            adverts.iter().any(|a| a.src_mac == to_mac
                && a.target == VIP6
                && a.override_flag
                && !a.solicited
                && a.dst_mac == "33:33:00:00:00:01"),
            "no unsolicited NA for {VIP6} with Override from node{to} ({to_mac}) to all nodes; the initiator saw:\n{seen}"
        );
        assert_eq!(
            c.initiator_vip_mac().unwrap().as_deref(),
            Some(to_mac.as_str()),
            "the initiator's neighbour entry for {VIP6}"
        );
        assert!(!vip_on(from), "node{from} still holds {VIP6}");
        assert!(vip_on(to), "node{to} does not hold {VIP6}");
        assert_eq!(c.status(from).unwrap()["resources"][0]["role"], "Secondary");
    }
    eprintln!("IPv6 VIP step took {:?}", t10.elapsed());

    step("11. backend = \"lio\" behind the IPv6 VIP: its portal on [fd99::100]:3260; planned switches both ways");
    let t11 = Instant::now();
    // A backend change again while nobody serves, tgtd stopped as in step 9.
    let lio6 = iscsi_ha_lab::cluster::lab_config_for_family(
        "lio",
        1,
        VipFamily::V6,
        "\n[monitor]\nmax_starts = 3\nretry_delay = \"500ms\"\n",
    );
    reconfigure_while_nobody_serves(&lab, &c, &lio6, true);
    let tpg = format!(
        "/sys/kernel/config/target/iscsi/{}/tpgt_1",
        iscsi_ha_lab::cluster::IQN
    );
    let portal = |id: u8| -> String {
        lab.node(id)
            .run(&format!("ls {tpg}/np 2>/dev/null; true"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(portal(1), format!("[{VIP6}]:3260"), "node1's LIO portal");
    // Written through tgtd over IPv6, read through LIO over IPv6.
    assert!(c
        .read_pattern(0x11 ^ 0x0f, 0, BLOCK, Duration::from_secs(30))
        .unwrap());
    for (from, to) in [(1, 2), (2, 1)] {
        let f = c.failover(from, to, 0x11 ^ 0x0f, SERVE_TIMEOUT).unwrap();
        eprintln!(
            "LIO IPv6 planned switch {from}->{to}: {:?} ({} reads)",
            f.role_change_to_serving, f.attempts
        );
        assert_eq!(
            portal(to),
            format!("[{VIP6}]:3260"),
            "node{to}'s LIO portal"
        );
        assert_eq!(portal(from), "", "node{from} left a portal behind");
        assert!(!vip_on(from), "node{from} still holds {VIP6}");
        assert_eq!(c.status(from).unwrap()["resources"][0]["role"], "Secondary");
    }
    eprintln!("LIO IPv6 step took {:?}", t11.elapsed());

    eprintln!("\nall scenarios passed in {:?}", started.elapsed());
}
