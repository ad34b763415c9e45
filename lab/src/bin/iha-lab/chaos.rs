//! `iha-lab chaos --faults N --seed S`: a lab of its own, iscsi-ha on both nodes, a checking
//! writer through the VIP, and N seeded faults in a row; one line per fault, the summary line
//! last, exit 1 on any violation.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use iscsi_ha_lab::chaos::{self, ChaosOptions};
use iscsi_ha_lab::cluster::{lab_config, Cluster};
use iscsi_ha_lab::Lab;

use crate::cluster_args::ClusterArgs;

/// Options of `chaos`.
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// How many faults.
    #[arg(long, default_value_t = 10)]
    faults: usize,
    /// The schedule's seed (the same seed, the same faults).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds the system may take to settle after a fault.
    #[arg(long, default_value_t = 120)]
    settle_timeout: u64,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(args: &ChaosArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.faults > 0, "--faults must be at least 1");
    let started = Instant::now();
    let lab = Lab::up(args.cluster.lab_options()).context("bringing the lab up")?;
    let c = Cluster::deploy_with(
        &lab,
        &args.cluster.binaries(),
        &lab_config(chaos::run::CONFIG_EXTRA),
    )
    .context("starting iscsi-ha")?;
    let verdict = chaos::run(
        &c,
        &ChaosOptions {
            faults: args.faults,
            seed: args.seed,
            settle_timeout: Duration::from_secs(args.settle_timeout),
        },
        &mut |l| println!("{l}"),
    )?;
    println!(
        "chaos: {:.0} s in all; accelerator {}",
        started.elapsed().as_secs_f64(),
        lab.accel()
    );
    Ok(if verdict.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
