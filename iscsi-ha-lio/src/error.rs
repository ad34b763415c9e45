//! The adapter's error, and how it maps to the port's [`TargetError`].

use std::io;
use std::path::PathBuf;

use iscsi_ha_core::ports::{Cause, TargetError};

// Linux errno values (asm-generic/errno-base.h), the same on every architecture we build for.
const EPERM: i32 = 1;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;

/// Why a configfs operation or a spec failed.
#[derive(Debug, thiserror::Error)]
pub enum LioError {
    /// The target core's configfs tree is absent: configfs not mounted or the modules
    /// (`target_core_mod`, `iscsi_target_mod`, `target_core_iblock`) not loaded.
    #[error("LIO is not available at {path}: {hint}")]
    Unavailable {
        /// The directory looked for.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// The kernel refused or failed an operation on the tree.
    #[error("{op} {path}: {source}")]
    Io {
        /// mkdir, rmdir, write, read, symlink, unlink, list.
        op: &'static str,
        /// The configfs path.
        path: PathBuf,
        /// The kernel's errno.
        source: io::Error,
    },
    /// An attribute read back something we cannot understand.
    #[error("unexpected content in {path}: {reason}")]
    Malformed {
        /// The attribute.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The spec asks for something LIO cannot express; nothing was changed.
    #[error("LIO cannot serve this spec: {0}")]
    Unsupported(String),
    /// A failure injected for testing interrupted convergence (see
    /// [`crate::fs::Configfs::fail_after`]); the tree is left as it was at that point.
    #[error("injected failure before {0}")]
    Injected(String),
}

impl LioError {
    pub(crate) fn io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        LioError::Io { op, path, source }
    }
}

impl From<LioError> for TargetError {
    fn from(e: LioError) -> Self {
        let kind: fn(Cause) -> TargetError = match &e {
            LioError::Unavailable { .. } => TargetError::NotRunning,
            LioError::Io { source, .. } => match source.raw_os_error() {
                Some(EPERM | EACCES) => TargetError::PermissionDenied,
                // A device still exported or held; it can go away by itself.
                Some(EBUSY) => TargetError::Busy,
                // EINVAL, EEXIST, ENOTEMPTY...: the kernel refused what we asked.
                Some(_) => TargetError::Refused,
                None => TargetError::Io,
            },
            LioError::Malformed { .. } => TargetError::Malformed,
            LioError::Unsupported(_) => TargetError::Invalid,
            LioError::Injected(_) => TargetError::Io,
        };
        kind(Cause::of(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::ports::RetryHint;

    #[test]
    fn kernel_refusals_and_busy_devices_map_to_the_ports_words() {
        let busy = LioError::io("rmdir", "/x".into(), io::Error::from_raw_os_error(16));
        assert!(matches!(TargetError::from(busy), TargetError::Busy(_)));
        let perm = LioError::io("write", "/x".into(), io::Error::from_raw_os_error(13));
        assert!(matches!(
            TargetError::from(perm),
            TargetError::PermissionDenied(_)
        ));
        let inval = LioError::io("write", "/x".into(), io::Error::from_raw_os_error(22));
        let mapped = TargetError::from(inval);
        assert!(matches!(mapped, TargetError::Refused(_)));
        assert!(!mapped.retry_can_help());
        let gone = TargetError::from(LioError::Unavailable {
            path: "/sys/kernel/config/target".into(),
            hint: "modprobe".into(),
        });
        assert!(matches!(gone, TargetError::NotRunning(_)) && gone.retry_can_help());
        let unsupported = TargetError::from(LioError::Unsupported("two users".into()));
        assert!(matches!(unsupported, TargetError::Invalid(_)));
    }
}
