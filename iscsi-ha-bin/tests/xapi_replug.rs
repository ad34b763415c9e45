//! XenServer's PBD re-plug against real processes. No XAPI runs here: `fixtures/xapi/xe` stands
//! in for `xe`, recording its calls and answering from `fixtures/xapi/pool/` in xe's output
//! format, as the role cross-check's tests do. The chain of calls is run through the library
//! (polled as the daemon polls it) and end to end through `iscsi-ha replug-pbds`; the daemon's
//! trigger is driven through [`Replugger`] with explicit instants. The daemon itself cannot
//! serve on this machine (no DRBD), so through the real daemon only "a host that does not
//! serve never calls xe" is shown; serving is proven in the lab.

#![allow(clippy::unwrap_used)]

mod support;

use iscsi_ha_bin::xapi::{ReplugEvent, ReplugRun, ReplugSpec, Replugger, Xe, RETRY_AFTER};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::xe::XeStandIn;
use support::{config, require_root, Daemon, Netns, VIP};

const IQN: &str = "iqn.2024-01.com.example:ops";
const SR_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const A2: &str = "a2a2a2a2-0000-4000-8000-0000000000a2";
const A3: &str = "a3a3a3a3-0000-4000-8000-0000000000a3";
const E2: &str = "e2e2e2e2-0000-4000-8000-0000000000e2";
const PBD_PARAMS: &str = "params=uuid,host-uuid,currently-attached,device-config";

fn spec(xe: &XeStandIn, timeout: Duration) -> ReplugSpec {
    ReplugSpec {
        xe: Xe::new(&xe.xe(), timeout),
        vip: VIP.parse().unwrap(),
        iqn: IQN.into(),
    }
}

fn pbd_list(sr: &str) -> String {
    format!("pbd-list sr-uuid={sr} {PBD_PARAMS}")
}

fn plug(pbd: &str) -> String {
    format!("pbd-plug uuid={pbd}")
}

/// The calls a full re-plug of the fixture pool makes, in order.
fn full_sequence() -> Vec<String> {
    vec![
        "sr-list params=uuid,type".to_string(),
        pbd_list(SR_A),
        pbd_list("bbbbbbbb-0000-4000-8000-00000000000b"),
        pbd_list("cccccccc-0000-4000-8000-00000000000c"),
        pbd_list("eeeeeeee-0000-4000-8000-00000000000e"),
        pbd_list("ffffffff-0000-4000-8000-00000000000f"),
        plug(A2),
        plug(A3),
        plug(E2),
    ]
}

#[test]
fn only_unattached_pbds_of_iscsi_srs_on_the_vip_and_our_iqn_are_plugged_on_every_host() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    let report = ReplugRun::start(spec(&xe, Duration::from_secs(5))).wait();
    assert!(report.succeeded(), "{report:?}");
    // The NFS and local SRs are never listed; of the iSCSI SRs, those with another target
    // address (b), another IQN (c) or a host name (f) get no plug; attached PBDs (a1, e1) none.
    assert_eq!(xe.calls(), full_sequence());
    let plugged: Vec<(&str, &str)> = report
        .plugged
        .iter()
        .map(|p| (p.pbd.as_str(), p.host.as_str()))
        .collect();
    assert_eq!(
        plugged,
        [
            (A2, "22222222-0000-4000-8000-000000000002"),
            (A3, "33333333-0000-4000-8000-000000000003"),
            (E2, "22222222-0000-4000-8000-000000000002"),
        ],
        "the PBDs of other hosts are plugged too"
    );
    assert_eq!(
        (report.iscsi_srs, report.our_srs, report.attached),
        (5, 2, 2)
    );
    assert_eq!(report.notes.len(), 1);
    assert!(
        report.notes[0].contains("\"san.example\""),
        "{:?}",
        report.notes
    );
    assert_eq!(
        report.summary(),
        "plugged 3 PBDs (2 of 5 lvmoiscsi SRs use this target; 2 PBDs already attached)"
    );
}

#[test]
fn a_failing_plug_is_reported_with_the_command_to_run_by_hand_and_the_others_still_plug() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    xe.touch(&format!("fail-{A3}"));
    let report = ReplugRun::start(spec(&xe, Duration::from_secs(5))).wait();
    assert!(!report.succeeded());
    assert_eq!(xe.calls(), full_sequence(), "e2 is plugged after a3 failed");
    assert_eq!(report.plugged.len(), 2);
    assert_eq!(report.failures.len(), 1);
    // XAPI's reason (xe's standard error) is in the alert, not only the exit code.
    assert!(
        report.failures[0].ends_with(&format!(
            "xe pbd-plug uuid={A3} exited 1: Error code: SR_BACKEND_FAILURE_47"
        )),
        "{:?}",
        report.failures
    );
    assert_eq!(report.by_hand(), format!("xe pbd-plug uuid={A3}"));
}

#[test]
fn xe_printing_garbage_is_an_error_and_nothing_is_plugged() {
    for (file, garbage, refused) in [
        ("sr-list", "Segmentation fault\n", "sr-list params=uuid,type: reply refused: line 1"),
        ("sr-list", "uuid ( RO): not-a-uuid\ntype ( RO): lvmoiscsi\n", "uuid is not a UUID"),
        ("sr-list", "uuid ( RO): aaaaaaaa-0000-4000-8000-00000000000a\n", "lacks type"),
        ("sr-list", "\u{0}\u{ff}\u{7f}", "line 1 is not"),
        (
            &format!("pbd-list.{SR_A}"),
            &format!(
                "uuid ( RO): {A2}\nhost-uuid ( RO): {A2}\ncurrently-attached ( RO): maybe\ndevice-config (MRO): target: {VIP}; targetIQN: {IQN}\n"
            ),
            "currently-attached is not true or false",
        ),
        (
            &format!("pbd-list.{SR_A}"),
            &format!(
                "uuid ( RO): {A2}\nhost-uuid ( RO): {A2}\ncurrently-attached ( RO): false\ndevice-config (MRO): target {VIP}\n"
            ),
            "device-config is not key: value",
        ),
    ] {
        let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
        xe.answer(file, garbage);
        let report = ReplugRun::start(spec(&xe, Duration::from_secs(5))).wait();
        assert!(!report.succeeded(), "{garbage:?}");
        assert!(
            report.failures.iter().any(|f| f.contains(refused)),
            "{garbage:?}: {:?}",
            report.failures
        );
        if file == "sr-list" {
            assert_eq!(xe.calls().len(), 1, "nothing follows a refused SR list");
        } else {
            assert!(
                !xe.calls().contains(&plug(A2)),
                "no PBD of a refused list is plugged"
            );
        }
    }
    // An xe that cannot be started at all.
    let report = ReplugRun::start(ReplugSpec {
        xe: Xe::new("/nonexistent/xe", Duration::from_secs(1)),
        vip: VIP.parse().unwrap(),
        iqn: IQN.into(),
    })
    .wait();
    assert!(
        report.failures[0].contains("cannot start /nonexistent/xe"),
        "{report:?}"
    );
}

/// Polls as the daemon's loop does: the running xe's descriptor, or its due time.
fn until_event(r: &mut Replugger, limit: Duration) -> Option<ReplugEvent> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let wait = r
            .due()
            .map_or(Duration::from_millis(20), |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(20));
        match r.fd() {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                let ms = u16::try_from(wait.as_millis()).unwrap();
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(wait),
        }
        let xe_spec = || unreachable!("only a running attempt is driven here");
        if let Some(event) = r.advance(Instant::now(), xe_spec) {
            return Some(event);
        }
    }
    None
}

#[test]
fn a_hanging_xe_never_blocks_the_loop_and_is_killed_at_its_timeout() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    xe.touch("hang");
    // Bounds far apart, so a loaded machine cannot blur "returns at once" and "waited for xe".
    let timeout = Duration::from_millis(1500);
    let mut r = Replugger::new();
    let t0 = Instant::now();
    assert!(r
        .observe(true, true, Duration::from_millis(1), t0)
        .is_none());
    let started = r.advance(t0 + Duration::from_millis(1), || spec(&xe, timeout));
    assert!(matches!(started, Some(ReplugEvent::Started { attempt: 1 })));
    // While xe sleeps, every step the loop takes returns at once.
    for _ in 0..5 {
        let step = Instant::now();
        assert!(r.advance(Instant::now(), || unreachable!()).is_none());
        assert!(r.fd().is_some(), "the loop polls the running xe");
        assert!(
            step.elapsed() < Duration::from_millis(500),
            "{:?}",
            step.elapsed()
        );
    }
    let Some(ReplugEvent::Finished {
        report, retry_in, ..
    }) = until_event(&mut r, Duration::from_secs(6))
    else {
        panic!("no result after the timeout");
    };
    assert!(t0.elapsed() >= timeout, "{:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    assert!(
        report.failures[0].contains("did not answer within 1s 500ms"),
        "{:?}",
        report.failures
    );
    assert_eq!(retry_in, Some(RETRY_AFTER[0]));
    assert_eq!(xe.calls(), ["sr-list params=uuid,type"]);
}

#[test]
fn the_replug_waits_for_serving_retries_twice_then_gives_up_once() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    let delay = Duration::from_secs(10);
    let mut r = Replugger::new();
    let t0 = Instant::now();
    // Not serving, or serving with replug_pbds off: nothing is due, xe is never called.
    assert!(r.observe(false, true, delay, t0).is_none());
    assert!(r.observe(true, false, delay, t0).is_none());
    assert_eq!((r.due(), r.last()), (None, None));
    assert!(r
        .advance(t0 + Duration::from_secs(3600), || unreachable!())
        .is_none());
    assert!(xe.calls().is_empty());

    xe.touch(&format!("fail-{A2}"));
    assert!(r.observe(true, true, delay, t0).is_none());
    assert_eq!(
        r.due(),
        Some(t0 + delay),
        "replug_delay after serving began"
    );
    assert!(r
        .advance(t0 + delay - Duration::from_millis(1), || unreachable!())
        .is_none());
    let mut at = t0 + delay;
    for (attempt, retry) in [
        (1, Some(RETRY_AFTER[0])),
        (2, Some(RETRY_AFTER[1])),
        (3, None),
    ] {
        // A pass while the host keeps serving changes nothing.
        assert!(r.observe(true, true, delay, at).is_none());
        let started = r.advance(at, || spec(&xe, Duration::from_secs(5)));
        assert!(
            matches!(started, Some(ReplugEvent::Started { attempt: a }) if a == attempt),
            "{started:?}"
        );
        let Some(ReplugEvent::Finished {
            attempt: a,
            report,
            retry_in,
        }) = until_event(&mut r, Duration::from_secs(5))
        else {
            panic!("attempt {attempt} did not finish");
        };
        assert_eq!((a, retry_in), (attempt, retry));
        assert_eq!(report.not_plugged.len(), 1);
        if let Some(after) = retry {
            let due = r.due().unwrap();
            assert!(due >= Instant::now() + after - Duration::from_secs(1));
            assert!(r
                .last()
                .unwrap()
                .contains(&format!("next in {} s", after.as_secs())));
            at = due;
        }
    }
    assert!(
        r.last()
            .unwrap()
            .starts_with("gave up after 3 attempts: failed: "),
        "{:?}",
        r.last()
    );
    assert_eq!(r.due(), None, "no fourth attempt");
    assert_eq!(xe.calls().iter().filter(|c| **c == plug(A2)).count(), 3);

    // A later period of serving re-plugs again, once; it works now.
    fs::remove_file(xe.dir.path().join(format!("fail-{A2}"))).unwrap();
    assert!(
        r.observe(false, true, delay, at).is_none(),
        "nothing to cancel"
    );
    assert!(r.observe(true, true, delay, at).is_none());
    assert!(matches!(
        r.advance(at + delay, || spec(&xe, Duration::from_secs(5))),
        Some(ReplugEvent::Started { attempt: 1 })
    ));
    let Some(ReplugEvent::Finished {
        report, retry_in, ..
    }) = until_event(&mut r, Duration::from_secs(5))
    else {
        panic!("no result");
    };
    assert!(report.succeeded() && retry_in.is_none());
    assert!(
        r.last().unwrap().starts_with("plugged 3 PBDs"),
        "{:?}",
        r.last()
    );
    assert_eq!(r.due(), None);
}

#[test]
fn losing_the_serving_role_cancels_a_waiting_or_running_replug() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    xe.touch("hang");
    let delay = Duration::from_secs(10);
    let mut r = Replugger::new();
    let t0 = Instant::now();
    r.observe(true, true, delay, t0);
    assert!(matches!(
        r.observe(false, true, delay, t0),
        Some(ReplugEvent::Cancelled {
            why: "this host stopped serving"
        })
    ));
    assert_eq!(r.due(), None);
    r.observe(true, true, delay, t0);
    r.advance(t0 + delay, || spec(&xe, Duration::from_secs(30)));
    assert!(r.fd().is_some(), "xe runs");
    let pid_file = xe.dir.path().join("pid");
    support::wait(Duration::from_secs(5), "xe to start", || {
        fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let pid = fs::read_to_string(&pid_file).unwrap();
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    assert!(proc.exists());
    assert!(matches!(
        r.observe(true, false, delay, t0 + delay),
        Some(ReplugEvent::Cancelled {
            why: "replug_pbds was turned off"
        })
    ));
    assert!(r.fd().is_none() && r.due().is_none());
    assert_eq!(r.last(), Some("cancelled: replug_pbds was turned off"));
    assert!(!proc.exists(), "the cancelled xe was killed and reaped");
    assert_eq!(xe.calls(), ["sr-list params=uuid,type"]);
}

fn replug_pbds(config_path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["replug-pbds", "-c"])
        .arg(config_path)
        .output()
        .unwrap()
}

fn write_config(dir: &Path, xapi: &str) -> PathBuf {
    let path = dir.join("c.toml");
    fs::write(&path, config(dir, xapi)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn replug_pbds_runs_the_same_chain_end_to_end_through_the_binary() {
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    let dir = tempfile::tempdir().unwrap();
    let c = write_config(
        dir.path(),
        &format!("[xapi]\nxe = \"{}\"\ntimeout = \"5s\"\n", xe.xe()),
    );
    let out = replug_pbds(&c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(xe.calls(), full_sequence());
    for pbd in [A2, A3, E2] {
        assert!(stdout.contains(&format!("plugged PBD {pbd}")), "{stdout}");
    }
    assert!(stdout.contains("note: SR ffffffff"), "{stdout}");

    // A failed plug: exit 1, and the command to run by hand.
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    xe.touch(&format!("fail-{A2}"));
    let c = write_config(
        dir.path(),
        &format!("[xapi]\nxe = \"{}\"\ntimeout = \"5s\"\n", xe.xe()),
    );
    let out = replug_pbds(&c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("by hand: xe pbd-plug uuid={A2}")),
        "{stderr}"
    );

    // A hanging xe: killed at the timeout, the command ends.
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    xe.touch("hang");
    let c = write_config(
        dir.path(),
        &format!("[xapi]\nxe = \"{}\"\ntimeout = \"300ms\"\n", xe.xe()),
    );
    let t0 = Instant::now();
    let out = replug_pbds(&c);
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer within 300ms"));
}

#[test]
fn a_daemon_that_does_not_serve_never_calls_xe_for_a_replug() {
    require_root();
    let xe = XeStandIn::new("11111111-0000-4000-8000-000000000001");
    let ns = Netns::new("x");
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        &format!(
            "[xapi]\nreplug_pbds = true\nxe = \"{}\"\nreplug_delay = \"50ms\"\n",
            xe.xe()
        ),
    );
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "the slave role", |d| {
        d.status()["host_role"] == "slave"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(xe.calls().is_empty(), "a slave called xe: {:?}", xe.calls());
    assert!(d.status().get("pbd_replug").is_none(), "{}", d.status());

    // A master that cannot serve (this machine has no DRBD, so r0 cannot be made Primary)
    // does not re-plug either: the trigger is serving, not the role.
    d.set_role(Some("master\n"));
    d.wait_for(Duration::from_secs(5), "the master role", |d| {
        d.status()["intent"] == "serve"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(xe.calls().is_empty(), "{:?}", xe.calls());
    assert!(d.status().get("pbd_replug").is_none(), "{}", d.status());
}
