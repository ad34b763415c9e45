//! `iha-lab status`.

use std::process::ExitCode;

use iscsi_ha_lab::{image, Lab, LabDirs, LabError};

pub fn run() -> anyhow::Result<ExitCode> {
    let dirs = LabDirs::from_env();
    println!(
        "lab directory {} ({:.0} MiB)",
        dirs.root().display(),
        mib(image::disk_usage(dirs.root()))
    );
    let lab = match Lab::attach() {
        Ok(lab) => lab,
        Err(LabError::NotRunning(why)) => {
            println!("no lab running: {why}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    println!("accelerator: {}", lab.accel());
    for node in lab.nodes() {
        match node.pid() {
            None => println!("== {}: down", node.name()),
            Some(pid) => {
                println!("== {} ({}), qemu pid {pid}", node.name(), node.ip());
                match node.exec_timeout("cat /proc/drbd", std::time::Duration::from_secs(5)) {
                    Ok(out) => print!("{}", out.stdout_text()),
                    Err(e) => println!("   not answering: {e}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> f64 {
    // Display only: the precision loss of u64 -> f64 is irrelevant here.
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    b / (1024.0 * 1024.0)
}
