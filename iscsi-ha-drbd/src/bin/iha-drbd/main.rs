//! `iha-drbd`: the DRBD adapter from the command line, for the lab VMs and as the lab's
//! comparison with the witnesses (`drbdsetup-84 status`, `/proc/drbd`).
//!
//! ```text
//! iha-drbd family                          what nlctrl says about the drbd family
//! iha-drbd status [RES] [--json]           GET_STATUS through netlink
//! iha-drbd proc [--json] [--path P]        /proc/drbd parsed
//! iha-drbd cross-check                     netlink status and /proc/drbd agree
//! iha-drbd port-status RES                 the core's VolumeStatus (the port's view)
//! iha-drbd primary RES [--force]           promote (through the port; typed errors)
//! iha-drbd secondary RES                   demote
//! iha-drbd resume-io RES                   resume I/O frozen by fencing (or suspend-io)
//! iha-drbd disconnect RES [--force]        disconnect from the peer
//! iha-drbd connect RES [--discard-my-data] [--net-config-dir D]   connect again
//! iha-drbd split-brain RES [--watch-ms T] [--net-config-dir D]    split brain, as JSON
//! iha-drbd net-config RES [--net-config-dir D]                    the kept net config
//! iha-drbd events [--count N] [--timeout-ms T] [--json]   events with timestamps
//! iha-drbd bench-status [--iterations N]   time GET_STATUS dumps in-process
//! iha-drbd bench-split-brain RES [--iterations N] [--net-config-dir D]   time split_brain()/status()
//! iha-drbd role-server --listen ADDR       promote/demote on request (latency peer)
//! iha-drbd peer-latency --peer ADDR --resource RES [--rounds N]
//! ```

mod bench;
mod events;
mod latency;
mod role;
mod split;
mod status;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "iha-drbd",
    version,
    about = "DRBD over generic netlink, for the iscsi-ha lab"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// What nlctrl says about the drbd family (id, version, events group, commands).
    Family,
    /// Status of every resource, or of one, through GET_STATUS.
    Status(status::StatusArgs),
    /// /proc/drbd, parsed.
    Proc(status::ProcArgs),
    /// Checks that the netlink status and /proc/drbd agree on every volume.
    CrossCheck,
    /// The port's reduced view of one resource.
    PortStatus(role::ResourceArg),
    /// Makes this node Primary for a resource.
    Primary(role::PrimaryArgs),
    /// Makes this node Secondary for a resource.
    Secondary(role::ResourceArg),
    /// Resumes a resource's frozen I/O (fencing, suspend-io) through the port.
    ResumeIo(role::ResourceArg),
    /// Disconnects a resource from its peer.
    Disconnect(role::DisconnectArgs),
    /// Connects a resource to its peer again (replaying its kept network configuration).
    Connect(split::ConnectArgs),
    /// Whether a resource is in split brain (JSON).
    SplitBrain(split::SplitBrainArgs),
    /// The network configuration the adapter keeps for a resource (JSON).
    NetConfig(split::SplitBrainArgs),
    /// Prints events from the `events` group with timestamps.
    Events(events::EventsArgs),
    /// Times GET_STATUS dumps in-process.
    BenchStatus(bench::BenchArgs),
    /// Times the port's split_brain() and status() in-process.
    BenchSplitBrain(bench::BenchSplitBrainArgs),
    /// Serves role changes to a `peer-latency` client.
    RoleServer(latency::ServerArgs),
    /// Measures how long a peer's role change takes to reach our events fd.
    PeerLatency(latency::ClientArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Family => status::family(),
        Command::Status(a) => status::status(a),
        Command::Proc(a) => status::proc(a),
        Command::CrossCheck => status::cross_check(),
        Command::PortStatus(a) => role::port_status(a),
        Command::Primary(a) => role::primary(a),
        Command::Secondary(a) => role::secondary(a),
        Command::ResumeIo(a) => role::resume_io(a),
        Command::Disconnect(a) => role::disconnect(a),
        Command::Connect(a) => split::connect(a),
        Command::SplitBrain(a) => split::split_brain(a),
        Command::NetConfig(a) => split::net_config(a),
        Command::Events(a) => events::run(a),
        Command::BenchStatus(a) => bench::run(a),
        Command::BenchSplitBrain(a) => bench::split_brain(a),
        Command::RoleServer(a) => latency::serve(a),
        Command::PeerLatency(a) => latency::measure(a),
    }
}

/// Seconds since the epoch and on the monotonic clock, with microseconds.
pub(crate) fn timestamps() -> (f64, f64) {
    use nix::time::{clock_gettime, ClockId};
    let secs = |id| {
        clock_gettime(id)
            .map(|t| {
                #[allow(clippy::cast_precision_loss)]
                let s = t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9;
                s
            })
            .unwrap_or(0.0)
    };
    (
        secs(ClockId::CLOCK_REALTIME),
        secs(ClockId::CLOCK_MONOTONIC),
    )
}
