//! The DRBD checks: the module and its version, then each configured resource as the kernel
//! runs it (protocol C, fencing resource-and-stonith, no after-split-brain policy that
//! discards data) and its fence-peer handler as drbd.conf sets it. The kernel's view wins
//! where it has one; drbd.conf is read for the handler (the kernel does not hold it) and as a
//! fallback for options while a resource has no connection configured.

use super::drbd_conf::{self, DrbdConf, DRBD_CONF};
use super::Finding;
use crate::small_file::{self, CONFIG_FILE_CAP};
use iscsi_ha_core::config::Config;
use iscsi_ha_drbd::family::FamilyError;
use iscsi_ha_drbd::options::ResourceOptions;
use iscsi_ha_drbd::procfs::{self, PROC_DRBD};
use iscsi_ha_drbd::{DrbdError, DrbdNetlink};
use std::path::Path;
use std::time::Duration;

/// A DRBD device the kernel reported, for the storage checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdDevice {
    /// Its resource.
    pub resource: String,
    /// Its minor (`/dev/drbdN`).
    pub minor: u32,
    /// Its backing disk, when attached.
    pub backing_dev: Option<String>,
}

/// The DRBD findings and the devices found.
#[derive(Debug, Default)]
pub struct DrbdCheck {
    /// The findings.
    pub findings: Vec<Finding>,
    /// Every volume of every configured resource the kernel knows.
    pub devices: Vec<DrbdDevice>,
}

/// What `handlers { fence-peer ... }` must run: our binary's `fence-peer` command.
fn is_our_handler(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or_default();
    Path::new(program)
        .file_name()
        .is_some_and(|n| n == "iscsi-ha")
        && words.next() == Some("fence-peer")
}

/// Checks the module and every resource of the configuration.
pub fn check(config: &Config) -> DrbdCheck {
    let mut out = DrbdCheck::default();
    out.findings.push(module_version());
    let conf = drbd_conf::read(Path::new(DRBD_CONF));
    if let Err(e) = &conf {
        out.findings.push(Finding::error(
            "drbd.conf",
            format!("could not read {e}"),
            "fix it so that drbdadm reads it (drbdadm dump); the fence-peer handler and the after-split-brain policies are checked there",
        ));
    }
    let conf = conf.ok();
    let mut netlink = match DrbdNetlink::connect() {
        Ok(mut n) => {
            n.set_timeout(Duration::from_secs(5));
            Some(n)
        }
        Err(e) => {
            let todo = match e {
                DrbdError::Family(FamilyError::ModuleNotLoaded) => {
                    "load it (modprobe drbd) and bring the resources up (drbdadm up all)"
                }
                _ => "run doctor as root on a host with the DRBD 8.4 module",
            };
            out.findings.push(Finding::error(
                "drbd.netlink",
                format!("cannot ask the kernel about DRBD: {e}"),
                todo,
            ));
            None
        }
    };
    for resource in &config.resources {
        let name = resource.as_str();
        let kernel = netlink.as_mut().map(|n| n.resource_options(name));
        if !matches!(kernel, Some(Ok(_))) {
            out.devices
                .extend(conf.as_ref().and_then(|c| device_from_conf(c, name)));
        }
        match kernel {
            Some(Ok(opts)) => {
                out.devices.extend(opts.volumes.iter().map(|v| DrbdDevice {
                    resource: name.to_string(),
                    minor: v.minor,
                    backing_dev: v.backing_dev.clone(),
                }));
                out.findings
                    .extend(resource_findings(name, Some(&opts), conf.as_ref()));
            }
            Some(Err(DrbdError::NoSuchResource(_))) => {
                out.findings.push(Finding::error(
                    format!("drbd.{name}"),
                    format!("the kernel has no resource {name}"),
                    format!("define it in drbd.conf on both hosts and bring it up (drbdadm up {name}), or fix replication.resources"),
                ));
                out.findings
                    .extend(resource_findings(name, None, conf.as_ref()));
            }
            Some(Err(e)) => {
                out.findings.push(Finding::error(
                    format!("drbd.{name}"),
                    format!("cannot read {name} from the kernel: {e}"),
                    "run doctor as root; check the module (dmesg)",
                ));
                out.findings
                    .extend(resource_findings(name, None, conf.as_ref()));
            }
            None => out
                .findings
                .extend(resource_findings(name, None, conf.as_ref())),
        }
    }
    out
}

/// The device and backing disk drbd.conf gives this host for `name` (`on <hostname>`, else
/// the resource's own), for the storage checks when the kernel cannot say.
fn device_from_conf(conf: &DrbdConf, name: &str) -> Option<DrbdDevice> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let get = |key: &str| {
        conf.get(name, &format!("on.{host}.{key}"))
            .or_else(|| conf.get(name, key))
            .map(|(v, _)| v.to_string())
    };
    let minor = get("device")?.strip_prefix("/dev/drbd")?.parse().ok()?;
    Some(DrbdDevice {
        resource: name.to_string(),
        minor,
        backing_dev: get("disk"),
    })
}

fn module_version() -> Finding {
    let text = match small_file::read(Path::new(PROC_DRBD), CONFIG_FILE_CAP) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            return Finding::error(
                "drbd.module",
                format!("{PROC_DRBD} does not exist: the DRBD module is not loaded"),
                "install the DRBD 8.4 module and load it (modprobe drbd)",
            )
        }
        Err(e) => {
            return Finding::error(
                "drbd.module",
                format!("could not read {e}"),
                "run doctor as root",
            )
        }
    };
    match procfs::parse(&text) {
        Ok(p) if p.version.is_drbd9() && !p.version.compat_84 => Finding::warn(
            "drbd.module",
            format!("DRBD {} is loaded (api {})", p.version.release, p.version.api),
            "iscsi-ha changes roles through DRBD 8.4's interface only; use the 8.4 module (or DRBD 9 with its 8.4 compatibility)",
        ),
        Ok(p) => Finding::ok(
            "drbd.module",
            format!("DRBD {} is loaded (api {})", p.version.release, p.version.api),
        ),
        Err(e) => Finding::error(
            "drbd.module",
            format!("{PROC_DRBD} is not DRBD's: {e}"),
            "check the module (lsmod | grep drbd, dmesg)",
        ),
    }
}

/// The findings for one resource from the kernel's options (if it could be read) and
/// drbd.conf (if it could be read).
pub fn resource_findings(
    name: &str,
    kernel: Option<&ResourceOptions>,
    conf: Option<&DrbdConf>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let in_conf = conf.filter(|c| c.resources.contains_key(name));
    if let Some(c) = conf {
        if in_conf.is_none() {
            out.push(Finding::error(
                format!("drbd.{name}.conf"),
                format!(
                    "no `resource {name}` in {} or the files it includes",
                    c.files
                        .first()
                        .map_or(DRBD_CONF.into(), |f| f.display().to_string())
                ),
                "define it as in /usr/share/doc/iscsi-ha/drbd-iscsi1.res.example, on both hosts",
            ));
        }
    }
    let from_conf = |key: &str| {
        in_conf
            .and_then(|c| c.get(name, key))
            .map(|(v, _)| v.to_string())
    };

    // Protocol: the kernel's, else drbd.conf's (drbdadm's default is C).
    let (protocol, source) = match kernel.and_then(|k| k.protocol.clone()) {
        Some(p) => (Some(p), "the kernel runs"),
        None => (
            from_conf("protocol").or_else(|| in_conf.map(|_| "C".to_string())),
            "drbd.conf sets (the kernel has no connection for it)",
        ),
    };
    let check = format!("drbd.{name}.protocol");
    match protocol.as_deref() {
        Some("C") => out.push(Finding::ok(check, format!("{source} protocol C"))),
        Some(p) => out.push(Finding::error(
            check,
            format!("{source} protocol {p}: a write is acknowledged before it is on the peer's disk, so a failover can lose acknowledged writes"),
            format!("set `protocol C;` for {name} in drbd.conf on both hosts and apply it (drbdadm adjust {name})"),
        )),
        None => {}
    }

    // Fencing: per attached volume in the kernel, else drbd.conf's.
    let check = format!("drbd.{name}.fencing");
    let volumes: Vec<Option<String>> = kernel
        .map(|k| k.volumes.iter().map(|v| v.fencing.clone()).collect())
        .unwrap_or_default();
    let (fencing, source) = if volumes.iter().any(Option::is_some) {
        let worst = volumes
            .iter()
            .flatten()
            .find(|f| *f != "resource-and-stonith")
            .or_else(|| volumes.iter().flatten().next())
            .cloned();
        (worst, "the kernel runs")
    } else {
        (
            from_conf("disk.fencing").or_else(|| in_conf.map(|_| "dont-care".to_string())),
            "drbd.conf sets (no attached disk in the kernel)",
        )
    };
    match fencing.as_deref() {
        Some("resource-and-stonith") => {
            out.push(Finding::ok(check, format!("{source} fencing resource-and-stonith")))
        }
        Some(f) => out.push(Finding::error(
            check,
            format!("{source} fencing {f}: a Primary that loses its peer goes on writing without asking iscsi-ha fence-peer, so a paused or cut-off master can accept writes that go two ways"),
            format!("set `disk {{ fencing resource-and-stonith; }}` for {name} in drbd.conf on both hosts and apply it (drbdadm adjust {name})"),
        )),
        None => {}
    }

    // The handler lives only in drbd.conf.
    if in_conf.is_some() {
        let check = format!("drbd.{name}.fence-peer");
        let todo = format!("set `handlers {{ fence-peer \"/usr/sbin/iscsi-ha fence-peer\"; }}` for {name} in drbd.conf on both hosts");
        match in_conf.and_then(|c| c.get(name, "handlers.fence-peer")) {
            Some((cmd, section)) if is_our_handler(cmd) => out.push(Finding::ok(
                check,
                format!("the fence-peer handler is \"{cmd}\" (from {section})"),
            )),
            Some((cmd, section)) => out.push(Finding::error(
                check,
                format!("the fence-peer handler is \"{cmd}\" (from {section}), not iscsi-ha's: it cannot know which host serves the VIP"),
                todo,
            )),
            None => out.push(Finding::error(
                check,
                "no fence-peer handler: with fencing on, DRBD freezes I/O and has nobody to ask",
                todo,
            )),
        }
    }

    // After-split-brain policies: the kernel's, else drbd.conf's (default disconnect).
    let policies: Option<([String; 3], &str)> = match kernel.and_then(|k| k.after_sb.clone()) {
        Some(p) => Some((p, "the kernel runs")),
        None => in_conf.map(|_| {
            let get = |k: &str| from_conf(k).unwrap_or_else(|| "disconnect".into());
            (
                [
                    get("net.after-sb-0pri"),
                    get("net.after-sb-1pri"),
                    get("net.after-sb-2pri"),
                ],
                "drbd.conf sets",
            )
        }),
    };
    if let Some((p, source)) = policies {
        for (i, policy) in p.iter().enumerate() {
            let check = format!("drbd.{name}.after-sb-{i}pri");
            match after_sb_risk(i, policy, &p[0]) {
                None => out.push(Finding::ok(check, format!("{source} after-sb-{i}pri {policy}"))),
                Some(why) => out.push(Finding::error(
                    check,
                    format!("{source} after-sb-{i}pri {policy}: {why}"),
                    format!("set `net {{ after-sb-{i}pri disconnect; }}` for {name} on both hosts; `iscsi-cfg split-brain` then says which side served the initiators and an operator decides"),
                )),
            }
        }
    }
    out
}

/// Why an after-split-brain policy can drop acknowledged writes, if it can. `primaries` is 0,
/// 1 or 2 (the policy's name); `zero` is the 0pri policy (`consensus` defers to it).
fn after_sb_risk(primaries: usize, policy: &str, zero: &str) -> Option<String> {
    let safe_zero = |p: &str| matches!(p, "disconnect" | "discard-zero-changes");
    match (primaries, policy) {
        (_, "disconnect") => None,
        // Neither side is Primary and one has no changes: discarding it loses nothing.
        (0, "discard-zero-changes") => None,
        (1, "consensus") if safe_zero(zero) => None,
        (1, "consensus") => Some(format!("it defers to after-sb-0pri {zero}, which discards a side with changes")),
        (0, _) => Some("it discards one side's changes automatically; writes acknowledged to initiators while that side served are lost without a word".into()),
        (1, "discard-secondary") => Some("the Secondary's changes are discarded, but the Secondary may be the host that took over and served the initiators since: their acknowledged writes are lost".into()),
        (1, "call-pri-lost-after-sb") | (2, "call-pri-lost-after-sb") => Some("it discards a side's changes and runs the pri-lost-after-sb helper (usually a reboot) on the serving host".into()),
        (_, "violently-as0p") => Some("it applies the 0pri policy even to a Primary, discarding data initiators are using".into()),
        _ => Some("it discards one side's changes automatically".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_drbd::options::VolumeOptions;

    fn kernel(protocol: &str, fencing: &str, sb: [&str; 3]) -> ResourceOptions {
        ResourceOptions {
            resource: "r0".into(),
            protocol: Some(protocol.into()),
            after_sb: Some(sb.map(String::from)),
            volumes: vec![VolumeOptions {
                minor: 0,
                backing_dev: Some("/dev/vdb".into()),
                fencing: Some(fencing.into()),
            }],
        }
    }

    fn conf(handler: Option<&str>) -> DrbdConf {
        let mut c = DrbdConf::default();
        let mut r = drbd_conf::Options::new();
        if let Some(h) = handler {
            r.insert("handlers.fence-peer".into(), h.into());
        }
        c.resources.insert("r0".into(), r);
        c
    }

    fn levels(f: &[Finding]) -> Vec<(String, super::super::Level)> {
        f.iter().map(|f| (f.check.clone(), f.level)).collect()
    }

    #[test]
    fn the_design_is_all_ok() {
        use super::super::Level::Ok;
        let f = resource_findings(
            "r0",
            Some(&kernel("C", "resource-and-stonith", ["disconnect"; 3])),
            Some(&conf(Some("/usr/sbin/iscsi-ha fence-peer -c /x"))),
        );
        assert!(f.iter().all(|f| f.level == Ok), "{f:?}");
        assert_eq!(f.len(), 6);
    }

    #[test]
    fn each_departure_is_an_error_with_why() {
        let f = resource_findings(
            "r0",
            Some(&kernel(
                "A",
                "resource-only",
                ["discard-least-changes", "discard-secondary", "disconnect"],
            )),
            Some(&conf(Some("/usr/lib/drbd/crm-fence-peer.sh"))),
        );
        let errors: Vec<String> = levels(&f)
            .into_iter()
            .filter(|(_, l)| *l == super::super::Level::Error)
            .map(|(c, _)| c)
            .collect();
        assert_eq!(
            errors,
            [
                "drbd.r0.protocol",
                "drbd.r0.fencing",
                "drbd.r0.fence-peer",
                "drbd.r0.after-sb-0pri",
                "drbd.r0.after-sb-1pri"
            ]
        );
        assert!(
            f[4].what.contains("acknowledged writes are lost"),
            "{:?}",
            f[4]
        );
    }

    #[test]
    fn without_the_kernel_drbd_conf_is_read_and_its_defaults_apply() {
        let f = resource_findings("r0", None, Some(&conf(None)));
        let by = |c: &str| f.iter().find(|f| f.check == c).cloned();
        assert_eq!(
            by("drbd.r0.protocol").map(|f| f.level),
            Some(super::super::Level::Ok)
        );
        // drbdadm's default fencing is dont-care.
        assert_eq!(
            by("drbd.r0.fencing").map(|f| f.level),
            Some(super::super::Level::Error)
        );
        assert!(by("drbd.r0.fence-peer").is_some_and(|f| f.what.contains("no fence-peer handler")));
        // Not in drbd.conf at all.
        let f = resource_findings("r9", None, Some(&conf(None)));
        assert_eq!(f[0].check, "drbd.r9.conf");
        assert!(is_our_handler(
            "/host/bin/iscsi-ha fence-peer -c /host/etc/iscsi-ha.toml"
        ));
        assert!(!is_our_handler("/usr/sbin/iscsi-ha status"));
    }

    #[test]
    fn consensus_is_as_safe_as_the_0pri_policy_it_defers_to() {
        assert_eq!(after_sb_risk(1, "consensus", "discard-zero-changes"), None);
        assert!(after_sb_risk(1, "consensus", "discard-younger-primary").is_some());
        assert!(after_sb_risk(2, "violently-as0p", "disconnect").is_some());
        assert!(after_sb_risk(0, "discard-younger-primary", "").is_some());
    }
}
