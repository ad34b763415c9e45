//! Where the daemon's log goes, and what never goes there. The journal and syslog cases run a
//! real systemd-journald in a private mount namespace (tmpfs over /run/systemd, /run/log and
//! /var/log/journal, so the host's are untouched) and read it back with journalctl; syslog goes
//! through libc's `syslog` to journald's syslog socket, reached as /dev/log inside that
//! namespace. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{config, require_root, wait, Daemon, Netns};

const CHAP_IN: &str = "chap-In-s3cret-1";
const CHAP_OUT: &str = "chap-Out-s3cret-2";
const SMTP: &str = "smtp-s3cret-3";

/// A configuration holding every kind of secret, with mail to a port nobody listens on (so
/// the mail failure path logs too).
fn secret_config(dir: &Path, logging: &str) -> String {
    config(
        dir,
        &format!(
            r#"
[[target.access.incoming]]
user = "initiator"
password = "{CHAP_IN}"
[target.access.outgoing]
user = "target"
password = "{CHAP_OUT}"
[alerts.mail]
enabled = true
to = ["ops@storage.example"]
port = 2599
user = "alerter"
password = "{SMTP}"
[logging]
{logging}
"#
        ),
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [CHAP_IN, CHAP_OUT, SMTP] {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

/// Drives the daemon through role changes, a failing mail, a reload and status.
fn exercise(d: &Daemon) {
    d.set_role(None);
    d.wait_for(Duration::from_secs(5), "role unknown", |d| {
        d.status()["host_role"] == "unknown"
    });
    d.set_role(Some("master\n"));
    d.wait_for(Duration::from_secs(5), "master", |d| {
        d.status()["host_role"] == "master"
    });
    assert!(d.cfg(&["reload"]).status.success());
    d.wait_for(
        Duration::from_secs(10),
        "the mail failure in the log",
        |d| d.log().contains("cannot mail alert"),
    );
}

#[test]
fn secrets_never_reach_the_log_or_status() {
    require_root();
    let ns = Netns::new("s");
    let dir = tempfile::tempdir().unwrap();
    let text = secret_config(dir.path(), "level = \"trace\"\nto = \"stderr\"");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    exercise(&d);
    let status = d.status_text();
    assert!(status.contains("\"alerts\""), "{status}");
    assert_no_secret("iscsi-cfg status --json", &status);
    let plain = d.cfg(&["status"]);
    assert_no_secret("iscsi-cfg status", &String::from_utf8_lossy(&plain.stdout));
    let checked = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["check-config"])
        .arg(d.dir.path().join("c.toml"))
        .output()
        .unwrap();
    assert!(checked.status.success());
    let effective = String::from_utf8_lossy(&checked.stdout);
    assert!(effective.contains("<redacted>"), "{effective}");
    assert_no_secret("iscsi-ha check-config", &effective);
    let log = d.log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the log is verbose: {log}"
    );
    assert!(
        log.contains("cannot mail alert via 127.0.0.1:2599"),
        "{log}"
    );
    assert_no_secret("the daemon's log", &log);
}

/// systemd-journald in a mount namespace of its own; killed (and its tmpfs gone) on drop.
struct Journal {
    child: Child,
}

impl Journal {
    /// With `dev_log`, /dev inside the namespace is a copy with the usual nodes and /dev/log
    /// pointing at journald's syslog socket.
    fn start(dev_log: bool, scratch: &Path) -> Self {
        let journald = Path::new("/lib/systemd/systemd-journald");
        assert!(
            journald.exists(),
            "this test needs systemd-journald (Debian's systemd, scripts/packages.d/ops.txt)"
        );
        let dev = scratch.join("dev");
        let dev_setup = if dev_log {
            format!(
                "mkdir -p {dev} && mount -t tmpfs tmpfs {dev} && \
                 for n in null zero full random urandom tty; do touch {dev}/$n && mount --bind /dev/$n {dev}/$n; done && \
                 mkdir {dev}/pts {dev}/shm && ln -s /run/systemd/journal/dev-log {dev}/log && \
                 mount --rbind {dev} /dev && ",
                dev = dev.display()
            )
        } else {
            String::new()
        };
        let script = format!(
            "set -e; mount -t tmpfs tmpfs /run/systemd && mount -t tmpfs tmpfs /run/log && \
             mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal && {dev_setup} \
             exec {}",
            journald.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(fs::File::create(scratch.join("journald.log")).unwrap())
            .spawn()
            .unwrap();
        let j = Self { child };
        wait(Duration::from_secs(10), "journald's socket", || {
            j.nsenter("test")
                .args(["-S", "/run/systemd/journal/socket"])
                .status()
                .is_ok_and(|s| s.success())
        });
        j
    }

    fn nsenter(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.child.id()))
            .arg("--")
            .arg(program);
        c
    }

    /// The journal's entries with identifier `iscsi-ha`, as JSON objects.
    fn entries(&self) -> Vec<serde_json::Value> {
        let out = self
            .nsenter("journalctl")
            .args(["--no-pager", "-o", "json", "-t", "iscsi-ha"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the daemon inside the journal's mount namespace and a network namespace.
fn daemon_in(journal: &Journal, ns: &Netns, dir: tempfile::TempDir, logging: &str) -> Daemon {
    let text = secret_config(dir.path(), logging);
    let mnt = format!("--mount=/proc/{}/ns/mnt", journal.child.id());
    Daemon::start_with(
        dir,
        "slave\n",
        &text,
        &[],
        &["nsenter", &mnt, "--", "ip", "netns", "exec", &ns.name],
    )
}

fn message_of(e: &serde_json::Value) -> String {
    e["MESSAGE"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_journal_gets_the_log_when_present() {
    require_root();
    let scratch = tempfile::tempdir().unwrap();
    // The namespace first: the journal's mount namespace copies its /run/netns mount.
    let ns = Netns::new("j");
    let journal = Journal::start(false, scratch.path());
    let d = daemon_in(
        &journal,
        &ns,
        tempfile::tempdir().unwrap(),
        "level = \"debug\"",
    );
    d.set_role(None);
    wait(Duration::from_secs(10), "the alert in the journal", || {
        journal
            .entries()
            .iter()
            .any(|e| message_of(e).contains("ALERT: role unknown"))
    });
    let entries = journal.entries();
    let alert = entries
        .iter()
        .find(|e| message_of(e).contains("ALERT: role unknown"))
        .unwrap();
    assert_eq!(
        alert["PRIORITY"], "3",
        "an error alert is priority err: {alert}"
    );
    assert_eq!(alert["_TRANSPORT"], "journal", "{alert}");
    assert!(
        entries
            .iter()
            .any(|e| message_of(e).contains("iscsi-ha daemon starting")),
        "{entries:#?}"
    );
    assert!(
        d.log().trim().is_empty(),
        "nothing goes to stderr when the journal takes the log: {}",
        d.log()
    );
    let all: String = entries.iter().map(|e| e.to_string() + "\n").collect();
    assert_no_secret("the journal", &all);
}

#[test]
fn syslog_gets_the_log_with_its_tag() {
    require_root();
    let scratch = tempfile::tempdir().unwrap();
    // The namespace first: the journal's mount namespace copies its /run/netns mount.
    let ns = Netns::new("y");
    let journal = Journal::start(true, scratch.path());
    let d = daemon_in(
        &journal,
        &ns,
        tempfile::tempdir().unwrap(),
        "to = \"syslog\"",
    );
    d.set_role(None);
    wait(Duration::from_secs(10), "the alert via syslog", || {
        journal
            .entries()
            .iter()
            .any(|e| message_of(e).contains("ALERT: role unknown"))
    });
    let entries = journal.entries();
    let alert = entries
        .iter()
        .find(|e| message_of(e).contains("ALERT: role unknown"))
        .unwrap();
    assert_eq!(alert["_TRANSPORT"], "syslog", "{alert}");
    assert_eq!(alert["SYSLOG_IDENTIFIER"], "iscsi-ha", "{alert}");
    assert_eq!(alert["PRIORITY"], "3", "{alert}");
    assert_eq!(alert["SYSLOG_FACILITY"], "3", "facility daemon: {alert}");
    let all: String = entries.iter().map(|e| e.to_string() + "\n").collect();
    assert_no_secret("syslog", &all);
    drop(d);
}

#[test]
fn the_level_comes_from_the_configuration_and_rust_log_overrides_it() {
    require_root();
    let ns = Netns::new("l");
    let logging = "[logging]\nlevel = \"warn\"\nto = \"stderr\"\n";
    // No RUST_LOG: the configured level (warn) holds.
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), logging);
    let quiet = Daemon::start_with(
        dir,
        "slave\n",
        &text,
        &[],
        &["env", "-u", "RUST_LOG", "ip", "netns", "exec", &ns.name],
    );
    quiet.set_role(None);
    quiet.wait_for(Duration::from_secs(5), "the alert at warn level", |d| {
        d.log().contains("ALERT: role unknown")
    });
    let log = quiet.log();
    assert!(
        !log.contains(" INFO ") && !log.contains(" DEBUG "),
        "level warn lets no info or debug line through:\n{log}"
    );
    drop(quiet);
    // RUST_LOG=info overrides it.
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), logging);
    let loud = Daemon::start_with(
        dir,
        "slave\n",
        &text,
        &[],
        &["env", "RUST_LOG=info", "ip", "netns", "exec", &ns.name],
    );
    loud.wait_for(Duration::from_secs(5), "info lines", |d| {
        d.log().contains(" INFO ") && d.log().contains("iscsi-ha daemon starting")
    });
    assert!(!loud.log().contains(" DEBUG "), "{}", loud.log());
}
