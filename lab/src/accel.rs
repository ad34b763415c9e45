//! Choosing the accelerator: KVM only when a guest really boots under it, TCG otherwise.
//!
//! `/dev/kvm` existing proves little: on the Firecracker hosts this project runs on, it is
//! `kvm_pvm`, which hangs a stock kernel. So: no `/dev/kvm`, or no `vmx`/`svm` CPU flag → TCG
//! at once; otherwise boot the lab kernel under KVM with `lab.probe=1` (it prints `LAB-READY`
//! and powers off) and use KVM only if that happens in time. The verdict is cached in
//! `accel.json`, keyed by the host kernel and the lab base, so the check costs nothing later.
//! `IHA_LAB_ACCEL=kvm|tcg` overrides it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dirs::LabDirs;
use crate::error::{LabError, Result};
use crate::image::Image;
use crate::vm::{self, Tether, VmSpec};

/// Environment variable forcing the accelerator.
pub const ACCEL_ENV: &str = "IHA_LAB_ACCEL";

/// How long a KVM probe boot may take before KVM is declared unusable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// A qemu accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// qemu's software emulation.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        })
    }
}

impl std::str::FromStr for Accel {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "kvm" => Ok(Self::Kvm),
            "tcg" => Ok(Self::Tcg),
            _ => Err(LabError::Invalid(format!("accelerator {s:?} (kvm or tcg)"))),
        }
    }
}

/// The chosen accelerator and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccelVerdict {
    /// The accelerator.
    pub accel: Accel,
    /// Why it was chosen.
    pub reason: String,
    /// What the verdict depends on (host kernel, lab base).
    pub key: String,
}

/// Picks the accelerator (override, cached verdict, or a probe).
pub fn choose(dirs: &LabDirs, image: &Image) -> Result<AccelVerdict> {
    let key = verdict_key(image);
    if let Some(forced) = std::env::var(ACCEL_ENV).ok().filter(|v| !v.is_empty()) {
        return Ok(AccelVerdict {
            accel: forced.parse()?,
            reason: format!("{ACCEL_ENV}={forced}"),
            key,
        });
    }
    let cache = dirs.accel_file();
    if let Some(cached) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<AccelVerdict>(&b).ok())
        .filter(|v| v.key == key)
    {
        return Ok(cached);
    }
    let (accel, reason) = decide(dirs, image)?;
    let verdict = AccelVerdict { accel, reason, key };
    if let Ok(json) = serde_json::to_vec_pretty(&verdict) {
        let _ = std::fs::write(&cache, json);
    }
    Ok(verdict)
}

fn verdict_key(image: &Image) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("host {} / base {}", host.trim(), image.base_stamp)
}

fn decide(dirs: &LabDirs, image: &Image) -> Result<(Accel, String)> {
    if !Path::new("/dev/kvm").exists() {
        return Ok((Accel::Tcg, "no /dev/kvm".into()));
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has_hw = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if !has_hw {
        return Ok((
            Accel::Tcg,
            "/dev/kvm exists but the CPU has no vmx/svm flag (e.g. kvm_pvm): stock kernels do \
             not boot under it"
                .into(),
        ));
    }
    let started = Instant::now();
    if probe_kvm(dirs, image)? {
        Ok((
            Accel::Kvm,
            format!("a probe guest booted under KVM in {:?}", started.elapsed()),
        ))
    } else {
        Ok((
            Accel::Tcg,
            format!("a probe guest did not boot under KVM within {PROBE_TIMEOUT:?}"),
        ))
    }
}

fn probe_kvm(dirs: &LabDirs, image: &Image) -> Result<bool> {
    let probe_dir = dirs.root().join("accel-probe");
    std::fs::create_dir_all(&probe_dir)
        .map_err(|e| LabError::io(format!("creating {}", probe_dir.display()), e))?;
    let spec = VmSpec {
        kernel_args: "lab.name=probe lab.probe=1".into(),
        memory_mib: 256,
        disks: Vec::new(),
        console_log: probe_dir.join("console.log"),
        qemu_log: probe_dir.join("qemu.log"),
        pid_file: None,
        control_socket: None,
        qmp_socket: None,
        taps: Vec::new(),
        share: None,
    };
    let cmd = vm::command(image, Accel::Kvm, &spec);
    let mut child = vm::spawn(cmd, &spec, None, Tether::ToParent)?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let booted = loop {
        let log = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
        if log.contains("LAB-READY") {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        if let Ok(Some(_)) = child.try_wait() {
            let log = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
            break log.contains("LAB-READY");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&probe_dir);
    Ok(booted)
}
