//! `iscsi-ha check-config [FILE]`: print the effective configuration, or every error.

use crate::config_file::load;
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
}

/// Prints the effective configuration (defaults filled in, secrets redacted) and exits 0, or
/// prints every error and exits 1.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    match load(&args.file) {
        Ok(config) => {
            println!(
                "# {}: valid; effective configuration follows",
                args.file.display()
            );
            print!("{}", config.to_effective_toml());
            eprintln!("{}", drbd_hint(&config));
            ExitCode::SUCCESS
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
