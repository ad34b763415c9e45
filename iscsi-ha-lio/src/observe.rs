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
    if cfs.read(&format!("{tpg}/attrib/generate_node_acls"))? == "1" {
        // The core's word for "every initiator" (tgtd's ALL).
        out.initiator_addresses.push("ALL".into());
    }
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
