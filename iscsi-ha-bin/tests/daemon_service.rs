//! The daemon as a service: what `systemctl stop`/`restart`, stray signals and hostile files
//! at its configured paths do to it, run for real in a network namespace of its own (the real
//! control socket, the real tgtd, libiscsi's initiator). Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use nix::sys::signal::Signal;
use std::fs;
use std::time::{Duration, Instant};
use support::{config, require_root, Daemon, Netns, VIP};

/// Asks for status, and fails unless the answer comes within `limit`.
fn status_within(d: &Daemon, limit: Duration) -> serde_json::Value {
    let t0 = Instant::now();
    let s = d.status();
    assert!(
        t0.elapsed() < limit,
        "status took {:?}; log:\n{}",
        t0.elapsed(),
        d.log()
    );
    s
}

#[test]
fn stray_signals_are_logged_and_ignored() {
    require_root();
    let ns = Netns::new("s");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    // With the metrics server's thread running too: a process-directed signal may be given
    // to any thread that does not block it.
    let mut d = Daemon::start_in(
        &ns,
        dir,
        "slave\n",
        &text,
        &["--metrics-listen", "127.0.0.1:0"],
    );
    for sig in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGALRM,
    ] {
        d.signal(sig);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
            "{sig} killed the daemon"
        );
        assert!(d.cfg(&["status"]).status.success(), "{sig}: no status");
    }
    d.wait_for(Duration::from_secs(2), "SIGUSR1 in the log", |d| {
        d.log().contains("ignoring signal SIGUSR1")
    });
    d.stop();
}

#[test]
fn a_fifo_or_a_device_as_the_role_file_is_refused_without_hanging() {
    require_root();
    let ns = Netns::new("h");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    let mut d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    let role = d.dir.path().join("role");

    // Each is put in place as tools do it: made beside the path and renamed over it.
    let next = d.dir.path().join("role.next");
    nix::unistd::mkfifo(&next, nix::sys::stat::Mode::S_IRWXU).unwrap();
    fs::rename(&next, &role).unwrap();
    d.wait_for(Duration::from_secs(3), "the FIFO to be refused", |d| {
        d.status()["role_reason"]
            .as_str()
            .is_some_and(|r| r.contains("is a FIFO, not a regular file"))
    });
    let s = status_within(&d, Duration::from_secs(1));
    assert_eq!(s["host_role"], "unknown", "{s}");
    assert!(
        s["role_reason"]
            .as_str()
            .unwrap()
            .contains(&role.display().to_string()),
        "the message names the path: {s}"
    );

    std::os::unix::fs::symlink("/dev/zero", &next).unwrap();
    fs::rename(&next, &role).unwrap();
    d.wait_for(Duration::from_secs(3), "/dev/zero to be refused", |d| {
        d.status()["role_reason"]
            .as_str()
            .is_some_and(|r| r.contains("is a character device"))
    });
    status_within(&d, Duration::from_secs(1));

    // A regular file that is far too large is refused after a bounded read.
    fs::File::create(&next).unwrap().set_len(1 << 30).unwrap();
    fs::rename(&next, &role).unwrap();
    d.wait_for(
        Duration::from_secs(3),
        "the huge role file to be refused",
        |d| {
            d.status()["role_reason"]
                .as_str()
                .is_some_and(|r| r.contains("is larger than 4096 bytes"))
        },
    );
    status_within(&d, Duration::from_secs(1));

    d.stop();
}

const IQN: &str = "iqn.2024-01.com.example:ops";
const INITIATOR: &str = "iqn.2024-01.com.example:svc-test";
const TGT_TOOLS: [&str; 4] = [
    "/usr/sbin/tgtd",
    "/usr/sbin/tgtadm",
    "/usr/bin/iscsi-inq",
    "/usr/bin/iscsi-perf",
];

fn require_tgt() {
    require_root();
    for tool in TGT_TOOLS {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: install Debian's `tgt` and `libiscsi-bin` \
             (scripts/install-packages does it from scripts/packages.d/tgt.txt)"
        );
    }
}

/// A tgtd control port unused now (its socket and lock file absent).
fn free_control_port(tag: u16) -> u16 {
    let pid = u16::try_from(std::process::id() % 500).unwrap();
    let port = 20_000 + pid * 8 + tag;
    for p in [
        format!("/var/run/tgtd/socket.{port}"),
        format!("/var/run/tgtd/socket.{port}.lock"),
    ] {
        let _ = fs::remove_file(p);
    }
    port
}

/// Every live tgtd started with `-C port`, found in /proc (the test's own witness, apart
/// from the daemon's way of finding it).
fn tgtd_pids(port: u16) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_ours = args.first().is_some_and(|a| a.ends_with("tgtd"))
            && args
                .windows(2)
                .any(|w| w[0] == "-C" && w[1] == port.to_string());
        let zombie = fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ");
        if is_ours && !zombie {
            pids.push(pid);
        }
    }
    pids
}

fn one_tgtd(port: u16) -> i32 {
    let pids = tgtd_pids(port);
    assert_eq!(pids.len(), 1, "tgtd on control port {port}: {pids:?}");
    pids[0]
}

/// Kills what tgtd on `port` is left when the test ends (the daemon leaves it running, by
/// design), and its socket files.
struct TgtdCleanup(u16);

impl Drop for TgtdCleanup {
    fn drop(&mut self) {
        for pid in tgtd_pids(self.0) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        for p in [
            format!("/var/run/tgtd/socket.{}", self.0),
            format!("/var/run/tgtd/socket.{}.lock", self.0),
        ] {
            let _ = fs::remove_file(p);
        }
    }
}

/// `tgtadm --op show --mode target`: the witness of what tgtd exports.
fn tgtadm_show(port: u16) -> String {
    let out = support::sh(&format!(
        "tgtadm -C {port} --lld iscsi --mode target --op show"
    ));
    assert!(
        out.status.success(),
        "tgtadm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of tgtadm's listing that name the I_T nexus and connection of each session: a
/// target deleted and created again (or a dropped session) changes them.
fn sessions(show: &str) -> Vec<String> {
    show.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("I_T nexus:") || l.starts_with("Connection:"))
        .map(str::to_string)
        .collect()
}

/// One SCSI INQUIRY through the VIP, from inside the namespace.
fn inquiry(ns: &Netns) -> std::process::Output {
    ns.command("iscsi-inq")
        .args(["-i", INITIATOR, &format!("iscsi://{VIP}/{IQN}/1")])
        .output()
        .unwrap()
}

fn assert_answers(ns: &Netns, when: &str) {
    let out = inquiry(ns);
    assert!(
        out.status.success(),
        "{when}: iscsi-inq through the VIP failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shared configuration with a managed tgtd kept running on `port`, a master role and a
/// 16 MiB file as LUN 1.
fn managed_config(dir: &std::path::Path, port: u16) -> String {
    fs::File::create(dir.join("disk"))
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let text = config(dir, "");
    let base = "managed = false\ncontrol_port = 43\n";
    assert!(text.contains(base));
    text.replace(
        base,
        &format!("managed = true\ncontrol_port = {port}\nkeep_running = true\n"),
    )
}

/// Exports the configured target on the daemon's tgtd, through the same adapter the daemon
/// serves with. This kernel has no DRBD, so the daemon itself holds (it never serves without
/// every resource Primary); the target is what it would have set up.
fn export(config_path: &std::path::Path, port: u16) {
    let config = iscsi_ha_bin::config_file::load(config_path).unwrap();
    let mut tgt = iscsi_ha_tgt::TgtTarget::new(iscsi_ha_tgt::TgtConfig::adopt(u32::from(port)));
    tgt.serve_spec(&config.target)
        .unwrap_or_else(|e| panic!("serve: {e}"));
}

/// Waits until a tgtd other than `old` runs on `port`, and says how long it took.
fn replaced_within(port: u16, old: i32, limit: Duration) -> (i32, Duration) {
    let t0 = Instant::now();
    loop {
        let pids = tgtd_pids(port);
        if let [pid] = pids[..] {
            if pid != old && tgtadm_ok(port) {
                return (pid, t0.elapsed());
            }
        }
        assert!(
            t0.elapsed() < limit,
            "no new tgtd on port {port} after {limit:?} ({pids:?})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tgtadm_ok(port: u16) -> bool {
    support::sh(&format!("tgtadm -C {port} --mode system --op show"))
        .status
        .success()
}

#[test]
fn stopping_the_daemon_leaves_tgtd_serving_and_the_next_daemon_adopts_and_watches_it() {
    require_tgt();
    let ns = Netns::new("t");
    let port = free_control_port(0);
    let _cleanup = TgtdCleanup(port);
    let out = support::sh(&format!("ip -n {} addr add {VIP}/24 dev d0", ns.name));
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let text = managed_config(dir.path(), port);
    // The base configuration's one-hour scan: whatever happens below happens at once because
    // of an event, not the timer.
    assert!(text.contains("scan_interval = \"1h\""));
    let mut d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "tgtd to run", |_| {
        tgtd_pids(port).len() == 1 && tgtadm_ok(port)
    });
    let tgtd = one_tgtd(port);
    export(&d.dir.path().join("c.toml"), port);
    assert_answers(&ns, "with the daemon running");
    let mut reader = support::Guard(Some(
        ns.command("iscsi-perf")
            .args([
                "-i",
                INITIATOR,
                "-x",
                "0",
                &format!("iscsi://{VIP}/{IQN}/1"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    support::wait(Duration::from_secs(5), "iscsi-perf's session", || {
        !sessions(&tgtadm_show(port)).is_empty()
    });
    let before = tgtadm_show(port);
    assert!(before.contains(IQN), "{before}");

    // systemctl stop: SIGTERM to the daemon only (KillMode=process).
    d.stop();
    assert!(
        d.log()
            .contains("stopping on signal; the storage is left as it is"),
        "{}",
        d.log()
    );
    assert_eq!(one_tgtd(port), tgtd, "the same tgtd runs on");
    assert_eq!(
        sessions(&tgtadm_show(port)),
        sessions(&before),
        "the session survives the stop"
    );
    assert_answers(&ns, "after the daemon stopped");
    assert!(
        reader.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "iscsi-perf lost its target"
    );

    // systemctl start: the next daemon adopts that tgtd as it is.
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    drop(d);
    let d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "the adoption in the log", |d| {
        d.log().contains(&format!(
            "adopting the tgtd already running on our control port pid={tgtd}"
        ))
    });
    assert_eq!(one_tgtd(port), tgtd, "adopted, not started again");
    assert_eq!(
        sessions(&tgtadm_show(port)),
        sessions(&before),
        "the adoption keeps the target and its session"
    );
    assert!(!d.log().contains("converging tgtd"), "{}", d.log());
    assert_answers(&ns, "after the daemon started again");
    assert!(
        reader.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "iscsi-perf lost its target"
    );
    drop(reader);

    // The adopted tgtd is watched through its pidfd: killed, it is started again at once,
    // not at the next (one-hour) scan.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(tgtd), Signal::SIGKILL).unwrap();
    let (new, took) = replaced_within(port, tgtd, Duration::from_secs(1));
    eprintln!("adopted tgtd {tgtd} killed; tgtd {new} answering after {took:?}");
    d.wait_for(Duration::from_secs(1), "the exit in the log", |d| {
        d.log().contains("the adopted tgtd exited")
    });
}

#[test]
fn a_tgtd_killed_under_the_daemon_is_started_again_at_once() {
    require_tgt();
    let ns = Netns::new("k");
    let port = free_control_port(1);
    let _cleanup = TgtdCleanup(port);
    let dir = tempfile::tempdir().unwrap();
    let text = managed_config(dir.path(), port);
    let d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "tgtd to run", |_| {
        tgtd_pids(port).len() == 1 && tgtadm_ok(port)
    });
    let mut tgtd = one_tgtd(port);
    // Twice: the second death comes after the restart spacing.
    for round in 0..2 {
        if round > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(tgtd), Signal::SIGKILL).unwrap();
        let (new, took) = replaced_within(port, tgtd, Duration::from_secs(1));
        eprintln!("round {round}: tgtd {tgtd} killed; tgtd {new} answering after {took:?}");
        tgtd = new;
    }
    d.wait_for(Duration::from_secs(1), "the restart in the log", |d| {
        d.log().contains("managed tgtd exited") && d.log().contains("tgtd running again")
    });
    assert!(d.cfg(&["status"]).status.success());
}

#[test]
fn a_tgtd_that_keeps_dying_is_started_again_only_after_a_spacing() {
    require_tgt();
    let ns = Netns::new("r");
    let port = free_control_port(2);
    let _cleanup = TgtdCleanup(port);
    let dir = tempfile::tempdir().unwrap();
    let text = managed_config(dir.path(), port);
    let d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "tgtd to run", |_| {
        tgtd_pids(port).len() == 1 && tgtadm_ok(port)
    });
    let first = one_tgtd(port);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let (second, _) = replaced_within(port, first, Duration::from_secs(1));
    // Killed only once the daemon has seen it answer: a death while starting is a failed
    // start, which doubles the spacing (CI once killed it in that window).
    d.wait_for(
        Duration::from_secs(5),
        "the daemon to see the new tgtd",
        |d| d.log().contains(&format!("tgtd started pid={second} ")),
    );
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(second), Signal::SIGKILL).unwrap();
    // Dead again at once: not started again in a loop, even while the daemon is woken.
    while killed.elapsed() < Duration::from_secs(3) {
        assert!(d.cfg(&["status"]).status.success());
        assert!(
            tgtd_pids(port).is_empty(),
            "tgtd started again {:?} after a second death",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the 5 s spacing, the first wake-up (here an operator's status request) starts it.
    std::thread::sleep(Duration::from_millis(2_200));
    assert!(d.cfg(&["status"]).status.success());
    // Generous: tgtd's own start-up is slow on a loaded two-core machine.
    d.wait_for(Duration::from_secs(10), "tgtd after the spacing", |_| {
        tgtd_pids(port).len() == 1 && tgtadm_ok(port)
    });
}

#[test]
fn a_tgtd_that_cannot_be_started_is_retried_at_a_growing_spacing() {
    require_root();
    let ns = Netns::new("f");
    let port = free_control_port(3);
    let _cleanup = TgtdCleanup(port);
    let dir = tempfile::tempdir().unwrap();
    let text = managed_config(dir.path(), port).replace(
        "keep_running = true\n",
        "keep_running = true\nprogram = \"/nonexistent/tgtd\"\n",
    );
    let d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        assert!(d.cfg(&["status"]).status.success());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log();
    assert_eq!(
        log.matches("cannot start tgtd again").count(),
        1,
        "one attempt in 2 s of wake-ups:\n{log}"
    );
    assert!(
        log.contains("next attempt in 10 s at the earliest"),
        "{log}"
    );
}
