//! The `iscsi-ha` binary's configuration commands, run as a user would run them.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn iscsi_ha(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let file = fixtures().join("config/good/minimal.toml");
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("valid; effective configuration follows"));
    assert!(
        stdout.contains("max_starts = 5"),
        "defaults are filled in:\n{stdout}"
    );
    assert!(
        stdout.contains("scsi_sn = "),
        "derived LUN identity is shown:\n{stdout}"
    );
    let hint = text(&out.stderr);
    assert!(
        hint.contains("(iscsi1) `protocol C`, `fencing resource-and-stonith`")
            && hint.contains("fence-peer \"/usr/sbin/iscsi-ha fence-peer\""),
        "check-config reminds of the DRBD fencing the design relies on:\n{hint}"
    );
}

#[test]
fn the_shipped_example_passes_check_config() {
    let file = fixtures().join("config/example.toml");
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid; effective configuration follows"));
}

/// The lab's IPv6 configurations (lab_failover step 10, `iha-lab bench failover --vip ipv6`)
/// are valid as written: a VIP of fd99::100/64 and an IPv6 access list under tgt, the VIP as
/// LIO's portal.
#[test]
fn the_labs_ipv6_configurations_pass_check_config() {
    use iscsi_ha_lab::cluster::lab_config_for_family;
    use iscsi_ha_lab::net::VipFamily;
    let dir = tempfile::tempdir().unwrap();
    for backend in ["tgt", "lio"] {
        let file = dir.path().join(format!("{backend}.toml"));
        fs::write(&file, lab_config_for_family(backend, 1, VipFamily::V6, "")).unwrap();
        let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
        let effective = text(&out.stdout);
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        assert!(effective.contains("fd99::100/64"), "{backend}: {effective}");
    }
}

#[test]
fn check_config_reports_every_error_at_once() {
    let file = fixtures().join("config/bad/several-errors.toml");
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for wanted in [
        "several-errors.toml:6:24: replication.resources[1]: resource iscsi1 is listed twice",
        "several-errors.toml:12:7: target.lun[0].lun: LUN 0 is not allowed",
        "several-errors.toml:19:11: vip.address: 10.10.10.255 is the broadcast address",
    ] {
        assert!(stderr.contains(wanted), "{wanted}:\n{stderr}");
    }
}

#[test]
fn check_config_names_key_and_position_and_fails() {
    let file = fixtures().join("config/bad/lun-zero.toml");
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("lun-zero.toml:12:7: target.lun[0].lun: LUN 0 is not allowed"),
        "{stderr}"
    );
}

#[test]
fn import_legacy_writes_a_private_file_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("iscsi-ha.toml");
    let conf = fixtures().join("legacy/howto-sample.conf");
    let targets = fixtures().join("legacy/howto-targets.conf");
    let args = [
        "import-legacy",
        conf.to_str().unwrap(),
        "--targets-conf",
        targets.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ];
    let out = iscsi_ha(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("MONITOR_KILLALL"),
        "notes list what had no equivalent"
    );
    let mode = fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let check = iscsi_ha(&["check-config", out_path.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "imported config is valid: {}",
        text(&check.stderr)
    );

    fs::write(&out_path, "keep me").unwrap();
    let again = iscsi_ha(&args);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("not overwriting it without --force"));
    assert_eq!(fs::read_to_string(&out_path).unwrap(), "keep me");
    let mut forced: Vec<&str> = args.to_vec();
    forced.push("--force");
    assert!(iscsi_ha(&forced).status.success());
}

/// Runs `iscsi-ha check-config FILE`, killed if it has not exited within `limit` (the test
/// then fails instead of hanging with it).
fn check_config_within(file: &Path, limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("check-config")
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "check-config {} still running after {limit:?}; stderr:\n{}",
                file.display(),
                text(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn check_config_refuses_a_device_a_fifo_and_a_huge_file_at_once() {
    let limit = std::time::Duration::from_secs(5);
    let out = check_config_within(Path::new("/dev/zero"), limit);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/dev/zero is a character device, not a regular file"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("iscsi-ha.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = check_config_within(&fifo, limit);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is a FIFO, not a regular file", fifo.display()))
            && stderr.contains("put a regular file there"),
        "{stderr}"
    );

    // A sparse 2 GiB regular file: read up to the 1 MiB cap, then refused.
    let huge = dir.path().join("huge.toml");
    fs::File::create(&huge).unwrap().set_len(2 << 30).unwrap();
    let out = check_config_within(&huge, limit);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is larger than 1048576 bytes"), "{stderr}");
}

/// `iscsi-ha run` with `config_text`, its run directory, lock and state under `dir`; for
/// refusals that come before anything is started.
fn run_daemon(dir: &Path, config_text: &str, run_dir: &Path) -> Output {
    let c = dir.join("c.toml");
    fs::write(&c, config_text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["run", "-c"])
        .arg(&c)
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--lock-file")
        .arg(dir.join("lock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .unwrap()
}

/// The minimal configuration with `role` as its role source, an adopted tgtd (nothing is
/// started) and logging to standard error.
fn minimal_with(role: &str) -> String {
    fs::read_to_string(fixtures().join("config/good/minimal.toml"))
        .unwrap()
        .replace("source = \"xapi\"", role)
        .replace(
            "[vip]",
            "[target.daemon]\nmanaged = false\ncontrol_port = 99\n\n[vip]",
        )
        + "\n[logging]\nto = \"stderr\"\n"
}

#[test]
fn run_without_the_role_sources_directory_names_the_path_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pool_conf = dir.path().join("xensource/pool.conf");
    let config_text = minimal_with(&format!(
        "source = \"xapi\"\npool_conf = \"{}\"",
        pool_conf.display()
    ));
    let out = run_daemon(dir.path(), &config_text, &dir.path().join("run"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "c.toml: role.pool_conf: the directory {} of {} does not exist",
            dir.path().join("xensource").display(),
            pool_conf.display()
        )) && stderr.contains("set role.source to \"file\", \"command\" or \"static\"")
            && stderr.contains("refusing to start"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_world_writable_run_dir_and_leaves_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("shared");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(dir.path().join("role"), "slave\n").unwrap();
    let role = format!(
        "source = \"file\"\npath = \"{}\"",
        dir.path().join("role").display()
    );
    let out = run_daemon(dir.path(), &minimal_with(&role), &run);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is owned by uid", run.display()))
            && stderr.contains("with mode 1777")
            && stderr.contains("choose another --run-dir"),
        "{stderr}"
    );
    assert_eq!(
        fs::metadata(&run).unwrap().permissions().mode() & 0o7777,
        0o1777,
        "the directory is left as it was"
    );
}

#[test]
fn a_second_daemon_is_refused_while_another_holds_the_host_lock() {
    let dir = tempfile::tempdir().unwrap();
    let held = iscsi_ha_bin::run_dir::lock(&dir.path().join("lock")).unwrap();
    fs::write(dir.path().join("role"), "slave\n").unwrap();
    let role = format!(
        "source = \"file\"\npath = \"{}\"",
        dir.path().join("role").display()
    );
    let out = run_daemon(dir.path(), &minimal_with(&role), &dir.path().join("run"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "another iscsi-ha daemon (pid {}) holds {}",
            std::process::id(),
            dir.path().join("lock").display()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("run").exists(), "nothing was set up");
    drop(held);
}

fn import_to(out: &Path, force: bool) -> Output {
    let conf = fixtures().join("legacy/multi-resource-smtp.conf");
    let targets = fixtures().join("legacy/targets-chap.conf");
    let mut args = vec![
        "import-legacy",
        conf.to_str().unwrap(),
        "--targets-conf",
        targets.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if force {
        args.push("--force");
    }
    iscsi_ha(&args)
}

#[test]
fn import_legacy_force_replaces_an_open_file_with_a_private_one() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("iscsi-ha.toml");
    fs::write(&out_path, "old").unwrap();
    fs::set_permissions(&out_path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = import_to(&out_path, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("(mode 0600)"));
    let written = fs::read_to_string(&out_path).unwrap();
    assert!(
        written.contains("chap-secret-1"),
        "the CHAP password is in it"
    );
    let mode = fs::metadata(&out_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a file holding passwords is private");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file is left"
    );
}

#[test]
fn import_legacy_never_writes_through_a_symlink_even_a_dangling_one() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.toml");
    let link = dir.path().join("iscsi-ha.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for force in [false, true] {
        let out = import_to(&link, force);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is a symbolic link; not writing through it"),
            "{stderr}"
        );
        assert!(!target.exists(), "nothing was written at the link's target");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let file = fixtures().join("config/good/minimal.toml");
    for (program, args) in [
        (
            env!("CARGO_BIN_EXE_iscsi-ha"),
            vec!["check-config", file.to_str().unwrap()],
        ),
        (
            env!("CARGO_BIN_EXE_iscsi-cfg"),
            vec!["get", file.to_str().unwrap()],
        ),
    ] {
        // As `| head` that has already exited: the read end is closed before anything is written.
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = Command::new(program)
            .args(&args)
            .stdout(std::process::Stdio::from(write))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{program}: {stderr}");
        assert_eq!(out.status.signal(), Some(13), "{program}: {stderr}");
    }
}

#[test]
fn both_tools_print_their_version_with_capital_v_and_iscsi_cfg_keeps_small_v() {
    for (program, flag) in [
        (env!("CARGO_BIN_EXE_iscsi-ha"), "-V"),
        (env!("CARGO_BIN_EXE_iscsi-ha"), "--version"),
        (env!("CARGO_BIN_EXE_iscsi-cfg"), "-V"),
        (env!("CARGO_BIN_EXE_iscsi-cfg"), "--version"),
        (env!("CARGO_BIN_EXE_iscsi-cfg"), "-v"),
    ] {
        let out = Command::new(program).arg(flag).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {flag}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{program} {flag}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn a_user_kept_out_of_the_control_socket_is_told_to_run_as_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it runs iscsi-cfg as nobody"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
    let socket = run.join("control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-cfg"))
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "permission denied on {}: run as root",
            socket.display()
        )) && !stderr.contains("not running"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_that_does_not_answer_is_reported_as_such_not_as_eagain() {
    // A socket that accepts and never answers: the daemon's loop held by something.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let t0 = std::time::Instant::now();
    let out = iscsi_ha(&["status", "--socket", socket.to_str().unwrap()]);
    let took = t0.elapsed();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the daemon did not answer within 10 s"),
        "{err}"
    );
    assert!(!err.contains("temporarily unavailable"), "{err}");
    assert!(
        took >= std::time::Duration::from_secs(10) && took < std::time::Duration::from_secs(12),
        "the timeout is the one announced: {took:?}"
    );
}

/// The noSAN installer's files import to a configuration check-config accepts with a warning
/// per RFC 3720 rule its target name breaks, the name unchanged; every note names its own file.
#[test]
fn the_imported_nosan_installation_passes_check_config_with_the_rfc_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("iscsi-ha.toml");
    let conf = fixtures().join("legacy/nosan-iscsi-ha.conf");
    let targets = fixtures().join("legacy/nosan-targets.conf");
    let out = iscsi_ha(&[
        "import-legacy",
        conf.to_str().unwrap(),
        "--targets-conf",
        targets.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = text(&out.stderr);
    for wanted in [
        format!(
            "{}:5: target iqn.2015.com.halizard:noSAN: the name breaks RFC 3720 §3.2.6.3.1",
            targets.display()
        ),
        format!("{}:3: include: ", targets.display()),
        format!("{}:2: ISCSI_TARGET_SERVICE: ", conf.display()),
    ] {
        assert!(notes.contains(&wanted), "{wanted}:\n{notes}");
    }

    let check = iscsi_ha(&["check-config", out_path.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("iqn = \"iqn.2015.com.halizard:noSAN\""));
    let stderr = text(&check.stderr);
    for rule in ["RFC 3720 §3.2.6.2", "RFC 3720 §3.2.6.3.1"] {
        let wanted = format!(
            "warning: {}:12:7: target.iqn: \"iqn.2015.com.halizard:noSAN\" breaks {rule}",
            out_path.display()
        );
        assert!(stderr.contains(&wanted), "{wanted}:\n{stderr}");
    }
    assert!(
        stderr.contains("2 warning(s); iscsi-ha starts with them"),
        "{stderr}"
    );
}

/// targets.conf notes carry targets.conf's path and line, not iscsi-ha.conf's.
#[test]
fn import_legacy_labels_targets_conf_notes_with_their_own_file() {
    let conf = fixtures().join("legacy/howto-sample.conf");
    let targets = fixtures().join("legacy/write-cache-targets.conf");
    let out = iscsi_ha(&[
        "import-legacy",
        conf.to_str().unwrap(),
        "--targets-conf",
        targets.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = text(&out.stderr);
    assert!(
        notes.contains(&format!("{}:14: write-cache: ", targets.display())),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("{}:14: MAIL_TO: ", conf.display())),
        "{notes}"
    );
    assert!(!notes.contains(&format!("{}:14: targets.conf", conf.display())));
}

/// Several targets without --target: refused, every target named, nothing written; with
/// --target the chosen one is imported.
#[test]
fn import_legacy_refuses_several_targets_unless_one_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("iscsi-ha.toml");
    let conf = fixtures().join("legacy/howto-sample.conf");
    let targets = fixtures().join("legacy/several-targets.conf");
    let mut args = vec![
        "import-legacy",
        conf.to_str().unwrap(),
        "--targets-conf",
        targets.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ];
    let out = iscsi_ha(&args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for wanted in [
        format!("{} defines 2 targets", targets.display()),
        "line 2: iqn.2024-01.com.example:vm-store".to_string(),
        "line 7: iqn.2024-01.com.example:iso-store".to_string(),
        "--target NAME".to_string(),
        "nothing was written".to_string(),
    ] {
        assert!(stderr.contains(&wanted), "{wanted}:\n{stderr}");
    }
    assert!(!out_path.exists());

    args.extend(["--target", "iqn.2024-01.com.example:vm-store"]);
    let out = iscsi_ha(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fs::read_to_string(&out_path)
        .unwrap()
        .contains("iqn = \"iqn.2024-01.com.example:vm-store\""));
    assert!(text(&out.stderr).contains(&format!(
        "{}:7: target iqn.2024-01.com.example:iso-store: not imported",
        targets.display()
    )));
}

/// A LUN identity tgtd cannot carry (over its 36 bytes, or with the ',' and '=' its requests
/// split on) is refused at its key by `check-config` and by the daemon's start with tgt, the
/// default; LIO writes each value whole and takes it.
#[test]
fn an_identity_tgtd_cannot_carry_is_refused_at_its_key_and_lio_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let serial = format!("SN,{}", "x".repeat(34));
    let with_serial = |text: String| {
        text.replace(
            "path = \"/dev/drbd1\"",
            &format!("path = \"/dev/drbd1\"\nscsi_sn = \"{serial}\""),
        )
    };
    let tgt = with_serial(minimal_with("source = \"static\"\nrole = \"slave\""));
    let file = dir.path().join("tgt.toml");
    fs::write(&file, &tgt).unwrap();
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "{}:15:11: target.lun[0].scsi_sn: \"{serial}\" is 37 bytes; tgtd keeps at most 36 bytes of scsi_sn: write a shorter value",
        file.display()
    );
    assert!(
        text(&out.stderr).contains(&expected),
        "{expected}\nnot in:\n{}",
        text(&out.stderr)
    );

    let out = run_daemon(dir.path(), &tgt, &dir.path().join("run"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("c.toml:15:11: target.lun[0].scsi_sn: ")
            && stderr.contains("tgtd keeps at most 36 bytes"),
        "{stderr}"
    );

    let lio = with_serial(fs::read_to_string(fixtures().join("config/good/lio.toml")).unwrap());
    let file = dir.path().join("lio.toml");
    fs::write(&file, &lio).unwrap();
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("scsi_sn = \"{serial}\"")));
}

/// `backend = "lio"`: what LIO cannot do is refused at its key, with what to write instead,
/// so a configuration never loses an access rule silently; `--host` names the modules to load
/// when the kernel's target is not there.
#[test]
fn check_config_refuses_what_lio_cannot_do_and_names_the_modules_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixtures().join("config/good/lio.toml");
    let out = iscsi_ha(&["check-config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("backend = \"lio\""));

    let text_of_good = fs::read_to_string(&good).unwrap();
    let bad = text_of_good
        .replace(
            "initiator_names = [\"iqn.1994-05.com.redhat:client1\"]",
            "initiators = [\"10.10.10.0/24\"]\n\n[[target.access.incoming]]\nuser = \"a\"\npassword = \"pa\"\n\n[[target.access.incoming]]\nuser = \"b\"\npassword = \"pb\"",
        )
        .replace("portal = \"10.10.10.3:3260\"", "portal = \"nowhere\"");
    let file = dir.path().join("lio-bad.toml");
    fs::write(&file, &bad).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let out = iscsi_ha(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let at = file.display().to_string();
    for expected in [
        format!("{at}:17:15: target.access.initiators[0]: 10.10.10.0/24: LIO admits initiators by name only, not by address; list their names in initiator_names"),
        format!("{at}:23:1: target.access.incoming[1]: 2 incoming CHAP accounts: LIO checks one account per target"),
        format!("{at}:28:10: target.lio.portal: \"nowhere\" is not address:port"),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
    }

    let missing = dir.path().join("no-configfs");
    let elsewhere = text_of_good.replace(
        "portal = \"10.10.10.3:3260\"",
        &format!("configfs = \"{}\"", missing.display()),
    );
    let file = dir.path().join("lio-host.toml");
    fs::write(&file, elsewhere).unwrap();
    let out = iscsi_ha(&["check-config", "--host", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: target.backend: backend = \"lio\", but LIO is not available at {}/core: load the kernel's iSCSI target (modprobe target_core_mod iscsi_target_mod target_core_iblock target_core_file",
            missing.display()
        )),
        "{stderr}"
    );
}
