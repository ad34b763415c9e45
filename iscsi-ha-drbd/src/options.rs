//! The options a resource runs with, as the kernel reports them in every GET_STATUS reply:
//! `NET_CONF` (replication protocol, after-split-brain policies) and, per attached volume,
//! `DISK_CONF` (backing disk, fencing policy; in 8.4 fencing is a disk option). This is what
//! `drbdsetup show` prints, read without running it, for `iscsi-ha doctor`. Handlers are not
//! in the kernel (they live in drbd.conf only).

use serde::Serialize;

use crate::wire::attr::parse_attrs;
use crate::wire::cmd::tla;
use crate::wire::DrbdMessage;

/// `NET_CONF` field `wire_protocol` (u32: 1 A, 2 B, 3 C).
pub const NET_CONF_WIRE_PROTOCOL: u16 = 6;
/// `NET_CONF` field `after_sb_0p`.
pub const NET_CONF_AFTER_SB_0P: u16 = 17;
/// `NET_CONF` field `after_sb_1p`.
pub const NET_CONF_AFTER_SB_1P: u16 = 18;
/// `NET_CONF` field `after_sb_2p`.
pub const NET_CONF_AFTER_SB_2P: u16 = 19;
/// `DISK_CONF` field `backing_dev` (string).
pub const DISK_CONF_BACKING_DEV: u16 = 1;
/// `DISK_CONF` field `fencing` (u32: 0 dont-care, 1 resource-only, 2 resource-and-stonith).
pub const DISK_CONF_FENCING: u16 = 7;

/// The running options of one resource. A field is `None` when the kernel did not send it:
/// no `NET_CONF` while the resource has no connection configured (StandAlone), no
/// `DISK_CONF` for a diskless volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceOptions {
    /// The resource.
    pub resource: String,
    /// Replication protocol letter (`A`, `B`, `C`), or `?N` for a value this crate does not know.
    pub protocol: Option<String>,
    /// `after-sb-0pri`, `after-sb-1pri`, `after-sb-2pri` in drbd.conf's words.
    pub after_sb: Option<[String; 3]>,
    /// The attached volumes.
    pub volumes: Vec<VolumeOptions>,
}

/// The disk options of one attached volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeOptions {
    /// The DRBD minor.
    pub minor: u32,
    /// The backing disk (`/dev/sdb`).
    pub backing_dev: Option<String>,
    /// The fencing policy in drbd.conf's words (`resource-and-stonith`).
    pub fencing: Option<String>,
}

/// The protocol letter of a `wire_protocol` value.
pub fn protocol_name(value: u32) -> String {
    match value {
        1 => "A".into(),
        2 => "B".into(),
        3 => "C".into(),
        other => format!("?{other}"),
    }
}

/// The drbd.conf word of a `fencing` value.
pub fn fencing_name(value: u32) -> String {
    match value {
        0 => "dont-care".into(),
        1 => "resource-only".into(),
        2 => "resource-and-stonith".into(),
        other => format!("?{other}"),
    }
}

/// The drbd.conf word of an `after_sb_*p` value (`enum drbd_after_sb_p`).
pub fn after_sb_name(value: u32) -> String {
    let name = match value {
        0 => "disconnect",
        1 => "discard-younger-primary",
        2 => "discard-older-primary",
        3 => "discard-zero-changes",
        4 => "discard-least-changes",
        5 => "discard-local",
        6 => "discard-remote",
        7 => "consensus",
        8 => "discard-secondary",
        9 => "call-pri-lost-after-sb",
        10 => "violently-as0p",
        other => return format!("?{other}"),
    };
    name.into()
}

fn set_fields(msg: &DrbdMessage, number: u16) -> Option<Vec<crate::wire::attr::RawAttr>> {
    let set = msg.attrs.other.iter().find(|a| a.number == number)?;
    parse_attrs("options", &set.value).ok()
}

fn u32_field(fields: &[crate::wire::attr::RawAttr], number: u16) -> Option<u32> {
    let value = &fields.iter().find(|a| a.number == number)?.value;
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

fn str_field(fields: &[crate::wire::attr::RawAttr], number: u16) -> Option<String> {
    let value = &fields.iter().find(|a| a.number == number)?.value;
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    Some(String::from_utf8_lossy(&value[..end]).into_owned())
}

/// The options of `resource` from the messages of a GET_STATUS dump; `None` when no message
/// names it. Fields that are missing or do not decode stay `None`.
pub fn resource_options(resource: &str, messages: &[DrbdMessage]) -> Option<ResourceOptions> {
    let mut out: Option<ResourceOptions> = None;
    for msg in messages {
        let named = msg
            .attrs
            .cfg_context
            .as_ref()
            .and_then(|c| c.resource_name.as_deref());
        if named != Some(resource) {
            continue;
        }
        let opts = out.get_or_insert_with(|| ResourceOptions {
            resource: resource.to_string(),
            ..ResourceOptions::default()
        });
        if let Some(net) = set_fields(msg, tla::NET_CONF) {
            if let Some(p) = u32_field(&net, NET_CONF_WIRE_PROTOCOL) {
                opts.protocol = Some(protocol_name(p));
            }
            let sb = [
                NET_CONF_AFTER_SB_0P,
                NET_CONF_AFTER_SB_1P,
                NET_CONF_AFTER_SB_2P,
            ]
            .map(|n| u32_field(&net, n));
            if let [Some(a), Some(b), Some(c)] = sb {
                opts.after_sb = Some([after_sb_name(a), after_sb_name(b), after_sb_name(c)]);
            }
        }
        // A resource without volumes answers with minor ~0 and no disk.
        if msg.header.minor == crate::wire::MINOR_NONE {
            continue;
        }
        let disk = set_fields(msg, tla::DISK_CONF);
        opts.volumes.push(VolumeOptions {
            minor: msg.header.minor,
            backing_dev: disk
                .as_ref()
                .and_then(|d| str_field(d, DISK_CONF_BACKING_DEV)),
            fencing: disk
                .as_ref()
                .and_then(|d| u32_field(d, DISK_CONF_FENCING))
                .map(fencing_name),
        });
    }
    if let Some(o) = out.as_mut() {
        o.volumes.sort_by_key(|v| v.minor);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::attr::{emit_fields, Field, FieldValue, RawAttr, DRBD_GENLA_F_MANDATORY};
    use crate::wire::sets::CfgContext;
    use crate::wire::{DrbdAttrs, DrbdCommand, DrbdHeader};

    fn field(number: u16, value: FieldValue) -> Field {
        Field {
            number,
            flags: DRBD_GENLA_F_MANDATORY,
            value,
        }
    }

    /// A GET_STATUS reply as the 8.4 kernel sends it for r0 volume 0 (`protocol C`,
    /// `fencing resource-and-stonith`, after-sb policies disconnect/disconnect/disconnect).
    fn reply(minor: u32, net: Option<Vec<Field>>, disk: Option<Vec<Field>>) -> DrbdMessage {
        let mut other = Vec::new();
        if let Some(d) = disk {
            other.push(RawAttr {
                number: tla::DISK_CONF,
                flags: 0,
                value: emit_fields(&d),
            });
        }
        if let Some(n) = net {
            other.push(RawAttr {
                number: tla::NET_CONF,
                flags: 0,
                value: emit_fields(&n),
            });
        }
        DrbdMessage {
            cmd: DrbdCommand::GetStatus,
            version: 1,
            header: DrbdHeader {
                minor,
                ret_code: 101,
            },
            attrs: DrbdAttrs {
                cfg_context: Some(CfgContext {
                    resource_name: Some("r0".into()),
                    ..CfgContext::default()
                }),
                other,
                ..DrbdAttrs::default()
            },
        }
    }

    fn net(protocol: u32, sb: [u32; 3]) -> Vec<Field> {
        vec![
            field(3, FieldValue::Bytes(b"\0".to_vec())),
            field(NET_CONF_WIRE_PROTOCOL, FieldValue::U32(protocol)),
            field(NET_CONF_AFTER_SB_0P, FieldValue::U32(sb[0])),
            field(NET_CONF_AFTER_SB_1P, FieldValue::U32(sb[1])),
            field(NET_CONF_AFTER_SB_2P, FieldValue::U32(sb[2])),
        ]
    }

    fn disk(fencing: u32) -> Vec<Field> {
        vec![
            field(
                DISK_CONF_BACKING_DEV,
                FieldValue::Bytes(b"/dev/vdb\0".to_vec()),
            ),
            field(2, FieldValue::Bytes(b"internal\0".to_vec())),
            field(6, FieldValue::U32(0)),
            field(DISK_CONF_FENCING, FieldValue::U32(fencing)),
        ]
    }

    #[test]
    fn reads_protocol_fencing_backing_disk_and_after_sb() {
        let msgs = [reply(1, Some(net(3, [0, 0, 0])), Some(disk(2)))];
        let o = resource_options("r0", &msgs).expect("r0");
        assert_eq!(o.protocol.as_deref(), Some("C"));
        assert_eq!(
            o.after_sb,
            Some([
                "disconnect".into(),
                "disconnect".into(),
                "disconnect".into()
            ])
        );
        assert_eq!(
            o.volumes,
            vec![VolumeOptions {
                minor: 1,
                backing_dev: Some("/dev/vdb".into()),
                fencing: Some("resource-and-stonith".into()),
            }]
        );
    }

    #[test]
    fn other_values_are_named_as_drbd_conf_names_them() {
        let msgs = [reply(2, Some(net(1, [4, 8, 9])), Some(disk(0)))];
        let o = resource_options("r0", &msgs).expect("r0");
        assert_eq!(o.protocol.as_deref(), Some("A"));
        assert_eq!(
            o.after_sb,
            Some([
                "discard-least-changes".into(),
                "discard-secondary".into(),
                "call-pri-lost-after-sb".into()
            ])
        );
        assert_eq!(o.volumes[0].fencing.as_deref(), Some("dont-care"));
        assert_eq!(protocol_name(7), "?7");
    }

    #[test]
    fn a_standalone_diskless_resource_has_no_options_and_an_unknown_one_is_none() {
        let msgs = [reply(3, None, None)];
        let o = resource_options("r0", &msgs).expect("r0");
        assert_eq!(o.protocol, None);
        assert_eq!(o.after_sb, None);
        assert_eq!(o.volumes[0].fencing, None);
        assert_eq!(resource_options("r9", &msgs), None);
    }
}
