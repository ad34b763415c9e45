//! `iscsi-ha replug-pbds`: XenServer's PBD re-plug, once, now, waiting for it: what the
//! daemon runs after taking over with `[xapi] replug_pbds = true`, for an operator who fixed
//! what made it fail (it runs whatever that setting says).

use crate::config_file::load;
use crate::xapi::{ReplugRun, ReplugSpec, Xe};
use clap::Args;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `replug-pbds`.
#[derive(Debug, Args)]
pub struct ReplugPbdsArgs {
    /// The configuration file (its VIP, IQN and `[xapi]` xe and timeout are used).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
}

/// Plugs the unattached PBDs of the pool's lvmoiscsi SRs on the VIP and our IQN; prints what
/// it found and did. Exits 0 when nothing failed, 1 when something did (with the commands to
/// run by hand), 2 when the configuration cannot be read.
pub fn run(args: &ReplugPbdsArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let xapi = &config.file.xapi;
    let report = ReplugRun::start(ReplugSpec {
        xe: Xe::new(&xapi.xe, xapi.timeout.get()),
        vip: config.vip.address(),
        iqn: config.target.iqn.to_string(),
    })
    .wait();
    for p in &report.plugged {
        println!("plugged PBD {} (host {}, SR {})", p.pbd, p.host, p.sr);
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    println!("{}", report.summary());
    if report.succeeded() {
        return ExitCode::SUCCESS;
    }
    for failure in &report.failures {
        eprintln!("failed: {failure}");
    }
    eprintln!("by hand: {}", report.by_hand());
    ExitCode::FAILURE
}
