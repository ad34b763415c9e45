//! One lab VM: its qemu process, its command channel and the faults it can suffer.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::accel::Accel;
use crate::channel::{Channel, ChannelFailure, CommandOutput};
use crate::dirs::LabDirs;
use crate::drbd::{parse_proc_drbd, MinorState, ResourceSpec};
use crate::error::{LabError, Result};
use crate::host::tail;
use crate::image::Image;
use crate::net::{
    self, node_ip, node_ip6, spare_tap_name, tap_name, PREFIX_LEN, PREFIX_LEN6, SPARE_MAC_PREFIX,
};
use crate::qmp;
use crate::vm::{self, Spawner, Tether, VmSpec};

/// Default timeout of a command run in a VM.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// What every node of one lab shares.
#[derive(Debug)]
pub(crate) struct LabContext {
    pub dirs: LabDirs,
    pub image: Image,
    pub accel: Accel,
    pub memory_mib: u32,
    pub boot_timeout: Duration,
    pub resources: Vec<ResourceSpec>,
    /// How qemu processes this lab starts relate to the starter.
    pub tether: Tether,
    /// The thread that forks them.
    pub spawner: Spawner,
}

#[derive(Debug, Default)]
struct VmProcess {
    child: Option<Child>,
    pid: Option<i32>,
}

/// A lab VM (`node1` at 10.99.0.1 or `node2` at 10.99.0.2).
///
/// All methods take `&self`: commands on one node are serialised by an internal lock, so
/// threads may drive both nodes at once.
#[derive(Debug)]
pub struct Node {
    id: u8,
    ctx: Arc<LabContext>,
    vm: Mutex<VmProcess>,
    channel: Mutex<Option<Channel>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Node {
    pub(crate) fn new(id: u8, ctx: Arc<LabContext>) -> Self {
        Self {
            id,
            ctx,
            vm: Mutex::new(VmProcess::default()),
            channel: Mutex::new(None),
        }
    }

    /// The node's number, 1 or 2.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The node's name and hostname (`node1`, `node2`).
    pub fn name(&self) -> String {
        format!("node{}", self.id)
    }

    /// The node's address on the lab network.
    pub fn ip(&self) -> Ipv4Addr {
        node_ip(self.id)
    }

    fn run_file(&self, suffix: &str) -> PathBuf {
        self.ctx
            .dirs
            .run()
            .join(format!("{}.{suffix}", self.name()))
    }

    /// The console log of the current boot (kernel messages, the init's `[lab ...]` lines).
    pub fn console_log_path(&self) -> PathBuf {
        self.run_file("console.log")
    }

    /// The text of the current boot's console log.
    pub fn console_log(&self) -> String {
        std::fs::read_to_string(self.console_log_path()).unwrap_or_default()
    }

    /// The backing disk image (host file) of resource number `index`.
    pub fn disk_path(&self, index: usize) -> PathBuf {
        self.ctx
            .dirs
            .run()
            .join(format!("{}.disk{index}.img", self.name()))
    }

    /// The qemu process id, when the VM runs.
    pub fn pid(&self) -> Option<i32> {
        let mut vm = lock(&self.vm);
        refresh(&mut vm);
        vm.pid
    }

    /// Whether the VM's qemu process is alive.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    fn spec(&self) -> VmSpec {
        VmSpec {
            kernel_args: format!(
                "lab.name={} lab.ip={}/{PREFIX_LEN} lab.ip6={}/{PREFIX_LEN6}",
                self.name(),
                self.ip(),
                node_ip6(self.id)
            ),
            memory_mib: self.ctx.memory_mib,
            disks: (0..self.ctx.resources.len())
                .map(|i| self.disk_path(i))
                .collect(),
            console_log: self.console_log_path(),
            qemu_log: self.run_file("qemu.log"),
            pid_file: Some(self.run_file("pid")),
            control_socket: Some(self.run_file("ctl")),
            qmp_socket: Some(self.run_file("qmp")),
            taps: vec![
                (tap_name(self.id), format!("52:54:00:99:00:{:02x}", self.id)),
                (
                    spare_tap_name(self.id),
                    format!("{SPARE_MAC_PREFIX}{:02x}", self.id),
                ),
            ],
            share: Some(self.ctx.dirs.share()),
        }
    }

    /// Starts the VM's qemu (without waiting for the guest).
    pub(crate) fn start(&self) -> Result<()> {
        let mut vm = lock(&self.vm);
        refresh(&mut vm);
        if vm.pid.is_some() {
            return Err(LabError::Invalid(format!(
                "{} is already running",
                self.name()
            )));
        }
        *lock(&self.channel) = None;
        let spec = self.spec();
        // Keep the previous boot's console for post-mortems.
        if spec.console_log.exists() {
            let _ = std::fs::rename(&spec.console_log, self.run_file("console.prev.log"));
        }
        for sock in [&spec.control_socket, &spec.qmp_socket]
            .into_iter()
            .flatten()
        {
            let _ = std::fs::remove_file(sock);
        }
        let netns = net::open_netns(net::NET_NS)?;
        let cmd = vm::command(&self.ctx.image, self.ctx.accel, &spec);
        let tether = self.ctx.tether;
        let child = self.ctx.spawner.run(Box::new(move || {
            vm::spawn(cmd, &spec, Some(&netns), tether)
        }))?;
        vm.pid = i32::try_from(child.id()).ok();
        vm.child = Some(child);
        Ok(())
    }

    /// Waits until the guest's agent answers (the guest is up: modules, network, share).
    pub(crate) fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + self.ctx.boot_timeout;
        let mut chan = lock(&self.channel);
        match Channel::connect(&self.run_file("ctl"), deadline) {
            Ok(c) => {
                *chan = Some(c);
                Ok(())
            }
            Err(ChannelFailure::Timeout | ChannelFailure::Killed) => Err(self.boot_timeout()),
            Err(ChannelFailure::Broken(reason)) => {
                let qemu = std::fs::read_to_string(self.run_file("qemu.log")).unwrap_or_default();
                Err(LabError::Channel {
                    node: self.name(),
                    reason: format!(
                        "{reason}; qemu said: {}; console: {}",
                        tail(&qemu, 1000),
                        tail(&self.console_log(), 1500)
                    ),
                })
            }
        }
    }

    fn boot_timeout(&self) -> LabError {
        LabError::BootTimeout {
            node: self.name(),
            timeout: self.ctx.boot_timeout,
            log: self.console_log_path(),
            console: tail(&self.console_log(), 3000),
        }
    }

    /// Runs a shell script (busybox `sh`) in the VM and returns its status and output, whatever
    /// the status; times out after [`DEFAULT_EXEC_TIMEOUT`].
    pub fn exec(&self, script: &str) -> Result<CommandOutput> {
        self.exec_timeout(script, DEFAULT_EXEC_TIMEOUT)
    }

    /// Like [`Node::exec`] with a timeout of its own: the guest kills the script when it
    /// expires and this returns [`LabError::CommandTimeout`].
    pub fn exec_timeout(&self, script: &str, timeout: Duration) -> Result<CommandOutput> {
        let mut chan = lock(&self.channel);
        if chan.is_none() {
            if !self.is_running() {
                return Err(LabError::NodeDown(self.name()));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            *chan = Some(
                Channel::connect(&self.run_file("ctl"), deadline)
                    .map_err(|f| self.channel_error(f, script, timeout))?,
            );
        }
        let Some(channel) = chan.as_mut() else {
            return Err(LabError::NodeDown(self.name()));
        };
        match channel.exec(script, timeout) {
            Ok(out) => Ok(out),
            Err(f) => {
                // A broken or desynchronised channel is reopened by the next call.
                *chan = None;
                Err(self.channel_error(f, script, timeout))
            }
        }
    }

    fn channel_error(&self, f: ChannelFailure, script: &str, timeout: Duration) -> LabError {
        match f {
            ChannelFailure::Killed | ChannelFailure::Timeout => LabError::CommandTimeout {
                node: self.name(),
                timeout,
                command: script.to_owned(),
            },
            ChannelFailure::Broken(reason) => LabError::Channel {
                node: self.name(),
                reason,
            },
        }
    }

    /// Runs a script that must succeed; returns its standard output.
    pub fn run(&self, script: &str) -> Result<String> {
        let out = self.exec(script)?;
        if out.success() {
            Ok(out.stdout_text())
        } else {
            Err(LabError::CommandFailed {
                target: self.name(),
                command: script.to_owned(),
                status: out.status,
                stdout: out.stdout_text(),
                stderr: out.stderr_text(),
            })
        }
    }

    /// The DRBD minors as `/proc/drbd` shows them.
    pub fn drbd_minors(&self) -> Result<Vec<MinorState>> {
        Ok(parse_proc_drbd(&self.run("cat /proc/drbd")?))
    }

    /// Polls `/proc/drbd` every 100 ms until `pred` holds; returns the minors that satisfied it.
    pub fn wait_drbd(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[MinorState]) -> bool,
    ) -> Result<Vec<MinorState>> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self
                .exec_timeout("cat /proc/drbd", Duration::from_secs(10))?
                .stdout_text();
            let minors = parse_proc_drbd(&text);
            if pred(&minors) {
                return Ok(minors);
            }
            if Instant::now() >= deadline {
                return Err(LabError::WaitTimeout {
                    what: format!("{}: {what}", self.name()),
                    timeout,
                    last: text,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the VM's qemu with SIGKILL (a power cut) and waits until it is gone.
    pub fn kill(&self) -> Result<()> {
        *lock(&self.channel) = None;
        let mut vm = lock(&self.vm);
        if let Some(mut child) = vm.child.take() {
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| LabError::io(format!("reaping qemu of {}", self.name()), e))?;
        } else if let Some(pid) = vm.pid {
            kill_and_wait(pid);
        }
        vm.pid = None;
        let _ = std::fs::remove_file(self.run_file("pid"));
        Ok(())
    }

    /// Freezes the VM (qemu monitor `stop`): a hung host that holds its resources.
    pub fn pause(&self) -> Result<()> {
        self.qmp("stop").map(|_| ())
    }

    /// Lets a paused VM run again (qemu monitor `cont`).
    pub fn resume(&self) -> Result<()> {
        self.qmp("cont").map(|_| ())
    }

    /// Whether the VM is paused, from qemu's `query-status`.
    pub fn is_paused(&self) -> Result<bool> {
        let status = self.qmp("query-status")?;
        Ok(status.get("running").and_then(serde_json::Value::as_bool) == Some(false))
    }

    fn qmp(&self, command: &str) -> Result<serde_json::Value> {
        if !self.is_running() {
            return Err(LabError::NodeDown(self.name()));
        }
        qmp::execute(&self.run_file("qmp"), command, Duration::from_secs(10)).map_err(|reason| {
            LabError::Qmp {
                node: self.name(),
                reason,
            }
        })
    }

    /// Cuts the VM's network link (its tap goes down on the lab bridge); the guest keeps
    /// running and sees no carrier change, like a failed switch port.
    pub fn cut_link(&self) -> Result<()> {
        net::set_link(self.id, false)
    }

    /// Restores a link cut by [`Node::cut_link`].
    pub fn restore_link(&self) -> Result<()> {
        net::set_link(self.id, true)
    }

    /// Cuts only the spare NIC's link (`eth1`, where a client-side VIP sits): initiators lose
    /// the node while replication on `eth0` goes on, as when a client-facing switch fails.
    pub fn cut_spare_link(&self) -> Result<()> {
        net::set_spare_link(self.id, false)
    }

    /// Brings the spare NIC up as a node's boot scripts would, with `arp_ignore = 1` so that
    /// each NIC answers ARP only for its own addresses (two NICs share the lab's subnet).
    pub fn bring_up_spare_nic(&self) -> Result<()> {
        self.run("ip link set eth1 up && echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore")
            .map(|_| ())
    }

    /// Restores a link cut by [`Node::cut_spare_link`].
    pub fn restore_spare_link(&self) -> Result<()> {
        net::set_spare_link(self.id, true)
    }

    /// Power-cycles the VM into the same disks: kill, start, wait until the guest is up.
    /// DRBD is *not* brought up again (a real node's boot scripts would: run
    /// `drbdadm up all` yourself, or use `Lab::reboot_node`).
    pub fn reboot(&self) -> Result<()> {
        self.kill()?;
        self.start()?;
        self.wait_ready()
    }

    /// Attaches to a VM started by another process (pid from its pid file).
    pub(crate) fn adopt_pid(&self) {
        let pid = std::fs::read_to_string(self.run_file("pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let mut vm = lock(&self.vm);
        vm.pid = pid;
        refresh(&mut vm);
    }
}

/// Forgets the pid of a qemu that has exited.
fn refresh(vm: &mut VmProcess) {
    if let Some(child) = vm.child.as_mut() {
        if let Ok(Some(_)) = child.try_wait() {
            vm.child = None;
            vm.pid = None;
        }
    } else if let Some(pid) = vm.pid {
        if !pid_alive(pid) {
            vm.pid = None;
        }
    }
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// SIGKILLs a process that is not our child and waits (up to 5 s) until it is gone.
pub(crate) fn kill_and_wait(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Only a lab's own VMs are tethered; a detached lab's node is just forgotten.
        if matches!(self.ctx.tether, Tether::ToParent) {
            let _ = self.kill();
        }
    }
}
