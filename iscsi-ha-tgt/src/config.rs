//! The adapter's configuration, built by the daemon from its TOML file.

use std::path::PathBuf;
use std::time::Duration;

use crate::client::{socket_path, DEFAULT_SOCKET_BASE};
use crate::daemon::TgtdCommand;

/// How the adapter reaches and runs tgtd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgtConfig {
    /// tgtd's control port `N` (`tgtd -C N`, 0..=32767); the socket is `<socket_base>.<N>`.
    pub control_port: u32,
    /// The socket's base path, `/var/run/tgtd/socket` unless tgtd runs with
    /// `TGT_IPC_SOCKET`. An explicit socket path `/x/socket.N` is base `/x/socket` with
    /// control port `N`; a managed tgtd is started with `TGT_IPC_SOCKET` set to the base.
    pub socket_base: PathBuf,
    /// Whether the adapter runs tgtd itself or uses one already running.
    pub lifecycle: Lifecycle,
    /// Longest wait for one request's reply.
    pub request_timeout: Duration,
    /// How many times `stop` retries a delete tgtd refuses as busy (I/O in flight).
    pub stop_retries: u32,
    /// The pause between those retries.
    pub stop_retry_interval: Duration,
    /// How new logical units are backed.
    pub backing: BackingDefaults,
    /// Keep a managed tgtd running (with no target) after `stop`, so the next `serve` need
    /// not wait for it to start: a faster failover back. Off: `stop` stops it, as the
    /// original add-on stopped the tgtd service on the slave.
    pub keep_daemon_running: bool,
    /// Leave a managed tgtd running, with its targets, when the adapter is dropped (a
    /// daemon's exit is not a failover; the next instance adopts it). Off: dropping the
    /// adapter stops the tgtd it started, as tests and one-shot tools want.
    pub leave_running_on_drop: bool,
}

/// Whether tgtd is the adapter's child or someone else's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// The adapter starts tgtd as a supervised child on `serve` and stops it on `stop`.
    Managed(ManagedDaemon),
    /// tgtd is run by someone else (systemd's `tgt.service`); the adapter only talks to it.
    Adopt,
}

/// How to run a managed tgtd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedDaemon {
    /// The binary.
    pub binary: PathBuf,
    /// Arguments after `-f -C N`, e.g. `["--iscsi", "portal=127.0.0.1:3260"]`.
    pub extra_args: Vec<String>,
    /// Where tgtd's output goes (appended); `None` discards it.
    pub log_file: Option<PathBuf>,
    /// Longest wait for a starting tgtd to answer.
    pub ready_timeout: Duration,
    /// Longest wait for tgtd to exit after `system delete`; then it is killed.
    pub stop_timeout: Duration,
}

impl ManagedDaemon {
    /// `/usr/sbin/tgtd` with default waits (5 s to start, 5 s to stop).
    pub fn new(extra_args: Vec<String>) -> Self {
        Self {
            binary: PathBuf::from("/usr/sbin/tgtd"),
            extra_args,
            log_file: None,
            ready_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(5),
        }
    }
}

/// Backing-store options for new logical units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingDefaults {
    /// Backing store type (`rdwr` by default; `aio` takes no open flags).
    pub bstype: String,
    /// Logical block size; `None` keeps tgtd's 512.
    pub block_size: Option<u32>,
    /// Open flags (`sync`, `direct`); `None` for none.
    pub bsoflags: Option<String>,
}

impl Default for BackingDefaults {
    fn default() -> Self {
        Self {
            bstype: "rdwr".to_string(),
            block_size: None,
            bsoflags: None,
        }
    }
}

impl TgtConfig {
    /// Talks to a tgtd run by someone else on control port `control_port`.
    pub fn adopt(control_port: u32) -> Self {
        Self::with_lifecycle(control_port, Lifecycle::Adopt)
    }

    /// Runs tgtd as a child on control port `control_port`.
    pub fn managed(control_port: u32, daemon: ManagedDaemon) -> Self {
        Self::with_lifecycle(control_port, Lifecycle::Managed(daemon))
    }

    fn with_lifecycle(control_port: u32, lifecycle: Lifecycle) -> Self {
        Self {
            control_port,
            socket_base: PathBuf::from(DEFAULT_SOCKET_BASE),
            lifecycle,
            request_timeout: Duration::from_secs(5),
            stop_retries: 50,
            stop_retry_interval: Duration::from_millis(100),
            backing: BackingDefaults::default(),
            keep_daemon_running: false,
            leave_running_on_drop: false,
        }
    }

    /// The socket path, `<socket_base>.<control_port>`.
    pub fn socket_path(&self) -> PathBuf {
        socket_path(&self.socket_base, self.control_port)
    }

    /// The command that starts a managed tgtd, if managed.
    pub fn tgtd_command(&self) -> Option<TgtdCommand> {
        match &self.lifecycle {
            Lifecycle::Managed(m) => Some(TgtdCommand {
                binary: m.binary.clone(),
                control_port: self.control_port,
                socket_base: self.socket_base.clone(),
                extra_args: m.extra_args.clone(),
                log_file: m.log_file.clone(),
            }),
            Lifecycle::Adopt => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_and_command() {
        let cfg = TgtConfig::managed(
            7,
            ManagedDaemon::new(vec!["--iscsi".into(), "portal=127.0.0.1:3261".into()]),
        );
        assert_eq!(cfg.socket_path(), PathBuf::from("/var/run/tgtd/socket.7"));
        let cmd = cfg.tgtd_command();
        assert_eq!(cmd.as_ref().map(|c| c.control_port), Some(7));
        assert_eq!(TgtConfig::adopt(0).tgtd_command(), None);
    }
}
