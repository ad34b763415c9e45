//! The role sources against real files, real inotify and real processes. XAPI cannot run
//! here, so the `xe` cross-check is exercised with a small script standing in for `xe`
//! (printing what XAPI would), as the measurements of the original add-on did.

#![allow(clippy::unwrap_used)]

use iscsi_ha_bin::role::{CommandRole, FileRole, PoolConfRole, RoleSource, XapiCheck};
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn readable_within(source: &dyn RoleSource, ms: u16) -> bool {
    let fd = source.change_fd().unwrap();
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).unwrap() > 0
}

fn unknown(role: Result<Role, RoleError>) -> String {
    match role {
        Ok(Role::Unknown(reason)) => reason,
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn pool_conf_is_read_in_every_form_and_watched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.conf");
    let mut source = PoolConfRole::new(path.clone(), None).unwrap();
    assert!(
        unknown(source.role()).contains("No such file"),
        "missing pool.conf is unknown"
    );
    fs::write(dir.path().join("pool.conf.tmp"), "slave:10.0.0.1\n").unwrap();
    fs::rename(dir.path().join("pool.conf.tmp"), &path).unwrap();
    assert!(
        readable_within(&source, 1000),
        "a rename over pool.conf wakes the watch"
    );
    source.drain_changes();
    assert_eq!(source.role().unwrap(), Role::Slave);
    fs::write(&path, "master").unwrap();
    assert!(readable_within(&source, 1000), "a rewrite wakes the watch");
    source.drain_changes();
    assert_eq!(source.role().unwrap(), Role::Master);
    fs::write(&path, "broken").unwrap();
    assert!(unknown(source.role()).contains("says broken"));
    fs::write(&path, "sideways").unwrap();
    assert!(unknown(source.role()).contains("not master, slave:<address> or broken"));
}

#[test]
fn role_file_accepts_master_and_slave_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("role");
    fs::write(&path, " MASTER \n").unwrap();
    let mut source = FileRole::new(path.clone()).unwrap();
    assert_eq!(source.role().unwrap(), Role::Master);
    fs::write(&path, "slave").unwrap();
    assert_eq!(source.role().unwrap(), Role::Slave);
    fs::write(&path, "").unwrap();
    assert!(unknown(source.role()).contains("not master or slave"));
    assert!(
        FileRole::new(Path::new("/nonexistent-dir/role").to_path_buf()).is_err(),
        "its directory must exist"
    );
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn command_role_takes_only_explicit_words_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let t = Duration::from_secs(5);
    let said_master = script(dir.path(), "a", "echo master");
    assert_eq!(
        CommandRole::new(vec![said_master], t).role().unwrap(),
        Role::Master
    );
    // Only explicit words count: a crashing script or a silent one changes no role.
    for (name, body) in [
        ("b", "exit 1"),
        ("c", "echo ok; exit 0"),
        ("d", "echo maybe; exit 7"),
        ("f", "exit 0"),
        ("g", "echo master; exit 1"),
    ] {
        let cmd = script(dir.path(), name, body);
        let got = CommandRole::new(vec![cmd], t).role();
        assert!(
            matches!(got, Err(RoleError::Malformed(_))),
            "{body}: {got:?}"
        );
    }
    let slow = script(dir.path(), "e", "sleep 5; echo master");
    let started = Instant::now();
    let err = CommandRole::new(vec![slow], Duration::from_millis(200)).role();
    assert!(matches!(err, Err(RoleError::Timeout(200))), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the slow command was killed"
    );
    let missing = CommandRole::new(vec!["/nonexistent/role-cmd".into()], t).role();
    assert!(
        matches!(missing, Err(RoleError::Unreadable(_))),
        "{missing:?}"
    );
}

#[test]
fn xapi_cross_check_agrees_or_makes_the_role_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("xensource-inventory");
    fs::write(
        &inventory,
        "PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='aaaa-1111'\n",
    )
    .unwrap();
    let xe = script(
        dir.path(),
        "xe",
        r#"case "$1" in
  pool-list) cat "$(dirname "$0")/master-uuid" ;;
  host-param-get) echo 10.0.0.1 ;;
  *) exit 2 ;;
esac"#,
    );
    let pool = dir.path().join("pool.conf");
    let check = || {
        Some(XapiCheck::with_paths(
            Duration::from_secs(5),
            &xe,
            inventory.to_str().unwrap(),
        ))
    };
    fs::write(dir.path().join("master-uuid"), "aaaa-1111\n").unwrap();
    fs::write(&pool, "master").unwrap();
    let mut source = PoolConfRole::new(pool.clone(), check()).unwrap();
    assert_eq!(
        source.role().unwrap(),
        Role::Master,
        "XAPI agrees this host is master"
    );
    fs::write(dir.path().join("master-uuid"), "bbbb-2222\n").unwrap();
    assert!(unknown(source.role()).contains("XAPI's pool master is bbbb-2222"));
    fs::write(&pool, "slave:10.0.0.1").unwrap();
    assert_eq!(
        source.role().unwrap(),
        Role::Slave,
        "XAPI's master is at the address pool.conf names"
    );
    fs::write(&pool, "slave:10.0.0.9").unwrap();
    assert!(unknown(source.role()).contains("XAPI's pool master is at 10.0.0.1"));
    let hung = script(dir.path(), "xe-hung", "sleep 5");
    let mut slow = PoolConfRole::new(
        pool,
        Some(XapiCheck::with_paths(
            Duration::from_millis(200),
            &hung,
            inventory.to_str().unwrap(),
        )),
    )
    .unwrap();
    assert!(
        unknown(slow.role()).contains("did not answer"),
        "an xe that hangs makes the role unknown"
    );
}

/// The role source built from the configuration calls `[xapi] xe` and names this host by
/// `[xapi] inventory`; when xe fails, the reason it gives is in the role's "unknown" reason.
#[test]
fn the_configured_cross_check_uses_xapi_xe_and_inventory_and_says_why_xe_failed() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory");
    fs::write(&inventory, "INSTALLATION_UUID='cccc-3333'\n").unwrap();
    let xe = script(
        dir.path(),
        "my-xe",
        r#"if [ -e "$(dirname "$0")/toolstack-down" ]; then
  echo "The host toolstack is still initialising. Please wait." >&2; exit 1
fi
echo cccc-3333"#,
    );
    let pool = dir.path().join("pool.conf");
    fs::write(&pool, "master").unwrap();
    let role: iscsi_ha_core::config::schema::RoleSection = toml::from_str(&format!(
        "source = \"xapi\"\npool_conf = {:?}\nxapi_check = true\n",
        pool.to_str().unwrap()
    ))
    .unwrap();
    let xapi: iscsi_ha_core::config::schema::XapiSection = toml::from_str(&format!(
        "xe = {xe:?}\ninventory = {:?}\n",
        inventory.to_str().unwrap()
    ))
    .unwrap();
    let mut source = iscsi_ha_bin::role::from_config(&role, &xapi).unwrap();
    assert_eq!(
        source.role().unwrap(),
        Role::Master,
        "the configured xe and inventory agree"
    );
    fs::write(dir.path().join("toolstack-down"), "").unwrap();
    let reason = unknown(source.role());
    assert!(
        reason.contains("exited 1: The host toolstack is still initialising. Please wait."),
        "{reason}"
    );
}

#[test]
fn a_pool_conf_that_is_a_fifo_or_a_device_is_unknown_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.conf");
    let mut source = PoolConfRole::new(path.clone(), None).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let t0 = Instant::now();
    let reason = unknown(source.role());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        reason.contains(&format!("{} is a FIFO, not a regular file", path.display())),
        "{reason}"
    );
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let reason = unknown(source.role());
    assert!(reason.contains("is a character device"), "{reason}");
    fs::remove_file(&path).unwrap();
    fs::write(&path, format!("master{}\n", " ".repeat(8 << 10))).unwrap();
    let reason = unknown(source.role());
    assert!(reason.contains("is larger than 4096 bytes"), "{reason}");
}

/// Drives a source as the daemon's loop does: waits on its descriptor or its due time, then
/// drains; returns once it reports a possible change, or after `limit`.
fn until_answer(source: &mut PoolConfRole, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let wait = source
            .due()
            .map_or(Duration::from_millis(50), |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(50));
        if let Some(fd) = source.change_fd() {
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            let _ = poll(
                &mut fds,
                PollTimeout::from(u16::try_from(wait.as_millis()).unwrap()),
            );
        } else {
            std::thread::sleep(wait);
        }
        if source.drain_changes() {
            return true;
        }
    }
    false
}

#[test]
fn a_hanging_xe_never_blocks_the_caller_and_the_last_verdict_stands_for_three_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("xensource-inventory");
    fs::write(&inventory, "INSTALLATION_UUID='aaaa-1111'\n").unwrap();
    let xe = script(
        dir.path(),
        "xe",
        r#"[ -e "$(dirname "$0")/hang" ] && sleep 10
echo aaaa-1111"#,
    );
    let pool = dir.path().join("pool.conf");
    fs::write(&pool, "master").unwrap();
    let timeout = Duration::from_millis(400);
    let check = XapiCheck::with_paths(timeout, &xe, inventory.to_str().unwrap());
    let mut source = PoolConfRole::new(pool, Some(check)).unwrap();

    source.refresh();
    assert!(source.starting(), "the first cross-check is under way");
    assert!(until_answer(&mut source, Duration::from_secs(2)));
    assert_eq!(source.current(), Role::Master);

    fs::write(dir.path().join("hang"), "").unwrap();
    let t0 = Instant::now();
    source.refresh();
    assert_eq!(source.current(), Role::Master, "the last verdict stands");
    assert!(
        t0.elapsed() < Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    // The loop keeps asking, one xe at a time, each killed at its timeout.
    let mut unknown = None;
    while t0.elapsed() < Duration::from_secs(3) && unknown.is_none() {
        until_answer(&mut source, Duration::from_millis(500));
        source.refresh();
        if let Role::Unknown(why) = source.current() {
            unknown = Some((t0.elapsed(), why));
        }
    }
    let (after, why) = unknown.expect("unknown after 3 timeouts without an answer");
    assert!(after >= 3 * timeout, "{after:?}");
    assert!(why.contains("has not answered for"), "{why}");
    assert!(why.contains("did not answer within 400ms"), "{why}");
}
