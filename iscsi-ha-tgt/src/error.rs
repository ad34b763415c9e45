//! The adapter's error, and how it maps to the port's [`TargetError`].

use std::path::PathBuf;
use std::time::Duration;

use iscsi_ha_core::ports::TargetError;

use crate::daemon::DaemonError;
use crate::guard::GuardError;
use crate::wire::ReplyCode;

/// Why a request to tgtd failed.
#[derive(Debug, thiserror::Error)]
pub enum TgtError {
    /// Nothing listens on the socket (no file, or a file left behind by a stopped tgtd).
    #[error("tgtd is not running on {socket}: {reason}")]
    NotRunning {
        /// The socket path.
        socket: PathBuf,
        /// What connect said.
        reason: String,
    },
    /// tgtd is there but will not talk to us (not root, or another uid/gid than tgtd's).
    #[error("not allowed to talk to tgtd on {socket}: {reason}")]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
        /// What failed.
        reason: String,
    },
    /// tgtd answered with an error code.
    #[error("tgtd refused {request}: {code}")]
    Refused {
        /// What was asked, e.g. `target delete tid 1`.
        request: String,
        /// tgtd's code.
        code: ReplyCode,
    },
    /// Refused before sending, because tgtd would misbehave on it. tgtd was not touched.
    #[error("refused before reaching tgtd: {0}")]
    Guard(#[from] GuardError),
    /// The reply could not be understood, or tgtd closed without one.
    #[error("bad reply from tgtd to {request}: {reason}")]
    Malformed {
        /// What was asked.
        request: String,
        /// What is wrong.
        reason: String,
    },
    /// tgtd did not answer in time.
    #[error("tgtd did not answer {request} within {timeout:?}")]
    Timeout {
        /// What was asked.
        request: String,
        /// The limit.
        timeout: Duration,
    },
    /// Socket I/O failed otherwise.
    #[error("i/o with tgtd on {socket} ({request}): {source}")]
    Io {
        /// The socket path.
        socket: PathBuf,
        /// What was asked.
        request: String,
        /// The error.
        source: std::io::Error,
    },
    /// Starting, watching or stopping the managed tgtd failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

impl TgtError {
    /// tgtd's code, when it answered with one.
    pub fn code(&self) -> Option<ReplyCode> {
        match self {
            TgtError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether tgtd refused because something is still in use (sessions, I/O in flight).
    pub fn is_busy(&self) -> bool {
        self.code().is_some_and(ReplyCode::is_busy)
    }
}

impl From<TgtError> for TargetError {
    fn from(e: TgtError) -> Self {
        let text = e.to_string();
        match e {
            TgtError::NotRunning { .. } => TargetError::NotRunning(text),
            TgtError::PermissionDenied { .. } => TargetError::PermissionDenied(text),
            TgtError::Refused { code, .. } if code.is_busy() => TargetError::Busy(text),
            TgtError::Refused { .. } => TargetError::Refused(text),
            TgtError::Guard(_) => TargetError::Invalid(text),
            TgtError::Malformed { .. } => TargetError::Malformed(text),
            TgtError::Timeout { .. } => TargetError::Busy(text),
            TgtError::Io { .. } => TargetError::Io(text),
            TgtError::Daemon(d) => d.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::ports::RetryHint;

    #[test]
    fn busy_codes_are_retryable_and_guards_are_not() {
        let busy: TargetError = TgtError::Refused {
            request: "target delete tid 1".into(),
            code: ReplyCode::LunActive,
        }
        .into();
        assert!(matches!(busy, TargetError::Busy(_)));
        assert!(busy.retry_can_help());
        let guard: TargetError = TgtError::Guard(GuardError::Tid(0)).into();
        assert!(matches!(guard, TargetError::Invalid(_)));
        assert!(!guard.retry_can_help());
        let down: TargetError = TgtError::NotRunning {
            socket: "/var/run/tgtd/socket.9".into(),
            reason: "no such file".into(),
        }
        .into();
        assert!(down.retry_can_help());
    }
}
