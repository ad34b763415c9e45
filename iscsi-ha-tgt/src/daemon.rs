//! A tgtd run as a supervised child (`tgtd -f -C N`): started, watched, stopped, reaped.
//!
//! The daemon's poll loop notices the child's exit through [`ManagedTgtd::exit_fd`] (a pidfd,
//! or on kernels before 5.3 a timer ticking every
//! [`EXIT_CHECK_PERIOD`](crate::exit_watch::EXIT_CHECK_PERIOD); register it with poll/epoll and
//! call [`ManagedTgtd::try_wait`] when it is readable). Dropping a [`ManagedTgtd`] kills a child still
//! running (tgtd ignores SIGTERM, so it gets SIGKILL) and reaps it.

use std::fs::{self, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_ha_core::ports::{Cause, TargetError};

use crate::client::{socket_path, Client};
use crate::error::TgtError;
use crate::exit_watch::ExitWatch;
use crate::wire::Request;

/// Why the managed tgtd could not be started, watched or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The binary could not be run.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The child exited when it should have been running.
    #[error("tgtd (pid {pid}) exited with {status} while {during}{hint}")]
    Exited {
        /// Its pid.
        pid: u32,
        /// Its exit status.
        status: ExitStatus,
        /// What we were doing.
        during: &'static str,
        /// A likely cause.
        hint: &'static str,
    },
    /// tgtd keeps its control port in a C `short`.
    #[error("control port {0} refused: tgtd takes 0..=32767")]
    ControlPort(u32),
    /// Another tgtd already answers on the socket; starting one would fail on its lock file.
    #[error("a tgtd already answers on {0}; adopt it or choose another control port")]
    AlreadyRunning(PathBuf),
    /// Waiting for or signalling the child failed.
    #[error("supervising tgtd (pid {pid}): {source}")]
    Supervise {
        /// Its pid.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
}

impl From<DaemonError> for TargetError {
    fn from(e: DaemonError) -> Self {
        let kind: fn(Cause) -> TargetError = match &e {
            DaemonError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                TargetError::Invalid
            }
            DaemonError::Spawn { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                TargetError::PermissionDenied
            }
            DaemonError::Spawn { .. } | DaemonError::Supervise { .. } => TargetError::Io,
            DaemonError::Exited { .. } => TargetError::NotRunning,
            DaemonError::AlreadyRunning(_) => TargetError::Refused,
            DaemonError::ControlPort(_) => TargetError::Invalid,
        };
        kind(Cause::of(e))
    }
}

/// The highest control port tgtd accepts (it parses `-C` into a `short`).
pub const MAX_CONTROL_PORT: u32 = 32767;

/// How to start tgtd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgtdCommand {
    /// The binary, e.g. `/usr/sbin/tgtd`.
    pub binary: PathBuf,
    /// Its control port (`-C N`).
    pub control_port: u32,
    /// Socket base (`TGT_IPC_SOCKET`); the socket is `<base>.<N>`.
    pub socket_base: PathBuf,
    /// More arguments, e.g. `--iscsi portal=127.0.0.1:3260`.
    pub extra_args: Vec<String>,
    /// Where tgtd's stdout and stderr go (appended); `None` discards them.
    pub log_file: Option<PathBuf>,
}

/// A running tgtd child.
#[derive(Debug)]
pub struct ManagedTgtd {
    child: Child,
    /// `None` only when neither a pidfd nor a timerfd could be had.
    watch: Option<ExitWatch>,
    exited: Option<ExitStatus>,
    socket: PathBuf,
    /// Set once the child answered on the socket: only then are the socket files its own
    /// (a child that lost the lock race must not remove the winner's socket).
    owns_socket: bool,
    /// Left running on drop (see [`ManagedTgtd::detach`]).
    detached: bool,
}

impl ManagedTgtd {
    /// Starts `tgtd -f -C N ...` and waits, at most `ready_timeout`, until it answers on
    /// `client`'s socket. Refuses when a tgtd already answers there.
    pub fn start(
        command: &TgtdCommand,
        client: &Client,
        ready_timeout: Duration,
    ) -> Result<Self, TgtError> {
        if command.control_port > MAX_CONTROL_PORT {
            return Err(DaemonError::ControlPort(command.control_port).into());
        }
        match client.send(&Request::system_show()) {
            Ok(_) => return Err(DaemonError::AlreadyRunning(client.socket().to_path_buf()).into()),
            Err(TgtError::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        if let Some(dir) = command.socket_base.parent() {
            // tgtd creates its directory only when TGT_IPC_SOCKET is unset; we always set it.
            fs::create_dir_all(dir).map_err(|source| DaemonError::Spawn {
                binary: command.binary.clone(),
                source,
            })?;
        }
        let (stdout, stderr) = match &command.log_file {
            Some(path) => {
                let open = || {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| DaemonError::Spawn {
                            binary: command.binary.clone(),
                            source,
                        })
                };
                (Stdio::from(open()?), Stdio::from(open()?))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(&command.binary)
            .arg("-f")
            .arg("-C")
            .arg(command.control_port.to_string())
            .args(&command.extra_args)
            .env("TGT_IPC_SOCKET", &command.socket_base)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| DaemonError::Spawn {
                binary: command.binary.clone(),
                source,
            })?;
        let watch = ExitWatch::child(child.id());
        let mut daemon = Self {
            child,
            watch,
            exited: None,
            socket: socket_path(&command.socket_base, command.control_port),
            owns_socket: false,
            detached: false,
        };
        let waited = client.wait_until_answering(ready_timeout, || daemon.check_alive("starting"));
        waited?;
        // The socket answered; make sure it was our child and not a tgtd started meanwhile.
        daemon.check_alive("starting")?;
        daemon.owns_socket = true;
        tracing::info!(pid = daemon.pid(), socket = %daemon.socket.display(), "tgtd started");
        Ok(daemon)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A descriptor to poll next to the loop's others: readable when the child may have
    /// exited, then call [`ManagedTgtd::try_wait`]. A pidfd (Linux ≥ 5.3, readable once the
    /// child has exited) or, where `pidfd_open` is missing (XCP-ng's 4.19 dom0 kernel), a timer
    /// readable every [`EXIT_CHECK_PERIOD`](crate::exit_watch::EXIT_CHECK_PERIOD). `None` only
    /// if neither could be made; then call `try_wait` periodically.
    pub fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watch.as_ref().map(AsFd::as_fd)
    }

    /// Whether [`ManagedTgtd::exit_fd`] is a pidfd (false: the periodic timer, or nothing).
    pub fn exit_fd_is_pidfd(&self) -> bool {
        self.watch.as_ref().is_some_and(ExitWatch::is_pidfd)
    }

    /// The socket this tgtd listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The exit status if the child has exited (reaping it), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, DaemonError> {
        if let Some(watch) = &self.watch {
            // A timer's tick has asked us to look: this is the look.
            watch.consume();
        }
        if self.exited.is_none() {
            let pid = self.pid();
            self.exited = self
                .child
                .try_wait()
                .map_err(|source| DaemonError::Supervise { pid, source })?;
            if self.exited.is_some() {
                self.remove_socket_files();
            }
        }
        Ok(self.exited)
    }

    /// Waits at most `limit` for the child to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Result<Option<ExitStatus>, DaemonError> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() >= limit {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the child (SIGKILL: tgtd ignores SIGTERM) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus, DaemonError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid();
        if let Err(source) = self.child.kill() {
            tracing::warn!(pid, %source, "killing tgtd failed");
        }
        let status = self
            .child
            .wait()
            .map_err(|source| DaemonError::Supervise { pid, source })?;
        self.exited = Some(status);
        self.remove_socket_files();
        Ok(status)
    }

    fn check_alive(&mut self, during: &'static str) -> Result<(), TgtError> {
        match self.try_wait()? {
            None => Ok(()),
            Some(status) => Err(DaemonError::Exited {
                pid: self.pid(),
                status,
                during,
                hint: if status.code() == Some(1) {
                    " (another tgtd holding the same control port's lock file?)"
                } else {
                    ""
                },
            }
            .into()),
        }
    }

    /// tgtd leaves `socket.N` and `socket.N.lock` behind on exit; ours are ours to remove.
    fn remove_socket_files(&self) {
        if !self.owns_socket {
            return;
        }
        let mut lock = self.socket.as_os_str().to_owned();
        lock.push(".lock");
        for path in [self.socket.clone(), PathBuf::from(lock)] {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %e, "cannot remove tgtd's file");
                }
            }
        }
    }
}

impl ManagedTgtd {
    /// Lets the child run on without us: it is neither killed nor reaped when this value is
    /// dropped. For the daemon's own exit, which leaves the storage as it is; the next daemon
    /// adopts the running tgtd.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for ManagedTgtd {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Err(e) = self.kill() {
            tracing::warn!(%e, "reaping tgtd on drop failed");
        }
    }
}
