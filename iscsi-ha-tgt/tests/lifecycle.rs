//! The managed tgtd's lifecycle and the adopted one's absence, against the real binary.

mod common;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use common::{spec, Bench};
use iscsi_ha_core::engine::EventSource;
use iscsi_ha_core::ports::{IscsiTarget, RetryHint, TargetError};
use iscsi_ha_tgt::{TgtConfig, TgtTarget};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

#[test]
fn nothing_runs_before_the_first_serve() {
    let bench = Bench::new();
    let mut target = bench.managed_target();
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.daemon_running && status.targets.is_empty());
    assert!(target.managed().is_none());
    assert!(!bench.client().socket().exists());
}

#[test]
fn an_adopted_tgtd_that_is_not_there_is_not_running() {
    let bench = Bench::new();
    let mut target = TgtTarget::new(TgtConfig::adopt(bench.control_port));
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.daemon_running);
    let err = target.serve(&spec("absent", &[bench.disk("a.img", 1)]));
    match err {
        Err(e @ TargetError::NotRunning(_)) => assert!(e.retry_can_help()),
        other => panic!("expected NotRunning, got {other:?}"),
    }
}

#[test]
fn a_crashed_child_is_noticed_and_replaced() {
    let bench = Bench::new();
    let spec = spec("phoenix", &[bench.disk("p.img", 16)]);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let (pid, readable_before) = {
        let child = target.managed().unwrap_or_else(|| panic!("no child"));
        // This kernel has pidfds (old_kernel.rs tests the fallback without them).
        assert!(child.exit_fd_is_pidfd());
        let fd = child.exit_fd().unwrap_or_else(|| panic!("no pidfd"));
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::ZERO).unwrap_or_else(|e| panic!("{e}"));
        (child.pid(), n)
    };
    assert_eq!(readable_before, 0, "the pidfd is readable while tgtd runs");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or_else(|e| panic!("{e}")));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let child = target.managed().unwrap_or_else(|| panic!("no child"));
        let fd = child.exit_fd().unwrap_or_else(|| panic!("no pidfd"));
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(10_000_u16)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 1, "the pidfd did not report the exit");
    }
    let status = target.reap_exited().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.is_some_and(|s| !s.success()));
    assert!(target.managed().is_none());
    assert!(
        !target
            .status()
            .unwrap_or_else(|e| panic!("{e}"))
            .daemon_running
    );
    assert!(
        !bench.client().socket().exists(),
        "socket of the dead tgtd left behind"
    );

    target
        .serve(&spec)
        .unwrap_or_else(|e| panic!("serve after the crash: {e}"));
    assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
    target.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_tgtd_left_running_on_our_port_is_adopted_not_doubled() {
    let bench = Bench::new();
    let mut other = bench.start_tgtd();
    let mut target = bench.managed_target();
    let spec = spec("adopted", &[bench.disk("t.img", 1)]);
    target
        .serve(&spec)
        .unwrap_or_else(|e| panic!("serve on the running tgtd: {e}"));
    assert!(target.managed().is_none(), "no second tgtd was started");
    let names: Vec<String> = bench
        .tgt()
        .targets()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        vec![spec.iqn.to_string()],
        "served by the running tgtd"
    );
    target.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
    let exited = other
        .wait_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(exited.is_some(), "stop made the adopted tgtd exit");
}

#[test]
fn a_detached_tgtd_outlives_its_adapter_and_the_next_one_adopts_it() {
    let bench = Bench::new();
    let spec = spec("survivor", &[bench.disk("s.img", 1)]);
    let mut first = bench.managed_target();
    first.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    let pid = first
        .managed()
        .map(|m| m.pid())
        .unwrap_or_else(|| panic!("no child"));
    first.detach();
    drop(first);
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "tgtd still runs after its adapter is gone"
    );
    let mut second = bench.managed_target();
    let status = second.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        spec.is_served_by(&status),
        "the next adapter sees the target still served"
    );
    second.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    assert!(second.managed().is_none(), "adopted, not restarted");
    second.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the adopted tgtd did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keep_daemon_running_leaves_an_idle_tgtd_after_stop() {
    let bench = Bench::new();
    let spec = spec("idle", &[bench.disk("i.img", 1)]);
    let mut config = bench.managed_config();
    config.keep_daemon_running = true;
    let mut target = TgtTarget::new(config);
    target.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    target.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.daemon_running && status.targets.is_empty(),
        "{status:?}"
    );
    assert!(target.managed().is_some());
    target.stop_daemon().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bad_daemon_settings_are_clear_errors() {
    let bench = Bench::new();
    let mut config = bench.managed_config();
    if let iscsi_ha_tgt::Lifecycle::Managed(m) = &mut config.lifecycle {
        m.binary = PathBuf::from("/nonexistent/tgtd");
    }
    let mut missing = TgtTarget::new(config);
    let err = missing.serve(&spec("nobin", &[bench.disk("n.img", 1)]));
    assert!(
        matches!(err, Err(TargetError::Invalid(ref m)) if m.text().contains("/nonexistent/tgtd")),
        "{err:?}"
    );

    let mut config = bench.managed_config();
    config.control_port = 40_000;
    let mut too_high = TgtTarget::new(config);
    let err = too_high.serve(&spec("port", &[bench.disk("q.img", 1)]));
    assert!(
        matches!(err, Err(TargetError::Invalid(ref m)) if m.text().contains("32767")),
        "{err:?}"
    );
}

#[test]
fn stop_is_idempotent_and_restarts_cleanly() {
    let bench = Bench::new();
    let spec = spec("again", &[bench.disk("g.img", 8)]);
    let mut target = bench.managed_target();
    target
        .stop(&spec)
        .unwrap_or_else(|e| panic!("stop with nothing running: {e}"));
    for _ in 0..2 {
        target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
        assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
        target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
        target
            .stop(&spec)
            .unwrap_or_else(|e| panic!("stop again: {e}"));
        let status = target.status().unwrap_or_else(|e| panic!("{e}"));
        assert!(!status.daemon_running);
    }
    std::thread::sleep(Duration::from_millis(10));
    assert!(!bench.client().socket().exists());
}

#[test]
fn shutdown_removes_every_target_then_stops_the_child() {
    let bench = Bench::new();
    let spec = spec("last", &[bench.disk("l.img", 8)]);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    // Someone else's target in our tgtd keeps `stop` from stopping it...
    bench
        .tgt()
        .target_new(9, "iqn.2024-01.com.example:stray")
        .unwrap_or_else(|e| panic!("{e}"));
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(
        target
            .status()
            .unwrap_or_else(|e| panic!("{e}"))
            .daemon_running
    );
    // ...but `shutdown` takes everything down.
    target
        .shutdown(&[spec])
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    assert!(
        !target
            .status()
            .unwrap_or_else(|e| panic!("{e}"))
            .daemon_running
    );
    assert!(target.managed().is_none());
    assert!(!bench.client().socket().exists());
}

#[test]
fn a_child_losing_the_lock_race_leaves_the_winner_alone() {
    let bench = Bench::new();
    let winner = bench.start_tgtd();
    // Skip the "already answers" check by asking another (silent) socket, so the child is
    // really spawned and fails on the winner's lock file.
    let elsewhere = iscsi_ha_tgt::client::Client::new(
        bench.dir.path().join("nothing.0"),
        Duration::from_secs(2),
    );
    let command = iscsi_ha_tgt::daemon::TgtdCommand {
        binary: PathBuf::from("/usr/sbin/tgtd"),
        control_port: bench.control_port,
        socket_base: PathBuf::from(iscsi_ha_tgt::client::DEFAULT_SOCKET_BASE),
        extra_args: bench.portal_args(),
        log_file: None,
    };
    let loser = iscsi_ha_tgt::ManagedTgtd::start(&command, &elsewhere, Duration::from_secs(10));
    match loser {
        Err(iscsi_ha_tgt::TgtError::Daemon(e)) => {
            let m = e.to_string();
            assert!(m.contains("while starting") && m.contains("lock"), "{m}");
        }
        other => panic!("expected the second tgtd to exit, got {other:?}"),
    }
    assert!(
        bench.client().socket().exists(),
        "the winner's socket was removed"
    );
    assert!(bench.tgt().system_show().is_ok());
    drop(winner);
    assert!(!bench.client().socket().exists());
}

#[test]
fn an_adopted_tgtd_is_watched_through_a_pidfd_on_the_pid_that_listens() {
    let bench = Bench::new();
    let mut other = bench.start_tgtd();
    let mut target = bench.managed_target();
    assert!(target.exit_watch().is_none(), "nothing adopted yet");
    let status = target.status().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.daemon_running);
    assert!(target.managed().is_none(), "adopted, not started");
    let (pid, readable_before) = {
        let (pid, fd) = target
            .exit_watch()
            .unwrap_or_else(|| panic!("the adopted tgtd is not watched"));
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        (
            pid,
            poll(&mut fds, PollTimeout::ZERO).unwrap_or_else(|e| panic!("{e}")),
        )
    };
    assert_eq!(pid, other.pid(), "the pid of the tgtd that listens");
    assert_eq!(readable_before, 0, "the pidfd is readable while tgtd runs");
    assert!(!target.forget_exited().unwrap_or_else(|e| panic!("{e}")));

    other.kill().unwrap_or_else(|e| panic!("{e}"));
    {
        let (_, fd) = target
            .exit_watch()
            .unwrap_or_else(|| panic!("the watch went away before the exit was taken"));
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(5_000_u16)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 1, "the pidfd did not report the exit");
    }
    assert!(target.forget_exited().unwrap_or_else(|e| panic!("{e}")));
    assert!(target.exit_watch().is_none());
    target
        .ensure_daemon()
        .unwrap_or_else(|e| panic!("starting tgtd again: {e}"));
    let child = target
        .managed()
        .unwrap_or_else(|| panic!("no child started"));
    assert_ne!(child.pid(), pid);
    assert_eq!(target.exit_watch().map(|(p, _)| p), Some(child.pid()));
}

fn kill(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or_else(|e| panic!("{e}")));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until the adapter's event descriptor is readable (the watched tgtd exited).
fn wait_readable(source: &dyn EventSource) {
    let fd = source.fd().unwrap_or_else(|| panic!("no exit descriptor"));
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::from(10_000_u16)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 1, "the exit descriptor did not report the exit");
}

#[test]
fn the_adapters_event_port_reports_tgtds_exit_and_keep_running_starts_it_again_paced() {
    let bench = Bench::new();
    let spec = spec("event", &[bench.disk("e.img", 1)]);
    let mut config = bench.managed_config();
    config.keep_daemon_running = true;
    let mut target = TgtTarget::new(config);
    target.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    let first = target
        .managed()
        .map(|m| m.pid())
        .unwrap_or_else(|| panic!("no child"));

    // Nothing to say while tgtd runs.
    {
        let source = target.events().unwrap_or_else(|| panic!("no event port"));
        assert_eq!(source.drain(), Ok(false));
    }
    kill(first);
    let source = target.events().unwrap_or_else(|| panic!("no event port"));
    wait_readable(source);
    // The exit concerns the loop, and tgtd is started again at once (with no target: the
    // next serve restores it).
    assert_eq!(source.drain(), Ok(true));
    let second = target
        .managed()
        .map(|m| m.pid())
        .unwrap_or_else(|| panic!("not restarted"));
    assert_ne!(second, first);
    assert!(
        target
            .status()
            .unwrap_or_else(|e| panic!("{e}"))
            .daemon_running
    );

    // One that dies again at once is not started in a loop: the next attempt waits out the
    // spacing, whoever asks (the exit, or the refresh before each wait).
    kill(second);
    let source = target.events().unwrap_or_else(|| panic!("no event port"));
    wait_readable(source);
    assert_eq!(source.drain(), Ok(true));
    source.refresh();
    assert!(target.managed().is_none(), "restarted within the spacing");
    assert!(
        !target
            .status()
            .unwrap_or_else(|e| panic!("{e}"))
            .daemon_running
    );

    // A serve still starts it (the spacing holds back only the automatic restart).
    target.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
    target.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
    target.stop_daemon().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_dropped_adapter_leaves_tgtd_serving_only_when_asked_to() {
    let bench = Bench::new();
    let spec = spec("dropped", &[bench.disk("d.img", 1)]);
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| !s.contains("State:\tZ"))
    };

    // The daemon's way: leave_running_on_drop, however the adapter goes away.
    let mut config = bench.managed_config();
    config.leave_running_on_drop = true;
    let mut kept = TgtTarget::new(config);
    kept.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    let pid = kept
        .managed()
        .map(|m| m.pid())
        .unwrap_or_else(|| panic!("no child"));
    drop(kept);
    assert!(alive(pid), "tgtd stopped with its adapter");
    let mut next = bench.managed_target();
    assert!(spec.is_served_by(&next.status().unwrap_or_else(|e| panic!("{e}"))));
    next.stop(&spec).unwrap_or_else(|e| panic!("{e}"));

    // Without it (tests, one-shot tools), dropping the adapter stops the tgtd it started.
    let mut owned = bench.managed_target();
    owned.serve(&spec).unwrap_or_else(|e| panic!("{e}"));
    let pid = owned
        .managed()
        .map(|m| m.pid())
        .unwrap_or_else(|| panic!("no child"));
    drop(owned);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "tgtd outlived its adapter"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
