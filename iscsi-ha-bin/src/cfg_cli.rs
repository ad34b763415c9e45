//! The command line of `iscsi-cfg`, the operator's tool (here, not in the binary, so that
//! `iscsi-ha generate-assets` can write its man pages and completions too).

use crate::commands::default_socket;
use clap::{Parser, Subcommand};
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;

/// The operator's tool for iscsi-ha: status, manual mode, become-primary / become-secondary.
#[derive(Debug, Parser)]
#[command(name = "iscsi-cfg", version = crate::VERSION, disable_version_flag = true)]
pub struct CfgCli {
    /// Print the version (`-v` as the original add-on's tool had it).
    #[arg(short = 'V', long = "version", visible_short_alias = 'v', action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// The daemon's control socket.
    #[arg(long, global = true, default_value_os_t = default_socket())]
    pub socket: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
/// The verbs (those of the original add-on, plus reset, reload and split-brain).
pub enum Verb {
    /// Show this host's configuration.
    Get {
        /// The configuration file.
        #[arg(default_value = DEFAULT_CONFIG_PATH)]
        file: PathBuf,
    },
    /// Show the status (refreshing with --watch).
    Status {
        /// Refresh every 2 seconds.
        #[arg(long)]
        watch: bool,
        /// JSON for tools.
        #[arg(long)]
        json: bool,
    },
    /// Show the daemon's log.
    Log {
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Take storage decisions away from the pool role, holding the current state.
    ManualModeEnable,
    /// Follow the pool role again (refused while the DRBD role contradicts it).
    ManualModeDisable,
    /// In manual mode: serve from this host (refused while the peer is Primary or the VIP answers elsewhere).
    BecomePrimary {
        /// Promote even a disk not known to be current (the peer is gone for good). Can
        /// cause a split brain if the peer was Primary meanwhile.
        #[arg(long)]
        force: bool,
    },
    /// In manual mode: stop serving from this host.
    BecomeSecondary,
    /// Forget restart budgets after fixing what kept failing.
    Reset,
    /// Make the daemon re-read its configuration.
    Reload,
    /// Show a DRBD split brain and how to recover; `resolve` and `reconnect` do it.
    SplitBrain {
        /// Recover; without one, show the split brain.
        #[command(subcommand)]
        action: Option<SplitBrainAction>,
    },
}

#[derive(Debug, Subcommand)]
/// Split-brain recovery steps.
pub enum SplitBrainAction {
    /// On the host whose changes are to be thrown away: demote and reconnect discarding them.
    Resolve {
        /// Throw this host's changes to the split-brained resources away.
        #[arg(long)]
        discard_local_data: bool,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// On the surviving host: reconnect, keeping its data (the peer resyncs from it).
    Reconnect,
}
