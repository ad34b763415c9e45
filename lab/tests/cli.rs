//! `iha-lab` without VMs: its verbs exist, and missing prerequisites or a missing lab give a
//! clear message and a failing exit status. Runs in the plain `cargo test` (as root in CI).

use std::process::{Command, Output};

fn iha_lab(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iha-lab"))
        .args(args)
        .env("IHA_LAB_DIR", dir)
        .output()
        .expect("run iha-lab")
}

fn empty_lab_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iha-lab-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

#[test]
fn help_lists_every_verb() {
    let dir = empty_lab_dir("help");
    let out = iha_lab(&dir, &["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for verb in [
        "up",
        "down",
        "status",
        "exec",
        "initiator",
        "fault",
        "capture-drbd",
        "chaos",
    ] {
        assert!(text.contains(verb), "{verb} missing from:\n{text}");
    }
}

#[test]
fn commands_for_a_lab_that_is_not_running_say_so() {
    let dir = empty_lab_dir("absent");
    let out = iha_lab(&dir, &["exec", "1", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no lab is running") && err.contains("iha-lab up"),
        "{err}"
    );

    let out = iha_lab(&dir, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no lab running"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_node_number_is_refused() {
    let dir = empty_lab_dir("node");
    let out = iha_lab(&dir, &["exec", "x", "--", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
}

/// Needs root to drop to `nobody` with setpriv (CI runs as root; a non-root run of this test
/// is itself the situation under test, so it checks the same message directly).
#[test]
fn without_root_up_and_down_fail_with_a_clear_message() {
    let dir = empty_lab_dir("root");
    for verb in ["up", "down"] {
        let out = if nix::unistd::geteuid().is_root() {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_iha-lab"))
                .arg(verb)
                .env("IHA_LAB_DIR", &dir)
                .output()
                .expect("setpriv (util-linux)")
        } else {
            iha_lab(&dir, &[verb])
        };
        assert_eq!(out.status.code(), Some(1), "{verb}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("the lab needs root"), "{verb}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
