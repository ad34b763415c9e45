//! The adapter's error, and how it maps to the port's [`TargetError`].

use std::path::PathBuf;
use std::time::Duration;

use iscsi_ha_core::ports::{Cause, TargetError};

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
        let e = match e {
            TgtError::Daemon(d) => return d.into(),
            other => other,
        };
        let kind: fn(Cause) -> TargetError = match &e {
            TgtError::NotRunning { .. } => TargetError::NotRunning,
            TgtError::PermissionDenied { .. } => TargetError::PermissionDenied,
            TgtError::Refused { code, .. } if code.is_busy() => TargetError::Busy,
            TgtError::Refused { .. } => TargetError::Refused,
            TgtError::Guard(_) => TargetError::Invalid,
            TgtError::Malformed { .. } => TargetError::Malformed,
            TgtError::Timeout { .. } => TargetError::Busy,
            TgtError::Io { .. } => TargetError::Io,
            TgtError::Daemon(_) => TargetError::Io,
        };
        kind(Cause::of(e))
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

    /// The port's error keeps the adapter's: the chain goes on to the socket's error, and an
    /// integrator can downcast to `TgtError`.
    #[test]
    fn the_ports_error_keeps_the_adapters_error_and_its_source() {
        let e: TargetError = TgtError::Io {
            socket: "/var/run/tgtd/socket.0".into(),
            request: "system show".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::ECONNRESET),
        }
        .into();
        let TargetError::Io(cause) = &e else {
            panic!("{e:?}");
        };
        assert!(matches!(
            cause
                .adapter_error()
                .and_then(|a| a.downcast_ref::<TgtError>()),
            Some(TgtError::Io { .. })
        ));
        let mut chain = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = next {
            chain.push(err.to_string());
            next = err.source();
        }
        assert_eq!(chain.first(), Some(&e.to_string()));
        assert!(
            chain
                .last()
                .is_some_and(|s| s.contains("Connection reset by peer")),
            "{chain:?}"
        );
    }
}
