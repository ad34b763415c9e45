//! Where the lab keeps its cache and the files of a running lab.
//!
//! ```text
//! $IHA_LAB_DIR (default /var/tmp/iscsi-ha-lab)
//! ├── accel.json           cached accelerator verdict (KVM only when a guest really booted)
//! ├── base/                qemu 7.2 + Debian kernel, unpacked; vmlinux; stamp
//! ├── initramfs.cpio       busybox, drbd-utils 8.4 tools, tgt, libiscsi, tcpdump, modules
//! ├── initramfs.stamp      hash of every input of the initramfs
//! └── run/                 the running lab: disks, console logs, sockets, pids, state.json
//!     └── share/           9p-shared into both guests at /host (see `Lab::copy_in`)
//! ```
//!
//! The lock that makes one lab user at a time is machine-wide: [`crate::lock::LOCK_FILE`].

use std::path::{Path, PathBuf};

/// Environment variable that moves the lab's directory (default `/var/tmp/iscsi-ha-lab`).
pub const LAB_DIR_ENV: &str = "IHA_LAB_DIR";

/// The default lab directory: outside the work tree, so `cargo clean` and fresh clones keep it.
pub const DEFAULT_LAB_DIR: &str = "/var/tmp/iscsi-ha-lab";

/// The lab's directory layout.
#[derive(Debug, Clone)]
pub struct LabDirs {
    root: PathBuf,
}

impl LabDirs {
    /// The layout under `$IHA_LAB_DIR`, or under [`DEFAULT_LAB_DIR`].
    pub fn from_env() -> Self {
        let root = std::env::var_os(LAB_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_LAB_DIR), PathBuf::from);
        Self { root }
    }

    /// The layout under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The lab directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cached accelerator verdict.
    pub fn accel_file(&self) -> PathBuf {
        self.root.join("accel.json")
    }

    /// The unpacked qemu and kernel.
    pub fn base(&self) -> PathBuf {
        self.root.join("base")
    }

    /// The guest's initramfs (uncompressed newc cpio).
    pub fn initramfs(&self) -> PathBuf {
        self.root.join("initramfs.cpio")
    }

    /// The files of the running lab.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The directory both guests see at `/host`.
    pub fn share(&self) -> PathBuf {
        self.run().join("share")
    }
}
