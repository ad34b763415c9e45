//! `check-config --host`: what a valid configuration points at, checked on this host. The VIP's
//! interface (read over rtnetlink, as the daemon reads it), the LUNs' devices, the managed
//! tgtd, and the role source's file; each finding names the key to change.

use iscsi_ha_core::config::schema::{RoleSourceKind, TargetBackend};
use iscsi_ha_core::config::{Config, DEFAULT_POOL_CONF};
use iscsi_ha_core::subnet::Subnet;
use iscsi_ha_net::rtnl::Rtnetlink;
use std::fmt;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The daemon would not work with it.
    Error,
    /// Worth a look; the daemon copes.
    Warning,
}

/// One thing found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// The configuration key to change, e.g. `vip.interface`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it (empty when the message says it all, e.g. a read error).
    pub advice: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{word}: {}: {}", self.key, self.message)?;
        if !self.advice.is_empty() {
            write!(f, ": {}", self.advice)?;
        }
        Ok(())
    }
}

fn error(key: impl Into<String>, message: impl Into<String>, advice: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Error,
        key: key.into(),
        message: message.into(),
        advice: advice.into(),
    }
}

/// Every finding on this host, in the configuration's order.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(role_source_file(config));
    out.extend(vip_interface(config));
    for (i, lun) in config.file.target.luns.iter().enumerate() {
        out.extend(block_device(&format!("target.lun[{i}].path"), &lun.path));
    }
    match config.file.target.backend {
        TargetBackend::Tgt => {
            let daemon = config.file.target.tgt_daemon();
            if daemon.managed {
                let key = format!("{}.program", config.file.target.tgt_key());
                out.extend(executable(&key, &daemon.program));
            }
        }
        TargetBackend::Lio => out.extend(lio_loaded(config)),
    }
    out
}

/// The kernel's target, which backend `lio` drives through configfs.
fn lio_loaded(config: &Config) -> Option<Finding> {
    let settings = crate::backend::lio_config(config).ok()?;
    let e = iscsi_ha_lio::LioTarget::new(settings).available().err()?;
    Some(error(
        "target.backend",
        format!("backend = \"lio\", but {e}"),
        "",
    ))
}

/// The role source's file and its key, for the sources that read one.
fn role_file(config: &Config) -> Option<(&'static str, PathBuf)> {
    let role = &config.file.role;
    match role.source {
        RoleSourceKind::Xapi => Some((
            "role.pool_conf",
            PathBuf::from(role.pool_conf.as_deref().unwrap_or(DEFAULT_POOL_CONF)),
        )),
        RoleSourceKind::File => Some(("role.path", PathBuf::from(role.path.as_deref()?))),
        RoleSourceKind::Command | RoleSourceKind::Static => None,
    }
}

/// What the daemon needs to start: the directory of the role source's file, which it watches.
/// (The file itself may appear later: a missing one reads as an unknown role.)
pub fn role_source_watchable(config: &Config) -> Option<Finding> {
    let (key, path) = role_file(config)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    if dir.is_dir() {
        return None;
    }
    let advice = if key == "role.pool_conf" {
        "is this a XenServer / XCP-ng host? If not, set role.source to \"file\", \"command\" or \"static\"; if so, set role.pool_conf to where pool.conf is"
    } else {
        "create the directory, or set role.path to a file in one that exists"
    };
    Some(error(
        key,
        format!(
            "the directory {} of {} does not exist (the role source is watched there)",
            dir.display(),
            path.display()
        ),
        advice,
    ))
}

fn role_source_file(config: &Config) -> Option<Finding> {
    let (key, path) = role_file(config)?;
    if let Some(finding) = role_source_watchable(config) {
        return Some(finding);
    }
    let what = match fs::symlink_metadata(&path).and_then(|_| fs::metadata(&path)) {
        Ok(meta) if meta.is_file() => return None,
        Ok(meta) => format!("is {}, not a regular file", kind(&meta)),
        Err(e) => format!("cannot be read ({e})"),
    };
    Some(error(
        key,
        format!(
            "{} {what}: the role reads as unknown until it is a file holding the role",
            path.display()
        ),
        format!("write it, or set {key} to the file that holds it"),
    ))
}

fn vip_interface(config: &Config) -> Vec<Finding> {
    let vip = &config.vip;
    let name = vip.interface().as_str();
    let mut netlink = match Rtnetlink::open() {
        Ok(n) => n,
        Err(e) => {
            return vec![error(
                "vip.interface",
                format!("cannot read this host's interfaces: {e}"),
                "",
            )]
        }
    };
    let link = match netlink.link_by_name(name) {
        Ok(Some(link)) => link,
        Ok(None) => {
            return vec![error(
                "vip.interface",
                format!("there is no interface {name} on this host"),
                "set vip.interface to the interface on the VIP's network (see `ip -br addr`)",
            )]
        }
        Err(e) => {
            return vec![error(
                "vip.interface",
                format!("cannot read interface {name}: {e}"),
                "",
            )]
        }
    };
    let mut out = Vec::new();
    if !link.up {
        out.push(Finding {
            severity: Severity::Warning,
            key: "vip.interface".into(),
            message: format!("{name} is down"),
            advice: format!("bring it up (ip link set {name} up) before this host serves"),
        });
    }
    let entries = match netlink.addresses(link.index) {
        Ok(e) => e,
        Err(e) => {
            out.push(error(
                "vip.interface",
                format!("cannot read the addresses of {name}: {e}"),
                "",
            ));
            return out;
        }
    };
    // The VIP itself, when this host holds it now, says nothing about the network.
    let subnets: Vec<Subnet> = entries
        .iter()
        .filter(|e| e.address != vip.address())
        .filter_map(|e| Subnet::new(e.address, e.prefix).ok())
        .filter(|s| !is_link_local(s.network()))
        .collect();
    if !subnets.iter().any(|s| s.contains(vip.address())) {
        let have: Vec<String> = subnets
            .iter()
            .map(|s| format!("{}/{}", s.network(), s.prefix()))
            .collect();
        out.push(error(
            "vip.address",
            format!(
                "{} is in none of {name}'s subnets ({}): initiators on that link could not reach it",
                vip.address(),
                if have.is_empty() { "it has no address".to_string() } else { have.join(", ") }
            ),
            "set vip.address to an address in one of them, or vip.interface to the interface on its network",
        ));
    }
    out
}

fn is_link_local(address: std::net::IpAddr) -> bool {
    matches!(address, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

fn kind(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

fn block_device(key: &str, path: &str) -> Option<Finding> {
    let what = match fs::metadata(path) {
        Ok(meta) if meta.file_type().is_block_device() => return None,
        Ok(meta) => format!("is {}, not a block device", kind(&meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be inspected ({e})"),
    };
    Some(error(
        key,
        format!("{path} {what}"),
        format!("set {key} to the DRBD device (e.g. /dev/drbd1), or bring the resource up (drbdadm up) so that it exists"),
    ))
}

fn executable(key: &str, path: &str) -> Option<Finding> {
    let what = match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => return None,
        Ok(meta) if meta.is_file() => "is not executable".to_string(),
        Ok(meta) => format!("is {}, not a program", kind(&meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be inspected ({e})"),
    };
    Some(error(
        key,
        format!("{path} {what}"),
        format!(
            "install tgt (scsi-target-utils), set {key} to where tgtd is, or set {}.managed = false to adopt the system's tgtd",
            key.trim_end_matches(".program")
        ),
    ))
}
