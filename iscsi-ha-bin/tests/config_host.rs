//! What a configuration points at on the host: `check-config --host` in a network namespace of
//! its own, and `iscsi-ha run`'s refusals of a run directory it must not take over. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use support::{require_root, Netns};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A configuration whose VIP, LUN, tgtd and role file are given.
fn config(vip: &str, interface: &str, lun: &Path, program: &Path, role: &Path) -> String {
    format!(
        r#"
[role]
source = "file"
path = "{role}"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:host"
[[target.lun]]
lun = 1
path = "{lun}"
[target.access]
allow_all = true
[target.daemon]
program = "{program}"
[vip]
address = "{vip}"
interface = "{interface}"
"#,
        role = role.display(),
        lun = lun.display(),
        program = program.display(),
    )
}

fn check_host(ns: &Netns, file: &Path) -> Output {
    ns.command(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["check-config", "--host"])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn check_config_host_passes_when_everything_it_points_at_is_there() {
    require_root();
    let ns = Netns::new("hc1");
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("drbd1");
    // A block device node (loop0's numbers); nothing opens it.
    nix::sys::stat::mknod(
        &disk,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        nix::sys::stat::makedev(7, 0),
    )
    .unwrap();
    let tgtd = dir.path().join("tgtd");
    fs::write(&tgtd, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&tgtd, fs::Permissions::from_mode(0o755)).unwrap();
    let role = dir.path().join("role");
    fs::write(&role, "slave\n").unwrap();
    let file = dir.path().join("c.toml");
    fs::write(&file, config("10.79.0.100/24", "d0", &disk, &tgtd, &role)).unwrap();

    let out = check_host(&ns, &file);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("what it points at on this host is in place"),
        "{stderr}"
    );
}

#[test]
fn check_config_host_names_every_missing_or_wrong_thing_and_fails() {
    require_root();
    let ns = Netns::new("hc2");
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("not-a-disk");
    fs::write(&disk, "").unwrap();
    let tgtd = dir.path().join("tgtd");
    fs::write(&tgtd, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&tgtd, fs::Permissions::from_mode(0o644)).unwrap();
    let role = dir.path().join("role-dir");
    fs::create_dir(&role).unwrap();
    let file = dir.path().join("c.toml");

    // The interface exists but the VIP is on another network.
    fs::write(&file, config("10.80.0.100/24", "d0", &disk, &tgtd, &role)).unwrap();
    let out = check_host(&ns, &file);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for wanted in [
        "error: vip.address: 10.80.0.100 is in none of d0's subnets (10.79.0.0/24)",
        &format!(
            "error: target.lun[0].path: {} is a regular file, not a block device",
            disk.display()
        ),
        &format!(
            "error: target.daemon.program: {} is not executable",
            tgtd.display()
        ),
        &format!(
            "error: role.path: {} is a directory, not a regular file",
            role.display()
        ),
        "4 problem(s) on this host",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }

    // No such interface; nothing else exists either.
    let missing = dir.path().join("missing");
    fs::write(
        &file,
        config("10.79.0.100/24", "nope0", &missing, &missing, &missing),
    )
    .unwrap();
    let out = check_host(&ns, &file);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for wanted in [
        "error: vip.interface: there is no interface nope0 on this host".to_string(),
        format!(
            "error: target.lun[0].path: {} does not exist",
            missing.display()
        ),
        format!(
            "error: target.daemon.program: {} does not exist",
            missing.display()
        ),
        format!("error: role.path: {} cannot be read", missing.display()),
    ] {
        assert!(stderr.contains(&wanted), "{wanted}\n{stderr}");
    }
}

#[test]
fn run_refuses_a_run_dir_owned_by_another_user_and_leaves_it_alone() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("theirs");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(&run, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let role = dir.path().join("role");
    fs::write(&role, "slave\n").unwrap();
    let file = dir.path().join("c.toml");
    let missing = dir.path().join("missing");
    fs::write(
        &file,
        config("10.79.0.100/24", "d0", &missing, &missing, &role),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["run", "-c"])
        .arg(&file)
        .arg("--run-dir")
        .arg(&run)
        .arg("--lock-file")
        .arg(dir.path().join("lock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is owned by uid 65534 with mode 0755",
            run.display()
        )) && stderr.contains("--run-dir"),
        "{stderr}"
    );
    let meta = fs::metadata(&run).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
}
