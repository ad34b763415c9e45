//! `iscsi-ha`: the daemon and its commands.

use clap::{Args, CommandFactory, Parser, Subcommand};
use iscsi_ha_bin::cfg_cli::CfgCli;
use iscsi_ha_bin::commands::{
    check_config, fence_peer, import_legacy, log, replug_pbds, run, status,
};
use std::path::{Path, PathBuf};
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
struct GenerateArgs {
    /// Directory to write `man/` and `completions/` into.
    out: PathBuf,
}

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
