//! The daemon's run directory and its host-wide lock.
//!
//! The run directory holds the control socket; only root (or the daemon's user) may reach it.
//! We create it 0700 when it is missing, and never change the mode of a directory that is
//! already there: `--run-dir /run` must not make `/run` private. An existing directory that
//! others could write to, or that someone else owns, is refused instead.
//!
//! Two daemons with different run directories would still manage the same DRBD resources,
//! target and VIP, so every daemon on a host takes one lock (`/run/lock/iscsi-ha.lock`) first.

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::geteuid;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The host-wide lock's default path.
pub const DEFAULT_LOCK_FILE: &str = "/run/lock/iscsi-ha.lock";

/// Why the run directory or the lock cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A system call on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The path exists and is not a directory (a symlink included: it could point anywhere).
    #[error("{path} is not a directory (a symbolic link is refused too); choose another --run-dir or remove it")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory exists and others could plant a socket in it, or it belongs to another user.
    #[error("{path} is owned by uid {uid} with mode {mode:04o}; the control socket needs a directory owned by root that group and others cannot write: choose another --run-dir (a missing one is created 0700) or fix it yourself")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// Another daemon holds the host-wide lock.
    #[error("another iscsi-ha daemon ({holder}) holds {path} and manages this host's storage; stop it first (systemctl stop iscsi-ha), or give a test daemon its own --lock-file")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// `pid N`, or why the pid is unknown.
        holder: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `dir` ready for the control socket: created 0700 when missing (its parents with the
/// usual 0755), else checked and left as it is.
pub fn prepare(dir: &Path) -> Result<(), RunDirError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => check_existing(dir, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Created meanwhile by someone else: check it like any existing directory.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(dir)(e)),
            }
            let meta = fs::symlink_metadata(dir).map_err(io(dir))?;
            check_existing(dir, &meta)
        }
        Err(e) => Err(io(dir)(e)),
    }
}

fn check_existing(dir: &Path, meta: &fs::Metadata) -> Result<(), RunDirError> {
    if !meta.file_type().is_dir() {
        return Err(RunDirError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let uid = meta.uid();
    let mode = meta.mode() & 0o7777;
    let owner_ok = uid == 0 || uid == geteuid().as_raw();
    // A sticky world-writable directory (/tmp) still lets others create names in it.
    if !owner_ok || mode & 0o022 != 0 {
        return Err(RunDirError::Unsafe {
            path: dir.to_path_buf(),
            uid,
            mode,
        });
    }
    Ok(())
}

/// The host-wide lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct HostLock {
    _lock: Flock<File>,
}

/// Takes the host-wide lock at `path` without waiting, writing our pid into it; refused
/// (naming the holder's pid) while another daemon holds it.
pub fn lock(path: &Path) -> Result<HostLock, RunDirError> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(io(path))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let holder = match file.read_to_string(&mut text) {
                Ok(_) if !text.trim().is_empty() => format!("pid {}", text.trim()),
                Ok(_) => "pid not yet written".to_string(),
                Err(e) => format!("pid unreadable: {e}"),
            };
            return Err(RunDirError::Locked {
                path: path.to_path_buf(),
                holder,
            });
        }
        Err((_, errno)) => return Err(io(path)(errno.into())),
    };
    let pid = std::process::id();
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{pid}"))
        .map_err(io(path))?;
    Ok(HostLock { _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_missing_run_dir_is_created_private_and_an_existing_one_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("a/b/run");
        prepare(&new).unwrap();
        assert_eq!(mode(&new), 0o700);

        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755, "an existing directory keeps its mode");
    }

    #[test]
    fn a_writable_or_foreign_run_dir_or_a_symlink_is_refused_and_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        for bits in [0o777, 0o1777, 0o775] {
            let dir = tmp.path().join(format!("open{bits:o}"));
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(bits)).unwrap();
            let err = prepare(&dir).unwrap_err().to_string();
            assert!(
                err.contains(&format!("with mode {bits:04o}")) && err.contains("--run-dir"),
                "{err}"
            );
            assert_eq!(mode(&dir), bits);
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(matches!(
            prepare(&link),
            Err(RunDirError::NotADirectory { .. })
        ));
    }

    #[test]
    fn a_second_holder_of_the_host_lock_is_refused_with_the_first_ones_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock/iscsi-ha.lock");
        let held = lock(&path).unwrap();
        let err = lock(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("(pid {})", std::process::id())) && err.contains("holds"),
            "{err}"
        );
        drop(held);
        assert!(lock(&path).is_ok(), "free again once the holder is gone");
    }
}
