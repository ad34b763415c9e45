//! The original's files that HA-Lizard reads (`[ha_lizard]`), kept by the real daemon in a
//! network namespace of its own: the status file's layout line by line, its refresh while the
//! loop runs and only then, HA-Lizard's own fencing-guard condition replayed against the files,
//! the manual file following manual mode, the configuration file as bash reads it, an
//! original's configuration left alone, and paths that are not regular files refused without
//! holding the loop. This kernel has no DRBD, so the resource is seen as unknown. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{config, ha_lizard_section, require_root, Daemon, Netns, VIP};

/// HA-Lizard 2.4's `check_replication_link_state` (`ha-lizard.func`), restated for the test:
/// both files exist; the status file's mtime (`stat -c %Y`) is less than `window` seconds old
/// (3600 in HA-Lizard); `eval $(grep DRBD_RESOURCES conf)`, unquoted as there, yields a value.
/// Prints `guard:<value>` and exits 0 when the guard is armed.
const GUARD: &str = r#"
status="$1"; conf="$2"; window="$3"
[ -e "$status" ] && [ -e "$conf" ] || { echo missing; exit 4; }
DIFF=$(( $(date +%s) - $(stat -c %Y "$status") ))
[ "$DIFF" -lt "$window" ] || { echo "stale $DIFF"; exit 3; }
eval $(grep DRBD_RESOURCES "$conf")
[ -n "$DRBD_RESOURCES" ] || { echo "no resources"; exit 2; }
echo "guard:$DRBD_RESOURCES"
"#;

struct Files {
    status: PathBuf,
    manual: PathBuf,
    conf: PathBuf,
}

fn files(d: &Daemon) -> Files {
    let etc = d.dir.path().join("etc-iscsi-ha");
    Files {
        status: etc.join("state/status"),
        manual: etc.join("state/manual"),
        conf: etc.join("iscsi-ha.conf"),
    }
}

/// A daemon with a one-hour scan whose status file is refreshed every `refresh`.
fn start(ns: &Netns, role: &str, refresh: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let extra = ha_lizard_section(dir.path(), &format!("refresh = \"{refresh}\""));
    let text = config(dir.path(), &extra);
    Daemon::start_in(ns, dir, role, &text, &[])
}

fn guard(f: &Files, window_s: u32) -> (bool, String) {
    let out = Command::new("bash")
        .args(["-c", GUARD, "guard"])
        .arg(&f.status)
        .arg(&f.conf)
        .arg(window_s.to_string())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn mtime_ns(p: &Path) -> i128 {
    let m = fs::metadata(p).unwrap();
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap()
        .split('\n')
        .map(str::to_string)
        .collect()
}

fn pid(d: &Daemon) -> u32 {
    d.child.as_ref().unwrap().id()
}

/// `date`'s default format: `Tue Mar  5 14:02:11 UTC 2024`.
fn assert_date_line(line: &str) {
    let date = line
        .strip_prefix("Last Updated: ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let words: Vec<&str> = date.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{line:?}");
    assert_eq!(words[3].len(), 8, "{line:?}");
    let year: i32 = words[5].parse().unwrap();
    assert!(year >= 2024, "{line:?}");
}

#[test]
fn the_status_file_is_the_originals_and_is_fresh_exactly_while_the_loop_runs() {
    require_root();
    let ns = Netns::new("hl1");
    let mut d = start(&ns, "slave\n", "1s");
    let f = files(&d);
    d.wait_for(Duration::from_secs(5), "the status file", |_| {
        f.status.exists()
    });
    let l = lines(&f.status);
    assert_eq!(l[0], format!("iSCSI-HA Status: Running {}", pid(&d)));
    assert_date_line(&l[1]);
    assert_eq!(
        l[2..],
        [
            "HOST ROLE:              SLAVE",
            &format!("VIRTUAL IP:\t\t{VIP} is not local"),
            "ISCSI TARGET:\t\tStopped [expected stopped]",
            "DRBD CONNECTION: \tr0 in Unknown state",
            "",
            "",
        ],
        "the slave's layout; the file ends with an empty line"
    );
    let mode = fs::metadata(&f.status).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "ha-cfg and other tools read it");

    // HA-Lizard's guard is armed against our files.
    assert_eq!(guard(&f, 3600), (true, "guard:r0".to_string()));

    // Refreshed while the loop runs, with a one-hour scan: only the refresh drives it.
    let before = mtime_ns(&f.status);
    d.wait_for(
        Duration::from_secs(4),
        "the status file to be refreshed",
        |_| mtime_ns(&f.status) > before,
    );

    // A status change is written at once, whatever the refresh.
    fs::write(d.dir.path().join("role"), "master\n").unwrap();
    d.wait_for(Duration::from_secs(3), "the master's layout", |_| {
        lines(&f.status).get(2).map(String::as_str) == Some("HOST ROLE:\t\tMASTER")
    });
    let l = lines(&f.status);
    assert_eq!(l[0], format!("iSCSI-HA Status: Running {}", pid(&d)));
    assert_date_line(&l[1]);
    assert_eq!(
        l[2..],
        [
            "HOST ROLE:\t\tMASTER",
            "DRBD CONNECTION: \tr0 in Unknown state",
            "DRBD Disk State: \tr0 in DUnknown/DUnknown state",
            "ISCSI TARGET:\t\tStopped [expected running]",
            "",
            "",
        ],
        "the master's layout (no Primary role to list, no VIP while DRBD is not Primary)"
    );

    // A loop that hangs writes nothing more: HA-Lizard's window lapses.
    d.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(500));
    let stopped_at = mtime_ns(&f.status);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(mtime_ns(&f.status), stopped_at, "written while stopped");
    let (armed, said) = guard(&f, 2);
    assert!(!armed && said.starts_with("stale"), "{said}");

    d.signal(Signal::SIGCONT);
    d.wait_for(Duration::from_secs(4), "the refresh after SIGCONT", |_| {
        mtime_ns(&f.status) > stopped_at
    });
    assert_eq!(guard(&f, 3600), (true, "guard:r0".to_string()));

    // Nor one that stopped; the file stays (the original left it too), aging.
    d.stop();
    let stopped_at = mtime_ns(&f.status);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        mtime_ns(&f.status),
        stopped_at,
        "written after the daemon stopped"
    );
    let (armed, said) = guard(&f, 2);
    assert!(!armed && said.starts_with("stale"), "{said}");
}

#[test]
fn the_conf_file_gives_bash_the_resources_and_an_originals_file_is_left_alone() {
    require_root();
    let ns = Netns::new("hl2");
    let d = start(&ns, "slave\n", "60s");
    let f = files(&d);
    d.wait_for(Duration::from_secs(5), "the configuration file", |_| {
        f.conf.exists()
    });
    let mode = fs::metadata(&f.conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Sourced whole, and evaluated the two ways HA-Lizard does (2.4 unquoted, 2.5 quoted).
    for how in [
        "source \"$1\"",
        "eval $(grep DRBD_RESOURCES \"$1\")",
        "eval \"$(grep 'DRBD_RESOURCES' \"$1\")\"",
    ] {
        let out = Command::new("bash")
            .args([
                "-c",
                &format!("set -u; {how}; printf %s \"$DRBD_RESOURCES\""),
                "b",
            ])
            .arg(&f.conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{how}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "r0", "{how}");
    }
    // ha-cfg cluster-status shows the lines that are not comments or blank.
    let shown = Command::new("grep")
        .args(["-v", r"^\s*$\|^\s*\#"])
        .arg(&f.conf)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "DRBD_RESOURCES='r0'\n"
    );
    drop(d);

    // An original's file naming the same resource: kept byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc-iscsi-ha/iscsi-ha.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let original =
        "# iscsi-ha configuration\nDRBD_RESOURCES=r0\nDRBD_VIRTUAL_IP=10.10.10.3\nMAIL_ON=1\n";
    fs::write(&conf, original).unwrap();
    let text = config(dir.path(), "");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(
        Duration::from_secs(5),
        "the check of the original's file",
        |d| d.log().contains("kept as it is (not written by iscsi-ha)"),
    );
    assert_eq!(fs::read_to_string(&conf).unwrap(), original);
    drop(d);

    // One naming another resource: left alone, and the error says what to do.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc-iscsi-ha/iscsi-ha.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let original = "DRBD_RESOURCES=\"iscsi1\"\n";
    fs::write(&conf, original).unwrap();
    let text = config(dir.path(), "");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(
        Duration::from_secs(5),
        "the error about the original's file",
        |d| {
            d.log()
                .contains("its DRBD_RESOURCES is \"iscsi1\" where this host replicates \"r0\"")
                && d.log().contains("Set DRBD_RESOURCES=\"r0\" there")
        },
    );
    assert_eq!(fs::read_to_string(&conf).unwrap(), original);
}

/// Stops `d` (SIGTERM) and hands back its directory for the next daemon.
fn restart_dir(mut d: Daemon) -> tempfile::TempDir {
    d.stop();
    std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap())
}

#[test]
fn the_manual_file_is_there_exactly_while_manual_mode_is_on() {
    require_root();
    let ns = Netns::new("hl3");
    let d = start(&ns, "slave\n", "60s");
    let f = files(&d);
    d.wait_for(Duration::from_secs(5), "the status file", |_| {
        f.status.exists()
    });
    assert!(!f.manual.exists());

    let out = d.cfg(&["manual-mode-enable"]);
    assert!(out.status.success(), "{out:?}");
    d.wait_for(Duration::from_secs(3), "the manual file", |_| {
        fs::read_to_string(&f.manual).ok().as_deref() == Some("become_secondary\n")
    });
    let mode = fs::metadata(&f.manual).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // Refused here (no DRBD to check against the pool role): manual mode stays, so does the file.
    let out = d.cfg(&["manual-mode-disable"]);
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fs::read_to_string(&f.manual).unwrap(), "become_secondary\n");

    // A daemon started with manual mode on puts the file back; with it off, removes it.
    let dir = restart_dir(d);
    fs::remove_file(&f.manual).unwrap();
    let text = fs::read_to_string(dir.path().join("c.toml")).unwrap();
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(Duration::from_secs(3), "the manual file back", |_| {
        fs::read_to_string(&f.manual).ok().as_deref() == Some("become_secondary\n")
    });
    let dir = restart_dir(d);
    fs::write(dir.path().join("state/manual-mode"), "off").unwrap();
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(
        Duration::from_secs(3),
        "the stale manual file removed",
        |_| !f.manual.exists(),
    );
    assert_eq!(d.status()["manual_mode"], "off");
}

#[test]
fn a_first_start_takes_over_the_originals_manual_mode_once() {
    require_root();
    let ns = Netns::new("hl5");
    // A host migrated while the original had it in manual mode, told to stay primary while
    // the pool calls it a slave: it must not follow the pool role (and demote) at once.
    let dir = tempfile::tempdir().unwrap();
    let extra = ha_lizard_section(dir.path(), "refresh = \"60s\"");
    let text = config(dir.path(), &extra);
    let original = dir.path().join("etc-iscsi-ha/state/manual");
    fs::create_dir_all(original.parent().unwrap()).unwrap();
    fs::write(&original, "become_primary\n").unwrap();
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    assert_eq!(d.status()["manual_mode"], "become-primary", "{}", d.log());
    assert!(
        d.log().contains("taken over from the original"),
        "{}",
        d.log()
    );
    let recorded = d.dir.path().join("state/manual-mode");
    assert_eq!(fs::read_to_string(&recorded).unwrap(), "become-primary");

    // Recorded now: a restart keeps it from our own state, not from the original's file.
    let dir = restart_dir(d);
    fs::write(&original, "become_secondary\n").unwrap();
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    assert_eq!(d.status()["manual_mode"], "become-primary");
    d.wait_for(Duration::from_secs(3), "the manual file rewritten", |_| {
        fs::read_to_string(&original).ok().as_deref() == Some("become_primary\n")
    });

    // A first start finding garbage in the original's file refuses to guess.
    let dir = restart_dir(d);
    fs::remove_file(dir.path().join("state/manual-mode")).unwrap();
    fs::write(&original, "sideways\n").unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["run", "-c"])
        .arg(dir.path().join("c.toml"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .arg("--lock-file")
        .arg(dir.path().join("lock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("neither become_primary nor become_secondary")
            && err.contains("refusing to start"),
        "{err}"
    );
}

#[test]
fn paths_that_are_not_regular_files_are_refused_and_reported_without_holding_the_loop() {
    require_root();
    let ns = Netns::new("hl4");
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    fs::create_dir(&etc).unwrap();
    let fifo = etc.join("status");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let elsewhere = etc.join("precious");
    fs::write(&elsewhere, "keep\n").unwrap();
    let link = etc.join("iscsi-ha.conf");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    // A state "directory" that is a FIFO: nothing can be written under it, even by root, and
    // opening it would wait for a writer.
    let not_a_dir = etc.join("state");
    nix::unistd::mkfifo(&not_a_dir, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let manual = not_a_dir.join("manual");
    let extra = format!(
        "[ha_lizard]\nstatus_file = \"{}\"\nmanual_file = \"{}\"\nconf_file = \"{}\"\nrefresh = \"1s\"\n",
        fifo.display(),
        manual.display(),
        link.display()
    );
    let text = config(dir.path(), &extra);
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    let out = d.cfg(&["manual-mode-enable"]);
    assert!(out.status.success(), "{out:?}");
    d.wait_for(
        Duration::from_secs(5),
        "the three refusals in the log",
        |d| {
            let log = d.log();
            log.contains(&format!("{} is a FIFO, not a regular file", fifo.display()))
                && log.contains(&format!(
                    "{} is a symbolic link, not a regular file",
                    link.display()
                ))
                && log.contains(&format!(
                    "{}: cannot write it: {} is not a directory",
                    manual.display(),
                    not_a_dir.display()
                ))
        },
    );
    // Several refreshes later: the loop answers at once and each failure was logged once.
    std::thread::sleep(Duration::from_millis(2500));
    for _ in 0..5 {
        let t0 = Instant::now();
        d.status();
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "status took {:?}",
            t0.elapsed()
        );
    }
    let log = d.log();
    assert_eq!(
        log.matches(&format!("{} is a FIFO", fifo.display()))
            .count(),
        1,
        "logged once:\n{log}"
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::symlink_metadata(&not_a_dir)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep\n");
    assert!(log.contains("remove it so that iscsi-ha can keep the file HA-Lizard reads"));

    // Once the FIFO is gone, the next refresh writes the file and says so once.
    fs::remove_file(&fifo).unwrap();
    d.wait_for(
        Duration::from_secs(4),
        "the status file written again",
        |d| {
            fs::symlink_metadata(&fifo).is_ok_and(|m| m.file_type().is_file())
                && d.log()
                    .contains(&format!("{}: written again", fifo.display()))
        },
    );
}
