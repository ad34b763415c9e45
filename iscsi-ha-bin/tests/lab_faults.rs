//! Faults end to end in the two-VM lab: what the daemons do when the VIP's interface vanishes,
//! when DRBD is disconnected by hand, when both nodes die and the wrong one comes back alone,
//! when a master is paused or cut off while its peer takes over (the stale master), when the
//! master dies right after unflushed writes complete, and when the daemon is restarted under
//! an initiator.
//!
//! One lab boot runs the scenarios in order (S6, S8, S4, S1, S2, S5, S7, S3; `IHA_FAULTS=S1,S5` picks some
//! for a quicker run, in the same order). During each scenario an initiator outside both VMs
//! (qemu-io over iSCSI in the lab's initiator namespace) writes through the VIP: write `i` of a
//! scenario goes to its own 4 KiB block in the scenario's region and carries a byte derived
//! from the scenario and `i`, so every block names its writer and its moment. With each write
//! the initiator reads back the newest block it saw acknowledged: a host serving old data
//! answers that read with zeros. At the end of each scenario every write the initiator saw
//! acknowledged must read back through the VIP. Each scenario prints the daemons' logs for its
//! time and the initiator's view. Needs root and the lab's prerequisites; fails with the
//! lab's message when they are missing (never skips).

#![allow(clippy::unwrap_used)]

use iscsi_ha_lab::cluster::{lab_config, lab_config_on, Binaries, Cluster};
use iscsi_ha_lab::writer::{with_writer, Block, Op, Writer, BLOCK};
use iscsi_ha_lab::Lab;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Each scenario writes in its own 8 MiB region (the disk is 64 MiB).
const REGION: u64 = 8 << 20;
const LONG: Duration = Duration::from_secs(90);
/// How long a stale master may take to stop serving once it can hear the new one.
const YIELD_BOUND: Duration = Duration::from_secs(15);
const EXTRA: &str = "\n[monitor]\nretry_delay = \"500ms\"\n";

fn binaries() -> Binaries {
    Binaries {
        iscsi_ha: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-ha")),
        iscsi_cfg: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-cfg")),
    }
}

fn other(id: u8) -> u8 {
    3 - id
}

fn wall() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let s = t.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    )
}

// ---------------------------------------------------------------------------------------------
// The initiator: the lab's checking writer, each scenario in its own region.

type Initiator<'l> = Writer<'l>;

fn initiator<'l>(c: &'l Cluster<'_>, scenario: u8, t0: Instant) -> Initiator<'l> {
    Writer::new(
        c.lab(),
        c.lun_url(),
        scenario,
        u64::from(scenario) * REGION,
        REGION,
        t0,
    )
}

// ---------------------------------------------------------------------------------------------
// Witnesses on the nodes (tests may use the tools; the product does not).

fn has_vip(c: &Cluster<'_>, id: u8) -> bool {
    let out = c
        .lab()
        .node(id)
        .run("ip -4 addr show 2>/dev/null | grep -c 'inet 10.99.0.100/' || true")
        .unwrap();
    out.trim() != "0"
}

fn exports(c: &Cluster<'_>, id: u8) -> bool {
    let out = c
        .lab()
        .node(id)
        .run("tgtadm --lld iscsi --mode target --op show 2>/dev/null | grep -c '^Target' || true")
        .unwrap();
    out.trim() != "0"
}

/// Whether node `id`'s `r0` (minor 1) has its I/O suspended: the first of `/proc/drbd`'s state
/// flags after the protocol letter is `s` then (`r` while I/O runs).
fn io_frozen(c: &Cluster<'_>, id: u8) -> bool {
    let text = c.lab().node(id).run("cat /proc/drbd").unwrap_or_default();
    text.lines()
        .find(|l| l.trim_start().starts_with("1: "))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let ds = words.iter().position(|w| w.starts_with("ds:"))?;
            words.get(ds + 2).map(|flags| flags.starts_with('s'))
        })
        .unwrap_or(false)
}

fn drbd_line(c: &Cluster<'_>, id: u8) -> String {
    c.lab()
        .node(id)
        .drbd_minors()
        .ok()
        .and_then(|m| m.first().cloned())
        .map_or("(no minor)".into(), |m| {
            format!(
                "cs:{} ro:{}/{} ds:{}/{}",
                m.cs, m.role, m.peer_role, m.disk, m.peer_disk
            )
        })
}

fn drbd_role(c: &Cluster<'_>, id: u8) -> String {
    c.lab()
        .node(id)
        .drbd_minors()
        .unwrap()
        .first()
        .map(|m| m.role.clone())
        .unwrap_or_default()
}

fn status(c: &Cluster<'_>, id: u8) -> Value {
    c.status(id).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn alerts_matching(s: &Value, needle: &str) -> usize {
    s["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["message"].as_str().unwrap_or_default().contains(needle))
        .count()
}

fn split_brain(s: &Value) -> Option<&Value> {
    let sb = &s["resources"][0]["split_brain"];
    sb.is_object().then_some(sb)
}

fn cfg_ok(c: &Cluster<'_>, id: u8, args: &str) -> String {
    c.iscsi_cfg_ok(id, args)
        .unwrap_or_else(|e| panic!("node{id}: {e}"))
}

fn short_status(c: &Cluster<'_>, id: u8) -> String {
    match c.status(id) {
        Ok(s) => format!(
            "role {} intent {} | {} | target {} vip {} | holds {:?}",
            s["host_role"],
            s["intent"],
            drbd_line(c, id),
            s["target"]["running"],
            s["vip"]["here"],
            strings(&s["holds"])
        ),
        Err(e) => format!("(no status: {e})"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario bookkeeping: the timeline.

struct Scenario<'c, 'l> {
    c: &'c Cluster<'l>,
    name: String,
    t0: Instant,
    log_from: [usize; 2],
    marks: Vec<(Duration, String, String)>,
}

impl<'c, 'l> Scenario<'c, 'l> {
    fn start(c: &'c Cluster<'l>, name: &str) -> Self {
        eprintln!("\n=== {name} (host clock {})", wall());
        Self {
            c,
            name: name.to_string(),
            t0: Instant::now(),
            log_from: [c.daemon_log(1).len(), c.daemon_log(2).len()],
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, what: impl Into<String>) {
        let what = what.into();
        let at = self.t0.elapsed();
        eprintln!("  +{:6.1}s {} {what}", at.as_secs_f64(), wall());
        self.marks.push((at, wall(), what));
    }

    /// Prints both daemons' log lines written since the scenario began (the whole log of a
    /// node that rebooted), each node's clock offset, and the initiator's view.
    fn report(&self, ini: &Initiator<'_>) {
        let mut o = String::new();
        let _ = writeln!(o, "--- {}: timeline", self.name);
        for (at, w, what) in &self.marks {
            let _ = writeln!(o, "  test  +{:6.1}s {w} {what}", at.as_secs_f64());
        }
        for id in [1u8, 2] {
            let log = self.c.daemon_log(id);
            let from = self.log_from[usize::from(id - 1)];
            let new = if log.len() >= from {
                &log[from..]
            } else {
                &log[..]
            };
            let offset = self
                .c
                .lab()
                .node(id)
                .run("date +%s")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|g| {
                    let h = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    format!("{:+.0} s", g - h)
                })
                .unwrap_or_else(|| "unknown".into());
            let _ = writeln!(
                o,
                "  node{id} daemon log (guest clock vs host: {offset}; a paused VM's clock lags):"
            );
            for line in new.lines().filter(|l| !l.trim().is_empty()) {
                let line: String = line.chars().take(220).collect();
                let _ = writeln!(o, "    node{id} {line}");
            }
        }
        let _ = writeln!(o, "  initiator:\n{}", ini.view());
        eprintln!("{o}");
    }
}

/// Reads back every acknowledged write and fails the scenario on any that does not.
fn assert_all_acked_read_back(ini: &Initiator<'_>, when: &str) {
    let bad = ini.verify_all();
    assert!(
        bad.is_empty(),
        "S{} {when}: {} of {} acknowledged writes do not read back through the VIP: {:x?}",
        ini.tag,
        bad.len(),
        ini.acked.len(),
        bad
    );
    eprintln!(
        "  all {} acknowledged writes of S{} read back through the VIP ({when})",
        ini.acked.len(),
        ini.tag
    );
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    t0.elapsed()
}

/// Both nodes Connected UpToDate/UpToDate.
fn wait_healthy(c: &Cluster<'_>) {
    c.lab().wait_healthy(LONG).unwrap();
}

fn selected(name: &str) -> bool {
    std::env::var("IHA_FAULTS")
        .map(|v| v.split(',').any(|s| s.trim().eq_ignore_ascii_case(name)))
        .unwrap_or(true)
}

// ---------------------------------------------------------------------------------------------
// The scenarios. Each starts and ends with `master` serving, the other node a Connected
// UpToDate Secondary, manual mode off; each returns the master it leaves.

/// S6: `drbdadm disconnect` + writes on the serving master is not a split brain; tgtd killed
/// and the VIP deleted are repaired as usual; `drbdadm connect` resyncs.
fn s6(c: &Cluster<'_>, master: u8) -> u8 {
    let peer = other(master);
    let mut sc = Scenario::start(c, "S6: drbdadm disconnect on the serving master");
    let ini = initiator(c, 6, sc.t0);
    let node = c.lab().node(master);
    let (ini, ()) = with_writer(ini, || {
        thread::sleep(Duration::from_secs(2));
        node.run("drbdadm disconnect r0").unwrap();
        sc.mark(format!("node{master}: drbdadm disconnect r0"));
        node.wait_drbd("StandAlone", LONG, |m| {
            m.first().is_some_and(|m| m.cs == "StandAlone")
        })
        .unwrap();
        thread::sleep(Duration::from_secs(4));
        for id in [master, peer] {
            let s = status(c, id);
            assert!(
                split_brain(&s).is_none()
                    && !strings(&s["holds"])
                        .iter()
                        .any(|h| h.contains("split brain")),
                "node{id}: a disconnect is not a split brain: {s}"
            );
        }
        let s = status(c, master);
        assert_eq!(s["target"]["running"], true, "keeps serving: {s}");
        assert_eq!(s["vip"]["here"], true, "keeps the VIP: {s}");
        sc.mark(format!(
            "no split brain reported; node{master}: {}",
            short_status(c, master)
        ));

        let starts = |c: &Cluster<'_>| c.daemon_log(master).matches("tgtd started").count();
        let before = starts(c);
        node.run("kill -9 $(pidof tgtd)").unwrap();
        sc.mark(format!("node{master}: kill -9 tgtd"));
        let t = c
            .wait(master, "tgtd restarted", LONG, |c| {
                Ok(starts(c) > before && c.status(master)?["target"]["running"] == true)
            })
            .unwrap();
        sc.mark(format!("tgtd restarted after {t:.1?}"));

        let assigns = |c: &Cluster<'_>| c.daemon_log(master).matches("assign VIP: done").count();
        let before = assigns(c);
        node.run("ip addr del 10.99.0.100/24 dev eth0").unwrap();
        sc.mark(format!("node{master}: ip addr del VIP"));
        let t = c
            .wait(master, "the VIP restored", LONG, |c| {
                Ok(assigns(c) > before && c.status(master)?["vip"]["here"] == true)
            })
            .unwrap();
        sc.mark(format!("VIP restored after {t:.1?}"));
        thread::sleep(Duration::from_secs(2));
    });
    let s = status(c, master);
    assert!(split_brain(&s).is_none(), "still no split brain: {s}");
    // The operator's disconnect is left alone: no take-over, no yield, so the daemon never
    // reconnects it (ARCHITECTURE.md, reconnecting after a lost peer).
    assert!(
        node.drbd_minors()
            .unwrap()
            .first()
            .is_some_and(|m| m.cs == "StandAlone"),
        "node{master}: the operator's disconnect stays StandAlone: {}",
        drbd_line(c, master)
    );
    assert!(
        !c.daemon_log(master).contains("reconnect r0"),
        "node{master}: the daemon reconnected the operator's disconnect"
    );
    sc.mark(format!(
        "node{master}: still StandAlone, not reconnected by the daemon"
    ));
    node.run("drbdadm connect r0").unwrap();
    sc.mark(format!("node{master}: drbdadm connect r0"));
    wait_healthy(c);
    sc.mark(format!(
        "resynced: node{master} {} / node{peer} {}",
        drbd_line(c, master),
        drbd_line(c, peer)
    ));
    // The peer's backing disk has the last write made while disconnected.
    let Block { offset, byte, .. } = *ini.acked.last().unwrap();
    let on_peer = c
        .lab()
        .node(peer)
        .run(&format!(
            "dd if=/dev/vda bs=4096 skip={} count=1 2>/dev/null | od -An -tx1 | head -1",
            offset / BLOCK
        ))
        .unwrap();
    assert!(
        on_peer
            .split_whitespace()
            .all(|b| b == format!("{byte:02x}")),
        "node{peer}'s disk has the write made while disconnected after the resync: {on_peer}"
    );
    for id in [master, peer] {
        assert!(split_brain(&status(c, id)).is_none());
    }
    sc.report(&ini);
    assert!(
        ini.stale_reads_since(Duration::ZERO).is_empty(),
        "{}",
        ini.view()
    );
    assert_all_acked_read_back(&ini, "after the resync");
    master
}

/// S3: both nodes die, the Secondary first; the master acknowledged writes after that. The
/// former Secondary boots alone and is made master: its disk may hold old data (DRBD 8.4 calls
/// a disk attached without its peer UpToDate when fencing is `dont-care`, the default), so it
/// must hold until an operator forces it; the writes it lacks are then the operator's choice.
fn s3(c: &Cluster<'_>, master: u8) -> u8 {
    let survivor = other(master);
    let lab = c.lab();
    let mut sc = Scenario::start(
        c,
        "S3: both nodes down (the Secondary first), the former Secondary boots alone",
    );
    let mut ini = initiator(c, 3, sc.t0);
    ini.write_acked(3, LONG).unwrap();
    let replicated = ini.acked.len();
    sc.mark(format!(
        "{replicated} writes acknowledged by node{master} (replicated)"
    ));
    lab.node(survivor).kill().unwrap();
    sc.mark(format!("power cut: node{survivor} (Secondary)"));
    ini.write_acked(3, LONG).unwrap();
    let only_on_master: Vec<Block> = ini.acked[replicated..].to_vec();
    sc.mark(format!(
        "{} more writes acknowledged by node{master} alone: {}",
        only_on_master.len(),
        drbd_line(c, master)
    ));
    lab.node(master).kill().unwrap();
    sc.mark(format!("power cut: node{master} (master)"));
    lab.reboot_node(survivor).unwrap();
    prepare_after_boot(c, survivor);
    sc.mark(format!(
        "node{survivor} booted alone, drbdadm up: {}",
        drbd_line(c, survivor)
    ));
    c.set_role(survivor, "master").unwrap();
    c.start_daemon(survivor).unwrap();
    sc.mark(format!("node{survivor}: role master, daemon started"));
    let held = c.wait(
        survivor,
        "the old-data hold",
        Duration::from_secs(20),
        |c| {
            Ok(strings(&c.status(survivor)?["holds"])
                .iter()
                .any(|h| h.contains("may hold old data")))
        },
    );
    if held.is_err() {
        sc.mark(format!("node{survivor}: {}", short_status(c, survivor)));
        // Show what the initiator gets from the host that went ahead.
        let missing: Vec<Block> = ini
            .verify_all()
            .into_iter()
            .filter(|b| only_on_master.contains(b))
            .collect();
        sc.report(&ini);
        panic!(
            "PRODUCT BUG: node{survivor} booted alone with a disk DRBD calls {} and promoted it \
             without the operator: {} of the {} writes node{master} acknowledged after \
             node{survivor} went down are not there through the VIP ({missing:x?})",
            drbd_line(c, survivor),
            missing.len(),
            only_on_master.len()
        );
    }
    thread::sleep(Duration::from_secs(3));
    let s = status(c, survivor);
    sc.mark(format!("node{survivor}: {}", short_status(c, survivor)));
    assert!(
        strings(&s["holds"]).iter().any(|h| h
            .contains("iscsi-cfg manual-mode-enable && iscsi-cfg become-primary --force")),
        "the hold says what to run: {s}"
    );
    assert_eq!(
        alerts_matching(&s, "may hold old data"),
        1,
        "one alert: {s}"
    );
    assert_eq!(drbd_role(c, survivor), "Secondary", "not promoted: {s}");
    assert!(
        !has_vip(c, survivor) && !exports(c, survivor),
        "not serving: {s}"
    );

    cfg_ok(c, survivor, "manual-mode-enable");
    cfg_ok(c, survivor, "become-primary --force");
    sc.mark(format!(
        "node{survivor}: manual-mode-enable && become-primary --force"
    ));
    let t = c.wait_serving(survivor, LONG).unwrap();
    sc.mark(format!("node{survivor} serving after {t:.1?}"));
    // The operator chose this side: it has the replicated writes, not the later ones.
    let missing = ini.verify_all();
    assert_eq!(
        missing, only_on_master,
        "the forced side has exactly the writes made before the Secondary went down"
    );
    ini.acked.retain(|b| !only_on_master.contains(b));
    ini.write_acked(3, LONG).unwrap();
    sc.mark(format!("writes acknowledged by node{survivor}"));

    lab.reboot_node(master).unwrap();
    prepare_after_boot(c, master);
    c.set_role(master, "slave").unwrap();
    c.start_daemon(master).unwrap();
    sc.mark(format!(
        "node{master} back (role slave, daemon started): {}",
        drbd_line(c, master)
    ));
    // Both sides wrote after they parted: DRBD sees a split brain (or resyncs, if it can).
    // The survivor's daemon ran throughout, so it must know which.
    let t0 = Instant::now();
    let outcome = loop {
        let m = drbd_line(c, master);
        let s = drbd_line(c, survivor);
        if m.contains("cs:Connected")
            && m.contains("UpToDate/UpToDate")
            && s.contains("cs:Connected")
        {
            break "resynced";
        }
        if split_brain(&status(c, survivor)).is_some() {
            break "split brain";
        }
        if t0.elapsed() > Duration::from_secs(30) {
            sc.mark(format!("node{survivor}: {}", short_status(c, survivor)));
            sc.mark(format!("node{master}: {}", short_status(c, master)));
            for id in [1, 2] {
                eprintln!(
                    "  node{id} kernel: {}",
                    lab.node(id)
                        .run("dmesg | grep -i -E 'split-brain|helper' | tail -5")
                        .unwrap_or_default()
                );
            }
            sc.report(&ini);
            panic!("node{survivor} reports neither a split brain nor a resync: {m} / {s}");
        }
        thread::sleep(Duration::from_millis(300));
    };
    sc.mark(format!("node{master} returned: {outcome}"));
    for id in [1, 2] {
        eprintln!(
            "  node{id} kernel: {}",
            lab.node(id)
                .run("dmesg | grep -i -E 'split-brain|helper' | tail -4")
                .unwrap_or_default()
        );
    }
    for id in [survivor, master] {
        let text = c.status_text(id).unwrap();
        let sb = cfg_ok(c, id, "split-brain");
        eprintln!(
            "  node{id} status:\n{}  node{id} split-brain:\n{}",
            indent(&text),
            indent(&sb)
        );
    }
    if outcome == "split brain" {
        let ss = status(c, survivor);
        let sm = status(c, master);
        for (id, s) in [(survivor, &ss), (master, &sm)] {
            if let Some(v) = split_brain(s) {
                eprintln!(
                    "  node{id}: keep {} confidence {} why: {}",
                    v["keep"], v["confidence"], v["why"]
                );
            }
        }
        assert_eq!(split_brain(&ss).unwrap()["keep"], "this_host", "{ss}");
        if split_brain(&sm).is_none() {
            // DRBD met the split brain while node{master} booted, before its daemon ran: no
            // helper call was seen there. Its split-brain view must still point the way.
            let text = cfg_ok(c, master, "split-brain");
            assert!(
                text.contains("r0 is StandAlone") && text.contains("other host's"),
                "{text}"
            );
        }
        cfg_ok(c, master, "split-brain resolve --discard-local-data --yes");
        cfg_ok(c, survivor, "split-brain reconnect");
        sc.mark(format!(
            "advice followed: resolve --discard-local-data on node{master}, reconnect on node{survivor}"
        ));
    }
    wait_healthy(c);
    sc.mark(format!(
        "node{survivor} {} / node{master} {}",
        drbd_line(c, survivor),
        drbd_line(c, master)
    ));
    c.set_role(survivor, "master").unwrap();
    cfg_ok(c, survivor, "manual-mode-disable");
    c.wait_serving(survivor, LONG).unwrap();
    assert_eq!(drbd_role(c, master), "Secondary");
    sc.report(&ini);
    assert!(
        ini.stale_reads_since(Duration::ZERO).is_empty(),
        "{}",
        ini.view()
    );
    assert_all_acked_read_back(
        &ini,
        "after the other node returned (less the writes the operator's --force gave up)",
    );
    survivor
}

/// S4: the master is switched to a node in the middle of a resync to it (paused, so the switch
/// lands in it): the new master serves from its Inconsistent disk only because it is connected
/// to the UpToDate old master, its status warns, and the old master stays up (Secondary,
/// connected) until the sync completes.
fn s4(c: &Cluster<'_>, master: u8) -> u8 {
    let target = other(master);
    let lab = c.lab();
    let mut sc = Scenario::start(c, "S4: master switched to a node in the middle of a resync");
    let mut ini = initiator(c, 4, sc.t0);
    lab.node(target).run("drbdadm disconnect r0").unwrap();
    sc.mark(format!("node{target}: drbdadm disconnect r0"));
    ini.write_acked(8, LONG).unwrap();
    sc.mark(format!(
        "{} writes acknowledged by node{master} that node{target} lacks",
        ini.acked.len()
    ));
    lab.node(target)
        .run("drbdadm pause-sync r0; drbdadm connect r0")
        .unwrap();
    lab.node(target)
        .wait_drbd("a paused resync to it", LONG, |m| {
            m.first()
                .is_some_and(|m| m.cs == "PausedSyncT" && m.disk == "Inconsistent")
        })
        .unwrap();
    sc.mark(format!(
        "node{target} reconnected with the resync paused: {}",
        drbd_line(c, target)
    ));
    let (mut ini, ()) = with_writer(ini, || {
        thread::sleep(Duration::from_secs(1));
        thread::scope(|s| {
            s.spawn(|| c.set_role(master, "slave").unwrap());
            c.set_role(target, "master").unwrap();
        });
        sc.mark(format!("roles: node{master} slave, node{target} master"));
        let t = c.wait_serving(target, LONG).unwrap();
        let st = status(c, target);
        sc.mark(format!(
            "node{target} serving after {t:.1?}: {} | warnings {:?}",
            drbd_line(c, target),
            strings(&st["warnings"])
        ));
        assert!(
            strings(&st["warnings"])
                .iter()
                .any(|w| w.contains("Inconsistent") && w.contains("until the sync completes")),
            "the status warns: {st}"
        );
        let m = drbd_line(c, master);
        assert!(
            m.contains("ro:Secondary/Primary") && m.contains("ds:UpToDate/Inconsistent"),
            "the old master stays up, Secondary and connected: {m}"
        );
        thread::sleep(Duration::from_secs(3));
    });
    // While the sync is still paused every acknowledged write reads back through the VIP: the
    // blocks the new master lacks come from the old master over DRBD.
    assert_all_acked_read_back(&ini, "during the paused resync, through the new master");
    assert!(
        drbd_line(c, target).contains("Inconsistent"),
        "still syncing: {}",
        drbd_line(c, target)
    );
    lab.node(target).run("drbdadm resume-sync r0").unwrap();
    sc.mark(format!("node{target}: drbdadm resume-sync r0"));
    wait_healthy(c);
    sc.mark(format!(
        "sync complete: node{target} {} / node{master} {}",
        drbd_line(c, target),
        drbd_line(c, master)
    ));
    c.wait(target, "the warning gone", LONG, |c| {
        Ok(strings(&c.status(target)?["warnings"]).is_empty())
    })
    .unwrap();
    ini.write_acked(2, LONG).unwrap();
    sc.report(&ini);
    assert!(
        ini.stale_reads_since(Duration::ZERO).is_empty(),
        "{}",
        ini.view()
    );
    assert_all_acked_read_back(&ini, "after the sync completed");
    target
}

/// What a node's boot scripts would do besides `drbdadm up`: the spare NIC up (S5 may have
/// moved the VIP there) and ARP answered only on the interface that holds the address.
/// S7: acknowledged means on both disks. The initiator writes with no SYNCHRONIZE CACHE at
/// all, and the master is killed (a power cut) right after the last write completes: every
/// write the initiator saw complete must be on the survivor, read back through the VIP once it
/// has taken over (the LUN's default: no volatile cache reported, an O_SYNC backing store, and
/// DRBD protocol C).
fn s7(c: &Cluster<'_>, master: u8) -> u8 {
    let survivor = other(master);
    let lab = c.lab();
    let mut sc = Scenario::start(
        c,
        "S7: the master killed right after unflushed writes complete",
    );
    let mut ini = initiator(c, 7, sc.t0);
    let acked = ini.write_batch_unflushed(64);
    let completed = Instant::now();
    lab.node(master).kill().unwrap();
    let gap = completed.elapsed();
    sc.mark(format!(
        "{acked} of 64 writes completed without SYNCHRONIZE CACHE; node{master} killed {:.0} ms after the last",
        gap.as_secs_f64() * 1000.0
    ));
    assert_eq!(
        acked,
        64,
        "the batch completes before the kill:\n{}",
        ini.view()
    );
    c.set_role(survivor, "master").unwrap();
    let t = c.wait_serving(survivor, LONG).unwrap();
    sc.mark(format!("node{survivor} serving after {t:.1?}"));
    assert_all_acked_read_back(&ini, "on the survivor, the master killed right after them");
    lab.reboot_node(master).unwrap();
    prepare_after_boot(c, master);
    c.set_role(master, "slave").unwrap();
    c.start_daemon(master).unwrap();
    wait_healthy(c);
    sc.mark(format!(
        "node{master} back as Secondary: {}",
        drbd_line(c, master)
    ));
    sc.report(&ini);
    survivor
}

/// S8: the daemon stopped and started on the master, its binary replaced in between as a
/// package upgrade does, while the initiator writes: tgtd keeps serving throughout (no write
/// fails), the new daemon adopts the same tgtd, and a tgtd killed after that is started again
/// and serving within seconds (its death seen by the adopted tgtd's pidfd, not the scan).
fn s8(c: &Cluster<'_>, master: u8) -> u8 {
    let mut sc = Scenario::start(c, "S8: daemon restart and binary replacement on the master");
    // Region 0: the 64 MiB disk holds regions 0..=7 and S1..S7 use 1..=7.
    let ini = initiator(c, 0, sc.t0);
    let node = c.lab().node(master);
    let tgtd = || node.run("pidof tgtd || true").unwrap().trim().to_string();
    let (ini, (stopped, started)) = with_writer(ini, || {
        thread::sleep(Duration::from_secs(2));
        let before = tgtd();
        assert!(!before.is_empty(), "tgtd runs on the master");
        c.stop_daemon(master).unwrap();
        let stopped = sc.t0.elapsed();
        sc.mark(format!("node{master}: daemon stopped (SIGTERM)"));
        thread::sleep(Duration::from_secs(3));
        assert_eq!(tgtd(), before, "tgtd survives the daemon's stop");
        assert!(
            exports(c, master) && has_vip(c, master),
            "still serving without the daemon"
        );
        c.lab().copy_in(&binaries().iscsi_ha).unwrap();
        sc.mark("binary replaced (a new file renamed over the old, as a package upgrade)");
        c.start_daemon(master).unwrap();
        let started = sc.t0.elapsed();
        sc.mark(format!("node{master}: daemon started"));
        thread::sleep(Duration::from_secs(2));
        assert_eq!(tgtd(), before, "the new daemon adopts the running tgtd");
        node.run("kill -9 $(pidof tgtd)").unwrap();
        sc.mark(format!("node{master}: tgtd killed"));
        let t = wait_until("a new tgtd exporting the target", LONG, || {
            let now = tgtd();
            !now.is_empty() && now != before && exports(c, master)
        });
        sc.mark(format!("tgtd running and exporting again after {t:.1?}"));
        thread::sleep(Duration::from_secs(3));
        (stopped, started)
    });
    let across: Vec<&Op> = ini
        .ops
        .iter()
        .filter(|op| op.done >= stopped && op.at <= started)
        .collect();
    let stall = across
        .iter()
        .map(|op| op.done.saturating_sub(op.at))
        .max()
        .unwrap_or_default();
    sc.mark(format!(
        "{} operations across the stop and start, {} failed; longest {:.0} ms",
        across.len(),
        across.iter().filter(|op| !op.acked).count(),
        stall.as_secs_f64() * 1000.0
    ));
    assert!(
        !across.is_empty() && across.iter().all(|op| op.acked),
        "every write across the daemon's stop and start completes:\n{}",
        ini.view()
    );
    assert_all_acked_read_back(&ini, "after the restart and the tgtd kill");
    sc.report(&ini);
    master
}

fn prepare_after_boot(c: &Cluster<'_>, id: u8) {
    c.lab().node(id).bring_up_spare_nic().unwrap();
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// QMP stop: the master hangs, holding everything.
    Pause,
    /// The master's link is cut (replication and clients); it runs on.
    CutLink,
}

/// S1/S2: the master is isolated for 30 s while its peer is made master and takes over; then
/// it comes back still believing it is master for 20 s, then its role becomes slave.
fn stale_master(c: &Cluster<'_>, master: u8, how: Isolation) -> u8 {
    let peer = other(master);
    let lab = c.lab();
    let (tag, name) = match how {
        Isolation::Pause => (1, "S1: master paused 30 s while the peer takes over"),
        Isolation::CutLink => (2, "S2: master's link cut 30 s while the peer takes over"),
    };
    let mut sc = Scenario::start(c, name);
    let ini = initiator(c, tag, sc.t0);
    let mut takeover_at = Duration::ZERO;
    let mut back_at = Duration::ZERO;
    let (ini, ()) = with_writer(ini, || {
        thread::sleep(Duration::from_secs(2));
        match how {
            Isolation::Pause => lab.node(master).pause().unwrap(),
            Isolation::CutLink => lab.node(master).cut_link().unwrap(),
        }
        let isolated = Instant::now();
        sc.mark(format!("node{master} {how:?}"));
        c.set_role(peer, "master").unwrap();
        sc.mark(format!("node{peer}: role master"));
        let t = c.wait_serving(peer, LONG).unwrap();
        takeover_at = sc.t0.elapsed();
        sc.mark(format!("node{peer} serving after {t:.1?} (the takeover)"));
        let s = status(c, peer);
        sc.mark(format!("node{peer}: {}", short_status(c, peer)));
        assert_eq!(s["vip"]["here"], true);
        if how == Isolation::CutLink {
            // Cut off, it heard neither a VIP owner nor its fence witness (the initiator): its
            // fence-peer handler kept the I/O frozen, so nothing reaching it once the link
            // returns can be acknowledged (the chaos run's seed 33, fault 4, lost such a write
            // before `[fence] witnesses`).
            assert!(
                io_frozen(c, master),
                "PRODUCT BUG: node{master}, cut off while its peer took over, runs I/O: a write reaching it when the link returns would be acknowledged and then discarded: {}",
                c.lab().node(master).run("cat /proc/drbd").unwrap_or_default()
            );
            sc.mark(format!("node{master} (cut off): I/O frozen"));
        }
        thread::sleep(Duration::from_secs(30).saturating_sub(isolated.elapsed()));
        match how {
            Isolation::Pause => lab.node(master).resume().unwrap(),
            Isolation::CutLink => lab.node(master).restore_link().unwrap(),
        }
        let back = Instant::now();
        back_at = sc.t0.elapsed();
        sc.mark(format!(
            "node{master} back ({}), its role file still says master",
            match how {
                Isolation::Pause => "resumed",
                Isolation::CutLink => "link restored",
            }
        ));
        wait_until(
            &format!("node{master} to hold no VIP and export nothing"),
            YIELD_BOUND,
            || !has_vip(c, master) && !exports(c, master),
        );
        let t = back.elapsed();
        sc.mark(format!(
            "node{master} holds no VIP and exports nothing {t:.1?} after it came back: {}",
            short_status(c, master)
        ));
        // It stays down while its role says master.
        while back.elapsed() < Duration::from_secs(20) {
            assert!(
                !has_vip(c, master) && !exports(c, master),
                "node{master} came back up while its role is still master: {}",
                short_status(c, master)
            );
            thread::sleep(Duration::from_millis(500));
        }
        let s = status(c, master);
        sc.mark(format!(
            "node{master} after 20 s: {}",
            short_status(c, master)
        ));
        assert!(
            strings(&s["holds"]).iter().any(|h| h.contains("yielded")),
            "node{master} says it yielded: {s}"
        );
        assert_eq!(alerts_matching(&s, "yielded"), 1, "one alert: {s}");
        assert_eq!(
            status(c, peer)["vip"]["here"],
            true,
            "node{peer} keeps serving"
        );
        c.set_role(master, "slave").unwrap();
        sc.mark(format!("node{master}: role slave"));
        c.wait(master, "released", LONG, |c| {
            Ok(c.status(master)?["resources"][0]["role"] == "Secondary")
        })
        .unwrap();
        thread::sleep(Duration::from_secs(2));
    });
    // The stale node served nothing from the takeover on: every read-back since found the
    // newest acknowledged block (a stale host has zeros there).
    let stale = ini.stale_reads_since(takeover_at);
    let after_back: Vec<_> = ini
        .ops
        .iter()
        .filter(|op| op.at >= back_at && op.via == Some(master))
        .map(|op| op.at)
        .collect();
    eprintln!(
        "  initiator: {} operations after node{master} came back had its MAC for the VIP: {after_back:.1?}",
        after_back.len()
    );
    // Recovery, following the advice if DRBD saw a split brain.
    let t0 = Instant::now();
    let split = loop {
        let (sm, sp) = (status(c, master), status(c, peer));
        if split_brain(&sm).is_some() || split_brain(&sp).is_some() {
            break true;
        }
        if drbd_line(c, master).contains("cs:Connected")
            && drbd_line(c, peer).contains("cs:Connected")
        {
            break false;
        }
        assert!(t0.elapsed() < LONG, "neither reconnected nor split brain");
        thread::sleep(Duration::from_millis(300));
    };
    if split {
        // Both sides must have seen it before the advice is read.
        for id in [master, peer] {
            c.wait(id, "the split brain seen", LONG, |c| {
                Ok(split_brain(&c.status(id)?).is_some())
            })
            .unwrap();
        }
        sc.mark("DRBD split brain on reconnect");
        for id in [peer, master] {
            let sb = cfg_ok(c, id, "split-brain");
            let s = status(c, id);
            let v = split_brain(&s).unwrap();
            eprintln!(
                "  node{id}: keep {} confidence {} why: {}\n  node{id} split-brain:\n{}",
                v["keep"],
                v["confidence"],
                v["why"],
                indent(&sb)
            );
        }
        let sp = status(c, peer);
        let sm = status(c, master);
        assert_eq!(split_brain(&sp).unwrap()["keep"], "this_host", "{sp}");
        assert_eq!(split_brain(&sm).unwrap()["keep"], "other_host", "{sm}");
        let text = cfg_ok(c, peer, "split-brain");
        assert!(
            text.contains("keep: THIS host's data") && text.contains("why: "),
            "{text}"
        );
        let text = cfg_ok(c, master, "split-brain");
        assert!(text.contains("keep: the OTHER host's data"), "{text}");
        cfg_ok(c, master, "split-brain resolve --discard-local-data --yes");
        cfg_ok(c, peer, "split-brain reconnect");
        sc.mark(format!(
            "advice followed: resolve --discard-local-data on node{master}, reconnect on node{peer}"
        ));
    } else {
        sc.mark("reconnected without a split brain");
    }
    wait_healthy(c);
    sc.mark(format!(
        "node{peer} {} / node{master} {}",
        drbd_line(c, peer),
        drbd_line(c, master)
    ));
    assert_eq!(drbd_role(c, peer), "Primary");
    assert_eq!(drbd_role(c, master), "Secondary");
    sc.report(&ini);
    assert!(
        stale.is_empty(),
        "the stale node served old data from the takeover on (time, block written, block read): {:?}",
        stale
            .iter()
            .map(|op| (op.at, op.block, op.read))
            .collect::<Vec<_>>()
    );
    assert_all_acked_read_back(&ini, "after the recovery, through the new master");
    peer
}

/// S5: the VIP's interface disappears on the master, then the role moves away.
fn s5(c: &Cluster<'_>, master: u8) -> u8 {
    let peer = other(master);
    let lab = c.lab();
    let mut sc = Scenario::start(c, "S5: the VIP's interface deleted on the master");
    // The VIP moves to the spare NIC (eth1), which can vanish without taking replication.
    c.set_role(master, "slave").unwrap();
    c.wait(master, "released", LONG, |c| {
        Ok(c.status(master)?["resources"][0]["role"] == "Secondary")
    })
    .unwrap();
    for id in [1, 2] {
        c.stop_daemon(id).unwrap();
        prepare_after_boot(c, id);
    }
    c.write_config(&lab_config_on("eth1", EXTRA)).unwrap();
    for id in [1, 2] {
        c.start_daemon(id).unwrap();
    }
    c.set_role(master, "master").unwrap();
    c.wait_serving(master, LONG).unwrap();
    sc.mark(format!("node{master} serves with the VIP on eth1"));
    let ini = initiator(c, 5, sc.t0);
    let dev = lab
        .node(master)
        .run("basename $(readlink /sys/class/net/eth1/device)")
        .unwrap()
        .trim()
        .to_string();
    let (ini, ()) = with_writer(ini, || {
        thread::sleep(Duration::from_secs(2));
        lab.node(master)
            .run(&format!(
                "echo -n {dev} > /sys/bus/virtio/drivers/virtio_net/unbind"
            ))
            .unwrap();
        assert!(
            lab.node(master)
                .exec("test -e /sys/class/net/eth1")
                .unwrap()
                .status
                != 0
        );
        sc.mark(format!(
            "node{master}: eth1 gone (virtio_net unbound from {dev})"
        ));
        thread::sleep(Duration::from_secs(2));
        sc.mark(format!("node{master}: {}", short_status(c, master)));
        if std::env::var_os("IHA_FAULTS_DEBUG").is_some() {
            for id in [1, 2] {
                eprintln!("DEBUG node{id}: {}", lab.node(id).run("ip -4 addr; ip neigh; cat /proc/sys/net/ipv4/ip_forward; tgtadm --lld iscsi --mode conn --op show --tid 1 2>&1; tgtadm --lld iscsi --mode target --op show 2>&1 | head -5").unwrap_or_default());
            }
            eprintln!(
                "DEBUG initiator: {}",
                lab.initiator("ip neigh; ss -tn").unwrap().stdout_text()
            );
        }
        let t0 = Instant::now();
        thread::scope(|s| {
            s.spawn(|| c.set_role(master, "slave").unwrap());
            c.set_role(peer, "master").unwrap();
        });
        sc.mark(format!("roles: node{master} slave, node{peer} master"));
        wait_until(
            &format!("node{master} to stop its target and demote"),
            LONG,
            || !exports(c, master) && drbd_role(c, master) == "Secondary",
        );
        let t = t0.elapsed();
        sc.mark(format!(
            "node{master} exports nothing and is Secondary {t:.1?} after the role change: {}",
            short_status(c, master)
        ));
        c.wait_serving(peer, LONG).unwrap();
        sc.mark(format!(
            "node{peer} serving {:.1?} after the role change",
            t0.elapsed()
        ));
        let s = status(c, master);
        assert_eq!(s["target"]["running"], false, "{s}");
        assert_ne!(s["vip"]["here"], true, "{s}");
        thread::sleep(Duration::from_secs(3));
    });
    // Bound again, the NIC comes back down: bring it up so that the scenarios after this one
    // find the VIP's interface as a rebooted node's boot scripts would leave it.
    lab.node(master)
        .run(&format!(
            "echo -n {dev} > /sys/bus/virtio/drivers/virtio_net/bind; i=0; \
             while [ $i -lt 50 ] && ! ip link set eth1 up 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
             ip link show eth1 | grep -q UP"
        ))
        .unwrap();
    sc.mark(format!("node{master}: eth1 back and up"));
    sc.report(&ini);
    assert!(
        ini.stale_reads_since(Duration::ZERO).is_empty(),
        "{}",
        ini.view()
    );
    assert!(
        ini.ops
            .iter()
            .rev()
            .take(3)
            .any(|op| op.acked && op.via == Some(peer)),
        "the initiator's last writes went to node{peer}:\n{}",
        ini.view()
    );
    assert_all_acked_read_back(&ini, "through the new master");
    peer
}

#[test]
fn faults_end_to_end_in_the_lab() {
    let started = Instant::now();
    let lab = Lab::up(iscsi_ha_lab::cluster::lab_options())
        .unwrap_or_else(|e| panic!("the lab did not come up: {e}"));
    let c = Cluster::deploy_with(&lab, &binaries(), &lab_config(EXTRA)).unwrap();
    c.set_role(1, "master").unwrap();
    c.wait_serving(1, LONG).unwrap();
    eprintln!("lab up, node1 serving after {:.1?}", started.elapsed());
    let mut master = 1;
    let mut ran = Vec::new();
    if selected("S6") {
        master = s6(&c, master);
        ran.push("S6");
    }
    if selected("S8") {
        master = s8(&c, master);
        ran.push("S8");
    }
    if selected("S4") {
        master = s4(&c, master);
        ran.push("S4");
    }
    if selected("S1") {
        master = stale_master(&c, master, Isolation::Pause);
        ran.push("S1");
    }
    if selected("S2") {
        master = stale_master(&c, master, Isolation::CutLink);
        ran.push("S2");
    }
    if selected("S5") {
        master = s5(&c, master);
        ran.push("S5");
    }
    if selected("S7") {
        master = s7(&c, master);
        ran.push("S7");
    }
    if selected("S3") {
        master = s3(&c, master);
        ran.push("S3");
    }
    assert!(!ran.is_empty(), "IHA_FAULTS selected no scenario");
    eprintln!(
        "\nfault scenarios {ran:?} passed in {:.1?}; node{master} serves",
        started.elapsed()
    );
}
