//! The daemon's phase stamps (`daemon::phase`), read back with the lab's parser
//! (`iscsi_ha_lab::phases`, which `iha-lab bench failover` uses): a role arriving is stamped
//! `role seen` at the wake-up that brought it, each step of the pass is stamped at its start
//! and end with whether it worked, in the order run, on a monotonic clock that never goes back
//! and a wall clock that is Unix time. This kernel has no DRBD, so the steps seen here are a
//! slave's (release VIP, a demotion that fails); `serving` is proven by the lab's bench. Needs
//! root.

#![allow(clippy::unwrap_used)]

mod support;

use iscsi_ha_lab::phases::{parse_log, Edge, PhaseStamp};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{config, require_root, sh, Daemon, Netns, VIP};

fn vip_present(ns: &Netns) -> bool {
    let out = sh(&format!("ip -n {} -j addr show dev d0", ns.name));
    String::from_utf8_lossy(&out.stdout).contains(&format!("\"{VIP}\""))
}

fn position(stamps: &[PhaseStamp], phase: &str, edge: Edge) -> usize {
    stamps
        .iter()
        .position(|s| s.phase == phase && s.edge == edge)
        .unwrap_or_else(|| panic!("no {phase} {edge:?} stamp in {stamps:#?}"))
}

#[test]
fn each_phase_of_a_pass_is_stamped_in_order_on_both_clocks() {
    require_root();
    let ns = Netns::new("ph");
    assert!(sh(&format!("ip -n {} addr add {VIP}/24 dev d0", ns.name))
        .status
        .success());
    let before_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(
        Duration::from_secs(5),
        "the slave to release the VIP",
        |_| !vip_present(&ns),
    );
    d.set_role(Some("master\n"));
    d.wait_for(Duration::from_secs(2), "the master role stamped", |d| {
        parse_log(&d.log())
            .iter()
            .any(|s| s.phase == "role seen" && s.role.as_deref() == Some("master"))
    });
    let after_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let log = d.log();
    let stamps = parse_log(&log);
    for line in log.lines().filter(|l| l.contains(" phase phase=")) {
        eprintln!("{line}");
    }

    assert_eq!(stamps[0].phase, "role seen", "{log}");
    assert_eq!(stamps[0].role.as_deref(), Some("slave"));
    let start = position(&stamps, "release VIP", Edge::Start);
    let end = position(&stamps, "release VIP", Edge::End);
    assert!(0 < start && start < end, "{stamps:#?}");
    assert_eq!(stamps[end].ok, Some(true));
    let master = stamps
        .iter()
        .position(|s| s.role.as_deref() == Some("master"))
        .unwrap();
    assert!(end < master);

    // A step that fails says so: without DRBD the demotion cannot work.
    let demote = position(&stamps, "demote r0", Edge::End);
    assert_eq!(stamps[demote].ok, Some(false), "{stamps:#?}");

    // Every start is closed by its end before the next step starts (one step at a time).
    let mut open: Option<&str> = None;
    for s in &stamps {
        match s.edge {
            Edge::Start => {
                assert!(open.is_none(), "{} started inside {open:?}", s.phase);
                open = Some(&s.phase);
            }
            Edge::End => assert_eq!(open.take(), Some(s.phase.as_str())),
            Edge::At => assert!(open.is_none(), "{} inside a step", s.phase),
        }
    }
    // Both clocks only go forward in log order; the wall clock is Unix time.
    for pair in stamps.windows(2) {
        assert!(pair[0].mono_us <= pair[1].mono_us, "{pair:#?}");
        assert!(pair[0].wall_us <= pair[1].wall_us, "{pair:#?}");
    }
    for s in &stamps {
        let wall = u128::from(s.wall_us);
        assert!(before_us <= wall && wall <= after_us, "{s:?}");
    }
}
