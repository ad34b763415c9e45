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
