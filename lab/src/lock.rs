//! The lab-wide lock: one lab user at a time on a machine.
//!
//! The VMs use fixed names (namespaces `ihalab-*`, taps, 10.99.0.0/24) and the 2 cores would not
//! carry two pairs anyway, so every lab user — this crate's tests, another crate's lab tests (a
//! different test binary), `iha-lab up` — takes an exclusive `flock(2)` on [`LOCK_FILE`]
//! before it touches anything, and waits while another holds it. The file is machine-wide, not
//! in the lab directory, because what it guards (namespace and device names) is machine-wide:
//! two users with different `IHA_LAB_DIR`s still exclude each other. A lab left running by
//! `iha-lab up` keeps the lock through its qemu processes (they inherit the locked descriptor), so
//! the lock is free exactly when no lab VM runs; `iha-lab down` frees it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{LabError, Result};

/// The machine-wide lock file.
pub const LOCK_FILE: &str = "/run/lock/iscsi-ha-lab.lock";

/// Holds the lab-wide lock until dropped.
#[derive(Debug)]
pub struct LabLock {
    file: Flock<File>,
}

impl LabLock {
    /// Takes the lock at [`LOCK_FILE`], waiting up to `wait`; `on_wait` hears once who holds it.
    pub fn acquire(wait: Duration, on_wait: &mut dyn FnMut(&str)) -> Result<Self> {
        Self::acquire_at(Path::new(LOCK_FILE), wait, on_wait)
    }

    /// Takes the lock at `path` (tests of the lock itself use their own file).
    pub fn acquire_at(path: &Path, wait: Duration, on_wait: &mut dyn FnMut(&str)) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        }
        let holder_path = path.with_extension("holder");
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| LabError::io(format!("opening {}", path.display()), e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(file) => {
                    let lock = Self { file };
                    lock.record_holder(&holder_path);
                    return Ok(lock);
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    let holder =
                        std::fs::read_to_string(&holder_path).unwrap_or_else(|_| "unknown".into());
                    if Instant::now() >= deadline {
                        return Err(LabError::Busy(format!(
                            "{} is held by {} (waited {wait:?}; `iha-lab down` stops a lab left \
                             running)",
                            path.display(),
                            holder.trim()
                        )));
                    }
                    if !told {
                        on_wait(&format!(
                            "waiting for the lab lock, held by {}",
                            holder.trim()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err((_, errno)) => {
                    return Err(LabError::io(
                        format!("locking {}", path.display()),
                        std::io::Error::from(errno),
                    ))
                }
            }
        }
    }

    /// The locked descriptor (a lab left running hands it to its qemu processes).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Replaces the holder description others see while they wait (e.g. "a lab left running").
    pub(crate) fn describe_holder(&self, text: &str) {
        let _ = std::fs::write(self.holder_path(), format!("{text}\n"));
    }

    fn holder_path(&self) -> std::path::PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
            .unwrap_or_else(|_| Path::new(LOCK_FILE).to_path_buf())
            .with_extension("holder")
    }

    fn record_holder(&self, holder_path: &Path) {
        let exe = std::env::args().next().unwrap_or_default();
        let text = format!("pid {} ({exe})\n", std::process::id());
        if let Ok(mut f) = File::create(holder_path) {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gets_a_busy_error() {
        let dir = std::env::temp_dir().join(format!("iha-lab-lock-test-{}", std::process::id()));
        let path = dir.join("lock");
        let first = LabLock::acquire_at(&path, Duration::ZERO, &mut |_| {}).unwrap();
        let mut heard = Vec::new();
        let err = LabLock::acquire_at(&path, Duration::from_millis(300), &mut |m| {
            heard.push(m.to_owned())
        })
        .unwrap_err();
        assert!(matches!(err, LabError::Busy(_)), "{err}");
        assert_eq!(heard.len(), 1);
        assert!(
            heard[0].contains(&std::process::id().to_string()),
            "{heard:?}"
        );
        drop(first);
        LabLock::acquire_at(&path, Duration::ZERO, &mut |_| {}).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
