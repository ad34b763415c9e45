//! `--op show --mode target` (all targets): one indented block per target.

use super::{split_key, Line};

/// One target as tgtd shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetInfo {
    /// Target id.
    pub tid: i32,
    /// Target name.
    pub name: String,
    /// Driver (`iscsi`).
    pub driver: Option<String>,
    /// `ready` or `offline`.
    pub state: Option<String>,
    /// Logged-in initiators (I_T nexus = iSCSI session; its id is the session's TSIH).
    pub nexuses: Vec<NexusInfo>,
    /// Logical units, LUN 0 (the controller) included.
    pub luns: Vec<LunInfo>,
    /// Incoming CHAP users bound.
    pub incoming_users: Vec<String>,
    /// Outgoing CHAP user bound.
    pub outgoing_user: Option<String>,
    /// Access-list entries in tgtd's order: addresses (and `ALL`) first, then names.
    pub acl: Vec<String>,
    /// Lines of this block the parser did not recognise (e.g. new iSCSI NOP settings).
    pub unknown: Vec<String>,
}

/// One I_T nexus (iSCSI session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NexusInfo {
    /// Nexus id (the session's TSIH, used as `sid` to drop a connection).
    pub id: u64,
    /// Initiator name.
    pub initiator: Option<String>,
    /// Its connections.
    pub connections: Vec<NexusConnection>,
}

/// One connection of a nexus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NexusConnection {
    /// Connection id.
    pub cid: u32,
    /// Initiator address.
    pub address: Option<String>,
}

/// One logical unit as tgtd shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LunInfo {
    /// LUN number.
    pub lun: u64,
    /// `disk`, `controller`, ...
    pub device_type: Option<String>,
    /// SCSI ID (VPD 0x83), exactly as stored.
    pub scsi_id: Option<String>,
    /// SCSI serial (VPD 0x80).
    pub scsi_sn: Option<String>,
    /// tgtd's lossy size text, e.g. `67 MB`.
    pub size: Option<String>,
    /// Logical block size.
    pub block_size: Option<u32>,
    /// Online.
    pub online: Option<bool>,
    /// Removable media.
    pub removable: Option<bool>,
    /// Read-only.
    pub readonly: Option<bool>,
    /// Backing store type (`rdwr`, `null`, ...).
    pub backing_type: Option<String>,
    /// Backing path; `None` when tgtd shows `None`.
    pub path: Option<String>,
    /// Backing open flags (`sync`, `direct`), empty when none.
    pub backing_flags: Option<String>,
}

impl TargetInfo {
    /// Whether the target accepts logins (tgtd's `state=ready`; `offline` refuses them).
    pub fn is_ready(&self) -> bool {
        self.state.as_deref() == Some("ready")
    }

    /// The data LUNs (LUN 0, the controller, left out).
    pub fn data_luns(&self) -> impl Iterator<Item = &LunInfo> {
        self.luns.iter().filter(|l| l.lun != 0)
    }

    /// The address entries of the access list (`ALL` included), by syntax: tgtd prints
    /// address rules and name rules in one list.
    pub fn acl_addresses(&self) -> Vec<String> {
        self.acl
            .iter()
            .filter(|e| is_address_entry(e))
            .cloned()
            .collect()
    }

    /// The initiator-name entries of the access list.
    pub fn acl_names(&self) -> Vec<String> {
        self.acl
            .iter()
            .filter(|e| !is_address_entry(e))
            .cloned()
            .collect()
    }
}

/// The access-list entry that admits every initiator, whatever its address or name.
pub const ALL: &str = "ALL";

/// Whether an ACL entry is an address rule (`ALL`, an address, `addr/prefix`, `[v6]/prefix`)
/// rather than an initiator name.
pub fn is_address_entry(entry: &str) -> bool {
    if entry == ALL {
        return true;
    }
    let addr = entry.split_once('/').map_or(entry, |(a, _)| a);
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    addr.parse::<std::net::IpAddr>().is_ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    System,
    Nexus,
    Lun,
    Account,
    Acl,
}

/// Parses the reply to `show target` (all targets). Total: lines it does not recognise are
/// kept in [`TargetInfo::unknown`] (or in the returned list when outside any target).
pub fn parse_targets(text: &str) -> (Vec<TargetInfo>, Vec<String>) {
    let mut targets: Vec<TargetInfo> = Vec::new();
    let mut stray = Vec::new();
    let mut section = Section::None;
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        let line = Line::new(raw);
        if line.level == 0 {
            match parse_target_header(line.text) {
                Some((tid, name)) => {
                    targets.push(TargetInfo {
                        tid,
                        name,
                        ..TargetInfo::default()
                    });
                    section = Section::None;
                }
                None => stray.push(raw.to_string()),
            }
            continue;
        }
        let Some(target) = targets.last_mut() else {
            stray.push(raw.to_string());
            continue;
        };
        if line.level == 1 {
            section = match line.text {
                "System information:" => Section::System,
                "I_T nexus information:" => Section::Nexus,
                "LUN information:" => Section::Lun,
                "Account information:" => Section::Account,
                "ACL information:" => Section::Acl,
                _ => {
                    target.unknown.push(raw.to_string());
                    Section::None
                }
            };
            continue;
        }
        let known = match section {
            Section::System => system_line(target, &line),
            Section::Nexus => nexus_line(target, &line),
            Section::Lun => lun_line(target, &line),
            Section::Account => account_line(target, &line),
            Section::Acl => {
                if line.level == 2 {
                    target.acl.push(line.text.to_string());
                    true
                } else {
                    false
                }
            }
            Section::None => false,
        };
        if !known {
            target.unknown.push(raw.to_string());
        }
    }
    (targets, stray)
}

fn parse_target_header(text: &str) -> Option<(i32, String)> {
    let rest = text.strip_prefix("Target ")?;
    let (tid, name) = rest.split_once(": ")?;
    Some((tid.parse().ok()?, name.to_string()))
}

fn system_line(target: &mut TargetInfo, line: &Line<'_>) -> bool {
    if line.level != 2 {
        return false;
    }
    match split_key(line.text) {
        Some(("Driver", v)) => target.driver = Some(v.to_string()),
        Some(("State", v)) => target.state = Some(v.to_string()),
        _ => return false,
    }
    true
}

fn nexus_line(target: &mut TargetInfo, line: &Line<'_>) -> bool {
    let kv = split_key(line.text);
    match (line.level, kv) {
        (2, Some(("I_T nexus", v))) => match v.parse() {
            Ok(id) => {
                target.nexuses.push(NexusInfo {
                    id,
                    ..NexusInfo::default()
                });
                true
            }
            Err(_) => false,
        },
        (3, Some(("Initiator", v))) => match target.nexuses.last_mut() {
            Some(n) => {
                let name = v.split_once(" alias: ").map_or(v, |(name, _)| name);
                n.initiator = Some(name.to_string());
                true
            }
            None => false,
        },
        (3, Some(("Connection", v))) => match (target.nexuses.last_mut(), v.parse::<u32>()) {
            (Some(n), Ok(cid)) => {
                n.connections.push(NexusConnection { cid, address: None });
                true
            }
            _ => false,
        },
        (4, Some(("IP Address", v))) => {
            match target
                .nexuses
                .last_mut()
                .and_then(|n| n.connections.last_mut())
            {
                Some(c) => {
                    c.address = Some(v.to_string());
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

fn lun_line(target: &mut TargetInfo, line: &Line<'_>) -> bool {
    let Some((key, v)) = split_key(line.text) else {
        return false;
    };
    if line.level == 2 {
        if key != "LUN" {
            return false;
        }
        return match v.parse() {
            Ok(lun) => {
                target.luns.push(LunInfo {
                    lun,
                    ..LunInfo::default()
                });
                true
            }
            Err(_) => false,
        };
    }
    let Some(lun) = target.luns.last_mut() else {
        return false;
    };
    if line.level != 3 {
        return false;
    }
    let text = Some(v.to_string());
    match key {
        "Type" => lun.device_type = text,
        "SCSI ID" => lun.scsi_id = text,
        "SCSI SN" => lun.scsi_sn = text,
        "Size" => {
            let (size, block) = v.split_once(", Block size: ").unwrap_or((v, ""));
            lun.size = Some(size.to_string());
            lun.block_size = block.parse().ok();
        }
        "Online" => lun.online = yes_no(v),
        "Removable media" => lun.removable = yes_no(v),
        "Readonly" => lun.readonly = yes_no(v),
        "Backing store type" => lun.backing_type = text,
        "Backing store path" => lun.path = (v != "None").then(|| v.to_string()),
        "Backing store flags" => lun.backing_flags = text,
        "Prevent removal" | "SWP" | "Thin-provisioning" => {}
        _ => return false,
    }
    true
}

fn account_line(target: &mut TargetInfo, line: &Line<'_>) -> bool {
    if line.level != 2 {
        return false;
    }
    match line.text.strip_suffix(" (outgoing)") {
        Some(user) => target.outgoing_user = Some(user.to_string()),
        None => target.incoming_users.push(line.text.to_string()),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../fixtures/tgt/show-target.txt");

    #[test]
    fn parses_the_captured_show() {
        let (targets, stray) = parse_targets(FIXTURE);
        assert!(stray.is_empty(), "{stray:?}");
        assert_eq!(targets.len(), 2);
        let t = &targets[0];
        assert_eq!(t.tid, 1);
        assert_eq!(t.name, "iqn.2024-01.com.example:disk1");
        assert!(t.is_ready());
        assert!(t.unknown.is_empty(), "{:?}", t.unknown);
        assert_eq!(
            t.nexuses,
            vec![NexusInfo {
                id: 1,
                initiator: Some("iqn.2024-01.com.example:init1".into()),
                connections: vec![NexusConnection {
                    cid: 0,
                    address: Some("127.0.0.1".into())
                }],
            }]
        );
        assert_eq!(t.luns.len(), 3);
        assert_eq!(t.data_luns().count(), 2);
        assert_eq!(t.luns[0].path, None);
        assert_eq!(t.luns[0].device_type.as_deref(), Some("controller"));
        assert_eq!(t.luns[1].scsi_id.as_deref(), Some("IET     00010001"));
        assert_eq!(t.luns[1].backing_flags.as_deref(), Some(""));
        let lun2 = &t.luns[2];
        assert_eq!(lun2.path.as_deref(), Some("/tmp/tgtcap/d2.img"));
        assert_eq!(lun2.scsi_id.as_deref(), Some("my-id-2"));
        assert_eq!(lun2.scsi_sn.as_deref(), Some("SN2"));
        assert_eq!(lun2.readonly, Some(true));
        assert_eq!(lun2.block_size, Some(4096));
        assert_eq!(lun2.backing_flags.as_deref(), Some("sync"));
        assert_eq!(t.incoming_users, vec!["alice".to_string()]);
        assert_eq!(t.outgoing_user.as_deref(), Some("tgtout"));
        assert_eq!(t.acl_addresses(), vec!["127.0.0.0/8", "ALL"]);
        assert_eq!(t.acl_names(), vec!["iqn.2024-01.com.example:init1"]);
        let t2 = &targets[1];
        assert_eq!(t2.state.as_deref(), Some("offline"));
        assert!(t2.nexuses.is_empty() && t2.acl.is_empty());
    }

    #[test]
    fn keeps_unknown_lines() {
        let text = "garbage\nTarget 3: iqn.x\n    System information:\n        Driver: iscsi\n        State: ready\n        nop_interval: 0\n    Weird section:\n        x\n";
        let (targets, stray) = parse_targets(text);
        assert_eq!(stray, vec!["garbage".to_string()]);
        assert_eq!(targets[0].unknown.len(), 3);
        assert_eq!(targets[0].tid, 3);
    }

    #[test]
    fn classifies_acl_entries() {
        assert!(is_address_entry("ALL"));
        assert!(is_address_entry("10.0.0.0/24"));
        assert!(is_address_entry("fd00::/64"));
        assert!(is_address_entry("[fd00::1]/64"));
        assert!(!is_address_entry("iqn.2024-01.com.example:a"));
        assert!(!is_address_entry("all"));
    }
}
