//! Alert mail against a real SMTP server (Debian's python3-aiosmtpd) on the loopback of a
//! network namespace, with the real daemon sending: the message as received (envelope, headers,
//! subject with the host name, body, authentication), the duplicate screen keeping a repeat out,
//! and a mail server that is down or mute never holding up the daemon. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{config, require_root, wait, Daemon, Guard, Netns};

const PYTHON: &str = "/usr/bin/python3";

/// An SMTP server writing each message to `OUT/NNNN.eml` (envelope first) and each
/// authentication to `OUT/auth-N`.
const SINK: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
out, port = sys.argv[1], int(sys.argv[2])
count = [0]
def write(name, data):
    tmp = os.path.join(out, "." + name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(out, name))
def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword):
        count[0] += 1
        write("auth-%d" % count[0], mechanism.encode() + b" " + auth_data.login + b":" + auth_data.password)
    return AuthResult(success=True)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        count[0] += 1
        head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (envelope.mail_from, ",".join(envelope.rcpt_tos))
        write("%04d.eml" % count[0], head.encode() + envelope.original_content)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
c.start()
write("ready", b"")
while True:
    time.sleep(3600)
"#;

fn require_aiosmtpd() {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests need Debian's python3-aiosmtpd for {PYTHON} (scripts/packages.d/ops.txt)"
    );
}

fn start_sink(ns: &Netns, dir: &Path, port: u16) -> Guard {
    fs::create_dir_all(dir).unwrap();
    let child = ns
        .command(PYTHON)
        .args(["-c", SINK])
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("../smtp.log")).unwrap())
        .spawn()
        .unwrap();
    let guard = Guard(Some(child));
    wait(Duration::from_secs(15), "the SMTP server to start", || {
        dir.join("ready").exists()
    });
    guard
}

fn messages(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| fs::read_to_string(dir.join(n)).unwrap())
        .collect()
}

fn mail_config(dir: &Path, port: u16) -> String {
    config(
        dir,
        &format!(
            r#"
[alerts]
screen = "10m"
[alerts.mail]
enabled = true
from = "iscsi-ha@storage.example"
to = ["ops@storage.example", "Oncall <oncall@storage.example>"]
subject = "[HA] {{host}}: storage alert"
server = "127.0.0.1"
port = {port}
user = "alerter"
password = "smtp-Pa55-word"
"#
        ),
    )
}

#[test]
fn an_alert_arrives_by_mail_and_a_repeat_is_screened() {
    require_root();
    require_aiosmtpd();
    let ns = Netns::new("m");
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let _sink = start_sink(&ns, &inbox, 2525);
    let text = mail_config(dir.path(), 2525);
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);

    d.set_role(None);
    wait(Duration::from_secs(20), "the role-unknown mail", || {
        messages(&inbox).iter().any(|m| m.contains("role unknown"))
    });
    let all = messages(&inbox);
    let mail: Vec<_> = all.iter().filter(|m| m.contains("role unknown")).collect();
    assert_eq!(mail.len(), 1, "{all:#?}");
    let m = mail[0];
    assert!(
        m.contains("X-Envelope-From: iscsi-ha@storage.example\r\n"),
        "{m}"
    );
    assert!(
        m.contains("X-Envelope-To: ops@storage.example,oncall@storage.example\r\n"),
        "{m}"
    );
    assert!(m.contains("From: iscsi-ha@storage.example\r\n"), "{m}");
    assert!(
        m.contains("To: ops@storage.example, \"Oncall\" <oncall@storage.example>\r\n")
            || m.contains("To: ops@storage.example, Oncall <oncall@storage.example>\r\n"),
        "{m}"
    );
    assert!(
        m.contains("Subject: [HA] ops-test: storage alert\r\n"),
        "{m}"
    );
    assert!(m.contains("Date: "), "{m}");
    assert!(m.contains("error: role unknown"), "{m}");
    assert!(m.contains("Host: ops-test"), "{m}");
    assert!(
        m.contains(&format!("iscsi-ha {}", env!("CARGO_PKG_VERSION"))),
        "{m}"
    );
    let auth: Vec<String> = fs::read_dir(&inbox)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("auth-"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!auth.is_empty(), "the client authenticated");
    assert!(
        auth.iter().all(|a| a.ends_with(" alerter:smtp-Pa55-word")),
        "{auth:?}"
    );

    // The condition clears and comes back inside the screen window: no second mail.
    d.set_role(Some("slave\n"));
    d.wait_for(Duration::from_secs(5), "the slave role again", |d| {
        d.status()["host_role"] == "slave"
    });
    d.set_role(None);
    d.wait_for(Duration::from_secs(5), "the role unknown again", |d| {
        d.status()["host_role"] == "unknown"
    });
    // Let a (wrongly) queued second mail arrive if there were one.
    std::thread::sleep(Duration::from_secs(2));
    let repeats = messages(&inbox)
        .iter()
        .filter(|m| m.contains("role unknown"))
        .count();
    assert_eq!(repeats, 1, "the repeat within the screen window was mailed");
    assert!(
        d.log().matches("ALERT: role unknown").count() == 1,
        "{}",
        d.log()
    );
    assert!(
        !d.log().contains("smtp-Pa55-word") && !d.status_text().contains("smtp-Pa55-word"),
        "the SMTP password leaked"
    );
}

#[test]
fn a_mail_server_that_is_down_or_mute_never_holds_up_the_daemon() {
    require_root();
    let ns = Netns::new("n");
    // Port 2526: nobody listens (refused). Port 2527: accepts and never speaks.
    let mute = ns
        .command(PYTHON)
        .args([
            "-c",
            "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',2527))\ns.listen(64)\ntime.sleep(600)",
        ])
        .spawn()
        .unwrap();
    let _mute = Guard(Some(mute));
    for (port, expect) in [(2526, "Connection refused"), (2527, "")] {
        let dir = tempfile::tempdir().unwrap();
        let text = mail_config(dir.path(), port);
        let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
        // Several distinct alerts in a row: they queue behind the stuck conversation.
        for i in 0..5 {
            d.set_role(Some(&format!("not-a-role-{i}\n")));
            let t0 = Instant::now();
            d.wait_for(Duration::from_secs(5), "the new unknown role", |d| {
                d.status()["role_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(&format!("not-a-role-{i}")))
            });
            eprintln!(
                "port {port}: alert {i} seen in status after {:?}",
                t0.elapsed()
            );
            d.set_role(Some("slave\n"));
            d.wait_for(Duration::from_secs(5), "slave again", |d| {
                d.status()["host_role"] == "slave"
            });
        }
        let s = d.status();
        assert!(
            s["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["message"].as_str().unwrap().contains("not-a-role-4")),
            "{s}"
        );
        if !expect.is_empty() {
            d.wait_for(
                Duration::from_secs(10),
                "the mail failure in the log",
                |d| {
                    d.log()
                        .contains(&format!("cannot mail alert via 127.0.0.1:{port}"))
                },
            );
            assert!(d.log().contains(expect), "{}", d.log());
        }
        assert!(
            d.log()
                .lines()
                .any(|l| l.contains("ALERT: role unknown") && l.contains("not-a-role-4")),
            "every alert is logged whatever happens to the mail: {}",
            d.log()
        );
    }
}
