//! The pieces behind the `iscsi-ha` and `iscsi-cfg` binaries: reading the configuration files
//! safely, role sources, the control socket, the daemon's poll loop, and one module per command.

pub mod backend;
pub mod cfg_cli;
pub mod cli;
pub mod commands;
pub mod config_file;
pub mod control;
pub mod daemon;
pub mod doctor;
pub mod ha_lizard;
pub mod host_check;
pub mod logging;
pub mod mail;
pub mod manual_state;
pub mod metrics;
pub mod role;
pub mod run_dir;
pub mod serving_history;
pub mod small_file;
pub mod state_file;
pub mod wiring;
pub mod xapi;

/// The version and the git commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("IHA_GIT_COMMIT"), ")");

/// Makes a write to a closed pipe end the process quietly, as for other command-line tools
/// (`iscsi-cfg status | head`), instead of Rust's ignored SIGPIPE turning it into a panic in
/// `println!`. Only for commands whose writes all go to the terminal or a pipe.
pub fn die_quietly_on_a_closed_pipe() {
    // SAFETY: called at the start of main, before any thread exists; SIG_DFL installs no
    // handler code.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
}
