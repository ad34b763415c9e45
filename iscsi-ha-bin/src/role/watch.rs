//! Watching one file for changes with inotify. The directory is watched, not the file, because
//! tools replace files by renaming a new one over them (and pool.conf may not exist yet).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// An inotify watch on a file's directory, filtered to that file's name.
#[derive(Debug)]
pub struct FileWatch {
    inotify: Inotify,
    name: OsString,
    path: PathBuf,
}

impl FileWatch {
    /// Watches `path` (its directory must exist).
    pub fn new(path: &Path) -> std::io::Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} names no file", path.display()),
                )
            })?
            .to_os_string();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            dir,
            // Not IN_MODIFY or IN_CREATE: they fire while a writer has truncated the file and
            // not yet written it, and reading then would see an empty (unknown) role.
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_ATTRIB,
        )?;
        Ok(Self {
            inotify,
            name,
            path: path.to_path_buf(),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads pending events; `true` if any concerned the watched file.
    pub fn drain(&mut self) -> bool {
        let mut hit = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            hit |= events
                .iter()
                .any(|e| e.name.as_deref() == Some(self.name.as_os_str()));
        }
        hit
    }
}

impl AsFd for FileWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}
