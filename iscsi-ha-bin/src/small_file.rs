//! Reading the small text files other programs (or people) put in place — the configuration
//! and its secrets, the role file, pool.conf, XAPI's inventory, the saved manual mode — so
//! that whatever is found at the path cannot hang or bloat the daemon: the file is opened
//! without blocking (a FIFO with no writer would otherwise block the open for good) and
//! without becoming our controlling terminal, anything but a regular file is refused after an
//! `fstat` of what was opened (no race with a rename), and at most `cap` bytes are read.

use nix::fcntl::OFlag;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The cap for files that hold a word or a line (the role file, pool.conf, manual mode).
pub const WORD_FILE_CAP: u64 = 4 * 1024;

/// The cap for the configuration, its secrets file and the legacy files it is imported from.
pub const CONFIG_FILE_CAP: u64 = 1024 * 1024;

/// Why a small file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmallFileError {
    /// Opening, inspecting or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Something other than a regular file (a FIFO, a device, a socket, a directory) is there.
    #[error("{path} is {kind}, not a regular file; put a regular file there (write it next to the path and rename it over)")]
    NotRegular {
        /// The path as given.
        path: PathBuf,
        /// What it is, with its article ("a FIFO").
        kind: &'static str,
    },
    /// The file holds more than the cap allows for this kind of file.
    #[error("{path} is larger than {cap} bytes, too large to be what it should be; check what was written there")]
    TooLarge {
        /// The path as given.
        path: PathBuf,
        /// The cap in bytes.
        cap: u64,
    },
    /// The file is not UTF-8.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The path as given.
        path: PathBuf,
    },
}

impl SmallFileError {
    /// Whether nothing is at the path (for files whose absence has a meaning of its own).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == ErrorKind::NotFound)
    }
}

/// Reads the regular file at `path` (symbolic links followed) as text, refusing anything else
/// and anything over `cap` bytes.
pub fn read(path: &Path, cap: u64) -> Result<String, SmallFileError> {
    let io = |source| SmallFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(SmallFileError::NotRegular {
            path: path.to_path_buf(),
            kind: describe(&kind),
        });
    }
    let mut bytes = Vec::new();
    let read = Read::take(&file, cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if u64::try_from(read).unwrap_or(u64::MAX) > cap {
        return Err(SmallFileError::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    String::from_utf8(bytes).map_err(|_| SmallFileError::NotText {
        path: path.to_path_buf(),
    })
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_up_to_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "master\n").unwrap();
        assert_eq!(read(&p, 7).unwrap(), "master\n");
        let err = read(&p, 6).unwrap_err();
        assert!(
            matches!(err, SmallFileError::TooLarge { cap: 6, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&p.display().to_string()));
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t0 = Instant::now();
        let err = read(&p, WORD_FILE_CAP).unwrap_err().to_string();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(err.contains("is a FIFO, not a regular file"), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
    }

    #[test]
    fn a_link_to_a_device_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let err = read(&p, CONFIG_FILE_CAP).unwrap_err().to_string();
        assert!(err.contains("is a character device"), "{err}");
    }

    #[test]
    fn absence_is_told_apart() {
        let err = read(Path::new("/nonexistent/role"), WORD_FILE_CAP).unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().starts_with("cannot read /nonexistent/role"));
    }
}
