//! Where each object of a spec lives in LIO's configfs tree, and how the kernel's attribute
//! texts read. Pure: no I/O.
//!
//! The layout (kernel `drivers/target/target_core_configfs.c`, `target_core_fabric_configfs.c`,
//! `iscsi/iscsi_target_configfs.c`; the same names rtslib-fb's `tcm.py`/`target.py` use):
//!
//! ```text
//! core/{iblock,fileio}_<N>/<object>/{control,udev_path,enable,info,attrib/emulate_write_cache,wwn/*}
//! iscsi/<iqn>/tpgt_1/{enable,attrib/*,auth/*,np/<ip>:<port>/,lun/lun_<N>/<link to object>}
//! iscsi/<iqn>/tpgt_1/acls/<initiator>/{info,auth/*,lun_<N>/{write_protect,<link to tpg lun>}}
//! ```

use std::net::SocketAddr;

use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::target::{LunId, LunSpec};

/// The HBA holding our read-only LUNs' objects. targetcli numbers its HBAs from 0 up; a high
/// fixed index keeps ours apart, and every object in it carries our prefix anyway.
pub const IBLOCK_HBA: &str = "core/iblock_4242";
/// The HBA holding our writable LUNs' objects.
pub const FILEIO_HBA: &str = "core/fileio_4242";
/// Both of our HBAs.
pub const HBAS: [&str; 2] = [IBLOCK_HBA, FILEIO_HBA];

/// Which backstore serves a LUN. A writable LUN is a fileio object on the block device:
/// opened `O_DSYNC` (kernel `target_core_file.c` `fd_configure_device`), each WRITE completes
/// only once the device has it on stable storage (for DRBD with protocol C: both disks), and
/// the caching mode page says WCE=0 (no `get_write_cache`, `emulate_write_cache` 0). iblock
/// cannot promise that: it reports the device's own write cache (DRBD has one) and adds FUA
/// only when the device has none. `write_cache = true` is fileio's buffered mode
/// (`fd_buffered_io=1`, WCE=1). A read-only LUN takes no writes, so its durability is moot: it
/// is an iblock object opened read-only, which fileio cannot do.
pub fn backstore_hba(lun: &LunSpec) -> &'static str {
    if lun.read_only {
        IBLOCK_HBA
    } else {
        FILEIO_HBA
    }
}
/// The iSCSI fabric's directory.
pub const FABRIC: &str = "iscsi";
/// The one TPG we use (tgtd has none; LIO needs one per target).
pub const TPGT: &str = "tpgt_1";
/// The name of the link from a TPG LUN to its storage object (any name works; ours is fixed
/// so that convergence recognises it).
pub const LUN_LINK: &str = "iha_object";
/// The name of the link from an ACL's mapped LUN to the TPG LUN.
pub const MAPPED_LUN_LINK: &str = "iha_lun";

/// FNV-1a, 32 bits: a short, stable tag of the target name for our object names.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The prefix of the storage objects of target `iqn` (`iha_<tag>_lun`): how a convergence
/// or teardown finds objects of a LUN no longer in the spec, and leaves other targets' alone.
pub fn object_prefix(iqn: &Iqn) -> String {
    format!("iha_{:08x}_lun", fnv1a32(iqn.as_str().as_bytes()))
}

/// The storage object of one LUN, relative to the root.
pub fn object_dir(iqn: &Iqn, lun: &LunSpec) -> String {
    format!("{}/{}", backstore_hba(lun), object_name(iqn, lun.lun))
}

/// The storage object's name (the same in either HBA).
pub fn object_name(iqn: &Iqn, lun: LunId) -> String {
    format!("{}{}", object_prefix(iqn), lun.get())
}

/// The target's directory.
pub fn target_dir(iqn: &Iqn) -> String {
    format!("{FABRIC}/{iqn}")
}

/// The TPG's directory.
pub fn tpg_dir(iqn: &Iqn) -> String {
    format!("{FABRIC}/{iqn}/{TPGT}")
}

/// A network portal's directory name: `ip:port`, an IPv6 address in brackets.
pub fn portal_name(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The directory name of LUN (or mapped LUN) `n`.
pub fn lun_name(n: u64) -> String {
    format!("lun_{n}")
}

/// The LUN number of a `lun_<N>` directory name.
pub fn parse_lun_name(name: &str) -> Option<u64> {
    name.strip_prefix("lun_")?.parse().ok()
}

/// The `control` line configuring a LUN's object (see [`backstore_hba`]): options are split
/// on ',' and '\n' by the kernel (`iblock_set_configfs_dev_params`,
/// `fd_set_configfs_dev_params`), so a path holding either cannot be expressed.
pub fn backstore_control(lun: &LunSpec) -> Option<String> {
    let path = &lun.path;
    if path.is_empty() || path.contains([',', '\n', '\0']) {
        return None;
    }
    Some(if lun.read_only {
        format!("udev_path={path},readonly=1")
    } else if lun.stable_writes {
        format!("fd_dev_name={path}")
    } else {
        format!("fd_dev_name={path},fd_buffered_io=1")
    })
}

/// Whether a fileio object's `info` says it writes through (`Mode: O_DSYNC`) or not
/// (`Mode: Buffered-WCE`).
pub fn parse_fileio_stable(info: &str) -> Option<bool> {
    let rest = &info[info.find("Mode:")? + "Mode:".len()..];
    match rest.split_whitespace().next()? {
        "O_DSYNC" => Some(true),
        "Buffered-WCE" => Some(false),
        _ => None,
    }
}

/// The serial in `wwn/vpd_unit_serial`, which reads `T10 VPD Unit Serial Number: <serial>`.
pub fn parse_unit_serial(text: &str) -> Option<&str> {
    let serial = text
        .lines()
        .next()?
        .strip_prefix("T10 VPD Unit Serial Number:")?
        .trim();
    (!serial.is_empty()).then_some(serial)
}

/// Whether an iblock object's `info` says it opened its device read-only (`readonly: 1`).
pub fn parse_iblock_readonly(info: &str) -> Option<bool> {
    let rest = &info[info.find("readonly:")? + "readonly:".len()..];
    match rest.split_whitespace().next()? {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// The sessions an ACL's `info` shows: one `LIO Session ID:` line each (none when it reads
/// `No active iSCSI Session for Initiator Endpoint`).
pub fn count_acl_sessions(info: &str) -> u32 {
    let n = info
        .lines()
        .filter(|l| l.trim_start().starts_with("LIO Session ID:"))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The sessions a TPG's `dynamic_sessions` lists: one initiator name per line.
pub fn count_dynamic_sessions(text: &str) -> u32 {
    let n = text.lines().filter(|l| !l.trim().is_empty()).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A CHAP attribute as set: LIO shows an unset one empty, and one cleared by writing `NULL`
/// as `NULL`.
pub fn auth_value(text: &str) -> Option<&str> {
    let t = text.trim();
    (!t.is_empty() && t != "NULL").then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iqn(s: &str) -> Iqn {
        Iqn::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn object_names_are_per_target_and_fit_configfs() {
        let a = iqn("iqn.2024-01.com.example:disk");
        let b = iqn("iqn.2024-01.com.example:other");
        let lun = LunId::new(16383).unwrap_or_else(|e| panic!("{e}"));
        let dir = object_dir(&a, &spec_lun(lun, false, true));
        assert!(dir.starts_with(&format!("{FILEIO_HBA}/{}", object_prefix(&a))));
        let ro = object_dir(&a, &spec_lun(lun, true, true));
        assert!(ro.starts_with(&format!("{IBLOCK_HBA}/{}", object_prefix(&a))));
        assert!(dir.ends_with("_lun16383"));
        assert_ne!(object_prefix(&a), object_prefix(&b));
        // TARGET_CORE_NAME_MAX_LEN is 64.
        assert!(dir.rsplit('/').next().is_some_and(|n| n.len() < 64));
        assert_eq!(tpg_dir(&a), "iscsi/iqn.2024-01.com.example:disk/tpgt_1");
    }

    #[test]
    fn portals_and_luns_are_named_as_the_kernel_parses_them() {
        let v4: SocketAddr = "10.99.0.100:3260".parse().unwrap_or_else(|e| panic!("{e}"));
        let v6: SocketAddr = "[fd00::1]:3260".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(portal_name(v4), "10.99.0.100:3260");
        assert_eq!(portal_name(v6), "[fd00::1]:3260");
        assert_eq!(parse_lun_name(&lun_name(7)), Some(7));
        assert_eq!(parse_lun_name("lun_x"), None);
        assert_eq!(parse_lun_name("7"), None);
    }

    fn spec_lun(lun: LunId, read_only: bool, stable_writes: bool) -> LunSpec {
        LunSpec {
            lun,
            path: "/dev/drbd1".into(),
            identity: iscsi_ha_core::target::LunIdentity::derived(&iqn("iqn.2024-01.x:y"), lun),
            read_only,
            volatile_cache_reported: !stable_writes,
            stable_writes,
        }
    }

    #[test]
    fn control_lines_pick_the_backstore_and_refuse_what_the_kernel_would_split() {
        let one = LunId::new(1).unwrap_or_else(|e| panic!("{e}"));
        let control = |ro, stable| backstore_control(&spec_lun(one, ro, stable));
        assert_eq!(
            control(true, true).as_deref(),
            Some("udev_path=/dev/drbd1,readonly=1")
        );
        assert_eq!(
            control(false, true).as_deref(),
            Some("fd_dev_name=/dev/drbd1")
        );
        assert_eq!(
            control(false, false).as_deref(),
            Some("fd_dev_name=/dev/drbd1,fd_buffered_io=1")
        );
        for path in ["/dev/a,b", "/dev/a\nb", ""] {
            let mut lun = spec_lun(one, false, true);
            lun.path = path.into();
            assert_eq!(backstore_control(&lun), None, "{path:?}");
        }
        let info = "Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 1024\n\
                    TCM FILEIO ID: 0        File: /dev/drbd1  Size: 67104768  Mode: O_DSYNC Async: 0\n";
        assert_eq!(parse_fileio_stable(info), Some(true));
        assert_eq!(
            parse_fileio_stable(&info.replace("O_DSYNC", "Buffered-WCE")),
            Some(false)
        );
        assert_eq!(parse_fileio_stable("Mode: ?"), None);
        assert_eq!(parse_fileio_stable(""), None);
    }

    #[test]
    fn attribute_texts_parse() {
        assert_eq!(
            parse_unit_serial("T10 VPD Unit Serial Number: 0123abcd\n"),
            Some("0123abcd")
        );
        assert_eq!(parse_unit_serial("T10 VPD Unit Serial Number: \n"), None);
        assert_eq!(parse_unit_serial("garbage"), None);
        let info = "Status: ACTIVATED  Max Queue Depth: 128  SectorSize: 512  HwMaxSectors: 256\n\
                    iBlock device: vda  UDEV PATH: /dev/vda  readonly: 1\n        Major: 254 Minor: 0\n";
        assert_eq!(parse_iblock_readonly(info), Some(true));
        assert_eq!(parse_iblock_readonly("readonly: x"), None);
        assert_eq!(parse_iblock_readonly("nothing"), None);
        let acl = "InitiatorName: iqn.x\nInitiatorAlias: \nLIO Session ID: 1   ISID: 0x23d000000000  TSIH: 1  SessionType: Normal\n";
        assert_eq!(count_acl_sessions(acl), 1);
        assert_eq!(
            count_acl_sessions("No active iSCSI Session for Initiator Endpoint: iqn.x"),
            0
        );
        assert_eq!(count_dynamic_sessions("iqn.a\niqn.b\n"), 2);
        assert_eq!(count_dynamic_sessions(""), 0);
        assert_eq!(auth_value("NULL"), None);
        assert_eq!(auth_value(""), None);
        assert_eq!(auth_value("user\n"), Some("user"));
    }
}
