//! Test bench shared by the tests against a real tgtd: prerequisites, unique ports, sparse
//! disks, specs, and a real initiator (libiscsi's tools). tgtadm appears only as a witness.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::secret::Secret;
use iscsi_ha_core::target::{Access, ChapCredentials, LunId, LunIdentity, LunSpec, TargetSpec};
use iscsi_ha_tgt::client::{socket_path, Client, DEFAULT_SOCKET_BASE};
use iscsi_ha_tgt::daemon::{ManagedTgtd, TgtdCommand};
use iscsi_ha_tgt::ops::Tgt;
use iscsi_ha_tgt::{ManagedDaemon, TgtConfig, TgtTarget};

/// The initiator name the tests log in with.
pub const INITIATOR: &str = "iqn.2024-01.com.example:init1";
/// An initiator name no ACL allows.
pub const STRANGER: &str = "iqn.2024-01.com.example:stranger";

const TOOLS: [&str; 6] = [
    "/usr/sbin/tgtd",
    "/usr/sbin/tgtadm",
    "/usr/bin/iscsi-ls",
    "/usr/bin/iscsi-inq",
    "/usr/bin/iscsi-readcapacity16",
    "/usr/bin/iscsi-perf",
];

/// Fails loudly unless the test can drive a real tgtd.
pub fn require_prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests start tgtd and must run as root (tgtd's socket checks the peer's uid)"
    );
    for tool in TOOLS {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's `tgt` and `libiscsi-bin` \
             (scripts/install-packages does it from scripts/packages.d/tgt.txt)"
        );
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A control port no other test (in this or another test binary) uses now.
pub fn unique_control_port() -> u32 {
    let pid = std::process::id();
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 1_000 + (pid % 300) * 100 + (n % 100);
        let socket = socket_path(Path::new(DEFAULT_SOCKET_BASE), port);
        let mut lock = socket.as_os_str().to_owned();
        lock.push(".lock");
        if !socket.exists() && !Path::new(&lock).exists() {
            return port;
        }
    }
}

/// A free TCP port on 127.0.0.1 for tgtd's iSCSI portal.
pub fn free_iscsi_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
        .port()
}

/// One test's world: a temp dir with sparse disks, a control port, an iSCSI port.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub control_port: u32,
    pub iscsi_port: u16,
}

impl Bench {
    pub fn new() -> Self {
        require_prerequisites();
        Self {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            control_port: unique_control_port(),
            iscsi_port: free_iscsi_port(),
        }
    }

    /// tgtd's arguments for a portal on 127.0.0.1 only.
    pub fn portal_args(&self) -> Vec<String> {
        vec![
            "--iscsi".to_string(),
            format!("portal=127.0.0.1:{}", self.iscsi_port),
        ]
    }

    /// A managed adapter for this bench.
    pub fn managed_config(&self) -> TgtConfig {
        let mut daemon = ManagedDaemon::new(self.portal_args());
        daemon.log_file = Some(self.dir.path().join("tgtd.log"));
        daemon.ready_timeout = Duration::from_secs(20);
        let mut config = TgtConfig::managed(self.control_port, daemon);
        config.request_timeout = Duration::from_secs(20);
        config
    }

    pub fn managed_target(&self) -> TgtTarget {
        TgtTarget::new(self.managed_config())
    }

    /// A tgtd started outside the adapter (to adopt, or to poke at directly).
    pub fn start_tgtd(&self) -> ManagedTgtd {
        let command = TgtdCommand {
            binary: PathBuf::from("/usr/sbin/tgtd"),
            control_port: self.control_port,
            socket_base: PathBuf::from(DEFAULT_SOCKET_BASE),
            extra_args: self.portal_args(),
            log_file: Some(self.dir.path().join("tgtd.log")),
        };
        ManagedTgtd::start(&command, &self.client(), Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("starting tgtd: {e}"))
    }

    pub fn client(&self) -> Client {
        Client::new(
            socket_path(Path::new(DEFAULT_SOCKET_BASE), self.control_port),
            Duration::from_secs(20),
        )
    }

    pub fn tgt(&self) -> Tgt {
        Tgt::new(self.client())
    }

    /// A sparse file of `mib` MiB.
    pub fn disk(&self, name: &str, mib: u64) -> String {
        let path = self.dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create: {e}"));
        file.set_len(mib << 20)
            .unwrap_or_else(|e| panic!("set_len: {e}"));
        path.to_string_lossy().into_owned()
    }

    /// `iscsi://[user%secret@]127.0.0.1:PORT/IQN/LUN`
    pub fn url(&self, iqn: &str, lun: u64, chap: Option<(&str, &str)>) -> String {
        let auth = chap.map(|(u, p)| format!("{u}%{p}@")).unwrap_or_default();
        format!("iscsi://{auth}127.0.0.1:{}/{iqn}/{lun}", self.iscsi_port)
    }

    /// `iscsi-ls -s` of the portal as `initiator`.
    pub fn discover(&self, initiator: &str) -> Output {
        run(
            "iscsi-ls",
            &[
                "-s",
                "-i",
                initiator,
                &format!("iscsi://127.0.0.1:{}", self.iscsi_port),
            ],
        )
    }

    /// tgtadm's view of the targets: the independent witness.
    pub fn tgtadm_show(&self) -> String {
        let out = run(
            "tgtadm",
            &[
                "-C",
                &self.control_port.to_string(),
                "--lld",
                "iscsi",
                "--op",
                "show",
                "--mode",
                "target",
            ],
        );
        assert!(out.status.success(), "tgtadm show failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `iscsi-perf` reading LUN `lun` as [`INITIATOR`].
    pub fn reader(&self, iqn: &str, lun: u64, chap: Option<(&str, &str)>) -> Reader {
        let log = self
            .dir
            .path()
            .join(format!("perf-{}.log", NEXT.fetch_add(1, Ordering::SeqCst)));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log: {e}"));
        let err = file.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new("iscsi-perf")
            .args(["-i", INITIATOR, "-x", "0", &self.url(iqn, lun, chap)])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("iscsi-perf: {e}"));
        Reader { child, log }
    }
}

/// A running `iscsi-perf`, killed on drop.
pub struct Reader {
    pub child: Child,
    pub log: PathBuf,
}

impl Reader {
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until its output grows, i.e. it is still reading.
    pub fn makes_progress(&mut self, within: Duration) -> bool {
        let before = self.output().len();
        let start = Instant::now();
        while start.elapsed() < within {
            if !self.is_running() {
                return false;
            }
            if self.output().len() > before {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a tool with a deadline of 60 s (an initiator must never hang a test).
pub fn run(tool: &str, args: &[&str]) -> Output {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// stdout and stderr of a tool, for assertions and messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn iqn(name: &str) -> Iqn {
    Iqn::new(format!("iqn.2024-01.com.example:{name}")).unwrap_or_else(|e| panic!("{e}"))
}

pub fn lun_id(n: u64) -> LunId {
    LunId::new(n).unwrap_or_else(|e| panic!("{e}"))
}

/// A spec with one LUN per path, derived identities, allowed to [`INITIATOR`] by name.
pub fn spec(name: &str, paths: &[String]) -> TargetSpec {
    let iqn = iqn(name);
    let luns = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let lun = lun_id(u64::try_from(i).unwrap_or(0) + 1);
            LunSpec {
                lun,
                path: path.clone(),
                identity: LunIdentity::derived(&iqn, lun),
                read_only: false,
                volatile_cache_reported: false,
                stable_writes: true,
            }
        })
        .collect();
    TargetSpec {
        iqn,
        luns,
        access: Access {
            initiator_names: vec![Iqn::new(INITIATOR).unwrap_or_else(|e| panic!("{e}"))],
            ..Access::default()
        },
    }
}

pub fn chap(user: &str, secret: &str) -> ChapCredentials {
    ChapCredentials {
        user: user.to_string(),
        password: Secret::new(secret),
    }
}
