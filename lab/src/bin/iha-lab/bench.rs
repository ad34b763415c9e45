//! `iha-lab bench failover`: switches roles back and forth and measures, per run, the time
//! from the role change to the first good iSCSI read through the VIP from the new master.
//! Then, from the daemons' phase stamps (`iscsi_ha_lab::phases`), where the time went on each
//! guest's own clock: role seen -> serving on the new master and each step of it, role seen ->
//! released on the old one. Those figures leave out the lab's command channel. Last, as many
//! switches again under a long-lived initiator session writing through the VIP
//! (`iscsi_ha_lab::session`): the I/O gap an initiator feels in a planned switch, with every
//! acknowledged write read back. `--scenario client-link` measures that gap when the old
//! master has lost only its client-facing link first. `--vip ipv6` runs the planned scenario
//! through the IPv6 VIP (fd99::100, moved by unsolicited neighbour advertisements).

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use iscsi_ha_lab::cluster::{percentile_ms, Cluster};
use iscsi_ha_lab::net::{node_ip, VipFamily};
use iscsi_ha_lab::phases::{self, Breakdown};
use iscsi_ha_lab::session::{io_gap, not_read_back, Session};
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
    /// The VIP on the nodes' spare NIC; the master loses only that link (replication goes on),
    /// then the roles are switched, under a long-lived initiator session.
    ClientLink,
}

/// The floating address's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vip {
    /// 10.99.0.100/24, announced with gratuitous ARP.
    Ipv4,
    /// fd99::100/64, announced with unsolicited neighbour advertisements; the initiator reads
    /// through `iscsi://[fd99::100]/...`.
    Ipv6,
}

impl Vip {
    fn family(self) -> VipFamily {
        match self {
            Vip::Ipv4 => VipFamily::V4,
            Vip::Ipv6 => VipFamily::V6,
        }
    }
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
    /// The VIP's address family (the planned scenario).
    #[arg(long, value_enum, default_value_t = Vip::Ipv4)]
    vip: Vip,
    /// `[tickle]` on or off (the hard and client-link scenarios' comparison).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    tickle: bool,
    /// Replicated resources, each exported as a LUN of the one target (1..=8): how the cost
    /// grows with them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    resources: u8,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(what: &BenchWhat) -> anyhow::Result<ExitCode> {
    let BenchWhat::Failover(args) = what;
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    if args.scenario != Scenario::Planned {
        anyhow::ensure!(
            args.vip == Vip::Ipv4,
            "--scenario {:?} runs with the IPv4 VIP only; measure --vip ipv6 with --scenario planned",
            args.scenario
        );
        anyhow::ensure!(
            args.backend == "tgt",
            "--scenario {:?} runs with tgt only; measure --backend {} with --scenario planned",
            args.scenario,
            args.backend
        );
    }
    match args.scenario {
        Scenario::Planned => {}
        Scenario::Hard => {
            return crate::bench_hard::run(
                args.runs,
                args.tickle,
                usize::from(args.resources),
                &args.cluster,
            )
        }
        Scenario::ClientLink => return client_link(args),
    }
    let resources = usize::from(args.resources);
    let lab = Lab::up(args.cluster.lab_options_for(resources)).context("bringing the lab up")?;
    let accel = lab.accel();
    let family = args.vip.family();
    let config = iscsi_ha_lab::cluster::lab_config_for_family(&args.backend, resources, family, "");
    let c = Cluster::deploy_with_vip(&lab, &args.cluster.binaries(), family, &config)
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
    println!(
        "accelerator: {accel}, backend: {}, resources: {resources}, vip: {}",
        args.backend,
        family.vip()
    );
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
    // After run i (from 0) node 2 serves when i is even: after `runs` runs, node 2 if odd.
    let serving = if args.runs % 2 == 1 { 2 } else { 1 };
    let gaps = io_gap_runs(&lab, &c, serving, args.runs, false)?;
    let what = match args.vip {
        Vip::Ipv4 => format!("planned ({})", args.backend),
        Vip::Ipv6 => format!("planned ({}, IPv6 VIP)", args.backend),
    };
    print_io_gaps(&what, gaps);
    Ok(ExitCode::SUCCESS)
}

/// `--scenario client-link`: the VIP on `eth1`, whose link alone the master loses before each
/// switch; the initiator's connections to it hang with no reset until tickled or timed out.
fn client_link(args: &FailoverArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::up(args.cluster.lab_options()).context("bringing the lab up")?;
    for id in [1, 2] {
        lab.node(id).bring_up_spare_nic()?;
    }
    let config = iscsi_ha_lab::cluster::lab_config_on("eth1", &tickle_section(args.tickle));
    let c = Cluster::deploy_with(&lab, &args.cluster.binaries(), &config)
        .context("starting iscsi-ha")?;
    c.set_role(1, "master")?;
    c.wait_serving(1, GAP_TIMEOUT)?;
    let gaps = io_gap_runs(&lab, &c, 1, args.runs, true)?;
    println!("accelerator: {}", lab.accel());
    print_io_gaps(
        &format!(
            "client-link (tickle {})",
            if args.tickle { "on" } else { "off" }
        ),
        gaps,
    );
    Ok(ExitCode::SUCCESS)
}

/// `[tickle]` between the lab's nodes over their replication addresses, on or off.
pub fn tickle_section(enabled: bool) -> String {
    format!(
        "[tickle]\nhosts = [\"{}\", \"{}\"]\nenabled = {enabled}\n",
        node_ip(1),
        node_ip(2)
    )
}

fn print_io_gaps(what: &str, mut gaps: Vec<Duration>) {
    gaps.sort();
    println!(
        "failover {what}: io-gap: p50={:.0} ms p99={:.0} ms max={:.0} ms (n={})",
        percentile_ms(&gaps, 50),
        percentile_ms(&gaps, 99),
        percentile_ms(&gaps, 100),
        gaps.len()
    );
}

/// Where the io-gap runs write: each in its own 1 MiB region from 1 MiB on (the switches
/// before them read a pattern from block 0), so at most [`MAX_GAP_RUNS`] fit the 64 MiB disk.
const GAP_BASE: u64 = 1 << 20;
const GAP_REGION: u64 = 1 << 20;
const MAX_GAP_RUNS: usize = 60;
/// Steady writes before each switch, and writes after the new master serves.
const GAP_STEADY: Duration = Duration::from_secs(2);
const GAP_AFTER: Duration = Duration::from_secs(3);
const GAP_TIMEOUT: Duration = Duration::from_secs(120);

/// `runs` planned switches (from node `serving`, alternating) each under its own initiator
/// session, the old master first losing its spare NIC's link if `cut_spare` (restored when the
/// session stops); per switch the longest write stall.
/// Fails when an acknowledged write does not read back.
fn io_gap_runs(
    lab: &Lab,
    c: &Cluster<'_>,
    serving: u8,
    runs: usize,
    cut_spare: bool,
) -> anyhow::Result<Vec<Duration>> {
    let mut master = serving;
    let mut gaps = Vec::new();
    for i in 0..runs.min(MAX_GAP_RUNS) {
        let to = 3 - master;
        let base = GAP_BASE + u64::try_from(i).unwrap_or(0) * GAP_REGION;
        let tag = u8::try_from(i % 200).unwrap_or(0) + 1;
        let session = Session::start(lab, &c.lun_url(), base, tag, Duration::from_millis(50))?;
        thread::sleep(GAP_STEADY);
        if cut_spare {
            lab.node(master).cut_spare_link()?;
        }
        c.switch_roles(master, to)?;
        c.wait_serving(to, GAP_TIMEOUT)?;
        thread::sleep(GAP_AFTER);
        let writes = session.stop()?;
        if cut_spare {
            lab.node(master).restore_spare_link()?;
        }
        let gap = io_gap(&writes);
        let bad = not_read_back(lab, &c.lun_url(), &writes)?;
        anyhow::ensure!(
            bad.is_empty(),
            "io-gap run {}: {} acknowledged writes do not read back on node{to}: {bad:?}",
            i + 1,
            bad.len()
        );
        println!(
            "io-gap run {:>2}: node{master} -> node{to}: {:>8.1} ms; {} writes, {} acked, all read back",
            i + 1,
            gap.as_secs_f64() * 1000.0,
            writes.len(),
            writes.iter().filter(|w| w.acked).count()
        );
        gaps.push(gap);
        master = to;
    }
    Ok(gaps)
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
