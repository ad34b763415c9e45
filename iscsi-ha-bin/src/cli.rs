//! The command line of `iscsi-ha` (the daemon and its commands). In the library so that man
//! pages, completions and the tests that check documented command lines share one definition.

use crate::commands::{
    check_config, doctor, fence_peer, import_legacy, log, replug_pbds, run, status,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Two-node highly available iSCSI storage: makes DRBD, the iSCSI target and the floating IP
/// follow the pool role.
#[derive(Debug, Parser)]
#[command(name = "iscsi-ha", version = crate::VERSION)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `iscsi-ha`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (in the foreground; systemd runs it as a notify service).
    Run(run::RunArgs),
    /// Show what the daemon reports.
    Status(status::StatusArgs),
    /// Show the daemon's log.
    Log(log::LogArgs),
    /// Check a configuration file and print the effective configuration.
    CheckConfig(check_config::CheckConfigArgs),
    /// Check this host before trusting it with failover: DRBD (module, protocol, fencing,
    /// handler, split-brain policies), multipath, LVM, tgtd at boot, the VIP, the role source,
    /// and the configuration's fingerprint. Exit 0 ok, 1 warnings, 2 errors.
    Doctor(doctor::DoctorArgs),
    /// Convert the original add-on's iscsi-ha.conf to TOML.
    ImportLegacy(import_legacy::ImportLegacyArgs),
    /// DRBD's fence-peer handler: may this host go on writing without its peer? (exit 7 yes,
    /// 1 no; for `handlers { fence-peer "iscsi-ha fence-peer"; }`)
    FencePeer(fence_peer::FencePeerArgs),
    /// XenServer: plug now the unattached PBDs of the pool's lvmoiscsi SRs on the VIP and this
    /// target's IQN (what the daemon does after taking over with [xapi] replug_pbds = true).
    ReplugPbds(replug_pbds::ReplugPbdsArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateAssets(GenerateArgs),
}

/// Arguments of `generate-assets`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write `man/` and `completions/` into.
    pub out: PathBuf,
}
