//! The systemd units under systemd/, checked by systemd itself: `systemd-analyze verify` and
//! `security` on a root directory laid out as the packages install it (the distribution's
//! units copied from this machine, the built binary at /usr/sbin/iscsi-ha), and the tgt.service
//! drop-in's condition evaluated with and without an iscsi-ha configuration.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit_text() -> String {
    fs::read_to_string(repo().join("systemd/iscsi-ha.service")).unwrap()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); this test needs systemd (scripts/packages.d/ops.txt)")
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A root with the system's units, ours and the tools the units run.
fn root() -> tempfile::TempDir {
    let r = tempfile::tempdir().unwrap();
    let p = r.path();
    for d in ["usr/sbin", "usr/lib/systemd", "bin", "etc"] {
        fs::create_dir_all(p.join(d)).unwrap();
    }
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(Path::new)
        .find(|d| d.join("multi-user.target").exists())
        .expect("this test needs systemd's units (Debian's systemd package)");
    let out = run(Command::new("cp")
        .arg("-r")
        .arg(system_units)
        .arg(p.join("usr/lib/systemd/")));
    assert!(out.status.success(), "{}", text(&out));
    let units = p.join("usr/lib/systemd/system");
    fs::copy(
        repo().join("systemd/iscsi-ha.service"),
        units.join("iscsi-ha.service"),
    )
    .unwrap();
    fs::create_dir_all(units.join("tgt.service.d")).unwrap();
    fs::copy(
        repo().join("systemd/tgt-iscsi-ha.conf"),
        units.join("tgt.service.d/iscsi-ha.conf"),
    )
    .unwrap();
    fs::copy(env!("CARGO_BIN_EXE_iscsi-ha"), p.join("usr/sbin/iscsi-ha")).unwrap();
    fs::copy("/bin/kill", p.join("bin/kill")).unwrap();
    if !units.join("tgt.service").exists() {
        // tgt not installed here: a stand-in with Debian's ExecStart line is enough for the
        // drop-in to be merged and checked.
        fs::write(
            units.join("tgt.service"),
            "[Unit]\nDescription=tgt\n[Service]\nType=notify\nExecStart=/usr/sbin/tgtd -f\n",
        )
        .unwrap();
    }
    for tool in ["tgtd", "tgtadm", "tgt-admin"] {
        let host = Path::new("/usr/sbin").join(tool);
        let dest = p.join("usr/sbin").join(tool);
        if host.exists() {
            fs::copy(host, dest).unwrap();
        } else {
            fs::write(&dest, "#!/bin/sh\n").unwrap();
            let mut perm = fs::metadata(&dest).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
            fs::set_permissions(&dest, perm).unwrap();
        }
    }
    r
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_and_the_drop_in() {
    let r = root();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.path().display()))
        .args(["iscsi-ha.service", "tgt.service"]));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        !said.contains("iscsi-ha"),
        "systemd-analyze has remarks on our units:\n{said}"
    );
}

#[test]
fn the_hardening_keeps_the_exposure_low() {
    let r = root();
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", "--threshold=40"])
        .arg(format!("--root={}", r.path().display()))
        .arg("iscsi-ha.service"));
    let report = text(&out);
    assert!(out.status.success(), "exposure above 4.0:\n{report}");
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level for iscsi-ha.service"))
        .unwrap_or_else(|| panic!("{report}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    eprintln!("systemd-analyze security: {line}");
    assert!(level <= 4.0, "{report}");
    for good in [
        "✓ PrivateTmp=",
        "✓ ProtectHome=",
        "✓ ProtectSystem=",
        "✓ NoNewPrivileges=",
        "✓ ProtectKernelModules=",
        "✓ CapabilityBoundingSet=~CAP_SYS_MODULE",
        "✓ CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
        "✓ RestrictAddressFamilies=~…",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(good)),
            "{good} not satisfied:\n{report}"
        );
    }
}

#[test]
fn the_unit_says_how_it_runs() {
    let unit = unit_text();
    for line in [
        "Type=notify",
        "WatchdogSec=60s",
        "Restart=on-failure",
        "KillMode=process",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_RESOURCE",
        "ProtectSystem=strict",
        "ExecStart=/usr/sbin/iscsi-ha run --config /etc/iscsi-ha/iscsi-ha.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RuntimeDirectoryPreserve=yes",
        // The host-wide lock's directory (run_dir::DEFAULT_LOCK_FILE).
        "ReadWritePaths=/run/lock",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
}

/// Evaluates tgt.service's conditions in a mount namespace whose /etc is a copy, with or
/// without an iscsi-ha configuration.
fn tgt_conditions(configured: bool) -> Output {
    let r = root();
    let etc = r.path().join("etc-copy");
    let out = run(Command::new("cp").arg("-a").arg("/etc").arg(&etc));
    assert!(out.status.success(), "{}", text(&out));
    if configured {
        fs::create_dir_all(etc.join("iscsi-ha")).unwrap();
        fs::write(etc.join("iscsi-ha/iscsi-ha.toml"), "").unwrap();
    } else {
        let _ = fs::remove_dir_all(etc.join("iscsi-ha"));
    }
    let script = format!(
        "mount --bind {} /etc && exec systemd-analyze --root={} condition --unit=tgt.service",
        etc.display(),
        r.path().display()
    );
    run(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]))
}

#[test]
fn the_distribution_tgt_service_stays_off_while_iscsi_ha_is_configured() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (a mount namespace); run it as root, as CI does"
    );
    let off = tgt_conditions(true);
    let said = text(&off);
    assert!(
        said.contains("ConditionPathExists=!/etc/iscsi-ha/iscsi-ha.toml failed"),
        "{said}"
    );
    assert!(!off.status.success(), "{said}");
    let on = tgt_conditions(false);
    assert!(on.status.success(), "{}", text(&on));
    assert!(text(&on).contains("Conditions succeeded"), "{}", text(&on));
}

#[test]
fn the_watchdog_outlasts_the_longest_bounded_step() {
    // systemd/README.md: WatchdogSec is longer than a DRBD netlink request may wait, so only a
    // loop that is really stuck is killed.
    let unit = unit_text();
    let secs: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .and_then(|v| v.trim().strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .expect("WatchdogSec=<n>s in the unit");
    assert!(
        std::time::Duration::from_secs(secs) > iscsi_ha_drbd::client::DEFAULT_TIMEOUT,
        "WatchdogSec={secs}s does not outlast a DRBD request ({:?})",
        iscsi_ha_drbd::client::DEFAULT_TIMEOUT
    );
}
