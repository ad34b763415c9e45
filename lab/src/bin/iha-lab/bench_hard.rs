//! `iha-lab bench failover --scenario hard [--tickle false]`: the master VM is killed under a
//! long-lived initiator session writing through the VIP (`iscsi_ha_lab::session`), then the
//! survivor's role is set to master, as the pool would after noticing. Per run: the longest
//! write stall (the I/O gap the initiator felt), the survivor's role seen -> serving on its own
//! clock and how much of it was spent held before promoting (DRBD still seeing its peer), and
//! whether every acknowledged write reads back. The killed node is rebooted, resynchronised
//! and made slave before the next run, which kills the new master.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use iscsi_ha_lab::cluster::{percentile_ms, Cluster};
use iscsi_ha_lab::phases::{self, Edge};
use iscsi_ha_lab::session::{io_gap, not_read_back, Session};
use iscsi_ha_lab::Lab;

use crate::cluster_args::ClusterArgs;

/// Steady writes before the kill: long enough for the serving host to hand its connection
/// list to its peer (it reads it every second).
const STEADY: Duration = Duration::from_secs(4);
/// Writes after the survivor serves, so the gap is closed by writes that completed there.
const AFTER: Duration = Duration::from_secs(3);
const LONG: Duration = Duration::from_secs(300);
/// Each run writes in its own 2 MiB region.
const REGION: u64 = 2 << 20;

pub fn run(
    runs: usize,
    tickle: bool,
    resources: usize,
    args: &ClusterArgs,
) -> anyhow::Result<ExitCode> {
    let lab = Lab::up(args.lab_options_for(resources)).context("bringing the lab up")?;
    let extra = crate::bench::tickle_section(tickle);
    let config = iscsi_ha_lab::cluster::lab_config_for_resources("tgt", resources, &extra);
    let c = Cluster::deploy_with(&lab, &args.binaries(), &config).context("starting iscsi-ha")?;
    c.set_role(1, "master")?;
    c.wait_serving(1, LONG)?;
    let mut master = 1u8;
    let (mut gaps, mut totals, mut held, mut beyond) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let survivor = 3 - master;
        let tag = u8::try_from(i % 200).unwrap_or(0) + 1;
        let base = u64::try_from(i).unwrap_or(0) * REGION;
        let session = Session::start(&lab, &c.lun_url(), base, tag, Duration::from_millis(50))?;
        thread::sleep(STEADY);
        lab.node(master).kill()?;
        c.set_role(survivor, "master")?;
        let serving = c.wait_serving(survivor, LONG)?;
        thread::sleep(AFTER);
        let writes = session.stop()?;
        let gap = io_gap(&writes);
        let bad = not_read_back(&lab, &c.lun_url(), &writes)?;
        anyhow::ensure!(
            bad.is_empty(),
            "run {}: {} acknowledged writes do not read back on node{survivor}: {bad:?}",
            i + 1,
            bad.len()
        );
        let log = c.daemon_log(survivor);
        let stamps = phases::parse_log(&log);
        let b = phases::breakdowns(&stamps, "master", "serving")
            .pop()
            .context("the survivor's log has no role seen -> serving")?;
        let hold = held_before_promoting(&stamps);
        let tickled = log
            .lines()
            .rev()
            .find(|l| l.contains("tickle: "))
            .unwrap_or("(no tickle line)")
            .to_string();
        // The role is set right after the kill, so the gap minus the survivor's role seen ->
        // serving is how long the initiator hung on after the survivor served (a few tens of
        // ms of command channel make it an upper bound).
        let after = gap.as_secs_f64() - b.total.as_secs_f64();
        println!(
            "run {:>2}: io-gap {:>8.1} ms ({:+.0} ms after serving); node{survivor} role seen->serving {:>7.1} ms (held before promoting {:>7.1} ms), serving seen by the host after {:.1} s; {} writes, {} acked, all read back; {}",
            i + 1,
            gap.as_secs_f64() * 1000.0,
            after * 1000.0,
            b.total.as_secs_f64() * 1000.0,
            hold.as_secs_f64() * 1000.0,
            serving.as_secs_f64(),
            writes.len(),
            writes.iter().filter(|w| w.acked).count(),
            tickled.split("tickle: ").nth(1).unwrap_or(&tickled)
        );
        gaps.push(gap);
        beyond.push(after * 1000.0);
        totals.push(b);
        held.push(hold);
        lab.reboot_node(master)?;
        lab.node(master)
            .run("echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore")?;
        c.set_role(master, "slave")?;
        c.start_daemon(master)?;
        lab.wait_healthy(LONG)?;
        master = survivor;
    }
    println!("accelerator: {}", lab.accel());
    gaps.sort();
    held.sort();
    println!(
        "failover hard (tickle {}, {resources} resource(s)): io-gap: p50={:.0} ms p99={:.0} ms max={:.0} ms (n={}); held before promoting: p50={:.0} ms max={:.0} ms",
        if tickle { "on" } else { "off" },
        percentile_ms(&gaps, 50),
        percentile_ms(&gaps, 99),
        percentile_ms(&gaps, 100),
        gaps.len(),
        percentile_ms(&held, 50),
        percentile_ms(&held, 100),
    );
    beyond.sort_by(f64::total_cmp);
    println!(
        "  io-gap after the survivor served (gap - role seen->serving): {}",
        beyond
            .iter()
            .map(|ms| format!("{ms:+.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    crate::bench::print_breakdown("new master: role seen->serving", &totals);
    Ok(ExitCode::SUCCESS)
}

/// From the last `role seen` master to the last promotion's start: the survivor held, waiting
/// for DRBD to notice its peer was gone (it never promotes beside a Primary peer).
fn held_before_promoting(stamps: &[phases::PhaseStamp]) -> Duration {
    let Some(seen) = stamps
        .iter()
        .rposition(|s| s.phase == "role seen" && s.role.as_deref() == Some("master"))
    else {
        return Duration::ZERO;
    };
    stamps[seen..]
        .iter()
        .find(|s| s.phase.starts_with("promote ") && s.edge == Edge::Start)
        .map_or(Duration::ZERO, |p| {
            Duration::from_micros(p.mono_us.saturating_sub(stamps[seen].mono_us))
        })
}
