//! The host checks: tgtd is not started at boot by its own unit while the daemon manages it,
//! what `check-config --host` checks (the VIP's interface and subnet, the LUN devices, the
//! managed tgtd, the role source's file), the role source answering through the role
//! module's own reader, and the configuration's fingerprint.

use super::Finding;
use crate::host_check::{self, Severity};
use iscsi_ha_core::config::schema::TargetBackend;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::role::Role;
use std::path::Path;

/// Where units enabled by the administrator are linked (`*.wants/`).
pub const SYSTEMD_SYSTEM: &str = "/etc/systemd/system";
/// The unit names tgt is packaged under (Debian: tgt, EL: tgtd).
const TGT_UNITS: [&str; 2] = ["tgt.service", "tgtd.service"];

/// Every host finding.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut out = tgt_at_boot(config, Path::new(SYSTEMD_SYSTEM));
    out.extend(from_host_check(config));
    out.push(role_answers(config));
    out.push(Finding::ok(
        "fingerprint",
        format!(
            "configuration fingerprint {} (compare with the other host's: `iscsi-ha doctor` or `iscsi-ha status` there)",
            iscsi_ha_core::config::fingerprint(config)
        ),
    ));
    out
}

/// `tgt.service`/`tgtd.service` linked into a `*.wants/` directory under `dir`.
pub fn tgt_at_boot(config: &Config, dir: &Path) -> Vec<Finding> {
    const CHECK: &str = "tgt.boot";
    if config.file.target.backend != TargetBackend::Tgt {
        return vec![Finding::ok(
            CHECK,
            format!(
                "target.backend = \"{}\": tgtd is not used, so whether its unit starts at boot does not matter here",
                config.file.target.backend.name()
            ),
        )];
    }
    if !config.file.target.tgt_daemon().managed {
        return vec![Finding::ok(
            CHECK,
            format!("{}.managed = false: the system's tgtd is adopted, so its unit may start it at boot", config.file.target.tgt_key()),
        )];
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![Finding::ok(
                CHECK,
                format!("{} does not exist: no unit is enabled", dir.display()),
            )]
        }
        Err(e) => {
            return vec![Finding::error(
                CHECK,
                format!("could not read {}: {e}", dir.display()),
                "run doctor as root",
            )]
        }
    };
    let mut enabled = Vec::new();
    for wants in entries.filter_map(Result::ok).take(1024) {
        if !wants.file_name().to_string_lossy().ends_with(".wants") {
            continue;
        }
        for unit in TGT_UNITS {
            let link = wants.path().join(unit);
            if link.symlink_metadata().is_ok() {
                enabled.push((unit, link));
            }
        }
    }
    if enabled.is_empty() {
        return vec![Finding::ok(
            CHECK,
            "tgt's own unit is not enabled at boot (iscsi-ha starts tgtd)",
        )];
    }
    enabled
        .into_iter()
        .map(|(unit, link)| {
            Finding::error(
                CHECK,
                format!("{unit} is enabled at boot ({}) while {}.managed = true: a second tgtd would hold the target's port, or serve the LUNs on the host that must not", link.display(), config.file.target.tgt_key()),
                format!("systemctl disable {unit}"),
            )
        })
        .collect()
}

/// `check-config --host`'s findings as doctor findings, with an `ok` for each area it found
/// nothing wrong in.
fn from_host_check(config: &Config) -> Vec<Finding> {
    let found = host_check::check(config);
    let mut out: Vec<Finding> = found
        .iter()
        .map(|f| {
            let what = f.message.clone();
            match f.severity {
                Severity::Error => Finding::error(f.key.clone(), what, f.advice.clone()),
                Severity::Warning => Finding::warn(f.key.clone(), what, f.advice.clone()),
            }
        })
        .collect();
    let clean = |prefix: &str| !found.iter().any(|f| f.key.starts_with(prefix));
    if clean("vip.") {
        out.push(Finding::ok(
            "vip.interface",
            format!(
                "{} is up and holds an address in the VIP's subnet ({}/{})",
                config.vip.interface(),
                config.vip.address(),
                config.vip.prefix()
            ),
        ));
    }
    if clean("target.lun") {
        out.push(Finding::ok(
            "target.lun",
            "every LUN's device is a block device",
        ));
    }
    let tgt = config.file.target.tgt_daemon();
    let key = config.file.target.tgt_key();
    if config.file.target.backend == TargetBackend::Tgt && tgt.managed && clean(key) {
        out.push(Finding::ok(
            format!("{key}.program"),
            format!("{} is executable", tgt.program),
        ));
    }
    out
}

/// Asks the role source once, through the reader the daemon uses (bounded by its timeout).
fn role_answers(config: &Config) -> Finding {
    const CHECK: &str = "role.source";
    let mut source = match crate::role::from_config(&config.file.role, &config.file.xapi) {
        Ok(s) => s,
        Err(e) => {
            return Finding::error(
                CHECK,
                format!("cannot open the role source: {e}"),
                "fix [role] (iscsi-ha check-config --host)",
            )
        }
    };
    match source.role() {
        Ok(Role::Unknown(why)) => Finding::error(
            CHECK,
            format!("the role source answers \"unknown\": {why}"),
            "fix the role source ([role]); the daemon changes nothing while the role is unknown",
        ),
        Ok(role) => Finding::ok(CHECK, format!("the role source answers {}", role.name())),
        Err(e) => Finding::error(
            CHECK,
            format!("the role source cannot be read: {e}"),
            "fix the role source ([role]); the daemon changes nothing while the role is unknown",
        ),
    }
}
