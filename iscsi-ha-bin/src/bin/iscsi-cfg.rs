//! `iscsi-cfg`: the operator's tool, keeping the original add-on's verbs.

use clap::Parser;
use iscsi_ha_bin::cfg_cli::{CfgCli, SplitBrainAction, Verb};
use iscsi_ha_bin::commands::{log, operator, split_brain, status};
use iscsi_ha_bin::control::Request;
use std::process::ExitCode;

fn main() -> ExitCode {
    iscsi_ha_bin::die_quietly_on_a_closed_pipe();
    let cli = CfgCli::parse();
    let socket = cli.socket;
    match cli.verb {
        Verb::Get { file } => {
            let host = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!("Displaying iscsi-ha configuration for {host}");
            iscsi_ha_bin::commands::check_config::run(
                &iscsi_ha_bin::commands::check_config::CheckConfigArgs { file, host: false },
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
