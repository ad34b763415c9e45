//! A step that keeps failing (here: demoting a DRBD resource on a machine without DRBD, as a
//! slave must) is logged as an error once, retried at a growing spacing, and status says when
//! it is tried again. Real daemon in a network namespace. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::{config, require_root, Daemon, Netns};

#[test]
fn a_step_that_keeps_failing_is_logged_once_and_status_says_when_it_is_retried() {
    require_root();
    let ns = Netns::new("x");
    let dir = tempfile::tempdir().unwrap();
    // `extra` lands in the base configuration's [monitor] section.
    let text = config(dir.path(), "retry_delay = \"200ms\"\n");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "a failed demotion", |d| {
        d.log().contains("demote r0: failed")
    });
    // 200 ms doubling: attempts at about 0, 0.2, 0.6, 1.4, 3.0 s within the next 4 s.
    std::thread::sleep(Duration::from_secs(4));
    let log = d.log();
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("demote r0: failed"))
        .count();
    assert_eq!(errors, 1, "one error line for one lasting failure:\n{log}");
    let s = d.status();
    let retrying = s["retrying"].as_array().unwrap();
    assert!(
        retrying
            .iter()
            .any(|r| r["component"] == "resource r0" && r["retry_in_ms"].as_u64().unwrap() > 0),
        "status says when r0 is tried again: {s}"
    );
    let text = String::from_utf8_lossy(&d.cfg(&["status"]).stdout).into_owned();
    assert!(
        text.contains("RETRYING:       resource r0 failed; tried again in"),
        "{text}"
    );
}
