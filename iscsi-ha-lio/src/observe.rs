//! Reading LIO's tree back as the core's [`TargetStatus`].

use iscsi_ha_core::target::{ObservedLun, ObservedTarget, TargetStatus};

use crate::error::LioError;
use crate::fs::Configfs;
use crate::layout::{self, FABRIC, TPGT};

/// What LIO exports now: every iSCSI target's first TPG (`tpgt_1`, the one we build), its
/// LUNs with the identity their storage objects carry, ACLs, CHAP users and sessions.
/// `daemon_running` means the target core is loaded (its `core` group exists).
pub fn status(cfs: &Configfs) -> Result<TargetStatus, LioError> {
    if !cfs.exists("core") {
        return Ok(TargetStatus::default());
    }
    let mut targets = Vec::new();
    for name in cfs.dirs(FABRIC)? {
        // `discovery_auth` is the fabric's own group; targets are named by their IQN/EUI/NAA.
        if name == "discovery_auth" {
            continue;
        }
        targets.push(target(cfs, &name)?);
    }
    Ok(TargetStatus {
        daemon_running: true,
        targets,
    })
}

fn target(cfs: &Configfs, iqn: &str) -> Result<ObservedTarget, LioError> {
    let tpg = format!("{FABRIC}/{iqn}/{TPGT}");
    let mut out = ObservedTarget {
        iqn: iqn.to_string(),
        ..ObservedTarget::default()
    };
    if !cfs.exists(&tpg) {
        return Ok(out);
    }
    out.ready = cfs.read(&format!("{tpg}/enable"))? == "1";
    for name in cfs.dirs(&format!("{tpg}/lun"))? {
        let Some(n) = layout::parse_lun_name(&name) else {
            continue;
        };
        out.luns.push(lun(cfs, &format!("{tpg}/lun/{name}"), n)?);
    }
    out.luns.sort_by_key(|l| l.lun);
    // LIO admits by name only: no address ranges to report, and "every initiator" is demo
    // mode (ACLs generated for whoever logs in).
    out.allow_all = cfs.read(&format!("{tpg}/attrib/generate_node_acls"))? == "1";
    let chap = cfs.read(&format!("{tpg}/attrib/authentication"))? == "1";
    let mut users = Vec::new();
    let mut mutual = Vec::new();
    let mut auths = vec![format!("{tpg}/auth")];
    for acl in cfs.dirs(&format!("{tpg}/acls"))? {
        let info = cfs.read(&format!("{tpg}/acls/{acl}/info"))?;
        out.sessions = out
            .sessions
            .saturating_add(layout::count_acl_sessions(&info));
        auths.push(format!("{tpg}/acls/{acl}/auth"));
        out.initiator_names.push(acl);
    }
    for auth in auths {
        if let Some(u) = layout::auth_value(&cfs.read(&format!("{auth}/userid"))?) {
            users.push(u.to_string());
        }
        if let Some(u) = layout::auth_value(&cfs.read(&format!("{auth}/userid_mutual"))?) {
            mutual.push(u.to_string());
        }
    }
    if chap {
        users.sort();
        users.dedup();
        out.incoming_users = users;
    }
    mutual.sort();
    mutual.dedup();
    out.outgoing_user = mutual.into_iter().next();
    let dynamic = format!("{tpg}/dynamic_sessions");
    if cfs.exists(&dynamic) {
        let text = cfs.read(&dynamic)?;
        out.sessions = out
            .sessions
            .saturating_add(layout::count_dynamic_sessions(&text));
    }
    Ok(out)
}

fn lun(cfs: &Configfs, dir: &str, n: u64) -> Result<ObservedLun, LioError> {
    let mut out = ObservedLun {
        lun: n,
        ..ObservedLun::default()
    };
    let Some(link) = cfs.links(dir)?.into_iter().next() else {
        return Ok(out);
    };
    let object = cfs.read_link(&format!("{dir}/{link}"))?;
    // The link names the object under core/<hba>/<object>; read it from there.
    let mut parts = object.iter().rev();
    let (Some(name), Some(hba)) = (parts.next(), parts.next()) else {
        return Err(LioError::Malformed {
            path: cfs.path(dir),
            reason: format!("LUN link points at {}", object.display()),
        });
    };
    let hba = hba.to_string_lossy();
    let obj = format!("core/{hba}/{}", name.to_string_lossy());
    let path = cfs.read(&format!("{obj}/udev_path"))?;
    out.path = (!path.is_empty()).then_some(path);
    let serial = cfs.read(&format!("{obj}/wwn/vpd_unit_serial"))?;
    out.scsi_sn = layout::parse_unit_serial(&serial).map(str::to_string);
    let info = cfs.read(&format!("{obj}/info"))?;
    if hba.starts_with("fileio_") {
        // fileio cannot open read-only; what it shows is how writes complete.
        out.read_only = Some(false);
        out.stable_writes = layout::parse_fileio_stable(&info);
        out.volatile_cache_reported = match cfs
            .read(&format!("{obj}/attrib/emulate_write_cache"))?
            .as_str()
        {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
    } else {
        out.read_only = layout::parse_iblock_readonly(&info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::iqn::Iqn;
    use iscsi_ha_core::target::{Access, TargetSpec};
    use std::fs;
    use std::path::Path;

    const IQN: &str = "iqn.2024-01.com.example:disk";

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// A TPG as the kernel shows it, with no LUNs or ACLs, in demo mode or not.
    fn tree(demo_mode: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tpg = dir.path().join(format!("{FABRIC}/{IQN}/{TPGT}"));
        fs::create_dir_all(dir.path().join("core")).unwrap_or_else(|e| panic!("{e}"));
        for sub in ["lun", "acls"] {
            fs::create_dir_all(tpg.join(sub)).unwrap_or_else(|e| panic!("{e}"));
        }
        write(&tpg.join("enable"), "1\n");
        write(
            &tpg.join("attrib/generate_node_acls"),
            if demo_mode { "1\n" } else { "0\n" },
        );
        write(&tpg.join("attrib/authentication"), "0\n");
        write(&tpg.join("auth/userid"), "NULL\n");
        write(&tpg.join("auth/userid_mutual"), "NULL\n");
        dir
    }

    fn spec(allow_all: bool) -> TargetSpec {
        TargetSpec {
            iqn: Iqn::new(IQN).unwrap_or_else(|e| panic!("{e}")),
            luns: Vec::new(),
            access: Access {
                allow_all,
                ..Access::default()
            },
        }
    }

    #[test]
    fn demo_mode_is_reported_as_every_initiator_allowed_and_no_address_range() {
        let open = tree(true);
        let seen = |dir: &tempfile::TempDir| {
            status(&Configfs::new(dir.path())).unwrap_or_else(|e| panic!("{e}"))
        };
        let status = seen(&open);
        assert!(status.targets[0].allow_all, "{status:#?}");
        assert!(status.targets[0].initiator_addresses.is_empty());
        assert!(spec(true).is_served_by(&status));
        assert!(!spec(false).is_served_by(&status));

        let closed = tree(false);
        let status = seen(&closed);
        assert!(!status.targets[0].allow_all, "{status:#?}");
        assert!(spec(false).is_served_by(&status));
        assert!(!spec(true).is_served_by(&status));
    }
}
