//! `iscsi-ha doctor [FILE] [--json]`: checks this host before it is trusted with failover.

use crate::config_file::load;
use crate::doctor;
use clap::Args;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The configuration file.
    #[arg(default_value = DEFAULT_CONFIG_PATH)]
    pub file: PathBuf,
    /// Print the findings as JSON (`fingerprint`, `findings[]` with `level`, `check`, `what`,
    /// `todo`, and `summary`), for tools.
    #[arg(long)]
    pub json: bool,
}

/// Prints one line per finding and a summary (or JSON). Exits 0 when every check is ok, 1 with
/// warnings only, 2 with any error (an invalid configuration included).
pub fn run(args: &DoctorArgs) -> ExitCode {
    let config = match load(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{}: invalid configuration; fix it first (iscsi-ha check-config)",
                args.file.display()
            );
            return ExitCode::from(2);
        }
    };
    let report = doctor::run(&config);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("cannot print the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", report.render());
    }
    ExitCode::from(report.exit_code())
}
