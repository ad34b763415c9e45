//! Throwaway hosts for the namespace tests and the benchmark: storage hosts A and B and an
//! initiator C, each a network namespace with one `eth0`, joined by a bridge in a fourth
//! namespace. Names carry the process id and a counter so that parallel tests and other
//! suites never collide; everything is deleted on drop, also when a test panics.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use iscsi_ha_core::vip::{InterfaceName, Vip};

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// The VIP used by the tests, IPv4.
pub const VIP4: &str = "10.213.0.100";
/// The VIP used by the tests, IPv6.
pub const VIP6: &str = "fd00:213::100";

/// Fails loudly unless the tests can run: root and the witness tools.
pub fn require_root_and_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the iscsi-ha-net namespace tests need root (CAP_SYS_ADMIN for `ip netns`, \
         CAP_NET_ADMIN and CAP_NET_RAW for the adapter); run them as root"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("tcpdump", "tcpdump"),
        ("arping", "iputils-arping"),
        ("ping", "iputils-ping"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || Path::new("/usr/sbin").join(tool).is_file();
        assert!(
            found,
            "the namespace tests need `{tool}` (Debian package {package}, listed in \
             scripts/packages.d/net.txt)"
        );
    }
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a command succeeds (its output is dropped).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One throwaway host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its namespace's name.
    pub ns: String,
    /// The MAC of its `eth0`.
    pub mac: String,
    /// Its own IPv4 address.
    pub ipv4: String,
    /// Its own IPv6 address.
    pub ipv6: String,
}

impl Host {
    /// `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip netns exec <ns> program args...`, output returned.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.ns.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Whether `ip netns exec <ns> program args...` succeeds.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> bool {
        let mut all = vec!["netns", "exec", self.ns.as_str(), program];
        all.extend_from_slice(args);
        succeeds("ip", &all)
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }

    /// Runs `f` on a thread that has entered this host's network namespace, so that every
    /// socket `f` opens belongs to the host.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The addresses on `eth0` as `(local, prefix, label)` from `ip -j addr` (the witness).
    pub fn addresses(&self) -> Vec<(String, u8, Option<String>)> {
        let json = self.ip(&["-j", "addr", "show", "dev", "eth0"]);
        let value: serde_json::Value = serde_json::from_str(&json).expect("ip -j addr is JSON");
        let mut out = Vec::new();
        for link in value.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                let local = a["local"].as_str().unwrap_or_default().to_owned();
                let prefix = u8::try_from(a["prefixlen"].as_u64().unwrap_or(0)).unwrap_or(0);
                let label = a["label"].as_str().map(str::to_owned);
                out.push((local, prefix, label));
            }
        }
        out
    }

    /// Whether `address` is on `eth0`, per `ip -j addr`.
    pub fn has_address(&self, address: &str) -> bool {
        self.addresses().iter().any(|(a, _, _)| a == address)
    }

    /// The link-layer address of this host's neighbour entry for `address` (`ip -j neigh`).
    pub fn neighbour_mac(&self, address: &str) -> Option<String> {
        let json = self.ip(&["-j", "neigh", "show", "to", address, "dev", "eth0"]);
        let value: serde_json::Value = serde_json::from_str(&json).ok()?;
        value
            .as_array()?
            .iter()
            .find_map(|n| n["lladdr"].as_str().map(str::to_owned))
    }

    /// Waits until the neighbour entry for `address` names `mac`; panics after `timeout`.
    pub fn wait_neighbour(&self, address: &str, mac: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.neighbour_mac(address);
            if now.as_deref() == Some(mac) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}'s neighbour entry for {address} is {now:?}, expected {mac}",
                self.ns
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Three hosts on one bridge.
#[derive(Debug)]
pub struct Lab {
    /// Storage host A.
    pub a: Host,
    /// Storage host B.
    pub b: Host,
    /// The initiator C (`arp_accept=1`).
    pub c: Host,
    switch: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// Builds the hosts: A 10.213.0.1, B .2, C .3 (/24) and fd00:213::1..3 (/64).
    pub fn new() -> Lab {
        require_root_and_tools();
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("ihn{}x{n}", std::process::id());
        let switch = format!("{prefix}s");
        let mut lab = Lab {
            a: Host::new(&prefix, 'a', 1),
            b: Host::new(&prefix, 'b', 2),
            c: Host::new(&prefix, 'c', 3),
            switch: switch.clone(),
            namespaces: Vec::new(),
        };
        // Register each namespace before creating it, so a failure halfway still cleans up.
        for ns in [&switch, &lab.a.ns, &lab.b.ns, &lab.c.ns] {
            lab.namespaces.push(ns.clone());
            run("ip", &["netns", "add", ns]);
            // No duplicate-address detection on the throwaway links: addresses are usable at
            // once and no stray solicitations cross the captures. Set before the links exist,
            // since a link copies `default` when it is created.
            let mut dad_off = vec!["netns", "exec", ns.as_str(), "sysctl", "-q", "-w"];
            dad_off.extend([
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ]);
            run("ip", &dad_off);
        }
        run(
            "ip",
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
        );
        run("ip", &["-n", &switch, "link", "set", "br0", "up"]);
        for (host, port) in [(&lab.a, "pa"), (&lab.b, "pb"), (&lab.c, "pc")] {
            run(
                "ip",
                &[
                    "-n", &switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", &host.ns,
                ],
            );
            run(
                "ip",
                &["-n", &switch, "link", "set", port, "master", "br0", "up"],
            );
            host.ip(&["link", "set", "lo", "up"]);
            host.ip(&["link", "set", "eth0", "address", &host.mac, "up"]);
            host.ip(&["addr", "add", &format!("{}/24", host.ipv4), "dev", "eth0"]);
            host.ip(&[
                "addr",
                "add",
                &format!("{}/64", host.ipv6),
                "dev",
                "eth0",
                "nodad",
            ]);
        }
        lab.c.sysctl("net.ipv4.conf.eth0.arp_accept", "1");
        lab.wait_links_up();
        lab
    }

    fn wait_links_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for host in [&self.a, &self.b, &self.c] {
            while !host.ip(&["link", "show", "eth0"]).contains("LOWER_UP") {
                assert!(Instant::now() < deadline, "{}: eth0 never came up", host.ns);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth ends and the bridge in it.
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Host {
    fn new(prefix: &str, role: char, number: u8) -> Host {
        Host {
            ns: format!("{prefix}{role}"),
            mac: format!("02:13:00:00:00:{number:02x}"),
            ipv4: format!("10.213.0.{number}"),
            ipv6: format!("fd00:213::{number}"),
        }
    }
}

/// The VIP on `eth0`.
pub fn vip(address: &str, prefix: u8) -> Vip {
    vip_on(address, prefix, "eth0")
}

/// The VIP on another interface.
pub fn vip_on(address: &str, prefix: u8, interface: &str) -> Vip {
    Vip::new(
        address.parse().expect("an IP address"),
        prefix,
        InterfaceName::new(interface).expect("an interface name"),
    )
    .expect("a valid VIP")
}

/// A running `tcpdump` in a host; killed on drop.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    out: tempfile::NamedTempFile,
}

impl Capture {
    /// Starts `tcpdump -n -e -tt` (epoch timestamps) on the host's `eth0` with `filter` and waits until it listens.
    pub fn start(host: &Host, filter: &str) -> Capture {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let err = tempfile::NamedTempFile::new().expect("temp file");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &host.ns,
                "tcpdump",
                "-l",
                "-n",
                "-e",
                "-tt",
                "--immediate-mode",
                "-i",
                "eth0",
                filter,
            ])
            .stdout(Stdio::from(out.reopen().expect("reopen")))
            .stderr(Stdio::from(err.reopen().expect("reopen")))
            .spawn()
            .expect("start tcpdump");
        let capture = Capture { child, out };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(err.path())
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                Instant::now() < deadline,
                "tcpdump did not start: {:?}",
                std::fs::read_to_string(err.path())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        capture
    }

    /// Stops the capture and returns tcpdump's lines.
    pub fn finish(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(self.out.path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The capture time of a `tcpdump -tt` line, in seconds since the epoch.
pub fn captured_at(line: &str) -> f64 {
    line.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no -tt timestamp in {line:?}"))
}

/// Now, in seconds since the epoch, comparable with [`captured_at`].
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
