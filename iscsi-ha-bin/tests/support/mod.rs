//! Shared by the operations tests: a network namespace of the test's own, and the real
//! `iscsi-ha run` inside it with a configuration in a temporary directory. Needs root.

#![allow(clippy::unwrap_used, dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod xe;

pub const VIP: &str = "10.79.0.100";

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (network namespaces); run them as root, as CI does"
    );
    assert!(
        Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "these tests need iproute2's `ip` (scripts/packages.d/base.txt)"
    );
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// A network namespace with a veth pair and loopback up; removed on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("iho{}{tag}", std::process::id() % 100_000);
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        let out = sh(&format!(
            "set -e; ip netns add {name}; ip -n {name} link set lo up; \
             ip -n {name} link add d0 type veth peer name d0p; \
             ip -n {name} link set d0 up; ip -n {name} link set d0p up; \
             ip -n {name} addr add 10.79.0.1/24 dev d0"
        ));
        assert!(
            out.status.success(),
            "netns setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { name }
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// A child process killed on drop.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The base configuration: a slave by a role file, no DRBD, an adopted (absent) tgtd, logging
/// to standard error (the tests read it) unless `extra` has a `[logging]` section, and
/// HA-Lizard's files under `dir/etc-iscsi-ha` (never the host's /etc) unless `extra` has an
/// `[ha_lizard]` section.
pub fn config(dir: &Path, extra: &str) -> String {
    let logging = if extra.contains("[logging]") {
        ""
    } else {
        "[logging]\nto = \"stderr\"\n"
    };
    let mut text = base_config(dir, extra);
    text.push_str(logging);
    if !extra.contains("[ha_lizard]") {
        text.push_str(&ha_lizard_section(dir, ""));
    }
    text
}

/// An `[ha_lizard]` section whose files are under `dir/etc-iscsi-ha`, plus `extra` keys.
pub fn ha_lizard_section(dir: &Path, extra: &str) -> String {
    let etc = dir.join("etc-iscsi-ha");
    format!(
        "[ha_lizard]\nstatus_file = \"{}\"\nmanual_file = \"{}\"\nconf_file = \"{}\"\n{extra}\n",
        etc.join("state/status").display(),
        etc.join("state/manual").display(),
        etc.join("iscsi-ha.conf").display(),
    )
}

fn base_config(dir: &Path, extra: &str) -> String {
    format!(
        r#"
[role]
source = "file"
path = "{role}"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:ops"
[[target.lun]]
lun = 1
path = "{disk}"
[target.access]
allow_all = true
[target.daemon]
managed = false
control_port = 43
[vip]
address = "{VIP}/24"
interface = "d0"
[monitor]
scan_interval = "1h"
{extra}
"#,
        role = dir.join("role").display(),
        disk = dir.join("disk").display(),
    )
}

/// `iscsi-ha run` in a namespace; killed on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig)
            .unwrap();
    }

    /// Sends SIGTERM and waits (at most 5 s) for a clean exit.
    pub fn stop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let mut child = self.child.take().unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "the daemon did not stop on SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{status:?}; log:\n{}", self.log());
    }

    /// Writes `config_text` (mode 0600) and the role file, starts the daemon with `args` and
    /// waits until it answers.
    pub fn start(ns: &Netns, role: &str, config_text: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(ns, dir, role, config_text, args)
    }

    pub fn start_in(
        ns: &Netns,
        dir: tempfile::TempDir,
        role: &str,
        config_text: &str,
        args: &[&str],
    ) -> Self {
        Self::start_with(
            dir,
            role,
            config_text,
            args,
            &["ip", "netns", "exec", &ns.name],
        )
    }

    /// As [`Daemon::start_in`], launched through `prefix` (e.g. nsenter, then ip netns exec).
    pub fn start_with(
        dir: tempfile::TempDir,
        role: &str,
        config_text: &str,
        args: &[&str],
        prefix: &[&str],
    ) -> Self {
        fs::write(dir.path().join("role"), role).unwrap();
        let c = dir.path().join("c.toml");
        fs::write(&c, config_text).unwrap();
        fs::set_permissions(&c, fs::Permissions::from_mode(0o600)).unwrap();
        let child = Command::new(prefix[0])
            .args(&prefix[1..])
            .arg(env!("CARGO_BIN_EXE_iscsi-ha"))
            .args(["run", "-c"])
            .arg(&c)
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .arg("--lock-file")
            .arg(dir.path().join("lock"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--host-name", "ops-test"])
            .args(args)
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

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/control.sock")
    }

    pub fn cfg(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_iscsi-cfg"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap()
    }

    pub fn status_text(&self) -> String {
        let out = self.cfg(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.status_text()).unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn set_role(&self, role: Option<&str>) {
        let p = self.dir.path().join("role");
        match role {
            Some(r) => fs::write(p, r).unwrap(),
            None => fs::remove_file(p).unwrap(),
        }
    }

    pub fn wait_for(&self, limit: Duration, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
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

/// Waits for `ok` up to `limit`, panicking with `what`.
pub fn wait(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}
