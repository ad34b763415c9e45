//! The daemon on this machine, in a network namespace of its own, with the real rtnetlink
//! adapter and the real control socket. This kernel has no DRBD, so these tests cover what does
//! not need it: following the role source at once, releasing the VIP on a slave, reacting to
//! address events, never assigning the VIP while DRBD cannot be seen Primary, the operator's
//! refusals, reload and stop. Failover with DRBD is proven in the lab. Needs root.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.78.0.100";

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (network namespaces, addresses); run them as root, as CI does"
    );
    assert!(
        Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "these tests need iproute2's `ip` as a witness (scripts/packages.d/base.txt)"
    );
}

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// A network namespace with a veth pair; removed on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("ihd{}{tag}", std::process::id() % 100_000);
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        let out = sh(&format!(
            "set -e; ip netns add {name}; ip -n {name} link set lo up; \
             ip -n {name} link add d0 type veth peer name d0p; \
             ip -n {name} link set d0 up; ip -n {name} link set d0p up; \
             ip -n {name} addr add 10.78.0.1/24 dev d0"
        ));
        assert!(
            out.status.success(),
            "netns setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { name }
    }

    fn vip_present(&self) -> bool {
        let out = sh(&format!("ip -n {} -j addr show dev d0", self.name));
        String::from_utf8_lossy(&out.stdout).contains(&format!("\"{VIP}\""))
    }

    fn add_vip(&self) {
        let out = sh(&format!("ip -n {} addr add {VIP}/24 dev d0", self.name));
        assert!(out.status.success());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// A daemon running in a namespace with its own files; killed on drop.
struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn config(dir: &Path, scan: &str) -> String {
    format!(
        r#"
[role]
source = "file"
path = "{role}"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:local"
[[target.lun]]
lun = 1
path = "{disk}"
[target.access]
allow_all = true
[target.daemon]
managed = false
control_port = 41
[vip]
address = "{VIP}/24"
interface = "d0"
[monitor]
scan_interval = "{scan}"
[logging]
to = "stderr"
"#,
        role = dir.join("role").display(),
        disk = dir.join("disk").display(),
    )
}

impl Daemon {
    fn start(ns: &Netns, role: &str, scan: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("role"), role).unwrap();
        fs::write(dir.path().join("c.toml"), config(dir.path(), scan)).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_iscsi-ha"),
                "run",
                "-c",
            ])
            .arg(dir.path().join("c.toml"))
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--host-name", "local-test"])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let d = Self {
            child: Some(child),
            dir,
        };
        d.wait_for(Duration::from_secs(10), "the daemon to answer", |d| {
            d.cfg(&["status"]).status.success()
        });
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/control.sock")
    }

    fn cfg(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_iscsi-cfg"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let out = self.cfg(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn wait_for(&self, limit: Duration, what: &str, mut ok: impl FnMut(&Self) -> bool) -> Duration {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if ok(self) {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig)
            .unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn role_changes_are_followed_at_once_and_the_vip_never_goes_up_without_drbd() {
    require_root();
    let ns = Netns::new("a");
    ns.add_vip();
    // A one-hour scan: whatever happens below happens because of events, not the timer.
    let d = Daemon::start(&ns, "slave\n", "1h");
    d.wait_for(
        Duration::from_secs(5),
        "the slave to release the VIP",
        |_| !ns.vip_present(),
    );
    assert_eq!(d.status()["host_role"], "slave");

    fs::write(d.dir.path().join("role"), "master\n").unwrap();
    let seen = d.wait_for(Duration::from_secs(2), "the master role to be seen", |d| {
        d.status()["host_role"] == "master"
    });
    eprintln!("role change seen after {seen:?}");
    let s = d.status();
    assert_eq!(s["intent"], "serve");
    assert!(
        s["holds"][0]
            .as_str()
            .unwrap()
            .contains("cannot observe resource r0"),
        "{s}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !ns.vip_present(),
        "no VIP while DRBD cannot be seen Primary"
    );

    fs::remove_file(d.dir.path().join("role")).unwrap();
    d.wait_for(Duration::from_secs(2), "the role to become unknown", |d| {
        d.status()["host_role"] == "unknown"
    });
    let s = d.status();
    assert!(
        s["role_reason"].as_str().unwrap().contains("No such file"),
        "{s}"
    );
    let alerts = s["alerts"].as_array().unwrap();
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a["message"].as_str().unwrap().contains("role unknown"))
            .count(),
        1
    );
}

#[test]
fn an_address_event_brings_the_slave_back_at_once() {
    require_root();
    let ns = Netns::new("b");
    let d = Daemon::start(&ns, "slave\n", "1h");
    ns.add_vip();
    let took = d.wait_for(
        Duration::from_secs(2),
        "the VIP added by hand to be released",
        |_| !ns.vip_present(),
    );
    eprintln!("VIP added by hand released after {took:?}");
    assert!(d.log().contains("release VIP: done"));
}

#[test]
fn operator_verbs_keep_the_original_refusals() {
    require_root();
    let ns = Netns::new("c");
    let d = Daemon::start(&ns, "slave\n", "1h");
    let mode = fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is root's only");

    let out = d.cfg(&["become-primary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refused: not in manual mode"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("manual-mode-enable"),
        "the refusal says what to do"
    );

    let out = d.cfg(&["manual-mode-enable"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("holding secondary"));
    assert_eq!(d.status()["manual_mode"], "become-secondary");
    assert!(fs::read_to_string(d.dir.path().join("state/manual-mode"))
        .unwrap()
        .contains("become-secondary"));

    // The DRBD role cannot be read here, so it cannot be shown to match the pool role.
    let out = d.cfg(&["manual-mode-disable"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refused: the pool role is slave but the DRBD role of r0"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("become-secondary first"),
        "{}",
        text(&out)
    );
}

#[test]
fn reload_refuses_a_bad_configuration_and_keeps_running() {
    require_root();
    let ns = Netns::new("d");
    let d = Daemon::start(&ns, "slave\n", "1h");
    let path = d.dir.path().join("c.toml");
    let good = fs::read_to_string(&path).unwrap();
    fs::write(&path, good.replace("lun = 1", "lun = 0")).unwrap();
    let out = d.cfg(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("target.lun[0].lun: LUN 0 is not allowed"),
        "{}",
        text(&out)
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(Duration::from_secs(2), "SIGHUP's refusal in the log", |d| {
        d.log().contains("reload refused")
    });
    assert!(
        d.cfg(&["status"]).status.success(),
        "still running on the old configuration"
    );
    fs::write(&path, good).unwrap();
    assert!(d.cfg(&["reload"]).status.success());
}

#[test]
fn sigterm_stops_cleanly_and_status_then_says_not_running() {
    require_root();
    let ns = Netns::new("e");
    let mut d = Daemon::start(&ns, "slave\n", "1h");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let mut child = d.child.take().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    assert!(!d.socket().exists(), "the control socket is removed");
    let out = d.cfg(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("daemon is not running"));
}

#[test]
fn split_brain_recovery_is_refused_without_both_flags_or_a_split_brain() {
    require_root();
    let ns = Netns::new("f");
    let d = Daemon::start(&ns, "slave\n", "1h");
    let out = d.cfg(&["split-brain"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no split brain on local-test"),
        "{}",
        text(&out)
    );
    let out = d.cfg(&["split-brain", "resolve", "--discard-local-data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("with both --discard-local-data and --yes"),
        "{}",
        text(&out)
    );
    let out = d.cfg(&["split-brain", "resolve", "--discard-local-data", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no resource is in split brain"),
        "{}",
        text(&out)
    );
    assert!(d.log().contains("operator request"), "requests are logged");
}
