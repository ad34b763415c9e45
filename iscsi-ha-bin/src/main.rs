//! `iscsi-ha`: the daemon and its commands.

use clap::{CommandFactory, Parser};
use iscsi_ha_bin::cfg_cli::CfgCli;
use iscsi_ha_bin::cli::{Cli, Command, GenerateArgs};
use iscsi_ha_bin::commands::{
    check_config, doctor, fence_peer, import_legacy, log, replug_pbds, run, status,
};
use std::path::Path;
use std::process::ExitCode;

/// Man pages (`iscsi-ha.1`, `iscsi-cfg.1` and one per command) and bash, zsh and fish
/// completions of both tools.
fn generate_assets(args: &GenerateArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let man = args.out.join("man");
    let completions = args.out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("cannot write man pages to {}", man.display()))?;
    clap_mangen::generate_to(CfgCli::command(), &man)
        .with_context(|| format!("cannot write man pages to {}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut cmd = Cli::command();
        let written = clap_complete::generate_to(shell, &mut cmd, "iscsi-ha", &completions)
            .with_context(|| format!("cannot write {shell} completions"))?;
        println!("{}", written.display());
        let mut cmd = CfgCli::command();
        let written = clap_complete::generate_to(shell, &mut cmd, "iscsi-cfg", &completions)
            .with_context(|| format!("cannot write {shell} completions"))?;
        println!("{}", written.display());
    }
    println!("{}", Path::new(&man).display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon and DRBD's handler keep Rust's SIGPIPE-ignored default: a client that hangs
    // up must cost one failed write, not the process.
    if !matches!(cli.command, Command::Run(_) | Command::FencePeer(_)) {
        iscsi_ha_bin::die_quietly_on_a_closed_pipe();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Status(args) => return status::run(&args),
        Command::Log(args) => log::run(&args),
        Command::CheckConfig(args) => return check_config::run(&args),
        Command::Doctor(args) => return doctor::run(&args),
        Command::ImportLegacy(args) => import_legacy::run(&args),
        Command::FencePeer(args) => return fence_peer::run(&args),
        Command::ReplugPbds(args) => return replug_pbds::run(&args),
        Command::GenerateAssets(args) => generate_assets(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iscsi-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}
