//! What an XCP-ng / XenServer dom0 (CentOS 7 userland, kernel 4.x) asks of the tgt adapter.
//!
//! - A tgtd's exit is noticed on kernels without `pidfd_open` (before 5.3: XCP-ng 8.2/8.3's
//!   dom0 runs 4.19, XenServer 7's 4.4). Those tests run in a thread of their own under a
//!   seccomp filter that answers `pidfd_open` with ENOSYS, as those kernels do, and assert
//!   that the managed child's and an adopted tgtd's SIGKILL is seen within a bound.
//! - systemd 219 has no `RuntimeDirectoryPreserve=`, so the EL7 unit lets no `RuntimeDirectory=`
//!   make `/run/tgtd`: a managed tgtd's socket directory is created by the adapter.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{spec, Bench};
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_tgt::client::{socket_path, Client};
use iscsi_ha_tgt::daemon::{ManagedTgtd, TgtdCommand};
use iscsi_ha_tgt::exit_watch::EXIT_CHECK_PERIOD;
use iscsi_ha_tgt::TgtTarget;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// How long after the kill the adapter must have noticed: one fallback period, plus room for
/// a loaded 2-core CI machine.
const BOUND: Duration = EXIT_CHECK_PERIOD.saturating_add(Duration::from_millis(1500));

/// Runs `body` in a new thread whose `pidfd_open` fails with ENOSYS (the filter is the
/// thread's own and is inherited by what it starts; the other tests' threads keep pidfds).
fn without_pidfds(body: impl FnOnce() + Send + 'static) {
    let thread = std::thread::spawn(move || {
        let filter = SeccompFilter::new(
            [(libc::SYS_pidfd_open, vec![])].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(u32::try_from(libc::ENOSYS).unwrap_or_else(|e| panic!("{e}"))),
            std::env::consts::ARCH
                .try_into()
                .unwrap_or_else(|e| panic!("seccomp arch: {e}")),
        )
        .unwrap_or_else(|e| panic!("seccomp filter: {e}"));
        let program: BpfProgram = filter
            .try_into()
            .unwrap_or_else(|e| panic!("seccomp program: {e:?}"));
        seccompiler::apply_filter(&program).unwrap_or_else(|e| panic!("seccomp: {e}"));
        // SAFETY: pidfd_open takes a pid and flags; the result is checked, an fd is closed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert!(
            fd == -1 && errno == Some(libc::ENOSYS),
            "the filter does not make pidfd_open fail with ENOSYS ({fd}, {errno:?})"
        );
        body();
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Waits on the adapter's exit descriptor as the daemon's poll loop does, calling
/// `forget_exited` whenever it is readable; returns when the exit was taken.
fn wait_for_exit(target: &mut TgtTarget, since: Instant) -> Duration {
    loop {
        let readable = {
            let (_, fd) = target
                .exit_watch()
                .unwrap_or_else(|| panic!("the watch went away before the exit was taken"));
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100_u16)).unwrap_or_else(|e| panic!("{e}")) > 0
        };
        if readable && target.forget_exited().unwrap_or_else(|e| panic!("{e}")) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < BOUND,
            "the exit was not noticed within {BOUND:?}"
        );
    }
}

/// Ticks while tgtd runs are not taken for an exit.
fn ticks_are_not_exits(target: &mut TgtTarget) {
    let until = Instant::now() + EXIT_CHECK_PERIOD * 3;
    let mut ticks = 0;
    while Instant::now() < until {
        let readable = {
            let (_, fd) = target.exit_watch().unwrap_or_else(|| panic!("no watch"));
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100_u16)).unwrap_or_else(|e| panic!("{e}")) > 0
        };
        if readable {
            ticks += 1;
            assert!(
                !target.forget_exited().unwrap_or_else(|e| panic!("{e}")),
                "a running tgtd taken for an exited one"
            );
        }
    }
    assert!(ticks >= 2, "the fallback timer ticked {ticks} times");
}

#[test]
fn a_killed_child_is_noticed_without_pidfds() {
    without_pidfds(|| {
        let bench = Bench::new();
        let spec = spec("oldkernel", &[bench.disk("o.img", 16)]);
        let mut target = bench.managed_target();
        target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
        let pid = {
            let child = target.managed().unwrap_or_else(|| panic!("no child"));
            assert!(!child.exit_fd_is_pidfd(), "a pidfd despite ENOSYS");
            child.pid()
        };
        assert_eq!(target.exit_watch().map(|(p, _)| p), Some(pid));
        ticks_are_not_exits(&mut target);

        let killed = Instant::now();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or_else(|e| panic!("{e}")));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
            .unwrap_or_else(|e| panic!("{e}"));
        let took = wait_for_exit(&mut target, killed);
        eprintln!("managed tgtd's SIGKILL noticed after {took:?} without pidfds");
        assert!(target.managed().is_none());
        assert!(target.exit_watch().is_none());
        assert!(!bench.client().socket().exists(), "dead tgtd's socket left");

        target
            .serve(&spec)
            .unwrap_or_else(|e| panic!("serve after the kill: {e}"));
        assert!(spec.is_served_by(&target.status().unwrap_or_else(|e| panic!("{e}"))));
        target.stop(&spec).unwrap_or_else(|e| panic!("{e}"));
    });
}

#[test]
fn a_killed_adopted_tgtd_is_noticed_without_pidfds() {
    without_pidfds(|| {
        let bench = Bench::new();
        let mut other = bench.start_tgtd();
        let mut target = bench.managed_target();
        assert!(
            target
                .status()
                .unwrap_or_else(|e| panic!("{e}"))
                .daemon_running
        );
        assert!(target.managed().is_none(), "adopted, not started");
        assert_eq!(
            target.exit_watch().map(|(p, _)| p),
            Some(other.pid()),
            "the adopted tgtd is not watched"
        );
        ticks_are_not_exits(&mut target);

        let killed = Instant::now();
        other.kill().unwrap_or_else(|e| panic!("{e}"));
        let took = wait_for_exit(&mut target, killed);
        eprintln!("adopted tgtd's SIGKILL noticed after {took:?} without pidfds");
        assert!(target.exit_watch().is_none());
    });
}

#[test]
fn a_missing_socket_directory_is_created_for_the_managed_tgtd() {
    let bench = Bench::new();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = dir.path().join("run/tgtd/socket");
    let command = TgtdCommand {
        binary: "/usr/sbin/tgtd".into(),
        control_port: bench.control_port,
        socket_base: base.clone(),
        extra_args: bench.portal_args(),
        log_file: None,
    };
    let client = Client::new(
        socket_path(&base, bench.control_port),
        Duration::from_secs(20),
    );
    let mut tgtd = ManagedTgtd::start(&command, &client, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("starting tgtd without its directory: {e}"));
    assert!(base.parent().is_some_and(std::path::Path::is_dir));
    assert!(client.socket().exists());
    tgtd.kill().unwrap_or_else(|e| panic!("{e}"));
}
