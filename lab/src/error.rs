//! The lab's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, starting, driving or tearing down the lab.
///
/// Messages name the missing prerequisite or the failing step, so that a test that fails
/// because the machine is not set up says so instead of timing out.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab creates network namespaces, tap devices and a bridge: it needs root.
    #[error("the lab needs root (network namespaces, tap devices, a bridge); run it as root")]
    NotRoot,
    /// A host tool, device or package the lab depends on is missing.
    #[error("lab prerequisite missing: {0}")]
    Prerequisite(String),
    /// A file-system or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the lab was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A host command (apt-get, dpkg-deb, depmod, ip, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    HostCommand {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The cache (qemu, kernel, initramfs) could not be built.
    #[error("cannot build the lab cache: {0}")]
    Cache(String),
    /// A VM did not answer on its control channel in time.
    #[error("{node} did not boot within {timeout:?}; end of its console log ({log}):\n{console}")]
    BootTimeout {
        /// The node's name.
        node: String,
        /// How long the lab waited.
        timeout: Duration,
        /// Path of the console log.
        log: PathBuf,
        /// The end of the console log.
        console: String,
    },
    /// The control channel of a VM broke or returned something unexpected.
    #[error("control channel of {node}: {reason}")]
    Channel {
        /// The node's name.
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// A command inside a VM ran longer than its timeout (it was killed).
    #[error("command on {node} timed out after {timeout:?}: {command}")]
    CommandTimeout {
        /// The node's name.
        node: String,
        /// The timeout given.
        timeout: Duration,
        /// The command.
        command: String,
    },
    /// A command (in a VM or the initiator namespace) exited non-zero where success was required.
    #[error("`{command}` on {target} exited {status}\nstdout: {stdout}\nstderr: {stderr}")]
    CommandFailed {
        /// Where it ran (a node name or "initiator").
        target: String,
        /// The command.
        command: String,
        /// Its exit status.
        status: i32,
        /// Its standard output (lossy UTF-8).
        stdout: String,
        /// Its standard error (lossy UTF-8).
        stderr: String,
    },
    /// A condition the lab waits for did not come true in time.
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    WaitTimeout {
        /// What was awaited.
        what: String,
        /// How long the lab waited.
        timeout: Duration,
        /// The last observation, to tell why.
        last: String,
    },
    /// The qemu monitor (QMP) refused a command or broke.
    #[error("qemu monitor of {node}: {reason}")]
    Qmp {
        /// The node's name.
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// Another lab user holds the lab-wide lock for too long.
    #[error("the lab is busy: {0}")]
    Busy(String),
    /// No lab is running (for `attach`, `exec`, `status`).
    #[error("no lab is running: {0}")]
    NotRunning(String),
    /// A caller passed something the lab cannot use (bad node number, bad option).
    #[error("invalid lab request: {0}")]
    Invalid(String),
    /// A DRBD genl capture could not be read or lacks what it must contain.
    #[error("capture {scenario}: {reason}")]
    Capture {
        /// The scenario's name.
        scenario: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A thread of the lab itself failed (a panic in a bring-up thread, a lost spawner).
    #[error("lab internal failure: {0}")]
    Internal(String),
    /// The operation needs a node that is not running (killed, not yet rebooted).
    #[error("{0} is not running")]
    NodeDown(String),
}

/// Result with [`LabError`].
pub type Result<T, E = LabError> = std::result::Result<T, E>;

impl LabError {
    /// Wraps an I/O error with what the lab was doing.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
