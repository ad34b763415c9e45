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
import ssl
out, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count = [0]
context = None
if mode != "plain":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
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
        head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\nX-Sink-TLS: %s\r\n" % (envelope.mail_from, ",".join(envelope.rcpt_tos), "yes" if (session.ssl or server.transport.get_extra_info("ssl_object")) else "no")
        write("%04d.eml" % count[0], head.encode() + envelope.original_content)
        return "250 OK"
extra = {}
if mode == "starttls":
    extra = dict(tls_context=context, require_starttls=True)
elif mode == "tls":
    extra = dict(ssl_context=context)
c = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False, **extra)
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
    start_sink_mode(ns, dir, port, "plain", None)
}

/// `mode`: plain, starttls (required) or tls (implicit); `cert`: the server's chain and key.
fn start_sink_mode(
    ns: &Netns,
    dir: &Path,
    port: u16,
    mode: &str,
    cert: Option<(&Path, &Path)>,
) -> Guard {
    fs::create_dir_all(dir).unwrap();
    let mut cmd = ns.command(PYTHON);
    cmd.args(["-c", SINK])
        .arg(dir)
        .arg(port.to_string())
        .arg(mode);
    if let Some((chain, key)) = cert {
        cmd.arg(chain).arg(key);
    }
    let child = cmd
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
    mail_config_tls(dir, port, "none")
}

fn mail_config_tls(dir: &Path, port: u16, tls: &str) -> String {
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
tls = "{tls}"
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

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = "set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=iscsi-ha-test-ca \
  -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.pem 2>/dev/null
cat server.pem ca.pem > chain.pem";
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .output()
            .expect("these tests need openssl");
        assert!(out.status.success(), "{out:?}");
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// Starts a sink in `mode` and a daemon with `tls`, trusting the test CA when `trust`, and
/// makes it raise one alert. Returns the inbox's messages and the daemon's log.
fn tls_case(tag: &str, port: u16, mode: &str, tls: &str, trust: bool) -> (Vec<String>, String) {
    let pki = Pki::new();
    let ns = Netns::new(tag);
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let cert = (pki.path("chain.pem"), pki.path("server.key"));
    let _sink = start_sink_mode(
        &ns,
        &inbox,
        port,
        mode,
        Some((cert.0.as_path(), cert.1.as_path())),
    );
    let text = mail_config_tls(dir.path(), port, tls);
    let ca = format!("SSL_CERT_FILE={}", pki.path("ca.pem").display());
    // Without trust, an empty CA file: the system's store must not vouch for the test server.
    let empty = dir.path().join("empty.pem");
    fs::write(&empty, "").unwrap();
    let none = format!("SSL_CERT_FILE={}", empty.display());
    let env = if trust { ca.as_str() } else { none.as_str() };
    let d = Daemon::start_with(
        dir,
        "slave\n",
        &text,
        &[],
        &["env", env, "ip", "netns", "exec", &ns.name],
    );
    d.set_role(None);
    d.wait_for(
        Duration::from_secs(20),
        "the alert mail to be sent or fail",
        |d| {
            d.log().lines().any(|l| {
                l.contains("role unknown")
                    && (l.contains("cannot mail alert") || l.contains("alert mailed via"))
            })
        },
    );
    (messages(&inbox), d.log())
}

#[test]
fn starttls_and_implicit_tls_carry_the_mail() {
    require_root();
    require_aiosmtpd();
    for (tag, port, mode, tls) in [
        ("t", 2531, "starttls", "starttls"),
        ("u", 2532, "tls", "tls"),
    ] {
        let (inbox, log) = tls_case(tag, port, mode, tls, true);
        let mail: Vec<_> = inbox
            .iter()
            .filter(|m| m.contains("role unknown"))
            .collect();
        assert_eq!(mail.len(), 1, "{tls}: {inbox:#?}\n{log}");
        assert!(
            mail[0].contains("X-Sink-TLS: yes\r\n"),
            "{tls}: {}",
            mail[0]
        );
        assert!(!log.contains("smtp-Pa55-word"), "{log}");
    }
}

#[test]
fn tls_is_never_given_up_for_plaintext_or_an_unknown_certificate() {
    require_root();
    require_aiosmtpd();
    // STARTTLS asked for, the server does not offer it: no plaintext fallback.
    let (inbox, log) = tls_case("v", 2533, "plain", "starttls", true);
    assert!(inbox.is_empty(), "{inbox:#?}");
    assert!(
        log.contains("cannot mail alert via 127.0.0.1:2533"),
        "{log}"
    );
    // A certificate nobody vouches for is refused, STARTTLS or implicit.
    for (tag, port, mode) in [("w", 2534, "starttls"), ("x", 2535, "tls")] {
        let (inbox, log) = tls_case(tag, port, mode, mode, false);
        assert!(inbox.is_empty(), "{mode}: {inbox:#?}");
        assert!(
            log.contains(&format!("cannot mail alert via 127.0.0.1:{port}")),
            "{mode}: {log}"
        );
        assert!(
            log.to_lowercase().contains("certificate"),
            "{mode}: the refusal names the certificate: {log}"
        );
    }
}
