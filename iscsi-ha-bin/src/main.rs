//! `iscsi-ha`: the daemon and its commands.

use clap::{Parser, Subcommand};
use iscsi_ha_bin::commands::{check_config, import_legacy};
use std::process::ExitCode;

/// Two-node highly available iSCSI storage: makes DRBD, the iSCSI target and the floating IP
/// follow the pool role.
#[derive(Debug, Parser)]
#[command(name = "iscsi-ha", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file and print the effective configuration.
    CheckConfig(check_config::CheckConfigArgs),
    /// Convert the original add-on's iscsi-ha.conf to TOML.
    ImportLegacy(import_legacy::ImportLegacyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => check_config::run(&args),
        Command::ImportLegacy(args) => match import_legacy::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iscsi-ha import-legacy: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
