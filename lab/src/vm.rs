//! Starting qemu for a lab VM: the command line and the process attributes that keep the lab
//! from leaking (a dying lab user takes its VMs with it).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;

use crate::accel::Accel;
use crate::error::{LabError, Result};
use crate::host::describe;
use crate::image::Image;

/// Everything that differs between VMs.
#[derive(Debug, Clone)]
pub(crate) struct VmSpec {
    /// Kernel command line after the fixed part.
    pub kernel_args: String,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Raw disk images, in order (`/dev/vda`, `/dev/vdb`, ...).
    pub disks: Vec<PathBuf>,
    /// Console log file.
    pub console_log: PathBuf,
    /// qemu's own stderr.
    pub qemu_log: PathBuf,
    /// Pid file (for `iha-lab down` after a crash).
    pub pid_file: Option<PathBuf>,
    /// Unix socket of the command channel.
    pub control_socket: Option<PathBuf>,
    /// Unix socket of the QMP monitor.
    pub qmp_socket: Option<PathBuf>,
    /// Tap devices (inside the lab namespace) and MAC addresses, one virtio NIC each, in guest
    /// order (`eth0`, `eth1`, ...).
    pub taps: Vec<(String, String)>,
    /// Host directory shared at mount tag `host`.
    pub share: Option<PathBuf>,
}

/// How the qemu process relates to the process starting it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tether {
    /// Killed (SIGKILL) when the thread that started it exits: a panicking or killed test
    /// cannot leave it behind. A lab starts these from its [`Spawner`] thread, which lives as
    /// long as the lab, because the signal follows the *thread* that forked, not the process.
    ToParent,
    /// Outlives the starter (`iha-lab up`); holds this descriptor (the lab lock), if any, while
    /// it runs.
    Detached(Option<RawFd>),
}

/// Builds the qemu command line.
pub(crate) fn command(image: &Image, accel: Accel, spec: &VmSpec) -> Command {
    let mut cmd = Command::new(&image.qemu_system);
    for dir in &image.firmware_dirs {
        cmd.arg("-L").arg(dir);
    }
    cmd.args(["-M", "pc", "-nodefaults", "-no-user-config"]);
    match accel {
        Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
    };
    cmd.args(["-m", &spec.memory_mib.to_string(), "-smp", "1"]);
    cmd.args(["-display", "none", "-no-reboot"]);
    cmd.arg("-serial")
        .arg(format!("file:{}", spec.console_log.display()));
    if let Some(sock) = &spec.control_socket {
        cmd.args(["-device", "virtio-serial-pci"]);
        cmd.arg("-chardev").arg(format!(
            "socket,id=ctl,path={},server=on,wait=off",
            sock.display()
        ));
        cmd.args(["-device", "virtserialport,chardev=ctl,name=lab.ctl"]);
    }
    if let Some(sock) = &spec.qmp_socket {
        cmd.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()));
    }
    cmd.arg("-kernel").arg(&image.vmlinux);
    cmd.arg("-initrd").arg(&image.initramfs);
    cmd.arg("-append")
        .arg(format!("console=ttyS0 panic=-1 quiet {}", spec.kernel_args));
    for disk in &spec.disks {
        cmd.arg("-drive").arg(format!(
            "file={},format=raw,if=virtio,cache=unsafe",
            disk.display()
        ));
    }
    for (i, (tap, mac)) in spec.taps.iter().enumerate() {
        cmd.arg("-netdev")
            .arg(format!("tap,id=n{i},ifname={tap},script=no,downscript=no"));
        cmd.arg("-device")
            .arg(format!("virtio-net-pci,netdev=n{i},mac={mac},romfile="));
    }
    if let Some(share) = &spec.share {
        cmd.arg("-fsdev").arg(format!(
            "local,id=share,path={},security_model=none",
            share.display()
        ));
        cmd.args(["-device", "virtio-9p-pci,fsdev=share,mount_tag=host"]);
    }
    if let Some(pid) = &spec.pid_file {
        cmd.arg("-pidfile").arg(pid);
    }
    cmd
}

/// Starts qemu, inside network namespace `netns` when given.
pub(crate) fn spawn(
    mut cmd: Command,
    spec: &VmSpec,
    netns: Option<&File>,
    tether: Tether,
) -> Result<Child> {
    let line = describe(&cmd);
    let log = File::create(&spec.qemu_log)
        .map_err(|e| LabError::io(format!("creating {}", spec.qemu_log.display()), e))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let netns_fd: Option<RawFd> = netns.map(AsRawFd::as_raw_fd);
    // SAFETY: the closure runs in the forked child before exec and only makes raw syscalls
    // (setns, prctl, fcntl, setsid) on descriptors the parent keeps open across the fork; it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = netns_fd {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            match tether {
                Tether::ToParent => {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Tether::Detached(lock_fd) => {
                    // Own session: no SIGINT from the terminal that ran `iha-lab up`.
                    libc::setsid();
                    if let Some(fd) = lock_fd {
                        if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| LabError::io(format!("starting `{line}`"), e))
}

type SpawnJob = Box<dyn FnOnce() -> Result<Child> + Send>;
/// A job and where its result goes.
type SpawnRequest = (SpawnJob, mpsc::Sender<Result<Child>>);

/// A thread that starts a lab's qemu processes and lives exactly as long as the lab.
///
/// `PR_SET_PDEATHSIG` fires when the thread that forked the child exits. If a test started a VM
/// from a short-lived helper thread (a reboot inside a scoped thread, say), the VM would die
/// with that thread. Forking from this one thread ties every VM to the lab instead: the VMs die
/// when the lab is dropped or the process dies, and not before.
#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: Mutex<Option<mpsc::Sender<SpawnRequest>>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the thread.
    pub(crate) fn new() -> Result<Self> {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("iha-lab-spawner".into())
            .spawn(move || {
                for (job, reply) in rx {
                    let _ = reply.send(job());
                }
            })
            .map_err(|e| LabError::io("starting the lab's spawner thread", e))?;
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            thread: Some(thread),
        })
    }

    /// Runs `job` (a [`spawn`]) on the spawner thread.
    pub(crate) fn run(&self, job: SpawnJob) -> Result<Child> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let gone = || LabError::Internal("the lab's spawner thread is gone".into());
        {
            let jobs = self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            jobs.as_ref()
                .ok_or_else(gone)?
                .send((job, reply_tx))
                .map_err(|_| gone())?;
        }
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
