//! `iha-lab up`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use iscsi_ha_lab::{DrbdOptions, Lab, LabOptions, ResourceSpec};

/// Options of `up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Make this node (1 or 2) Primary once both are UpToDate.
    #[arg(long)]
    primary: Option<u8>,
    /// Do the full initial sync instead of skipping it.
    #[arg(long)]
    initial_sync: bool,
    /// Number of DRBD resources (r0 = /dev/drbd1 on vda, r1 = /dev/drbd2 on vdb, ...).
    #[arg(long, default_value_t = 1)]
    resources: u32,
    /// Size of each backing disk in MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    /// Boot the VMs without configuring DRBD.
    #[arg(long)]
    no_drbd: bool,
    /// Seconds to wait for another lab user (a test run, a lab already up) to finish.
    #[arg(long, default_value_t = 10)]
    wait: u64,
}

pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = LabOptions {
        resources: (0..args.resources)
            .map(|i| ResourceSpec::new(format!("r{i}"), i + 1, args.size_mib))
            .collect(),
        drbd: (!args.no_drbd).then(|| DrbdOptions {
            primary: args.primary,
            initial_sync: args.initial_sync,
            ..DrbdOptions::default()
        }),
        detached: true,
        lock_wait: Duration::from_secs(args.wait),
        ..LabOptions::default()
    };
    let lab = Lab::up(options).context("bringing the lab up")?;
    if let Some(v) = lab.accel_verdict() {
        println!("accelerator: {} ({})", v.accel, v.reason);
    }
    for node in lab.nodes() {
        println!("== {} ({}): /proc/drbd", node.name(), node.ip());
        print!("{}", node.run("cat /proc/drbd")?);
    }
    println!(
        "lab up in {:.1} s; `iha-lab exec 1 -- <cmd>`, `iha-lab initiator -- <cmd>`, `iha-lab down`",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
