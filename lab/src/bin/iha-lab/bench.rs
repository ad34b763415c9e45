//! `iha-lab bench failover`: switches roles back and forth and measures, per run, the time
//! from the role change to the first good iSCSI read through the VIP from the new master.

use std::process::ExitCode;

use anyhow::Context as _;
use iscsi_ha_lab::cluster::Cluster;
use iscsi_ha_lab::Lab;

use crate::cluster_args::ClusterArgs;

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Role change -> serving on the new master, as the initiator sees it.
    Failover(FailoverArgs),
}

/// Options of `bench failover`.
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Number of switches (directions alternate).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The target backend the daemons use: `tgt` (a managed tgtd) or `lio` (the kernel's).
    #[arg(long, default_value = "tgt", value_parser = ["tgt", "lio"])]
    backend: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(what: &BenchWhat) -> anyhow::Result<ExitCode> {
    let BenchWhat::Failover(args) = what;
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let lab = Lab::up(args.cluster.lab_options()).context("bringing the lab up")?;
    let accel = lab.accel();
    let config = iscsi_ha_lab::cluster::lab_config_for(&args.backend, "");
    let c = Cluster::deploy_with(&lab, &args.cluster.binaries(), &config)
        .context("starting iscsi-ha")?;
    let bench = c.bench_failover(args.runs, |i, f| {
        println!(
            "run {:>2}: {:>7.1} ms (reads {}, role writes {:.1} ms)",
            i + 1,
            f.role_change_to_serving.as_secs_f64() * 1000.0,
            f.attempts,
            f.role_write.as_secs_f64() * 1000.0
        );
    })?;
    println!("accelerator: {accel}, backend: {}", args.backend);
    println!("{}", bench.summary());
    Ok(ExitCode::SUCCESS)
}
