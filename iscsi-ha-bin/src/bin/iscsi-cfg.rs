//! `iscsi-cfg`: the operator's tool, keeping the original add-on's verbs.

use clap::{Parser, Subcommand};
use iscsi_ha_bin::commands::{default_socket, log, operator, split_brain, status};
use iscsi_ha_bin::control::Request;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;
use std::process::ExitCode;

/// The operator's tool for iscsi-ha: status, manual mode, become-primary / become-secondary.
#[derive(Debug, Parser)]
#[command(name = "iscsi-cfg", version = iscsi_ha_bin::VERSION, disable_version_flag = true)]
struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// The daemon's control socket.
    #[arg(long, global = true, default_value_os_t = default_socket())]
    socket: PathBuf,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
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
        #[command(subcommand)]
        action: Option<SplitBrainAction>,
    },
}

#[derive(Debug, Subcommand)]
enum SplitBrainAction {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli.socket;
    match cli.verb {
        Verb::Get { file } => {
            let host = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!("Displaying iscsi-ha configuration for {host}");
            iscsi_ha_bin::commands::check_config::run(
                &iscsi_ha_bin::commands::check_config::CheckConfigArgs { file },
            )
        }
        Verb::Status { watch, json } => status::run(&status::StatusArgs {
            json,
            watch,
            socket,
        }),
        Verb::Log { follow } => match log::run(&log::LogArgs { follow }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iscsi-cfg log: {e:#}");
                ExitCode::FAILURE
            }
        },
        Verb::ManualModeEnable => operator::send(&socket, &Request::ManualModeEnable),
        Verb::ManualModeDisable => operator::send(&socket, &Request::ManualModeDisable),
        Verb::BecomePrimary { force } => operator::send(&socket, &Request::BecomePrimary { force }),
        Verb::BecomeSecondary => operator::send(&socket, &Request::BecomeSecondary),
        Verb::Reset => operator::send(&socket, &Request::Reset),
        Verb::Reload => operator::send(&socket, &Request::Reload),
        Verb::SplitBrain { action: None } => split_brain::show(&socket),
        Verb::SplitBrain {
            action:
                Some(SplitBrainAction::Resolve {
                    discard_local_data,
                    yes,
                }),
        } => operator::send(
            &socket,
            &Request::SplitBrainResolve {
                discard_local_data,
                yes,
            },
        ),
        Verb::SplitBrain {
            action: Some(SplitBrainAction::Reconnect),
        } => operator::send(&socket, &Request::SplitBrainReconnect),
    }
}
