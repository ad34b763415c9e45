//! The daemon as a service: what `systemctl stop`/`restart`, stray signals and hostile files
//! at its configured paths do to it, run for real in a network namespace of its own (the real
//! control socket, the real tgtd, libiscsi's initiator). Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use nix::sys::signal::Signal;
use std::fs;
use std::time::{Duration, Instant};
use support::{config, require_root, Daemon, Netns};

fn signal(d: &Daemon, sig: Signal) {
    let pid = d.child.as_ref().unwrap().id();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig).unwrap();
}

/// Sends SIGTERM and waits (at most 5 s) for a clean exit.
fn stop(d: &mut Daemon) {
    signal(d, Signal::SIGTERM);
    let mut child = d.child.take().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the daemon did not stop on SIGTERM; log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}; log:\n{}", d.log());
}

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
        signal(&d, sig);
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
    stop(&mut d);
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

    stop(&mut d);
}
