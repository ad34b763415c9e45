//! `iha-lab capture-drbd`: boots its own lab and regenerates the DRBD genl fixtures.

use std::process::ExitCode;

use anyhow::Context as _;
use iscsi_ha_lab::{capture, Lab, LabOptions};

/// Options of `capture-drbd`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Where to write `<scenario>.pcap`, `.nlhex` and `.txt`.
    #[arg(long, default_value = "fixtures/drbd/genl")]
    out: std::path::PathBuf,
}

pub fn run(args: &CaptureArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::up(LabOptions::default()).context("bringing the lab up")?;
    let fixtures = capture::capture_drbd(&lab, &args.out)?;
    for f in &fixtures {
        println!(
            "{:<22} {:>3} packets, {:>3} drbd/nlctrl messages (drbd family id {})",
            f.name, f.packets, f.messages, f.family
        );
    }
    println!(
        "wrote {} scenarios to {}",
        fixtures.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
