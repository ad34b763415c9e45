//! Building, converging and tearing down the tree for a [`TargetSpec`].
//!
//! Serving creates in dependency order (storage objects, target, TPG and its settings, portal,
//! LUNs, ACLs) and enables the TPG last, so initiators never log in to a half-built target.
//! Whatever already matches is left alone, so a logged-in initiator is not disturbed by
//! serving again; an object that differs in what cannot change while exported (device path,
//! unit serial, read-only) is unexported and rebuilt. Teardown goes the other way (TPG
//! disabled, ACLs, LUNs, portals, TPG, target, storage objects). Every step tolerates being
//! already done, so after a failure half-way the next serve or teardown finishes the job.

use std::net::SocketAddr;

use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::target::{LunSpec, TargetSpec};

use crate::error::LioError;
use crate::fs::Configfs;
use crate::layout::{self, HBAS, LUN_LINK, MAPPED_LUN_LINK};
use crate::settings;

/// Refuses, before touching anything, what LIO cannot express (the daemon's configuration
/// check refuses the same, at each key: [`settings::unsupported`]).
pub fn check_spec(spec: &TargetSpec) -> Result<(), LioError> {
    match settings::unsupported(spec).into_iter().next() {
        Some(p) => Err(LioError::Unsupported(format!("{}: {}", p.at, p.message))),
        None => Ok(()),
    }
}

/// Converges the tree on `spec`, served on `portal`, and enables the TPG.
pub fn serve(cfs: &Configfs, spec: &TargetSpec, portal: SocketAddr) -> Result<(), LioError> {
    check_spec(spec)?;
    require_core(cfs)?;
    cfs.mkdir(layout::FABRIC)?;
    let tpg = layout::tpg_dir(&spec.iqn);
    // First what the spec no longer has, or has in the other backstore (a LUN made read-only
    // or writable), so that a LUN's device is never held by two of our objects for long.
    remove_stale_objects(cfs, spec)?;
    for lun in &spec.luns {
        if !object_matches(cfs, &spec.iqn, lun)? {
            unexport_lun(cfs, &spec.iqn, lun.lun.get())?;
            remove_object(cfs, &layout::object_dir(&spec.iqn, lun))?;
            build_object(cfs, &spec.iqn, lun)?;
        }
    }
    cfs.mkdir(&layout::target_dir(&spec.iqn))?;
    cfs.mkdir(&tpg)?;
    let open = if spec.access.allow_all { "1" } else { "0" };
    cfs.ensure(&format!("{tpg}/attrib/generate_node_acls"), open)?;
    cfs.ensure(&format!("{tpg}/attrib/cache_dynamic_acls"), open)?;
    // Demo mode is read-only by default; read-only is the object's (iblock `readonly`) business.
    cfs.ensure(&format!("{tpg}/attrib/demo_mode_write_protect"), "0")?;
    let chap = if spec.access.incoming.is_empty() {
        "0"
    } else {
        "1"
    };
    cfs.ensure(&format!("{tpg}/attrib/authentication"), chap)?;
    // The TPG's own account is what initiators logging in through demo mode are checked with.
    ensure_auth(cfs, &format!("{tpg}/auth"), spec)?;
    converge_portals(cfs, &tpg, portal)?;
    converge_luns(cfs, spec)?;
    converge_acls(cfs, spec)?;
    cfs.ensure(&format!("{tpg}/enable"), "1")
}

/// Takes down everything of `spec`'s target and its storage objects.
pub fn teardown(cfs: &Configfs, iqn: &Iqn) -> Result<(), LioError> {
    require_core(cfs)?;
    let tpg = layout::tpg_dir(iqn);
    if cfs.exists(&tpg) {
        // Refuses new logins and drops the sessions before anything they use goes away.
        if cfs.read(&format!("{tpg}/enable"))? != "0" {
            cfs.write(&format!("{tpg}/enable"), "0")?;
        }
        for acl in cfs.dirs(&format!("{tpg}/acls"))? {
            remove_acl(cfs, &format!("{tpg}/acls/{acl}"))?;
        }
        for lun in cfs.dirs(&format!("{tpg}/lun"))? {
            remove_tpg_lun(cfs, &format!("{tpg}/lun/{lun}"))?;
        }
        for np in cfs.dirs(&format!("{tpg}/np"))? {
            cfs.rmdir(&format!("{tpg}/np/{np}"))?;
        }
        cfs.rmdir(&tpg)?;
    }
    let target = layout::target_dir(iqn);
    if cfs.exists(&target) {
        // Another TPG than ours (made by hand) keeps the target; it is not ours to remove.
        // The kernel's own groups (fabric_statistics, ...) go with the rmdir.
        if !cfs.dirs(&target)?.iter().any(|d| d.starts_with("tpgt_")) {
            cfs.rmdir(&target)?;
        }
    }
    let prefix = layout::object_prefix(iqn);
    for hba in HBAS {
        for name in cfs.dirs(hba)? {
            if name.starts_with(&prefix) {
                remove_object(cfs, &format!("{hba}/{name}"))?;
            }
        }
        remove_hba_if_empty(cfs, hba)?;
    }
    Ok(())
}

/// The modules LIO needs here: the core, its iSCSI fabric and our two backstores.
pub const MODULES: &str = "target_core_mod iscsi_target_mod target_core_iblock target_core_file";

/// Whether the target core is loaded (its `core` group exists), naming what to do if not.
pub fn require_core(cfs: &Configfs) -> Result<(), LioError> {
    if cfs.exists("core") {
        return Ok(());
    }
    Err(LioError::Unavailable {
        path: cfs.path("core"),
        hint: format!(
            "load the kernel's iSCSI target (modprobe {MODULES}; list them in \
             /etc/modules-load.d/ to load them at boot), and mount configfs on \
             /sys/kernel/config if it is not"
        ),
    })
}

/// Whether LUN `lun`'s storage object exists in its backstore, is enabled and shows the
/// spec's device, serial, read-only flag or write mode, reported cache and INQUIRY names.
fn object_matches(cfs: &Configfs, iqn: &Iqn, lun: &LunSpec) -> Result<bool, LioError> {
    let dir = layout::object_dir(iqn, lun);
    if !cfs.exists(&dir) || cfs.read(&format!("{dir}/enable"))? != "1" {
        return Ok(false);
    }
    let serial = cfs.read(&format!("{dir}/wwn/vpd_unit_serial"))?;
    let info = cfs.read(&format!("{dir}/info"))?;
    let mode_ok = if lun.read_only {
        layout::parse_iblock_readonly(&info) == Some(true)
    } else {
        layout::parse_fileio_stable(&info) == Some(lun.stable_writes)
            && cfs.read(&format!("{dir}/attrib/emulate_write_cache"))?
                == if lun.volatile_cache_reported {
                    "1"
                } else {
                    "0"
                }
    };
    let mut same = cfs.read(&format!("{dir}/udev_path"))? == lun.path
        && layout::parse_unit_serial(&serial) == Some(lun.identity.scsi_sn.as_str())
        && mode_ok;
    if let Some(v) = &lun.identity.vendor_id {
        same &= cfs.read(&format!("{dir}/wwn/vendor_id"))?.trim() == v;
    }
    if let Some(p) = &lun.identity.product_id {
        same &= cfs.read(&format!("{dir}/wwn/product_id"))?.trim() == p;
    }
    Ok(same)
}

/// Creates and enables LUN `lun`'s storage object with its identity. The identity and the
/// reported cache are written before the object is exported: the kernel refuses to change
/// the identity while a LUN uses it.
fn build_object(cfs: &Configfs, iqn: &Iqn, lun: &LunSpec) -> Result<(), LioError> {
    let dir = layout::object_dir(iqn, lun);
    let control = layout::backstore_control(lun)
        .ok_or_else(|| LioError::Unsupported(format!("LUN {} path {:?}", lun.lun, lun.path)))?;
    cfs.mkdir(layout::backstore_hba(lun))?;
    cfs.mkdir(&dir)?;
    cfs.write(&format!("{dir}/control"), &control)?;
    cfs.write(&format!("{dir}/udev_path"), &lun.path)?;
    cfs.write(&format!("{dir}/enable"), "1")?;
    if !lun.read_only {
        // fileio's own default matches its mode (buffered: 1); written so the spec decides.
        cfs.ensure(
            &format!("{dir}/attrib/emulate_write_cache"),
            if lun.volatile_cache_reported {
                "1"
            } else {
                "0"
            },
        )?;
    }
    cfs.write(&format!("{dir}/wwn/vpd_unit_serial"), &lun.identity.scsi_sn)?;
    if let Some(v) = &lun.identity.vendor_id {
        cfs.write(&format!("{dir}/wwn/vendor_id"), v)?;
    }
    if let Some(p) = &lun.identity.product_id {
        cfs.write(&format!("{dir}/wwn/product_id"), p)?;
    }
    Ok(())
}

fn remove_object(cfs: &Configfs, dir: &str) -> Result<(), LioError> {
    cfs.rmdir(dir)
}

fn remove_hba_if_empty(cfs: &Configfs, hba: &str) -> Result<(), LioError> {
    if cfs.exists(hba) && cfs.dirs(hba)?.is_empty() {
        cfs.rmdir(hba)?;
    }
    Ok(())
}

/// Removes this target's objects for LUNs the spec no longer has, or has in the other
/// backstore (unexporting them first).
fn remove_stale_objects(cfs: &Configfs, spec: &TargetSpec) -> Result<(), LioError> {
    let prefix = layout::object_prefix(&spec.iqn);
    for hba in HBAS {
        for name in cfs.dirs(hba)? {
            let Some(n) = name
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let wanted = spec
                .luns
                .iter()
                .any(|l| l.lun.get() == n && layout::backstore_hba(l) == hba);
            if !wanted {
                unexport_lun(cfs, &spec.iqn, n)?;
                remove_object(cfs, &format!("{hba}/{name}"))?;
            }
        }
        remove_hba_if_empty(cfs, hba)?;
    }
    Ok(())
}

/// Removes LUN `n` from every ACL and from the TPG.
fn unexport_lun(cfs: &Configfs, iqn: &Iqn, n: u64) -> Result<(), LioError> {
    let tpg = layout::tpg_dir(iqn);
    let lun = layout::lun_name(n);
    for acl in cfs.dirs(&format!("{tpg}/acls"))? {
        remove_mapped_lun(cfs, &format!("{tpg}/acls/{acl}/{lun}"))?;
    }
    remove_tpg_lun(cfs, &format!("{tpg}/lun/{lun}"))
}

fn remove_mapped_lun(cfs: &Configfs, dir: &str) -> Result<(), LioError> {
    for link in cfs.links(dir)? {
        cfs.unlink(&format!("{dir}/{link}"))?;
    }
    cfs.rmdir(dir)
}

fn remove_tpg_lun(cfs: &Configfs, dir: &str) -> Result<(), LioError> {
    for link in cfs.links(dir)? {
        cfs.unlink(&format!("{dir}/{link}"))?;
    }
    cfs.rmdir(dir)
}

fn remove_acl(cfs: &Configfs, dir: &str) -> Result<(), LioError> {
    for mapped in cfs.dirs(dir)? {
        if layout::parse_lun_name(&mapped).is_some() {
            remove_mapped_lun(cfs, &format!("{dir}/{mapped}"))?;
        }
    }
    cfs.rmdir(dir)
}

fn converge_portals(cfs: &Configfs, tpg: &str, portal: SocketAddr) -> Result<(), LioError> {
    let want = layout::portal_name(portal);
    for np in cfs.dirs(&format!("{tpg}/np"))? {
        if np != want {
            cfs.rmdir(&format!("{tpg}/np/{np}"))?;
        }
    }
    cfs.mkdir(&format!("{tpg}/np/{want}"))
}

fn converge_luns(cfs: &Configfs, spec: &TargetSpec) -> Result<(), LioError> {
    let tpg = layout::tpg_dir(&spec.iqn);
    for name in cfs.dirs(&format!("{tpg}/lun"))? {
        let keep = layout::parse_lun_name(&name)
            .is_some_and(|n| spec.luns.iter().any(|l| l.lun.get() == n));
        if !keep {
            if let Some(n) = layout::parse_lun_name(&name) {
                unexport_lun(cfs, &spec.iqn, n)?;
            } else {
                remove_tpg_lun(cfs, &format!("{tpg}/lun/{name}"))?;
            }
        }
    }
    for lun in &spec.luns {
        let dir = format!("{tpg}/lun/{}", layout::lun_name(lun.lun.get()));
        let object = layout::object_dir(&spec.iqn, lun);
        // A link to another object (left by hand, or before a rebuild) is replaced.
        let wanted = cfs.path(&object);
        for link in cfs.links(&dir)? {
            let rel = format!("{dir}/{link}");
            if link != LUN_LINK || !same_object(&cfs.read_link(&rel)?, &wanted) {
                unexport_lun(cfs, &spec.iqn, lun.lun.get())?;
            }
        }
        cfs.mkdir(&dir)?;
        cfs.symlink(&object, &format!("{dir}/{LUN_LINK}"))?;
    }
    Ok(())
}

/// Whether a link's target names the object at `wanted`: the kernel may show it relative, so
/// the HBA and object names are compared (our objects have the same name in either HBA).
fn same_object(target: &std::path::Path, wanted: &std::path::Path) -> bool {
    target == wanted || (target.file_name().is_some() && tail(target) == tail(wanted))
}

fn tail(p: &std::path::Path) -> (Option<&std::ffi::OsStr>, Option<&std::ffi::OsStr>) {
    let mut parts = p.iter().rev();
    (parts.next(), parts.next())
}

fn converge_acls(cfs: &Configfs, spec: &TargetSpec) -> Result<(), LioError> {
    let tpg = layout::tpg_dir(&spec.iqn);
    let names: Vec<&str> = spec
        .access
        .initiator_names
        .iter()
        .map(Iqn::as_str)
        .collect();
    for acl in cfs.dirs(&format!("{tpg}/acls"))? {
        if !names.contains(&acl.as_str()) {
            remove_acl(cfs, &format!("{tpg}/acls/{acl}"))?;
        }
    }
    for name in names {
        let acl = format!("{tpg}/acls/{name}");
        cfs.mkdir(&acl)?;
        for mapped in cfs.dirs(&acl)? {
            let keep = layout::parse_lun_name(&mapped)
                .is_some_and(|n| spec.luns.iter().any(|l| l.lun.get() == n));
            if layout::parse_lun_name(&mapped).is_some() && !keep {
                remove_mapped_lun(cfs, &format!("{acl}/{mapped}"))?;
            }
        }
        for lun in &spec.luns {
            let n = layout::lun_name(lun.lun.get());
            let dir = format!("{acl}/{n}");
            cfs.mkdir(&dir)?;
            cfs.symlink(
                &format!("{tpg}/lun/{n}"),
                &format!("{dir}/{MAPPED_LUN_LINK}"),
            )?;
            cfs.ensure(
                &format!("{dir}/write_protect"),
                if lun.read_only { "1" } else { "0" },
            )?;
        }
        ensure_auth(cfs, &format!("{acl}/auth"), spec)?;
    }
    Ok(())
}

/// Sets (or clears, by writing `NULL`) the four CHAP attributes of an `auth` group.
fn ensure_auth(cfs: &Configfs, auth: &str, spec: &TargetSpec) -> Result<(), LioError> {
    let incoming = spec.access.incoming.first();
    let outgoing = spec.access.outgoing.as_ref();
    let fields = [
        ("userid", incoming.map(|c| c.user.as_str())),
        ("password", incoming.map(|c| c.password.expose())),
        ("userid_mutual", outgoing.map(|c| c.user.as_str())),
        ("password_mutual", outgoing.map(|c| c.password.expose())),
    ];
    for (field, want) in fields {
        let path = format!("{auth}/{field}");
        let have = cfs.read(&path)?;
        if layout::auth_value(&have) != want {
            cfs.write(&path, want.unwrap_or("NULL"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::config::{Config, Source};

    #[test]
    fn a_spec_lio_cannot_express_is_refused_before_anything_is_touched() {
        let text = r#"
[role]
source = "static"
role = "master"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:storage"
[[target.lun]]
lun = 1
path = "/dev/drbd1"
[target.access]
initiators = ["10.10.10.0/24"]
[vip]
address = "10.10.10.3/24"
interface = "xenbr1"
"#;
        let config =
            Config::parse(Source { text, origin: "t" }, None).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // A tree that looks loaded: only the refusal can stop the build.
        std::fs::create_dir(dir.path().join("core")).unwrap_or_else(|e| panic!("{e}"));
        let cfs = Configfs::new(dir.path());
        let portal = "10.10.10.3:3260".parse().unwrap_or_else(|e| panic!("{e}"));
        let err = serve(&cfs, &config.target, portal).err();
        assert!(
            matches!(&err, Some(LioError::Unsupported(m)) if m.starts_with("target.access.initiators[0]")),
            "{err:?}"
        );
        assert_eq!(cfs.list("").map(|l| l.len()).ok(), Some(1), "only core/");
        assert_eq!(cfs.list("core").map(|l| l.len()).ok(), Some(0));
    }
}
