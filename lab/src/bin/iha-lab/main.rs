//! `iha-lab`: the two-node lab from the command line.
//!
//! ```text
//! iha-lab up [--primary N] [--initial-sync] [--resources N] [--size-mib M]
//! iha-lab status
//! iha-lab exec <node> -- <command...>      (runs in node 1 or 2, exits with its status)
//! iha-lab initiator -- <command...>        (runs in the initiator namespace)
//! iha-lab fault <node> kill|pause|resume|cut-link|restore-link|reboot
//! iha-lab down
//! iha-lab chaos --faults N --seed S       (its own lab: seeded faults under a checking writer)
//! iha-lab capture-drbd [--out fixtures/drbd/genl]
//! ```
//! `up` leaves the lab running for the other verbs; `down` removes it (and whatever a crashed
//! run left). The lab directory is `$IHA_LAB_DIR` (default /var/tmp/iscsi-ha-lab).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_hard;
mod capture;
mod chaos;
mod cluster_args;
mod demo;
mod down;
mod exec;
mod fault;
mod initiator;
mod status;
mod up;

#[derive(Debug, Parser)]
#[command(
    name = "iha-lab",
    version,
    about = "Two VMs with DRBD 8.4, tgtd and an initiator"
)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Boot both VMs, configure DRBD, wait for Connected UpToDate/UpToDate; leave them running.
    Up(up::UpArgs),
    /// Stop the lab and remove everything it (or a crashed run) left.
    Down,
    /// Show the VMs, their DRBD state and the cache.
    Status,
    /// Run a command in node 1 or 2.
    Exec(exec::ExecArgs),
    /// Run a command in the initiator namespace (10.99.0.10).
    Initiator(initiator::InitiatorArgs),
    /// Inflict a fault on node 1 or 2: kill, pause, resume, cut-link, restore-link, reboot.
    Fault(fault::FaultArgs),
    /// Boot a lab and record DRBD's generic-netlink traffic (fixtures/drbd/genl/).
    CaptureDrbd(capture::CaptureArgs),
    /// The main job: iscsi-ha on both nodes, statuses, a role switch, the failover time.
    Demo(demo::DemoArgs),
    /// Seeded faults in a row against iscsi-ha under a checking writer; checks the history.
    Chaos(chaos::ChaosArgs),
    /// Measure iscsi-ha in the lab.
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Verb::Up(args) => up::run(&args),
        Verb::Down => down::run(),
        Verb::Status => status::run(),
        Verb::Exec(args) => exec::run(&args),
        Verb::Initiator(args) => initiator::run(&args),
        Verb::Fault(args) => fault::run(&args),
        Verb::CaptureDrbd(args) => capture::run(&args),
        Verb::Demo(args) => demo::run(&args),
        Verb::Chaos(args) => chaos::run(&args),
        Verb::Bench { what } => bench::run(&what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iha-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Maps a command's exit status to ours.
fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(1))
}
