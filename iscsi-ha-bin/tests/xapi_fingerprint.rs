//! The configuration fingerprints in the pool database, against real processes. No XAPI runs
//! here: `fixtures/xapi/xe` stands in for `xe`, recording its calls and keeping the pool's
//! other-config in a file, so what one host publishes another reads back. The daemon is the
//! real `iscsi-ha run` in a network namespace with the XAPI role source (root); doctor's
//! comparison is run through the library and end to end through `iscsi-ha doctor`.

#![allow(clippy::unwrap_used)]

mod support;

use iscsi_ha_bin::doctor::{peer, Finding, Level};
use iscsi_ha_bin::xapi::{PublishRun, PublishSpec, Xe};
use iscsi_ha_core::config::{Config, Source};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::xe::XeStandIn;
use support::{require_root, Daemon, Netns};

const POOL: &str = "0f0f0f0f-0000-4000-8000-0000000000f0";
const ME: &str = "11111111-0000-4000-8000-000000000001";
const PEER: &str = "22222222-0000-4000-8000-000000000002";
const OTHER_FP: &str = "fedcba9876543210";

/// The `[xapi]` section that uses this stand-in.
fn section(xe: &XeStandIn, timeout: &str) -> String {
    format!(
        "[xapi]\nxe = \"{}\"\ninventory = \"{}\"\ntimeout = \"{timeout}\"\n",
        xe.xe(),
        xe.inventory().display()
    )
}

fn fp_key(host: &str) -> String {
    format!("iscsi-ha-fingerprint-{host}")
}

fn set_call(fp: &str) -> String {
    format!(
        "pool-param-set uuid={POOL} other-config:{}={fp}",
        fp_key(ME)
    )
}

const LIST: &str = "pool-list params=uuid --minimal";

fn get_call() -> String {
    format!("pool-param-get uuid={POOL} param-name=other-config")
}

/// support's base configuration with the XAPI role source (pool.conf in `dir`, a slave) and
/// `extra`.
fn xapi_config(dir: &Path, extra: &str) -> String {
    fs::write(dir.join("pool.conf"), "slave:10.79.0.1").unwrap();
    support::config(dir, extra).replace(
        &format!(
            "source = \"file\"\npath = \"{}\"",
            dir.join("role").display()
        ),
        &format!(
            "source = \"xapi\"\npool_conf = \"{}\"",
            dir.join("pool.conf").display()
        ),
    )
}

fn parse(text: &str) -> Config {
    Config::parse(
        Source {
            text,
            origin: "c.toml",
        },
        None,
    )
    .unwrap()
}

fn peer_findings(xe: &XeStandIn, extra_timeout: &str) -> (Config, Vec<Finding>) {
    let dir = tempfile::tempdir().unwrap();
    let config = parse(&xapi_config(dir.path(), &section(xe, extra_timeout)));
    let findings = peer::check(&config);
    (config, findings)
}

fn ours(config: &Config) -> String {
    iscsi_ha_core::config::fingerprint(config)
}

#[test]
fn doctor_reads_the_pool_database_and_finds_an_equal_peer_ok() {
    let xe = XeStandIn::new(ME);
    let dir = tempfile::tempdir().unwrap();
    let config = parse(&xapi_config(dir.path(), &section(&xe, "5s")));
    let fp = ours(&config);
    xe.set_other_config(&[
        ("memory-ratio-hvm", "0.25"),
        (&fp_key(ME), &fp),
        (&fp_key(PEER), &fp),
        ("IHA_IHA_CONF", "aGVsbG8="),
    ]);
    let findings = peer::check(&config);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].level, Level::Ok);
    assert_eq!(findings[0].check, "fingerprint.peer");
    assert!(findings[0].what.contains(PEER), "{findings:?}");
    // Read-only: doctor lists and gets, never sets.
    assert_eq!(xe.calls(), [LIST.to_string(), get_call()]);
}

#[test]
fn doctor_finds_a_different_peer_an_error_and_a_missing_one_a_warning() {
    let xe = XeStandIn::new(ME);
    xe.set_other_config(&[(&fp_key(PEER), OTHER_FP)]);
    let (config, findings) = peer_findings(&xe, "5s");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].level, Level::Error);
    assert_eq!(
        findings[0].what,
        format!(
            "the peer's configuration differs: host {PEER}'s fingerprint is {OTHER_FP}, ours {}",
            ours(&config)
        )
    );
    assert_eq!(
        findings[0].todo,
        "compare /etc/iscsi-ha/iscsi-ha.toml on both hosts (iscsi-ha check-config prints the effective one)"
    );

    let xe = XeStandIn::new(ME);
    xe.set_other_config(&[("memory-ratio-hvm", "0.25")]);
    let (_, findings) = peer_findings(&xe, "5s");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].level, Level::Warn);
    assert!(
        findings[0]
            .todo
            .contains("the peer's daemon publishes it when it starts with the xapi role source"),
        "{findings:?}"
    );
}

#[test]
fn doctor_warns_when_xe_fails_hangs_or_prints_garbage_and_never_hangs_itself() {
    let xe = XeStandIn::new(ME);
    xe.touch("fail-pool");
    let (_, findings) = peer_findings(&xe, "5s");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].level, Level::Warn);
    assert!(
        findings[0]
            .what
            .starts_with("cannot read the fingerprints in the pool database: ")
            && findings[0]
                .what
                .contains("pool-list params=uuid --minimal exited 1"),
        "{findings:?}"
    );
    assert!(findings[0].todo.contains("iscsi-ha status"), "{findings:?}");

    let xe = XeStandIn::new(ME);
    xe.touch("hang");
    let t0 = Instant::now();
    let (_, findings) = peer_findings(&xe, "300ms");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(findings[0].level, Level::Warn);
    assert!(
        findings[0].what.contains("did not answer within 300ms"),
        "{findings:?}"
    );

    let xe = XeStandIn::new(ME);
    fs::write(
        xe.dir.path().join("other-config"),
        "garbage without a colon\n",
    )
    .unwrap();
    let (_, findings) = peer_findings(&xe, "5s");
    assert_eq!(findings[0].level, Level::Warn);
    assert!(
        findings[0]
            .what
            .contains("reply refused: entry 1 of the pool's other-config is not key: value"),
        "{findings:?}"
    );

    // An inventory without this host's UUID: xe is not even asked.
    let xe = XeStandIn::new("not-a-uuid");
    let (_, findings) = peer_findings(&xe, "5s");
    assert_eq!(findings[0].level, Level::Warn);
    assert!(
        findings[0].what.contains("is not a UUID") && findings[0].todo.contains("[xapi] inventory"),
        "{findings:?}"
    );
    assert!(xe.calls().is_empty());
}

#[test]
fn with_another_role_source_doctor_says_to_compare_by_hand_and_runs_no_xe() {
    let xe = XeStandIn::new(ME);
    let dir = tempfile::tempdir().unwrap();
    let config = parse(&support::config(dir.path(), &section(&xe, "5s")));
    let findings = peer::check(&config);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].level, Level::Ok);
    assert!(
        findings[0].what.contains("needs the pool database")
            && findings[0]
                .what
                .contains("`iscsi-ha status` shows it on each host"),
        "{findings:?}"
    );
    assert!(xe.calls().is_empty());
}

/// Drives a publication as the daemon's loop does: its descriptor polled, or its due time.
fn publish(run: &mut PublishRun) -> Result<iscsi_ha_bin::xapi::Published, String> {
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(5), "no outcome");
        let wait = run
            .due()
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        match run.fd() {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                let ms = u16::try_from(wait.as_millis()).unwrap();
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(wait),
        }
        if let Some(outcome) = run.advance() {
            return outcome.map_err(|e| e.to_string());
        }
    }
}

#[test]
fn what_one_host_publishes_the_other_hosts_doctor_reads_back() {
    // One pool database (the stand-in's file), two hosts: the peer publishes, we compare.
    let xe = XeStandIn::new(ME);
    let dir = tempfile::tempdir().unwrap();
    let config = parse(&xapi_config(dir.path(), &section(&xe, "5s")));
    let peer_inventory = xe.dir.path().join("peer-inventory");
    fs::write(&peer_inventory, format!("INSTALLATION_UUID=\"{PEER}\"\n")).unwrap();
    let mut run = PublishRun::start(PublishSpec {
        xe: Xe::new(&xe.xe(), Duration::from_secs(5)),
        inventory: peer_inventory,
        fingerprint: ours(&config),
    })
    .unwrap();
    let published = publish(&mut run).unwrap();
    assert_eq!(published.pool, POOL);
    assert_eq!(published.key, fp_key(PEER));
    assert_eq!(
        xe.other_config(),
        format!("{}: {}\n", fp_key(PEER), ours(&config))
    );
    let findings = peer::check(&config);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].level, Level::Ok, "{findings:?}");

    // A pool list XAPI would not print: nothing is set.
    let xe = XeStandIn::new(PEER);
    fs::write(xe.dir.path().join("answers/pool-uuid"), "a,b").unwrap();
    let mut run = PublishRun::start(PublishSpec {
        xe: Xe::new(&xe.xe(), Duration::from_secs(5)),
        inventory: xe.inventory(),
        fingerprint: OTHER_FP.into(),
    })
    .unwrap();
    let e = publish(&mut run).unwrap_err();
    assert!(
        e.contains(
            "pool-list params=uuid --minimal: reply refused: the pool list is not one pool UUID"
        ),
        "{e}"
    );
    assert_eq!(xe.calls(), [LIST]);
}

#[test]
fn doctor_end_to_end_prints_the_peer_comparison() {
    let xe = XeStandIn::new(ME);
    xe.set_other_config(&[(&fp_key(PEER), OTHER_FP)]);
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c.toml");
    fs::write(&c, xapi_config(dir.path(), &section(&xe, "5s"))).unwrap();
    fs::set_permissions(&c, fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("doctor")
        .arg(&c)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error fingerprint.peer: the peer's configuration differs: host {PEER}'s fingerprint is {OTHER_FP}, ours "
        )),
        "{stdout}"
    );
    assert!(!xe.calls().iter().any(|c| c.starts_with("pool-param-set")));
}

#[test]
fn the_daemon_publishes_at_start_and_after_a_reload_that_changed_the_fingerprint() {
    require_root();
    let xe = XeStandIn::new(ME);
    let ns = Netns::new("fp");
    let dir = tempfile::tempdir().unwrap();
    let text = xapi_config(dir.path(), &section(&xe, "5s"));
    let d = Daemon::start_in(&ns, dir, "", &text, &[]);
    let fp = d.status()["fingerprint"].as_str().unwrap().to_string();
    d.wait_for(Duration::from_secs(5), "the fingerprint published", |_| {
        xe.other_config() == format!("{}: {fp}\n", fp_key(ME))
    });
    assert_eq!(xe.calls(), [LIST.to_string(), set_call(&fp)]);
    d.wait_for(Duration::from_secs(5), "the success logged", |d| {
        d.log().contains(&format!(
            "configuration fingerprint {fp} published in the pool database as other-config:{}",
            fp_key(ME)
        ))
    });

    // A reload that changes nothing publishes nothing.
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(Duration::from_secs(5), "the reload", |d| {
        d.log().contains("reloaded; every change applies now")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(xe.calls().len(), 2, "{:?}", xe.calls());

    // One that changes who may log in changes the fingerprint: published again.
    let changed = text.replace("allow_all = true", "initiators = [\"10.79.0.0/24\"]");
    assert_ne!(changed, text);
    fs::write(d.dir.path().join("c.toml"), changed).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(
        Duration::from_secs(5),
        "the new fingerprint in status",
        |d| d.status()["fingerprint"] != fp.as_str(),
    );
    let new_fp = d.status()["fingerprint"].as_str().unwrap().to_string();
    d.wait_for(
        Duration::from_secs(5),
        "the new fingerprint published",
        |_| xe.other_config() == format!("{}: {new_fp}\n", fp_key(ME)),
    );
    assert_eq!(
        xe.calls(),
        [
            LIST.to_string(),
            set_call(&fp),
            LIST.to_string(),
            set_call(&new_fp)
        ]
    );
}

#[test]
fn a_hanging_xe_never_blocks_the_daemon_and_its_failure_is_logged_once() {
    require_root();
    let xe = XeStandIn::new(ME);
    xe.touch("hang");
    let ns = Netns::new("fh");
    let dir = tempfile::tempdir().unwrap();
    let text = xapi_config(dir.path(), &section(&xe, "3s"));
    let d = Daemon::start_in(&ns, dir, "", &text, &[]);
    let pid_file = xe.dir.path().join("pid");
    support::wait(Duration::from_secs(5), "xe to start", || {
        fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let proc = PathBuf::from(format!(
        "/proc/{}",
        fs::read_to_string(&pid_file).unwrap().trim()
    ));
    // While xe sleeps, the daemon answers at once.
    for _ in 0..3 {
        let t0 = Instant::now();
        assert!(d.cfg(&["status"]).status.success());
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        assert!(proc.exists(), "xe still runs");
    }
    d.wait_for(Duration::from_secs(10), "the failure logged", |d| {
        d.log()
            .contains("cannot publish the configuration fingerprint")
    });
    assert!(!proc.exists(), "the hanging xe was killed and reaped");
    std::thread::sleep(Duration::from_millis(500));
    let log = d.log();
    assert_eq!(
        log.matches("cannot publish the configuration fingerprint")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("did not answer within 3s") && log.contains("systemctl reload iscsi-ha"),
        "{log}"
    );
    assert_eq!(xe.calls(), [LIST], "not retried on its own");
    assert!(d.cfg(&["status"]).status.success());

    // What the log says to do works: once XAPI answers, a reload publishes, even unchanged.
    fs::remove_file(xe.dir.path().join("hang")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let fp = d.status()["fingerprint"].as_str().unwrap().to_string();
    d.wait_for(Duration::from_secs(5), "the fingerprint published", |_| {
        xe.other_config() == format!("{}: {fp}\n", fp_key(ME))
    });
}
