//! `[target.lio]`, and what of the core's `[target]` LIO cannot do. The core keeps
//! `[target.lio]` as opaque TOML (it knows no backend's words); this module gives it meaning,
//! and the daemon's configuration check reports each problem at the key it names.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use iscsi_ha_core::config::KeyPath;
use iscsi_ha_core::target::{LunSpec, TargetSpec};
use serde::Deserialize;

use crate::adapter::LioConfig;
use crate::layout;

/// The iSCSI port a portal without one listens on.
pub const ISCSI_PORT: u16 = 3260;

/// Longest unit serial LIO keeps: its buffer is `INQUIRY_VPD_SERIAL_LEN` (254) bytes with the
/// terminating NUL, and the kernel refuses a longer write with EOVERFLOW
/// (`target_core_configfs.c` `target_wwn_vpd_unit_serial_store`).
pub const MAX_UNIT_SERIAL_LEN: usize = 253;

/// Longest iSCSI name LIO keeps: its target and initiator names live in `ISCSI_IQN_LEN` /
/// `TRANSPORT_IQN_LEN` (224) byte fields with the NUL; a longer target name is refused
/// (`iscsit_add_tiqn`: "Target IQN exceeds 224 bytes") and a longer initiator name is cut short
/// (`target_alloc_node_acl`'s `snprintf`), so its ACL would never match the initiator's login.
pub const MAX_LIO_NAME_LEN: usize = 223;

/// `[target.lio]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LioSection {
    /// Where the target listens: `address:port`, or an address alone (port 3260). Default:
    /// the VIP's address, port 3260, so the target is reachable only where initiators look
    /// for it. LIO binds with `IP_FREEBIND`, so the portal exists before the VIP does.
    #[serde(default)]
    pub portal: Option<String>,
    /// The target core's configfs directory (default `/sys/kernel/config/target`).
    #[serde(default)]
    pub configfs: Option<PathBuf>,
}

pub use iscsi_ha_core::config::SettingProblem;

/// The adapter's settings from `[target.lio]` (absent: every default) with `vip` as the
/// default portal address, or every problem found.
pub fn lio_config(
    table: Option<&toml::Table>,
    vip: IpAddr,
) -> Result<LioConfig, Vec<SettingProblem>> {
    let at = KeyPath::keys(&["target", "lio"]);
    let section: LioSection = match table {
        None => LioSection::default(),
        Some(t) => toml::Value::Table(t.clone()).try_into().map_err(|e: toml::de::Error| {
            let message = e.message().trim().to_string();
            // serde names the offending field first, in backquotes (`unknown field `port``).
            let key = message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next())
                .filter(|k| !k.is_empty());
            let at = key.map_or(at.clone(), |k| at.key(k));
            vec![SettingProblem::new(
                at,
                format!("{message}; [target.lio] takes portal = \"address:port\" and configfs = \"/sys/kernel/config/target\""),
            )]
        })?,
    };
    let mut problems = Vec::new();
    let portal = match section.portal.as_deref().map(str::trim) {
        None => SocketAddr::new(vip, ISCSI_PORT),
        Some(text) => match parse_portal(text) {
            Some(addr) => addr,
            None => {
                problems.push(SettingProblem::new(
                    at.key("portal"),
                    format!("{text:?} is not address:port: write e.g. \"10.10.10.3:3260\", \"[fd00::3]:3260\" or \"0.0.0.0:3260\" (every address), or remove it to listen on the VIP"),
                ));
                SocketAddr::new(vip, ISCSI_PORT)
            }
        },
    };
    let root = section
        .configfs
        .unwrap_or_else(|| LioConfig::default().root);
    if !root.is_absolute() {
        problems.push(SettingProblem::new(
            at.key("configfs"),
            format!(
                "{:?} is not an absolute path: write configfs = \"/sys/kernel/config/target\" or remove it",
                root.display()
            ),
        ));
    }
    if problems.is_empty() {
        Ok(LioConfig { root, portal })
    } else {
        Err(problems)
    }
}

fn parse_portal(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| Some(SocketAddr::new(text.parse::<IpAddr>().ok()?, ISCSI_PORT)))
        .filter(|a| a.port() != 0)
}

/// What of `spec` LIO cannot express, each at the configuration key that asks for it, so a
/// configuration never loses an access rule silently: address ranges (LIO admits initiators by
/// name only), more than one incoming CHAP account (LIO binds one account to the TPG and to
/// each initiator's ACL, the same one here), a LUN path the iblock or fileio options cannot
/// carry, a unit serial longer than the kernel keeps, an identity with outer spaces (the
/// kernel strips them, so the LUN would never show what the configuration says), and a target
/// or initiator name longer than [`MAX_LIO_NAME_LEN`]. A ',' or '=' in an identity is fine
/// here: each value is written whole to its own configfs file.
pub fn unsupported(spec: &TargetSpec) -> Vec<SettingProblem> {
    let access = KeyPath::keys(&["target", "access"]);
    let mut out = Vec::new();
    let too_long = |name: &str| {
        format!(
            "{} bytes: LIO keeps an iSCSI name of at most {MAX_LIO_NAME_LEN} bytes (the kernel's ISCSI_IQN_LEN, 224 with its NUL); use a shorter name (RFC 3720 allows 223), or backend = \"tgt\"",
            name.len()
        )
    };
    if spec.iqn.as_str().len() > MAX_LIO_NAME_LEN {
        out.push(SettingProblem::new(
            KeyPath::keys(&["target", "iqn"]),
            too_long(spec.iqn.as_str()),
        ));
    }
    for (i, name) in spec.access.initiator_names.iter().enumerate() {
        if name.as_str().len() > MAX_LIO_NAME_LEN {
            out.push(SettingProblem::new(
                access.key("initiator_names").index(i),
                too_long(name.as_str()),
            ));
        }
    }
    for (i, range) in spec.access.initiator_addresses.iter().enumerate() {
        out.push(SettingProblem::new(
            access.key("initiators").index(i),
            format!("{range}: LIO admits initiators by name only, not by address; list their names in initiator_names (or set allow_all = true and rely on CHAP), or use backend = \"tgt\""),
        ));
    }
    if spec.access.incoming.len() > 1 {
        out.push(SettingProblem::new(
            access.key("incoming").index(1),
            format!(
                "{} incoming CHAP accounts: LIO checks one account per target; keep one [[target.access.incoming]], or use backend = \"tgt\"",
                spec.access.incoming.len()
            ),
        ));
    }
    for (i, lun) in spec.luns.iter().enumerate() {
        if layout::backstore_control(lun).is_none() {
            out.push(SettingProblem::new(
                KeyPath::keys(&["target", "lun"]).index(i).key("path"),
                format!(
                    "{:?}: LIO's backstore options cannot carry ',' or a newline; use a path without them (e.g. a udev link)",
                    lun.path
                ),
            ));
        }
        identity_problems(lun, &KeyPath::keys(&["target", "lun"]).index(i), &mut out);
    }
    out
}

/// What of a LUN's identity the kernel would refuse or change when it is written to the
/// storage object's `wwn` files.
fn identity_problems(lun: &LunSpec, at: &KeyPath, out: &mut Vec<SettingProblem>) {
    let serial = &lun.identity.scsi_sn;
    if serial.len() > MAX_UNIT_SERIAL_LEN {
        out.push(SettingProblem::new(
            at.key("scsi_sn"),
            format!(
                "{} bytes: LIO keeps a unit serial of at most {MAX_UNIT_SERIAL_LEN} bytes (the kernel's INQUIRY_VPD_SERIAL_LEN, 254 with its NUL); write a shorter scsi_sn",
                serial.len()
            ),
        ));
    }
    let fields = [
        ("scsi_sn", Some(serial)),
        ("vendor_id", lun.identity.vendor_id.as_ref()),
        ("product_id", lun.identity.product_id.as_ref()),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if value.trim() != value {
            out.push(SettingProblem::new(
                at.key(field),
                format!(
                    "{value:?} starts or ends with a space, which the kernel strips from what is written to configfs: LIO would show {:?} and never match the configuration; remove the outer spaces",
                    value.trim()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::config::{Config, Source};

    const BASE: &str = r#"
[role]
source = "static"
role = "master"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:storage"
backend = "lio"
[[target.lun]]
lun = 1
path = "/dev/drbd1"
[target.access]
initiator_names = ["iqn.1994-05.com.redhat:a"]
[vip]
address = "10.10.10.3/24"
interface = "xenbr1"
"#;

    fn config(text: &str) -> Config {
        Config::parse(
            Source {
                text,
                origin: "test",
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn settings(text: &str) -> Result<LioConfig, Vec<String>> {
        let c = config(text);
        lio_config(c.file.target.lio.as_ref(), c.vip.address()).map_err(|p| {
            p.into_iter()
                .map(|p| format!("{}: {}", p.at, p.message))
                .collect()
        })
    }

    #[test]
    fn the_portal_defaults_to_the_vip_and_takes_an_address_alone() {
        let c = settings(BASE).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.portal,
            "10.10.10.3:3260".parse().unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(c.root, PathBuf::from("/sys/kernel/config/target"));
        let any = format!("{BASE}[target.lio]\nportal = \"0.0.0.0\"\nconfigfs = \"/cfg\"\n");
        let c = settings(&any).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.portal,
            "0.0.0.0:3260".parse().unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(c.root, PathBuf::from("/cfg"));
        let v6 = format!("{BASE}[target.lio]\nportal = \"[fd00::3]:3261\"\n");
        let c = settings(&v6).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            c.portal,
            "[fd00::3]:3261".parse().unwrap_or_else(|e| panic!("{e}"))
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let bad = format!("{BASE}[target.lio]\nportal = \"here\"\nconfigfs = \"cfg\"\n");
        let e = settings(&bad).err().unwrap_or_default();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("target.lio.portal: \"here\" is not address:port"),
            "{e:?}"
        );
        assert!(e[1].starts_with("target.lio.configfs: "), "{e:?}");
        let unknown = format!("{BASE}[target.lio]\nport = 3260\n");
        let e = settings(&unknown).err().unwrap_or_default();
        assert!(
            e[0].starts_with("target.lio.port: unknown field `port`"),
            "{e:?}"
        );
        let zero = format!("{BASE}[target.lio]\nportal = \"10.0.0.1:0\"\n");
        assert!(settings(&zero).is_err());
    }

    #[test]
    fn what_lio_cannot_do_is_named_at_its_key() {
        assert!(unsupported(&config(BASE).target).is_empty());
        let text = BASE.replace(
            "initiator_names = [\"iqn.1994-05.com.redhat:a\"]",
            "initiators = [\"10.10.10.0/24\"]\n[[target.access.incoming]]\nuser = \"a\"\npassword = \"pa\"\n[[target.access.incoming]]\nuser = \"b\"\npassword = \"pb\"",
        );
        let found: Vec<String> = unsupported(&config(&text).target)
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with(
            "target.access.initiators[0]: 10.10.10.0/24: LIO admits initiators by name only"
        ));
        assert!(found[1].starts_with("target.access.incoming[1]: 2 incoming CHAP accounts"));
        let comma = BASE.replace("/dev/drbd1", "/dev/a,b");
        let found = unsupported(&config(&comma).target);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at.to_string(), "target.lun[0].path");
    }

    #[test]
    fn a_name_longer_than_lio_keeps_is_named_at_its_key() {
        let name = |len: usize| format!("iqn.2024-01.com.example:{}", "a".repeat(len - 24));
        let text = |target: usize, initiator: usize| {
            BASE.replace("iqn.2024-01.com.example:storage", &name(target))
                .replace("iqn.1994-05.com.redhat:a", &name(initiator))
        };
        let at_limit = text(MAX_LIO_NAME_LEN, MAX_LIO_NAME_LEN);
        assert!(unsupported(&config(&at_limit).target).is_empty());
        // 224 and 255 bytes: the core takes both (tgtd keeps 255), LIO neither.
        let found: Vec<String> = unsupported(&config(&text(224, 255)).target)
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .starts_with("target.iqn: 224 bytes: LIO keeps an iSCSI name of at most 223 bytes"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("target.access.initiator_names[0]: 255 bytes"),
            "{found:?}"
        );
    }

    fn identity_problems_of(keys: &str) -> Vec<String> {
        let text = BASE.replace(
            "path = \"/dev/drbd1\"",
            &format!("path = \"/dev/drbd1\"\n{keys}"),
        );
        unsupported(&config(&text).target)
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect()
    }

    #[test]
    fn an_identity_tgtd_cannot_carry_is_taken_and_the_kernels_own_limits_are_named() {
        // Longer than tgtd's 36 bytes, with the ',' and '=' its requests split on: each value
        // is written whole to its own configfs file.
        let serial = format!("SN,{}=1", "x".repeat(40));
        assert_eq!(
            identity_problems_of(&format!("scsi_sn = \"{serial}\"\nvendor_id = \"A,B=C\"")),
            Vec::<String>::new()
        );
        let longest = "s".repeat(MAX_UNIT_SERIAL_LEN);
        assert!(identity_problems_of(&format!("scsi_sn = \"{longest}\"")).is_empty());
        let found = identity_problems_of(&format!("scsi_sn = \"{longest}s\""));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "target.lun[0].scsi_sn: 254 bytes: LIO keeps a unit serial of at most 253 bytes"
            ),
            "{found:?}"
        );
        let found = identity_problems_of("scsi_sn = \"SN1 \"\nproduct_id = \" Disk\"");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("target.lun[0].scsi_sn: \"SN1 \" starts or ends with a space, which the kernel strips"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("target.lun[0].product_id: \" Disk\""),
            "{found:?}"
        );
    }
}
