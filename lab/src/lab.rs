//! The lab as a whole: lock, cache, topology, two nodes, DRBD, initiator, share, teardown.

use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::accel::{self, Accel, AccelVerdict};
use crate::channel::CommandOutput;
use crate::dirs::LabDirs;
use crate::drbd::{render_conf, DrbdFencing, DrbdTiming, MinorState, ResourceSpec};
use crate::error::{LabError, Result};
use crate::host::{self, describe};
use crate::image::{self, Image};
use crate::lock::LabLock;
use crate::net::{self, Topology, INITIATOR_IP, INITIATOR_NS, VIP};
use crate::node::{kill_and_wait, pid_alive, LabContext, Node};
use crate::vm::{Spawner, Tether};

/// How to set up DRBD when the lab comes up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrbdOptions {
    /// Node to make Primary once both are UpToDate (`None`: both stay Secondary, as a cluster
    /// manager that has not yet chosen would leave them).
    pub primary: Option<u8>,
    /// Do the full initial sync instead of declaring the fresh (zeroed) disks identical with
    /// `new-current-uuid --clear-bitmap`.
    pub initial_sync: bool,
    /// Network timing written to `drbd.conf`.
    pub timing: DrbdTiming,
    /// Fencing, each for the resource it names (empty, the default: no fencing, no handlers).
    pub fencing: Vec<DrbdFencing>,
}

/// What [`Lab::up`] builds.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The replicated resources; each gets its own virtio disk in both VMs.
    pub resources: Vec<ResourceSpec>,
    /// DRBD bring-up; `None` leaves DRBD unconfigured (the `drbd.conf` is still written).
    pub drbd: Option<DrbdOptions>,
    /// Memory per VM in MiB.
    pub memory_mib: u32,
    /// How long a VM may take to boot.
    pub boot_timeout: Duration,
    /// How long to wait for another lab user to finish.
    pub lock_wait: Duration,
    /// Force an accelerator instead of the automatic choice.
    pub accel: Option<Accel>,
    /// Leave the lab running when the [`Lab`] is dropped (what `iha-lab up` does; stop it with
    /// [`Lab::down`]). Tests leave this off so nothing outlives them.
    pub detached: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            resources: vec![ResourceSpec::new("r0", 1, 64)],
            drbd: Some(DrbdOptions::default()),
            memory_mib: 256,
            boot_timeout: Duration::from_secs(120),
            lock_wait: Duration::from_secs(30 * 60),
            accel: None,
            detached: false,
        }
    }
}

/// What `iha-lab` and [`Lab::attach`] need to find a running lab.
#[derive(Debug, Serialize, Deserialize)]
struct LabState {
    image: Image,
    accel: Accel,
    memory_mib: u32,
    resources: Vec<ResourceSpec>,
    detached: bool,
    owner_pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// This process started the lab and tears it down on drop.
    Owned,
    /// Started by this process but left running on drop.
    Detached,
    /// Found running; never torn down by this value.
    Attached,
}

/// A running two-node lab.
///
/// ```no_run
/// use iscsi_ha_lab::{Lab, LabOptions};
/// let lab = Lab::up(LabOptions::default())?;           // both nodes UpToDate/UpToDate
/// let bin = lab.copy_in("target/debug/iscsi-ha".as_ref())?; // "/host/bin/iscsi-ha"
/// let out = lab.node(1).run(&format!("{bin} --version"))?;
/// lab.node(2).kill()?;                                   // a fault
/// # Ok::<(), iscsi_ha_lab::LabError>(())
/// ```
/// Dropping it kills both VMs and removes the namespaces, disks and sockets, also when a test
/// panics. Its VMs are started with `PR_SET_PDEATHSIG` from a thread the lab owns, so even a
/// test process killed outright takes them with it; the `Lab` itself may move between threads.
#[derive(Debug)]
pub struct Lab {
    // Field order is drop order: VMs first, then the network, then the lock.
    nodes: [Node; 2],
    topology: Option<Topology>,
    ctx: Arc<LabContext>,
    accel: Option<AccelVerdict>,
    ownership: Ownership,
    lock: Option<LabLock>,
}

fn say(msg: &str) {
    eprintln!("iha-lab: {msg}");
}

impl Lab {
    /// Builds (or reuses) the cache, boots both VMs and, unless `options.drbd` is `None`,
    /// configures DRBD from `drbd.conf` with `drbdadm` until both nodes are Connected and
    /// UpToDate. Waits for the lab-wide lock first (see [`crate::lock`]).
    pub fn up(options: LabOptions) -> Result<Self> {
        Self::up_in(LabDirs::from_env(), options)
    }

    /// [`Lab::up`] with an explicit lab directory.
    pub fn up_in(dirs: LabDirs, options: LabOptions) -> Result<Self> {
        host::check_privileges()?;
        host::require_programs(&["ip", "timeout", "sysctl"])?;
        if options.resources.is_empty() {
            return Err(LabError::Invalid(
                "a lab needs at least one resource".into(),
            ));
        }
        for f in options.drbd.iter().flat_map(|d| &d.fencing) {
            if !options.resources.iter().any(|r| r.name == f.resource) {
                return Err(LabError::Invalid(format!(
                    "fencing names {:?}, which is not a resource of the lab",
                    f.resource
                )));
            }
            if let Some(why) = f.invalid_command() {
                return Err(LabError::Invalid(why));
            }
        }
        let lock = LabLock::acquire(options.lock_wait, &mut |m| say(m))?;
        clean_leftovers(&dirs)?;
        let image = image::ensure(&dirs, &mut |m| say(m))?;
        let verdict = match options.accel {
            Some(accel) => AccelVerdict {
                accel,
                reason: "chosen by the caller".into(),
                key: String::new(),
            },
            None => accel::choose(&dirs, &image)?,
        };
        let run = dirs.run();
        let share = dirs.share();
        for d in [&run, &share, &share.join("bin"), &share.join("etc")] {
            std::fs::create_dir_all(d)
                .map_err(|e| LabError::io(format!("creating {}", d.display()), e))?;
        }
        let timing = options
            .drbd
            .as_ref()
            .map(|d| d.timing.clone())
            .unwrap_or_default();
        let fencing = options.drbd.as_ref().map_or(&[][..], |d| &d.fencing[..]);
        write(
            &share.join("etc/drbd.conf"),
            render_conf(&options.resources, &timing, fencing).as_bytes(),
        )?;
        let tether = if options.detached {
            Tether::Detached(Some(lock.raw_fd()))
        } else {
            Tether::ToParent
        };
        let ctx = Arc::new(LabContext {
            dirs: dirs.clone(),
            image,
            accel: verdict.accel,
            memory_mib: options.memory_mib,
            boot_timeout: options.boot_timeout,
            resources: options.resources.clone(),
            tether,
            spawner: Spawner::new()?,
        });
        let topology = Topology::create()?;
        let mut lab = Self {
            nodes: [Node::new(1, ctx.clone()), Node::new(2, ctx.clone())],
            topology: Some(topology),
            ctx,
            accel: Some(verdict),
            ownership: Ownership::Owned,
            lock: Some(lock),
        };
        for node in &lab.nodes {
            for (i, r) in options.resources.iter().enumerate() {
                create_disk(&node.disk_path(i), r.size_mib)?;
            }
        }
        let started = Instant::now();
        for node in &lab.nodes {
            node.start()?;
        }
        for node in &lab.nodes {
            node.wait_ready()?;
        }
        say(&format!(
            "both nodes booted in {:.1} s ({})",
            started.elapsed().as_secs_f64(),
            lab.ctx.accel
        ));
        lab.write_state(options.detached)?;
        if let Some(drbd) = &options.drbd {
            lab.bring_up_drbd(drbd)?;
        }
        if options.detached {
            lab.ownership = Ownership::Detached;
            if let Some(lock) = &lab.lock {
                lock.describe_holder(&format!(
                    "a lab left running by `iha-lab up` (pid {}; `iha-lab down` stops it)",
                    std::process::id()
                ));
            }
        }
        Ok(lab)
    }

    /// Finds the lab a previous `iha-lab up` left running (for `exec`, `status`, faults).
    /// Dropping the result leaves the lab running.
    pub fn attach() -> Result<Self> {
        Self::attach_in(LabDirs::from_env())
    }

    /// [`Lab::attach`] with an explicit lab directory.
    pub fn attach_in(dirs: LabDirs) -> Result<Self> {
        let path = dirs.run().join("state.json");
        let bytes = std::fs::read(&path).map_err(|_| {
            LabError::NotRunning(format!(
                "no {} (start one with `iha-lab up`)",
                path.display()
            ))
        })?;
        let state: LabState = serde_json::from_slice(&bytes)
            .map_err(|e| LabError::NotRunning(format!("unreadable {}: {e}", path.display())))?;
        let ctx = Arc::new(LabContext {
            dirs,
            image: state.image,
            accel: state.accel,
            memory_mib: state.memory_mib,
            boot_timeout: Duration::from_secs(120),
            resources: state.resources,
            tether: Tether::Detached(None),
            spawner: Spawner::new()?,
        });
        let lab = Self {
            nodes: [Node::new(1, ctx.clone()), Node::new(2, ctx.clone())],
            topology: None,
            ctx,
            accel: None,
            ownership: Ownership::Attached,
            lock: None,
        };
        for node in &lab.nodes {
            node.adopt_pid();
        }
        if lab.nodes.iter().all(|n| !n.is_running()) {
            return Err(LabError::NotRunning(
                "its VMs are gone (`iha-lab down` cleans up)".into(),
            ));
        }
        Ok(lab)
    }

    /// Removes everything a lab left behind: kills its qemu processes (by pid file, then by
    /// command line), deletes its namespaces and run directory. Safe to call any time; this is
    /// `iha-lab down`. Returns the pids it killed.
    pub fn down() -> Result<Vec<i32>> {
        let dirs = LabDirs::from_env();
        host::check_privileges()?;
        let killed = kill_lab_vms(&dirs);
        net::remove_all();
        remove_run_dir(&dirs)?;
        Ok(killed)
    }

    /// Node 1 or 2.
    ///
    /// # Panics
    /// When `id` is neither 1 nor 2 (use [`Lab::try_node`] for untrusted input).
    pub fn node(&self, id: u8) -> &Node {
        match self.try_node(id) {
            Ok(node) => node,
            Err(e) => panic!("{e}"),
        }
    }

    /// Node 1 or 2, or an error for any other number.
    pub fn try_node(&self, id: u8) -> Result<&Node> {
        match id {
            1 | 2 => Ok(&self.nodes[usize::from(id - 1)]),
            _ => Err(LabError::Invalid(format!(
                "no node {id} (nodes are 1 and 2)"
            ))),
        }
    }

    /// Both nodes.
    pub fn nodes(&self) -> &[Node; 2] {
        &self.nodes
    }

    /// The accelerator in use.
    pub fn accel(&self) -> Accel {
        self.ctx.accel
    }

    /// Why the accelerator was chosen (`None` for an attached lab).
    pub fn accel_verdict(&self) -> Option<&AccelVerdict> {
        self.accel.as_ref()
    }

    /// The replicated resources, in disk order.
    pub fn resources(&self) -> &[ResourceSpec] {
        &self.ctx.resources
    }

    /// The cache paths (qemu, kernel, `qemu-io`).
    pub fn image(&self) -> &Image {
        &self.ctx.image
    }

    /// The lab's directories.
    pub fn dirs(&self) -> &LabDirs {
        &self.ctx.dirs
    }

    /// A free address on the lab network for a floating IP: 10.99.0.100.
    pub fn vip(&self) -> Ipv4Addr {
        VIP
    }

    /// The initiator namespace's address: 10.99.0.10.
    pub fn initiator_ip(&self) -> Ipv4Addr {
        INITIATOR_IP
    }

    /// The host directory both guests see at `/host` (9p, read-write, no caching: a file
    /// written here is visible in the guests at once). `drbd.conf` lives in `etc/` there.
    pub fn share_dir(&self) -> PathBuf {
        self.ctx.dirs.share()
    }

    /// Copies a host file (e.g. a binary of ours from `target/`) into the share and returns
    /// its path inside the guests (`/host/bin/<name>`). No initramfs rebuild is needed: the
    /// guests have the C library, libm, libgcc_s and the dynamic loader our Rust binaries
    /// link against. Replacing a binary a guest is running is safe (write + rename).
    pub fn copy_in(&self, host_path: &Path) -> Result<String> {
        let name = host_path
            .file_name()
            .ok_or_else(|| LabError::Invalid(format!("{} has no file name", host_path.display())))?
            .to_string_lossy()
            .into_owned();
        let bin = self.share_dir().join("bin");
        let tmp = bin.join(format!(".{name}.tmp"));
        std::fs::copy(host_path, &tmp).map_err(|e| {
            LabError::io(format!("copying {} into the share", host_path.display()), e)
        })?;
        std::fs::rename(&tmp, bin.join(&name))
            .map_err(|e| LabError::io(format!("renaming {}", tmp.display()), e))?;
        Ok(format!("/host/bin/{name}"))
    }

    /// A command to run in the initiator namespace (10.99.0.10 on the lab bridge). Use it for
    /// `iscsi-ls`, `iscsi-inq`, `qemu-io` (see [`Lab::qemu_io`]), captures, `ping`.
    pub fn initiator_command(&self, program: impl AsRef<OsStr>) -> Result<Command> {
        in_namespace(program, INITIATOR_NS)
    }

    /// Runs a shell script in the initiator namespace with a 60 s timeout; any exit status.
    pub fn initiator(&self, script: &str) -> Result<CommandOutput> {
        self.initiator_timeout(script, Duration::from_secs(60))
    }

    /// [`Lab::initiator`] with its own timeout: the script is killed when it expires and this
    /// returns [`LabError::CommandTimeout`].
    pub fn initiator_timeout(&self, script: &str, timeout: Duration) -> Result<CommandOutput> {
        let mut cmd = self.initiator_command("timeout")?;
        cmd.args([
            "-s",
            "KILL",
            &timeout.as_secs().max(1).to_string(),
            "sh",
            "-c",
            script,
        ]);
        let started = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| LabError::io(format!("running `{}`", describe(&cmd)), e))?;
        // With SIGKILL, timeout(1) kills its whole process group, itself included.
        let status = out.status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
        });
        if status == 137 && started.elapsed() >= timeout {
            return Err(LabError::CommandTimeout {
                node: "the initiator namespace".into(),
                timeout,
                command: script.to_owned(),
            });
        }
        Ok(CommandOutput {
            status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// `qemu-io` 7.2 with the iscsi driver, in the initiator namespace: a real initiator for
    /// pattern writes and read-back checks, e.g.
    /// `qemu-io -f raw -c 'write -P 0xab 0 64k' iscsi://10.99.0.100/<iqn>/1`.
    pub fn qemu_io(&self) -> Result<Command> {
        let mut cmd = self.initiator_command(&self.ctx.image.qemu_io)?;
        cmd.envs(self.ctx.image.qemu_env());
        Ok(cmd)
    }

    /// Power-cycles node `id` into the same disks and brings DRBD up again as its boot scripts
    /// would (`drbdadm up all`): it comes back Secondary and reconnects.
    pub fn reboot_node(&self, id: u8) -> Result<()> {
        let node = self.try_node(id)?;
        node.reboot()?;
        node.run("drbdadm up all")?;
        Ok(())
    }

    /// Waits until both nodes show every resource Connected and UpToDate/UpToDate.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let n = self.ctx.resources.len();
        for node in &self.nodes {
            node.wait_drbd("all resources Connected UpToDate/UpToDate", timeout, |m| {
                m.len() == n && m.iter().all(MinorState::is_healthy)
            })?;
        }
        Ok(())
    }

    fn bring_up_drbd(&self, opts: &DrbdOptions) -> Result<()> {
        let started = Instant::now();
        let n = self.ctx.resources.len();
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .nodes
                .iter()
                .map(|node| {
                    s.spawn(move || {
                        // A fresh zeroed disk: no existing data for --force to protect.
                        node.run("drbdadm -- --force create-md all && drbdadm up all")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::Internal("a DRBD bring-up thread panicked".into()))
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for node in &self.nodes {
            node.wait_drbd("all resources Connected", Duration::from_secs(60), |m| {
                m.len() == n && m.iter().all(|r| r.cs == "Connected")
            })?;
        }
        let node1 = self.node(1);
        if opts.initial_sync {
            node1.run("drbdadm primary --force all")?;
        } else {
            node1.run("drbdadm -- --clear-bitmap new-current-uuid all")?;
        }
        let total_mib: u64 = self.ctx.resources.iter().map(|r| r.size_mib).sum();
        // ~30 MiB/s under TCG; generous.
        let sync_budget = Duration::from_secs(60 + total_mib / 5);
        self.wait_healthy(sync_budget)?;
        if opts.initial_sync && opts.primary != Some(1) {
            node1.run("drbdadm secondary all")?;
        }
        if let Some(p) = opts.primary {
            if opts.primary != Some(1) || !opts.initial_sync {
                self.try_node(p)?.run("drbdadm primary all")?;
            }
        }
        say(&format!(
            "DRBD Connected UpToDate/UpToDate in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    fn write_state(&self, detached: bool) -> Result<()> {
        let state = LabState {
            image: self.ctx.image.clone(),
            accel: self.ctx.accel,
            memory_mib: self.ctx.memory_mib,
            resources: self.ctx.resources.clone(),
            detached,
            owner_pid: std::process::id(),
        };
        let json = serde_json::to_vec_pretty(&state)
            .map_err(|e| LabError::Internal(format!("serialising the lab state: {e}")))?;
        write(&self.ctx.dirs.run().join("state.json"), &json)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        match self.ownership {
            Ownership::Owned => {
                for node in &self.nodes {
                    let _ = node.kill();
                }
                self.topology.take();
                // Keep console logs for post-mortems; drop the disks and sockets.
                if let Ok(entries) = std::fs::read_dir(self.ctx.dirs.run()) {
                    for e in entries.filter_map(|e| e.ok()) {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if !name.ends_with(".log") && e.path().is_file() {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
            }
            Ownership::Detached => {
                if let Some(t) = self.topology.take() {
                    t.disown();
                }
                // The qemu processes share the locked file description: an unlock here
                // would free the lock for all of them. Closing our descriptor does not.
                if let Some(lock) = self.lock.take() {
                    std::mem::forget(lock);
                }
            }
            Ownership::Attached => {}
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

fn create_disk(path: &Path, size_mib: u64) -> Result<()> {
    let file =
        File::create(path).map_err(|e| LabError::io(format!("creating {}", path.display()), e))?;
    file.set_len(size_mib * 1024 * 1024)
        .map_err(|e| LabError::io(format!("sizing {}", path.display()), e))
}

/// A command whose process enters network namespace `ns` before exec.
fn in_namespace(program: impl AsRef<OsStr>, ns: &str) -> Result<Command> {
    let netns = net::open_netns(ns)?;
    let mut cmd = Command::new(program);
    // SAFETY: the closure runs in the forked child before exec and only calls setns(2) on a
    // descriptor the closure owns (kept open by the Command); no allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Kills the qemu processes of a lab in `dirs` (pid files, then any qemu whose command line
/// names our run directory). Returns the pids killed.
fn kill_lab_vms(dirs: &LabDirs) -> Vec<i32> {
    let run = dirs.run();
    let marker = run.display().to_string();
    let mut pids: Vec<i32> = Vec::new();
    for id in [1, 2] {
        if let Some(pid) = std::fs::read_to_string(run.join(format!("node{id}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            pids.push(pid);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.filter_map(|e| e.ok()) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("qemu-system") && cmdline.contains(&marker) {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let mut killed = Vec::new();
    for pid in pids {
        if pid_alive(pid) && is_our_qemu(pid, &marker) {
            kill_and_wait(pid);
            killed.push(pid);
        }
    }
    killed
}

fn is_our_qemu(pid: i32, marker: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains("qemu-system") && cmdline.contains(marker)
}

fn remove_run_dir(dirs: &LabDirs) -> Result<()> {
    match std::fs::remove_dir_all(dirs.run()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::io(
            format!("removing {}", dirs.run().display()),
            e,
        )),
    }
}

/// With the lock held, anything still there is from a crashed run: remove it.
fn clean_leftovers(dirs: &LabDirs) -> Result<()> {
    let killed = kill_lab_vms(dirs);
    if !killed.is_empty() {
        say(&format!("killed VMs a crashed run left behind: {killed:?}"));
    }
    net::remove_all();
    remove_run_dir(dirs)
}
