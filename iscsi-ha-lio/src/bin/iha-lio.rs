//! `iha-lio`: the LIO adapter from the command line, for debugging and the lab.
//!
//! ```text
//! iha-lio [--root DIR] serve --spec FILE [--portal IP:PORT] [--fail-after N]
//! iha-lio [--root DIR] stop --spec FILE [--fail-after N]
//! iha-lio [--root DIR] status [--spec FILE]     # with a spec: exit 1 unless served as it says,
//!                                             # write durability included
//! ```
//! The spec is the core's `TargetSpec` as JSON. `--fail-after N` lets N configfs changes
//! through and fails the next, leaving the tree as an interrupted run would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_core::target::TargetSpec;
use iscsi_ha_lio::{LioConfig, LioTarget};

/// Largest spec file read.
const MAX_SPEC_BYTES: u64 = 1 << 20;

#[derive(Debug, Parser)]
#[command(name = "iha-lio", version, about = "Drive LIO through configfs")]
struct Cli {
    /// The target core's configfs root.
    #[arg(long, default_value = "/sys/kernel/config/target")]
    root: PathBuf,
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Converge LIO on the spec and enable the TPG.
    Serve {
        /// The TargetSpec, as JSON.
        #[arg(long)]
        spec: PathBuf,
        /// The portal to listen on.
        #[arg(long, default_value = "0.0.0.0:3260")]
        portal: SocketAddr,
        /// Fail the change after this many.
        #[arg(long)]
        fail_after: Option<u32>,
    },
    /// Tear the spec's target and storage objects down.
    Stop {
        /// The TargetSpec, as JSON.
        #[arg(long)]
        spec: PathBuf,
        /// Fail the change after this many.
        #[arg(long)]
        fail_after: Option<u32>,
    },
    /// Print what LIO exports, as JSON; with a spec, exit 1 unless it is fully served.
    Status {
        /// The TargetSpec, as JSON.
        #[arg(long)]
        spec: Option<PathBuf>,
    },
}

fn read_spec(path: &PathBuf) -> anyhow::Result<TargetSpec> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_SPEC_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = LioConfig {
        root: cli.root,
        ..LioConfig::default()
    };
    match cli.command {
        Verb::Serve {
            spec,
            portal,
            fail_after,
        } => {
            let spec = read_spec(&spec)?;
            config.portal = portal;
            let mut lio = LioTarget::new(config);
            lio.configfs().fail_after(fail_after);
            lio.serve(&spec).context("serve")?;
        }
        Verb::Stop { spec, fail_after } => {
            let spec = read_spec(&spec)?;
            let mut lio = LioTarget::new(config);
            lio.configfs().fail_after(fail_after);
            lio.stop(&spec).context("stop")?;
        }
        Verb::Status { spec } => {
            let mut lio = LioTarget::new(config);
            let status = lio.status().context("status")?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            if let Some(spec) = spec {
                let spec = read_spec(&spec)?;
                if !spec.is_served_by(&status) || !spec.durability_mismatches(&status).is_empty() {
                    eprintln!("not served as specified");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iha-lio: {e:#}");
            ExitCode::from(2)
        }
    }
}
