//! `iha-lab exec <node> -- <command...>`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use iscsi_ha_lab::Lab;

/// Options of `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Node 1 or 2.
    node: u8,
    /// Timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The command; its words are joined with spaces and run by the guest's `sh`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::attach()?;
    let node = lab.try_node(args.node)?;
    let out = node.exec_timeout(&args.command.join(" "), Duration::from_secs(args.timeout))?;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    Ok(super::exit_code(out.status))
}
