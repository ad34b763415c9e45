//! `iscsi-ha check-config [FILE]`: print the effective configuration, or every error.

use crate::config_file::load;
use crate::host_check;
use clap::Args;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The configuration file.
    #[arg(default_value = DEFAULT_CONFIG_PATH)]
    pub file: PathBuf,
    /// Also check what the file points at on this host: the VIP's interface and subnet, the
    /// LUNs' block devices, the managed tgtd, the role source's file.
    #[arg(long)]
    pub host: bool,
}

/// Prints the effective configuration (defaults filled in, secrets redacted) and its warnings
/// (which do not stop the daemon) and exits 0, or prints every error and exits 1; with `--host`,
/// also exits 1 on any error found on this host.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    match load(&args.file) {
        Ok(config) => {
            println!(
                "# {}: valid; effective configuration follows",
                args.file.display()
            );
            print!("{}", config.to_effective_toml());
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            if !config.warnings.is_empty() {
                eprintln!(
                    "{}: {} warning(s); iscsi-ha starts with them",
                    args.file.display(),
                    config.warnings.len()
                );
            }
            eprintln!("{}", drbd_hint(&config));
            if !args.host {
                return ExitCode::SUCCESS;
            }
            let findings = host_check::check(&config);
            for f in &findings {
                eprintln!("{}: {f}", args.file.display());
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == host_check::Severity::Error)
                .count();
            if errors == 0 {
                eprintln!(
                    "{}: what it points at on this host is in place",
                    args.file.display()
                );
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{}: {errors} problem(s) on this host; iscsi-ha would not work here as configured",
                    args.file.display()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{}: invalid configuration; iscsi-ha will not start with it",
                args.file.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// What the DRBD side of each resource must say for the one-server rules to hold; DRBD's own
/// files are not ours to read here, so it is a reminder with the example to copy.
fn drbd_hint(config: &iscsi_ha_core::config::Config) -> String {
    let names: Vec<String> = config.resources.iter().map(ToString::to_string).collect();
    format!(
        "hint: in DRBD, give every resource ({}) `protocol C`, `fencing resource-and-stonith` and `handlers {{ fence-peer \"/usr/sbin/iscsi-ha fence-peer\"; }}`, and no automatic split-brain recovery: without them a paused or cut-off master can accept writes that go two ways (example: /usr/share/doc/iscsi-ha/drbd-iscsi1.res.example)",
        names.join(", ")
    )
}
