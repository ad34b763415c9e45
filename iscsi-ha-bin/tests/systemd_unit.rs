//! The systemd units under systemd/, checked by systemd itself: `systemd-analyze verify` and
//! `security` on a root directory laid out as the packages install it (the distribution's
//! units copied from this machine, the built binary at /usr/sbin/iscsi-ha), and the tgt.service
//! drop-in's condition evaluated with and without an iscsi-ha configuration. The .rpm's unit
//! for systemd 219 (systemd/el7/) is checked against 219's own list of keys
//! (fixtures/systemd/v219-unit-keys.txt) and against the main unit on what must not differ.

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

/// A root with the system's units, the .deb's and the tools the units run.
fn root() -> tempfile::TempDir {
    root_with(
        "systemd/iscsi-ha.service",
        "tgt.service",
        "systemd/tgt-iscsi-ha.conf",
    )
}

/// A root with the system's units, `unit` as iscsi-ha.service and `drop_in` for `tgt_unit`.
fn root_with(unit: &str, tgt_unit: &str, drop_in: &str) -> tempfile::TempDir {
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
    fs::copy(repo().join(unit), units.join("iscsi-ha.service")).unwrap();
    fs::create_dir_all(units.join(format!("{tgt_unit}.d"))).unwrap();
    fs::copy(
        repo().join(drop_in),
        units.join(format!("{tgt_unit}.d/iscsi-ha.conf")),
    )
    .unwrap();
    fs::copy(env!("CARGO_BIN_EXE_iscsi-ha"), p.join("usr/sbin/iscsi-ha")).unwrap();
    fs::copy("/bin/kill", p.join("bin/kill")).unwrap();
    if !units.join(tgt_unit).exists() {
        // tgt not installed here (or EL's tgtd.service): a stand-in with an ExecStart line is
        // enough for the drop-in to be merged and checked.
        fs::write(
            units.join(tgt_unit),
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
        // The host-wide lock's directory (run_dir::DEFAULT_LOCK_FILE) and HA-Lizard's files
        // (both_units_let_the_daemon_write_what_it_writes), and LIO's configfs tree (backend =
        // "lio"; the el7 unit's ProtectSystem=full leaves /sys writable).
        "ReadWritePaths=/run/lock /etc/iscsi-ha -/sys/kernel/config",
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

/// The `Section.Key` entries of a unit file, in order, with their values.
fn entries(text: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a key=value line: {line}"));
        out.push((
            format!("{section}.{}", key.trim()),
            value.trim().to_string(),
        ));
    }
    out
}

/// systemd 219's keys (fixtures/systemd/v219-unit-keys.txt; its header names the source).
fn keys_219() -> std::collections::BTreeSet<String> {
    let text = fs::read_to_string(repo().join("fixtures/systemd/v219-unit-keys.txt")).unwrap();
    let keys: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    // A truncated fixture would let anything through.
    assert!(keys.len() > 150, "only {} keys in the fixture", keys.len());
    keys
}

/// The keys of `text` that systemd 219 does not know.
fn unknown_to_219(text: &str) -> Vec<String> {
    let known = keys_219();
    entries(text)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !known.contains(k))
        .collect()
}

fn el7_unit_text() -> String {
    fs::read_to_string(repo().join("systemd/el7/iscsi-ha.service")).unwrap()
}

#[test]
fn the_el7_unit_uses_only_keys_systemd_219_knows() {
    assert_eq!(unknown_to_219(&el7_unit_text()), Vec::<String>::new());
    // The check catches what it is for: the main unit's hardening is newer than 219.
    let main = unknown_to_219(&unit_text());
    for newer in [
        "Unit.StartLimitIntervalSec",
        "Service.RuntimeDirectoryPreserve",
        "Service.StateDirectory",
        "Service.ReadWritePaths",
        "Service.AmbientCapabilities",
        "Service.ProtectKernelModules",
        "Service.ProtectControlGroups",
        "Service.ProtectProc",
        "Service.MemoryDenyWriteExecute",
        "Service.RestrictNamespaces",
    ] {
        assert!(
            main.contains(&newer.to_string()),
            "{newer} not flagged: {main:?}"
        );
    }
}

#[test]
fn the_el7_unit_avoids_what_systemd_219_gets_wrong() {
    let el7 = entries(&el7_unit_text());
    let value = |key: &str| -> Vec<&str> {
        el7.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // 219 removes a RuntimeDirectory= whenever the service stops (no RuntimeDirectoryPreserve
    // before 235): /run/tgtd, with the managed tgtd's socket, must outlive a daemon restart.
    assert!(value("Service.RuntimeDirectory").is_empty());
    // 219's values: "strict" is 232+.
    assert_eq!(value("Service.ProtectSystem"), ["full"]);
    // 219 ignores names it cannot resolve, and knows no @groups: an allow list of @groups
    // would leave only execve/exit/sigreturn and kill the daemon. Deny lists of plain names.
    let filters = value("Service.SystemCallFilter");
    assert!(!filters.is_empty(), "no SystemCallFilter at all");
    for f in filters {
        assert!(f.starts_with('~'), "an allow list on 219: {f}");
        assert!(!f.contains('@'), "a @group on 219: {f}");
        for name in f.trim_start_matches('~').split_whitespace() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "not a system call name: {name}"
            );
        }
    }
    // EL's scsi-target-utils names the unit tgtd.service.
    assert!(value("Unit.After")
        .iter()
        .any(|v| v.split_whitespace().any(|u| u == "tgtd.service")));
}

#[test]
fn the_two_units_agree_on_what_matters() {
    let main = entries(&unit_text());
    let el7 = entries(&el7_unit_text());
    let get = |entries: &[(String, String)], key: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    for key in [
        "Unit.ConditionPathExists",
        "Unit.Wants",
        "Service.Type",
        "Service.NotifyAccess",
        "Service.ExecStart",
        "Service.ExecReload",
        "Service.WatchdogSec",
        "Service.Restart",
        "Service.RestartSec",
        "Service.TimeoutStartSec",
        "Service.TimeoutStopSec",
        "Service.KillMode",
        "Service.SendSIGKILL",
        "Service.UMask",
        "Service.CapabilityBoundingSet",
        "Service.NoNewPrivileges",
        "Service.ProtectHome",
        "Service.PrivateTmp",
        "Service.RestrictAddressFamilies",
        "Service.SystemCallArchitectures",
        "Install.WantedBy",
    ] {
        let m = get(&main, key);
        assert!(!m.is_empty(), "{key} missing from the main unit");
        assert_eq!(m, get(&el7, key), "{key} differs between the units");
    }
    // The start limit moved from [Service] (219) to [Unit] (230+).
    assert_eq!(
        get(&main, "Unit.StartLimitIntervalSec"),
        get(&el7, "Service.StartLimitInterval")
    );
    assert!(!get(&main, "Unit.StartLimitBurst").is_empty());
    assert_eq!(
        get(&main, "Unit.StartLimitBurst"),
        get(&el7, "Service.StartLimitBurst")
    );
    // No capability is given on EL7 that the main unit withholds (and root needs no ambient set).
    assert_eq!(get(&main, "Service.AmbientCapabilities"), [""]);
    assert!(get(&el7, "Service.AmbientCapabilities").is_empty());
}

#[test]
fn systemd_analyze_verify_accepts_the_el7_unit_and_drop_in() {
    // This machine's systemd, not 219: it catches syntax and missing binaries; the key list
    // above is what ties the unit to 219.
    let r = root_with(
        "systemd/el7/iscsi-ha.service",
        "tgtd.service",
        "systemd/el7/tgtd-iscsi-ha.conf",
    );
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.path().display()))
        .args(["iscsi-ha.service", "tgtd.service"]));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        !said.contains("iscsi-ha"),
        "systemd-analyze has remarks on the EL7 units:\n{said}"
    );
}

#[test]
fn the_el7_tgtd_drop_in_holds_the_same_condition_as_debians() {
    let debian = entries(&fs::read_to_string(repo().join("systemd/tgt-iscsi-ha.conf")).unwrap());
    let el7 = entries(&fs::read_to_string(repo().join("systemd/el7/tgtd-iscsi-ha.conf")).unwrap());
    assert_eq!(
        debian,
        [(
            "Unit.ConditionPathExists".to_string(),
            "!/etc/iscsi-ha/iscsi-ha.toml".to_string()
        )]
    );
    assert_eq!(el7, debian);
    assert_eq!(
        unknown_to_219(&fs::read_to_string(repo().join("systemd/el7/tgtd-iscsi-ha.conf")).unwrap()),
        Vec::<String>::new()
    );
}

/// Whether `path` may be written by the service under `unit`'s ProtectSystem and its
/// writable-path exceptions (ReadWritePaths=, 219's ReadWriteDirectories=, the runtime and
/// state directories systemd creates).
fn writable_under(unit: &str, path: &str) -> bool {
    let entries = entries(unit);
    let value = |key: &str| {
        entries
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split_whitespace()
                    .map(|p| p.trim_start_matches('-').to_string())
            })
            .collect::<Vec<_>>()
    };
    let under = |dirs: &[String]| {
        dirs.iter()
            .any(|d| Path::new(path).starts_with(Path::new(d)))
    };
    let mut exceptions = value("Service.ReadWritePaths");
    exceptions.extend(value("Service.ReadWriteDirectories"));
    exceptions.extend(
        value("Service.RuntimeDirectory")
            .iter()
            .map(|d| format!("/run/{d}")),
    );
    exceptions.extend(
        value("Service.StateDirectory")
            .iter()
            .map(|d| format!("/var/lib/{d}")),
    );
    let mut read_only: Vec<String> =
        match value("Service.ProtectSystem").first().map(String::as_str) {
            Some("strict") => vec!["/".into()],
            Some("full") => vec!["/usr".into(), "/boot".into(), "/etc".into()],
            Some("yes" | "true") => vec!["/usr".into(), "/boot".into()],
            _ => vec![],
        };
    if value("Service.ProtectKernelTunables")
        .first()
        .map(String::as_str)
        == Some("yes")
    {
        read_only.extend(["/sys".into(), "/proc/sys".into()]);
    }
    !under(&read_only) || under(&exceptions)
}

#[test]
fn both_units_let_the_daemon_write_what_it_writes() {
    // The original's files for HA-Lizard ([ha_lizard]: an hour without the status file and
    // HA-Lizard fences a live peer), the host-wide lock, the state directory.
    let written = [
        "/etc/iscsi-ha/state/status",
        "/etc/iscsi-ha/state/manual",
        "/etc/iscsi-ha/iscsi-ha.conf",
        "/run/lock/iscsi-ha.lock",
        "/var/lib/iscsi-ha/manual-mode",
        // backend = "lio": the target is built in LIO's configfs tree.
        "/sys/kernel/config/target/iscsi",
    ];
    let lio = iscsi_ha_lio::LioConfig::default().root.join("iscsi");
    assert!(
        written.contains(&lio.to_string_lossy().as_ref()),
        "{} is not checked here",
        lio.display()
    );
    let defaults = iscsi_ha_core::config::schema::HaLizardSection::default();
    for path in [
        &defaults.status_file,
        &defaults.manual_file,
        &defaults.conf_file,
    ] {
        assert!(
            written.contains(&path.as_str()),
            "{path} is not checked here"
        );
    }
    for (name, unit) in [("main", unit_text()), ("el7", el7_unit_text())] {
        for path in written {
            assert!(
                writable_under(&unit, path),
                "the {name} unit keeps {path} read-only"
            );
        }
        assert!(
            !writable_under(&unit, "/usr/sbin/iscsi-ha"),
            "the {name} unit's protection check is vacuous"
        );
    }
}
