//! `iha-lab fault <node> <kind>`: the lab's faults, on a lab left running by `up`.

use std::process::ExitCode;
use std::time::Instant;

use iscsi_ha_lab::Lab;

/// A fault.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// SIGKILL the VM's qemu (a power cut).
    Kill,
    /// Freeze the VM (a hung host).
    Pause,
    /// Let a paused VM run again.
    Resume,
    /// Take the VM's port on the lab bridge down.
    CutLink,
    /// Bring it back up.
    RestoreLink,
    /// Power-cycle the VM into the same disks and run `drbdadm up all` (the rebooted VM does
    /// not hold the lab lock; the other node's qemu still does).
    Reboot,
}

/// Options of `fault`.
#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    /// Node 1 or 2.
    node: u8,
    /// What happens to it.
    #[arg(value_enum)]
    kind: Kind,
}

pub fn run(args: &FaultArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::attach()?;
    let node = lab.try_node(args.node)?;
    let started = Instant::now();
    match args.kind {
        Kind::Kill => node.kill()?,
        Kind::Pause => node.pause()?,
        Kind::Resume => node.resume()?,
        Kind::CutLink => node.cut_link()?,
        Kind::RestoreLink => node.restore_link()?,
        Kind::Reboot => lab.reboot_node(args.node)?,
    }
    println!(
        "{}: {:?} done in {:.2} s",
        node.name(),
        args.kind,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
