//! `iha-lab down`.

use std::process::ExitCode;

use iscsi_ha_lab::Lab;

pub fn run() -> anyhow::Result<ExitCode> {
    let killed = Lab::down()?;
    if killed.is_empty() {
        println!("lab down (no VM was running)");
    } else {
        println!("lab down (killed qemu {killed:?})");
    }
    Ok(ExitCode::SUCCESS)
}
