//! One module per command; each has a clap `Args` struct and a `run` function.

pub mod check_config;
pub mod doctor;
pub mod fence_peer;
pub mod import_legacy;
pub mod log;
pub mod operator;
pub mod replug_pbds;
pub mod run;
pub mod split_brain;
pub mod status;

use crate::control::{DEFAULT_RUN_DIR, SOCKET_NAME};
use std::path::PathBuf;

/// The control socket's default path.
pub fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_RUN_DIR).join(SOCKET_NAME)
}

/// Exit code when the daemon is not running (as the original's init script: 3).
pub const EXIT_NOT_RUNNING: u8 = 3;
