//! The daemon on this machine, in a network namespace of its own, with the real rtnetlink
//! adapter and the real control socket. This kernel has no DRBD, so these tests cover what does
//! not need it: following the role source at once, releasing the VIP on a slave, reacting to
//! address events, never assigning the VIP while DRBD cannot be seen Primary, the operator's
//! refusals, reload and stop. Failover with DRBD is proven in the lab. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::{Duration, Instant};
use support::{config, require_root, sh, Daemon, Netns, VIP};

/// Starts the daemon with the shared base configuration (a one-hour scan, so whatever happens
/// happens because of events, not the timer).
fn start(ns: &Netns, role: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    Daemon::start_in(ns, dir, role, &text, &[])
}

fn vip_present(ns: &Netns) -> bool {
    let out = sh(&format!("ip -n {} -j addr show dev d0", ns.name));
    String::from_utf8_lossy(&out.stdout).contains(&format!("\"{VIP}\""))
}

fn add_vip(ns: &Netns) {
    let out = sh(&format!("ip -n {} addr add {VIP}/24 dev d0", ns.name));
    assert!(out.status.success());
}

fn timed(d: &Daemon, limit: Duration, what: &str, ok: impl FnMut(&Daemon) -> bool) -> Duration {
    let t0 = Instant::now();
    d.wait_for(limit, what, ok);
    t0.elapsed()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn role_changes_are_followed_at_once_and_the_vip_never_goes_up_without_drbd() {
    require_root();
    let ns = Netns::new("a");
    add_vip(&ns);
    // A one-hour scan: whatever happens below happens because of events, not the timer.
    let d = start(&ns, "slave\n");
    d.wait_for(
        Duration::from_secs(5),
        "the slave to release the VIP",
        |_| !vip_present(&ns),
    );
    assert_eq!(d.status()["host_role"], "slave");

    fs::write(d.dir.path().join("role"), "master\n").unwrap();
    let seen = timed(
        &d,
        Duration::from_secs(2),
        "the master role to be seen",
        |d| d.status()["host_role"] == "master",
    );
    eprintln!("role change seen after {seen:?}");
    let s = d.status();
    assert_eq!(s["intent"], "serve");
    assert!(
        s["holds"][0]
            .as_str()
            .unwrap()
            .contains("cannot observe resource r0"),
        "{s}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !vip_present(&ns),
        "no VIP while DRBD cannot be seen Primary"
    );

    fs::remove_file(d.dir.path().join("role")).unwrap();
    d.wait_for(Duration::from_secs(2), "the role to become unknown", |d| {
        d.status()["host_role"] == "unknown"
    });
    let s = d.status();
    assert!(
        s["role_reason"].as_str().unwrap().contains("No such file"),
        "{s}"
    );
    let alerts = s["alerts"].as_array().unwrap();
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a["message"].as_str().unwrap().contains("role unknown"))
            .count(),
        1
    );
}

#[test]
fn an_address_event_brings_the_slave_back_at_once() {
    require_root();
    let ns = Netns::new("b");
    let d = start(&ns, "slave\n");
    add_vip(&ns);
    let took = timed(
        &d,
        Duration::from_secs(2),
        "the VIP added by hand to be released",
        |_| !vip_present(&ns),
    );
    eprintln!("VIP added by hand released after {took:?}");
    assert!(d.log().contains("release VIP: done"));
}

#[test]
fn operator_verbs_keep_the_original_refusals() {
    require_root();
    let ns = Netns::new("c");
    let d = start(&ns, "slave\n");
    let mode = fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is root's only");

    let out = d.cfg(&["become-primary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refused: not in manual mode"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("manual-mode-enable"),
        "the refusal says what to do"
    );

    let out = d.cfg(&["manual-mode-enable"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("holding secondary"));
    assert_eq!(d.status()["manual_mode"], "become-secondary");
    assert!(fs::read_to_string(d.dir.path().join("state/manual-mode"))
        .unwrap()
        .contains("become-secondary"));

    // The DRBD role cannot be read here, so it cannot be shown to match the pool role.
    let out = d.cfg(&["manual-mode-disable"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(
            "refused: the DRBD role of r0 cannot be read, so it cannot be checked against the pool role (slave)"
        ),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("fix DRBD first"), "{}", text(&out));
}

#[test]
fn reload_refuses_a_bad_configuration_and_keeps_running() {
    require_root();
    let ns = Netns::new("d");
    let d = start(&ns, "slave\n");
    let path = d.dir.path().join("c.toml");
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, good.replace("lun = 1", "lun = 0")).unwrap();
    let out = d.cfg(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("target.lun[0].lun: LUN 0 is not allowed"),
        "{}",
        text(&out)
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(Duration::from_secs(2), "SIGHUP's refusal in the log", |d| {
        d.log().contains("reload refused")
    });
    assert!(
        d.cfg(&["status"]).status.success(),
        "still running on the old configuration"
    );
    fs::write(&path, good).unwrap();
    assert!(d.cfg(&["reload"]).status.success());
}

#[test]
fn sigterm_stops_cleanly_and_status_then_says_not_running() {
    require_root();
    let ns = Netns::new("e");
    let mut d = start(&ns, "slave\n");
    d.stop();
    assert!(!d.socket().exists(), "the control socket is removed");
    let out = d.cfg(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("daemon is not running"));
}

#[test]
fn split_brain_recovery_is_refused_without_both_flags_or_a_split_brain() {
    require_root();
    let ns = Netns::new("f");
    let d = start(&ns, "slave\n");
    let out = d.cfg(&["split-brain"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no split brain on ops-test"),
        "{}",
        text(&out)
    );
    let out = d.cfg(&["split-brain", "resolve", "--discard-local-data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("with both --discard-local-data and --yes"),
        "{}",
        text(&out)
    );
    let out = d.cfg(&["split-brain", "resolve", "--discard-local-data", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no resource is in split brain"),
        "{}",
        text(&out)
    );
    assert!(d.log().contains("operator request"), "requests are logged");
}

#[test]
fn a_configuration_warning_reaches_the_log_and_the_daemon_runs() {
    require_root();
    let ns = Netns::new("iha-warn");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "")
        .replace("iqn.2024-01.com.example:ops", "iqn.2015.com.halizard:noSAN");
    let d = Daemon::start_in(&ns, dir, "slave", &text, &[]);
    d.wait_for(
        Duration::from_secs(10),
        "the RFC 3720 warning in the log",
        |d| {
            let log = d.log();
            log.contains("WARN")
                && log.contains("iqn.2015.com.halizard:noSAN")
                && log.contains("RFC 3720")
        },
    );
    assert!(d.status_text().contains("slave"), "{}", d.status_text());
}
