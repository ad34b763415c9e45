//! `iscsi-ha`: the daemon and its commands.

use clap::{Parser, Subcommand};
use iscsi_ha_bin::commands::{check_config, import_legacy, log, run, status};
use std::process::ExitCode;

/// Two-node highly available iSCSI storage: makes DRBD, the iSCSI target and the floating IP
/// follow the pool role.
#[derive(Debug, Parser)]
#[command(name = "iscsi-ha", version = iscsi_ha_bin::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (in the foreground; systemd runs it as a notify service).
    Run(run::RunArgs),
    /// Show what the daemon reports.
    Status(status::StatusArgs),
    /// Show the daemon's log.
    Log(log::LogArgs),
    /// Check a configuration file and print the effective configuration.
    CheckConfig(check_config::CheckConfigArgs),
    /// Convert the original add-on's iscsi-ha.conf to TOML.
    ImportLegacy(import_legacy::ImportLegacyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Status(args) => return status::run(&args),
        Command::Log(args) => log::run(&args),
        Command::CheckConfig(args) => return check_config::run(&args),
        Command::ImportLegacy(args) => import_legacy::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iscsi-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}
