//! multipath and LVM must leave DRBD alone: a `drbdN` device held by multipathd or
//! device-mapper cannot be demoted (failover blocks), and LVM activating volumes on DRBD's
//! backing disk writes underneath replication.

use super::drbd::DrbdDevice;
use super::lvm::{self, LvmValue, LVM_CONF};
use super::multipath::{self, MULTIPATH_CONF};
use super::Finding;
use crate::small_file::{self, CONFIG_FILE_CAP};
use iscsi_ha_core::config::Config;
use std::path::{Path, PathBuf};

/// Where sysfs lists block devices (and their `holders`).
pub const SYS_CLASS_BLOCK: &str = "/sys/class/block";

fn installed(programs: &[&str]) -> bool {
    programs.iter().any(|p| Path::new(p).exists())
}

/// The multipath and LVM findings for the devices the kernel reported.
pub fn check(_config: &Config, devices: &[DrbdDevice]) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(multipath_conf(devices));
    out.extend(holders(Path::new(SYS_CLASS_BLOCK), devices));
    out.extend(lvm_conf(devices));
    out
}

fn multipath_conf(devices: &[DrbdDevice]) -> Vec<Finding> {
    const CHECK: &str = "multipath.blacklist";
    const TODO: &str = "add `blacklist { devnode \"^drbd[0-9]+\" }` to /etc/multipath.conf (on both hosts) and reload multipathd";
    let text = match small_file::read(Path::new(MULTIPATH_CONF), CONFIG_FILE_CAP) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            return vec![
                if installed(&["/sbin/multipathd", "/usr/sbin/multipathd"]) {
                    Finding::warn(
                        CHECK,
                        format!("multipathd is installed but there is no {MULTIPATH_CONF}"),
                        TODO,
                    )
                } else {
                    Finding::ok(CHECK, "multipath is not installed")
                },
            ]
        }
        Err(e) => {
            return vec![Finding::error(
                CHECK,
                format!("could not read {e}"),
                format!("make {MULTIPATH_CONF} a readable regular file, then run doctor again"),
            )]
        }
    };
    let list = match multipath::parse(&text) {
        Ok(l) => l,
        Err(e) => {
            return vec![Finding::error(
                CHECK,
                format!("could not read {MULTIPATH_CONF}: {e}"),
                "fix the file (multipath -t shows how multipathd reads it)",
            )]
        }
    };
    // Without the kernel's list, the first minor stands for any DRBD device.
    let mut names: Vec<String> = devices.iter().map(|d| format!("drbd{}", d.minor)).collect();
    if names.is_empty() {
        names.push("drbd0".into());
    }
    names
        .iter()
        .map(|n| match multipath::excludes(&list, n) {
            Ok(p) => Finding::ok(CHECK, format!("{MULTIPATH_CONF} blacklists {n} (devnode {p:?})")),
            Err(why) => Finding::error(
                CHECK,
                format!("multipathd may claim {n}: {why}; a device it holds cannot be demoted, so failover blocks"),
                TODO,
            ),
        })
        .collect()
}

/// The kernel name of a device path (`/dev/disk/by-id/x` → `sdb`), symlinks resolved.
fn kernel_name(path: &str) -> Option<(String, PathBuf)> {
    let real = std::fs::canonicalize(path).ok()?;
    let name = real.file_name()?.to_string_lossy().into_owned();
    Some((name, real))
}

/// Live holders of every DRBD device and of every backing disk, read from `sys_block`.
pub fn holders(sys_block: &Path, devices: &[DrbdDevice]) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in devices {
        let name = format!("drbd{}", d.minor);
        let check = format!("drbd.{}.holders", d.resource);
        match multipath::holders(sys_block, &name) {
            Ok(h) if h.is_empty() => out.push(Finding::ok(check.clone(), format!("nothing holds /dev/{name}"))),
            Ok(h) => out.push(Finding::error(
                check.clone(),
                format!("/dev/{name} is held by {} (multipath or device-mapper/LVM): DRBD cannot demote it while it is held, so failover blocks", h.join(", ")),
                "release it (multipath -f, vgchange -an, dmsetup remove) and keep it out (multipath blacklist, LVM filter)",
            )),
            Err(e) => out.push(Finding::warn(check.clone(), format!("could not read the holders of {name}: {e}"), "run doctor as root")),
        }
        let Some(backing) = &d.backing_dev else {
            continue;
        };
        let Some((disk, _)) = kernel_name(backing) else {
            out.push(Finding::warn(
                check,
                format!("the backing disk {backing} cannot be resolved"),
                "check that the disk exists (lsblk)",
            ));
            continue;
        };
        match multipath::holders(sys_block, &disk) {
            Ok(h) if h.is_empty() => out.push(Finding::ok(check, format!("nothing but DRBD uses the backing disk {backing}"))),
            Ok(h) => out.push(Finding::error(
                check,
                format!("the backing disk {backing} ({disk}) is held by {}: LVM or multipath uses the disk underneath DRBD, bypassing replication", h.join(", ")),
                "release it (vgchange -an, multipath -f) and reject the disk in the LVM filter and the multipath blacklist",
            )),
            Err(e) => out.push(Finding::warn(check, format!("could not read the holders of {disk}: {e}"), "run doctor as root")),
        }
    }
    out
}

/// Every name LVM may know a disk by: as given, resolved, and its `/dev/disk/by-*` links.
fn device_names(path: &str) -> Vec<String> {
    let mut names = vec![path.to_string()];
    let Some((_, real)) = kernel_name(path) else {
        return names;
    };
    names.push(real.display().to_string());
    for dir in ["by-id", "by-path", "by-uuid", "by-partuuid", "by-label"] {
        let Ok(entries) = std::fs::read_dir(Path::new("/dev/disk").join(dir)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok).take(4096) {
            if std::fs::canonicalize(e.path()).ok().as_ref() == Some(&real) {
                names.push(e.path().display().to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn lvm_conf(devices: &[DrbdDevice]) -> Vec<Finding> {
    let text = match small_file::read(Path::new(LVM_CONF), CONFIG_FILE_CAP) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            return vec![if installed(&["/sbin/lvm", "/usr/sbin/lvm"]) {
                Finding::warn(
                    "lvm.filter",
                    format!("LVM is installed but there is no {LVM_CONF}: it scans every disk, DRBD's backing disks included"),
                    "create it with a devices { global_filter } that rejects the backing disks",
                )
            } else {
                Finding::ok("lvm.filter", "LVM is not installed")
            }]
        }
        Err(e) => {
            return vec![Finding::error(
                "lvm.filter",
                format!("could not read {e}"),
                format!("make {LVM_CONF} a readable regular file, then run doctor again"),
            )]
        }
    };
    let section = match lvm::parse_devices(&text) {
        Ok(s) => s,
        Err(e) => {
            return vec![Finding::error(
                "lvm.filter",
                format!("could not read {LVM_CONF}: {e}"),
                "fix the file (lvmconfig --validate)",
            )]
        }
    };
    let mut out = Vec::new();
    let list = |key: &str| match section.get(key) {
        Some(LvmValue::List(l)) => l.clone(),
        Some(LvmValue::Text(t)) => vec![t.clone()],
        _ => Vec::new(),
    };
    let (global, filter) = (list("global_filter"), list("filter"));
    let backing: Vec<&DrbdDevice> = devices.iter().filter(|d| d.backing_dev.is_some()).collect();
    if backing.is_empty() {
        out.push(Finding::warn(
            "lvm.filter",
            "the kernel reported no DRBD backing disk, so the LVM filter could not be checked against them",
            "bring the resources up (drbdadm up all) and run doctor again",
        ));
    }
    for d in backing {
        let path = d.backing_dev.as_deref().unwrap_or_default();
        let names = device_names(path);
        let verdict = |patterns: &[String]| lvm::rejects_device(patterns, &names);
        let todo = format!("add r|^{path}$| (and the disk's /dev/disk/by-* names) at the start of devices {{ global_filter }} in {LVM_CONF} on both hosts");
        match (verdict(&global), verdict(&filter)) {
            (Err(e), _) | (_, Err(e)) => out.push(Finding::error(
                "lvm.filter",
                format!("a filter pattern in {LVM_CONF} does not parse: {e}"),
                "fix it (lvmconfig --validate)",
            )),
            (Ok(Ok(p)), _) => out.push(Finding::ok("lvm.filter", format!("global_filter rejects {path} ({p:?})"))),
            (_, Ok(Ok(p))) => out.push(Finding::ok("lvm.filter", format!("filter rejects {path} ({p:?})"))),
            (Ok(Err(global_why)), Ok(Err(filter_why))) => out.push(Finding::error(
                "lvm.filter",
                format!("LVM scans DRBD's backing disk {path} ({}): it would activate volumes underneath DRBD, and a device LVM holds cannot be demoted",
                    if global.is_empty() { filter_why } else { global_why }),
                todo,
            )),
        }
    }
    out.push(match section.get("write_cache_state") {
        Some(LvmValue::Scalar(v)) if v == "0" => Finding::ok("lvm.write_cache_state", "write_cache_state = 0"),
        Some(v) => Finding::error(
            "lvm.write_cache_state",
            format!("write_cache_state is {v:?}: LVM keeps a cache of the devices it saw, DRBD's backing disks among them, and uses it even after the filter changes"),
            format!("set write_cache_state = 0 in devices {{ }} of {LVM_CONF} and remove /etc/lvm/cache/.cache"),
        ),
        None => Finding::warn(
            "lvm.write_cache_state",
            "write_cache_state is not set (older LVM defaults it to 1 and caches DRBD's backing disks)",
            format!("set write_cache_state = 0 in devices {{ }} of {LVM_CONF}"),
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::doctor::Level;

    #[test]
    fn a_held_drbd_device_is_an_error_and_a_free_one_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("drbd1/holders/dm-3")).unwrap();
        std::fs::create_dir_all(dir.path().join("drbd2/holders")).unwrap();
        let dev = |minor| DrbdDevice {
            resource: format!("r{minor}"),
            minor,
            backing_dev: None,
        };
        let f = holders(dir.path(), &[dev(1), dev(2), dev(3)]);
        assert_eq!(f[0].level, Level::Error);
        assert!(f[0].what.contains("held by dm-3"), "{:?}", f[0]);
        assert_eq!(f[1].level, Level::Ok);
        assert_eq!(f[2].level, Level::Warn);
    }
}
