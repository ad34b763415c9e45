//! The `file` role source: a file holding `master` or `slave`, written by a Pacemaker or
//! keepalived notify script (or by hand).

use super::{parse_role_word, FileWatch, RoleSource};
use crate::small_file::{self, WORD_FILE_CAP};
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

/// Reads the role from a file, watched with inotify.
#[derive(Debug)]
pub struct FileRole {
    path: PathBuf,
    watch: FileWatch,
}

impl FileRole {
    /// Watches `path`.
    pub fn new(path: PathBuf) -> std::io::Result<Self> {
        let watch = FileWatch::new(&path)?;
        Ok(Self { path, watch })
    }
}

impl PoolRole for FileRole {
    fn role(&mut self) -> Result<Role, RoleError> {
        match small_file::read(&self.path, WORD_FILE_CAP) {
            Ok(text) => Ok(parse_role_word(&text).unwrap_or_else(|| {
                Role::Unknown(format!(
                    "{} holds {:?}, not master or slave",
                    self.path.display(),
                    text.trim()
                ))
            })),
            Err(e) => Ok(Role::Unknown(format!("role file: {e}"))),
        }
    }
}

impl RoleSource for FileRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.watch.as_fd())
    }
    fn drain_changes(&mut self) -> bool {
        // Any event on the directory wakes a pass, as before: reading the file is cheap.
        self.watch.drain();
        true
    }
}
