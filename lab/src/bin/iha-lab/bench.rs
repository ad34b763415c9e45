//! `iha-lab bench failover`: switches roles back and forth and measures, per run, the time
//! from the role change to the first good iSCSI read through the VIP from the new master.
//! Then, from the daemons' phase stamps (`iscsi_ha_lab::phases`), where the time went on each
//! guest's own clock: role seen -> serving on the new master and each step of it, role seen ->
//! released on the old one. Those figures leave out the lab's command channel.

use std::process::ExitCode;

use anyhow::Context as _;
use iscsi_ha_lab::cluster::{percentile_ms, Cluster};
use iscsi_ha_lab::phases::{self, Breakdown};
use iscsi_ha_lab::Lab;

use crate::cluster_args::ClusterArgs;

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Role change -> serving on the new master, as the initiator sees it.
    Failover(FailoverArgs),
}

/// Which failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Both role files rewritten at once: the old master releases, the new one takes over.
    Planned,
    /// The master VM killed, then the survivor's role set to master (as the pool would after
    /// noticing), under a long-lived initiator session writing through the VIP.
    Hard,
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
    /// Which failover.
    #[arg(long, value_enum, default_value_t = Scenario::Planned)]
    scenario: Scenario,
    /// `[tickle]` on or off (the hard scenario's comparison).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    tickle: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(what: &BenchWhat) -> anyhow::Result<ExitCode> {
    let BenchWhat::Failover(args) = what;
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    if args.scenario == Scenario::Hard {
        anyhow::ensure!(
            args.backend == "tgt",
            "--scenario hard runs with tgt only; measure --backend {} with --scenario planned",
            args.backend
        );
        return crate::bench_hard::run(args.runs, args.tickle, &args.cluster);
    }
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
    // Run i goes 1->2 when i is even: node 2 becomes master ceil(runs/2) times, node 1
    // floor(runs/2) times (its first serve, before the runs, is left out by taking the last).
    let to_two = args.runs.div_ceil(2);
    let to_one = args.runs / 2;
    let logs = [c.daemon_log(1), c.daemon_log(2)].map(|l| phases::parse_log(&l));
    let last = |node: usize, role: &str, until: &str, n: usize| -> anyhow::Result<Vec<Breakdown>> {
        let all = phases::breakdowns(&logs[node - 1], role, until);
        anyhow::ensure!(
            all.len() >= n,
            "node{node}'s log holds {} switches to {role} that reached {until}, {n} expected: are the phase stamps missing?",
            all.len()
        );
        Ok(all[all.len() - n..].to_vec())
    };
    let mut new_master = last(2, "master", "serving", to_two)?;
    new_master.extend(last(1, "master", "serving", to_one)?);
    let mut old_master = last(1, "slave", "released", to_two)?;
    old_master.extend(last(2, "slave", "released", to_one)?);
    print_breakdown("new master: role seen->serving", &new_master);
    print_breakdown("old master: role seen->released", &old_master);
    Ok(ExitCode::SUCCESS)
}

/// One summary line for the totals, then one per step and one for the time between steps.
pub fn print_breakdown(what: &str, runs: &[Breakdown]) {
    let line = |name: &str, mut d: Vec<std::time::Duration>| {
        d.sort();
        format!(
            "p50={:.1} ms p99={:.1} ms max={:.1} ms (n={}) {name}",
            percentile_ms(&d, 50),
            percentile_ms(&d, 99),
            percentile_ms(&d, 100),
            d.len()
        )
    };
    println!(
        "failover {what} (guest clock): {}",
        line("", runs.iter().map(|b| b.total).collect())
    );
    for (name, d) in phases::by_phase(runs) {
        println!("  {}", line(&name, d));
    }
    println!(
        "  {}",
        line(
            "between steps (waiting for events, observing)",
            runs.iter().map(Breakdown::between_steps).collect()
        )
    );
}
