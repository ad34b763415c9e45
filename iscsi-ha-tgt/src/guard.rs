//! Checks tgtd itself does not make, done before a request leaves: tgtd trusts tgtadm to
//! validate, and some bad requests crash it (a target without a name) or are silently
//! accepted and then misbehave (tid 0, an ACL with host bits, `/0`).

use iscsi_ha_core::subnet::{max_prefix, Subnet};
use iscsi_ha_core::target::{LunId, MAX_PRODUCT_ID_LEN, MAX_VENDOR_ID_LEN};

use crate::wire::{Mode, Op, Request, WireError, NO_TID};

/// Longest SCSI device identifier tgtd keeps (`SCSI_ID_LEN`, tgt `usr/tgtd.h`); SCSI itself
/// allows more.
pub const MAX_SCSI_ID_LEN: usize = 36;
/// Longest SCSI serial number tgtd keeps (`SCSI_SN_LEN`, tgt `usr/tgtd.h`); SCSI itself
/// allows more.
pub const MAX_SCSI_SN_LEN: usize = 36;

/// Longest target name tgtd is given: the configuration's limit (tgtd's 256-byte name buffers).
pub const MAX_TARGET_NAME_LEN: usize = iscsi_ha_core::iqn::MAX_NAME_LEN;

/// Why a request was refused before it was sent. The daemon was not touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// tid 0 or negative: tgtd accepts 0 although tgtadm never sends it.
    #[error("target id {0} refused: target ids are 1..=2147483647")]
    Tid(i64),
    /// LUN 0 is tgtd's controller; out-of-range numbers do not address a disk.
    #[error("LUN {0} refused: LUN 0 is the target's controller, data LUNs are 1..=16383")]
    Lun(u64),
    /// A target name tgtd would refuse or crash on (an empty name crashes tgtd 1.0.85).
    #[error("target name {name:?} refused: {reason}")]
    TargetName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An ACL address that is not a single address or a network range.
    #[error("initiator address {text:?} refused: {reason}")]
    Address {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// `ALL` must be asked for explicitly (the configuration's `allow_all`).
    #[error("initiator address ALL refused here: every initiator is allowed only through the explicit allow-all request (configuration allow_all = true)")]
    AllNotExplicit,
    /// An initiator name tgtd could not match.
    #[error("initiator name {name:?} refused: {reason}")]
    InitiatorName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A backing path tgtd could not be given.
    #[error("backing path {path:?} refused: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A LUN identity field tgtd would truncate or split.
    #[error(
        "{field} {value:?} refused: at most {max} bytes of printable ASCII without ',' or '='"
    )]
    Identity {
        /// Which field.
        field: &'static str,
        /// The value.
        value: String,
        /// Its limit.
        max: usize,
    },
    /// A CHAP user name tgtd would cut at the first ','.
    #[error("CHAP user {user:?} refused: {reason}")]
    User {
        /// The name.
        user: String,
        /// Why.
        reason: &'static str,
    },
    /// A CHAP secret tgtd could not store (the secret itself is never printed).
    #[error("CHAP secret for {user:?} refused: {reason}")]
    Secret {
        /// The account.
        user: String,
        /// Why.
        reason: &'static str,
    },
    /// A block size tgtd would silently ignore.
    #[error("block size {0} refused: a power of two from 512 to 1048576")]
    BlockSize(u32),
    /// A target bind or unbind without a body: tgtd would take its SCSI-host path instead.
    #[error("target {op} without a body refused: tgtd would bind a SCSI host instead of an ACL")]
    BindWithoutBody {
        /// `bind` or `unbind`.
        op: &'static str,
    },
    /// A LUN whose write durability tgtd cannot provide with this backing store.
    #[error("LUN {lun} refused: {reason}")]
    Durability {
        /// The LUN.
        lun: u64,
        /// Why.
        reason: &'static str,
    },
    /// A logical-unit update that would set nothing.
    #[error("a logical-unit update must set at least one parameter")]
    EmptyUpdate,
    /// A value that cannot go into the request body.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Checks a target id.
pub fn check_tid(tid: i64) -> Result<i32, GuardError> {
    i32::try_from(tid)
        .ok()
        .filter(|&t| t >= 1)
        .ok_or(GuardError::Tid(tid))
}

/// Checks a data LUN number.
pub fn check_lun(lun: u64) -> Result<LunId, GuardError> {
    LunId::new(lun).map_err(|_| GuardError::Lun(lun))
}

/// Checks a target name against tgtd's own character test, which it makes only after using
/// the name (so an absent name crashes it).
pub fn check_target_name(name: &str) -> Result<(), GuardError> {
    let reason = if name.is_empty() {
        Some("a target needs a name (tgtd 1.0.85 crashes on a target without one)")
    } else if name.len() > MAX_TARGET_NAME_LEN {
        Some("longer than 255 bytes (tgtd's iSCSI name buffers hold 255)")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-'))
    {
        Some("tgtd allows only letters, digits, ':', '.' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(GuardError::TargetName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The ACL text for an address range, normalised so tgtd matches it: host bits cleared (tgtd
/// never matches `127.0.0.1/8`), a full-length prefix written as a bare address (tgtd never
/// matches `/32`), and `/0` refused (tgtd's IPv4 mask for `/0` is undefined; ask for
/// allow-all instead).
pub fn acl_address(text: &str) -> Result<String, GuardError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("ALL") {
        return Err(GuardError::AllNotExplicit);
    }
    let subnet: Subnet = trimmed.parse().map_err(|e| GuardError::Address {
        text: text.to_string(),
        reason: format!("{e}"),
    })?;
    acl_subnet(&subnet)
}

/// The ACL text for a [`Subnet`] (already normalised by its type), with `/0` refused.
pub fn acl_subnet(subnet: &Subnet) -> Result<String, GuardError> {
    if subnet.prefix() == 0 {
        return Err(GuardError::Address {
            text: subnet.to_string(),
            reason: "a /0 range does not work in tgtd; use allow_all to admit every initiator"
                .to_string(),
        });
    }
    debug_assert!(subnet.prefix() <= max_prefix(subnet.network()));
    Ok(subnet.to_string())
}

/// Checks an initiator name for a name ACL: tgtd compares it byte for byte with the name the
/// initiator logs in with, so it is sent as written, upper case included.
pub fn check_initiator_name(name: &str) -> Result<(), GuardError> {
    match iscsi_ha_core::iqn::Iqn::new(name) {
        Ok(_) => Ok(()),
        Err(e) => Err(GuardError::InitiatorName {
            name: name.to_string(),
            reason: e.reason,
        }),
    }
}

/// Checks a backing path.
pub fn check_path(path: &str) -> Result<(), GuardError> {
    let reason = if !path.starts_with('/') {
        Some("must be an absolute path")
    } else if path.contains([',', '\0']) {
        Some("tgtd splits parameters on ',' and stops at NUL")
    } else if path.len() > 1000 {
        Some("longer than tgtd's 1024-byte path buffer allows")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(GuardError::Path {
            path: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks one identity field against tgtd's buffer sizes and parameter syntax.
pub fn check_identity_field(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), GuardError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| (c.is_ascii_graphic() || c == ' ') && c != ',' && c != '=');
    if ok {
        Ok(())
    } else {
        Err(GuardError::Identity {
            field,
            value: value.to_string(),
            max,
        })
    }
}

/// The limits of tgtd's identity fields, by parameter name.
pub fn identity_limit(field: &str) -> usize {
    match field {
        "scsi_id" => MAX_SCSI_ID_LEN,
        "scsi_sn" => MAX_SCSI_SN_LEN,
        "vendor_id" => MAX_VENDOR_ID_LEN,
        _ => MAX_PRODUCT_ID_LEN,
    }
}

/// Checks a CHAP user name and secret.
pub fn check_account(user: &str, secret: Option<&str>) -> Result<(), GuardError> {
    let reason = if user.is_empty() {
        Some("empty")
    } else if user.contains([',', '\0', '=']) {
        Some("tgtd cuts the user name at the first ','; use no ',', '=' or NUL")
    } else if user.len() > 255 {
        Some("longer than 255 bytes")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(GuardError::User {
            user: user.to_string(),
            reason,
        });
    }
    if let Some(secret) = secret {
        let reason = if secret.is_empty() {
            Some("empty")
        } else if secret.contains([',', '\0']) {
            Some("contains ',' or NUL, which tgtd's parameter syntax cannot carry")
        } else if secret.len() > 255 {
            Some("longer than 255 bytes")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(GuardError::Secret {
                user: user.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// Checks a logical block size (tgtd ignores anything but a power of two, silently).
pub fn check_block_size(size: u32) -> Result<(), GuardError> {
    if size.is_power_of_two() && (512..=1 << 20).contains(&size) {
        Ok(())
    } else {
        Err(GuardError::BlockSize(size))
    }
}

/// The last check before bytes leave, for requests built by hand: the same rules the typed
/// builders apply, so no request that crashes or misleads tgtd is ever sent.
pub fn check_request(req: &Request) -> Result<(), GuardError> {
    let body = req.body.as_ref().map(|b| b.as_str());
    let tid_needed = match req.mode {
        Mode::Target => !(req.op == Op::Show && req.tid == NO_TID),
        Mode::Device => true,
        Mode::Connection => true,
        _ => false,
    };
    if tid_needed {
        check_tid(i64::from(req.tid))?;
    }
    match (req.mode, req.op) {
        (Mode::Target, Op::New) => {
            let name = body
                .into_iter()
                .flat_map(|b| b.split(','))
                .find_map(|p| p.strip_prefix("targetname="))
                .unwrap_or("");
            check_target_name(name)?;
        }
        (Mode::Target, op @ (Op::Bind | Op::Unbind)) => {
            let op = if op == Op::Bind { "bind" } else { "unbind" };
            let Some(body) = body else {
                return Err(GuardError::BindWithoutBody { op });
            };
            let rules = ["initiator-address=", "initiator-name="]
                .iter()
                .filter(|k| body.contains(*k))
                .count();
            if rules != 1 || body.contains(',') {
                return Err(GuardError::Address {
                    text: body.to_string(),
                    reason:
                        "one access rule per request: tgtd takes the rest of the body as the value"
                            .to_string(),
                });
            }
        }
        (Mode::Device, Op::New | Op::Delete | Op::Update) => {
            check_lun(req.lun)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_requests_are_checked() {
        use crate::wire::Body;
        let mut bind = Request::new(Mode::Target, Op::Bind);
        bind.tid = 1;
        assert_eq!(
            check_request(&bind),
            Err(GuardError::BindWithoutBody { op: "bind" })
        );
        bind.body = Body::raw("initiator-address=10.0.0.0/8,initiator-name=x".into()).ok();
        assert!(matches!(
            check_request(&bind),
            Err(GuardError::Address { .. })
        ));
        let mut new = Request::new(Mode::Target, Op::New);
        new.tid = 1;
        new.body = Body::raw("foo=bar".into()).ok();
        assert!(matches!(
            check_request(&new),
            Err(GuardError::TargetName { .. })
        ));
        new.tid = 0;
        assert_eq!(check_request(&new), Err(GuardError::Tid(0)));
        let mut lun = Request::new(Mode::Device, Op::Delete);
        lun.tid = 1;
        lun.lun = 0;
        assert_eq!(check_request(&lun), Err(GuardError::Lun(0)));
        assert_eq!(check_request(&Request::new(Mode::Target, Op::Show)), Ok(()));
    }

    #[test]
    fn tids_and_luns_start_at_one() {
        assert_eq!(check_tid(0), Err(GuardError::Tid(0)));
        assert_eq!(check_tid(-1), Err(GuardError::Tid(-1)));
        assert_eq!(check_tid(1 << 31), Err(GuardError::Tid(1 << 31)));
        assert_eq!(check_tid(7), Ok(7));
        assert_eq!(check_lun(0).map(LunId::get), Err(GuardError::Lun(0)));
        assert_eq!(check_lun(3).map(LunId::get), Ok(3));
    }

    #[test]
    fn target_names_follow_tgtd() {
        assert!(check_target_name("iqn.2024-01.com.example:disk1").is_ok());
        assert!(check_target_name("").is_err());
        assert!(check_target_name("iqn.2024-01.com.example:a b").is_err());
        assert!(check_target_name("iqn.2024-01.com.example:a,b").is_err());
        // What tgtd itself accepts, RFC 3720 or not (the noSAN installer's name).
        assert!(check_target_name("iqn.2015.com.halizard:noSAN").is_ok());
        assert!(check_target_name(&"a".repeat(MAX_TARGET_NAME_LEN)).is_ok());
        assert!(check_target_name(&"a".repeat(MAX_TARGET_NAME_LEN + 1)).is_err());
        assert!(check_initiator_name("iqn.1991-05.com.microsoft:HOST-1").is_ok());
        assert!(check_initiator_name("iqn.1991-05.com.microsoft:host_1").is_err());
    }

    #[test]
    fn acl_addresses_are_normalised() {
        assert_eq!(acl_address("127.0.0.1/8"), Ok("127.0.0.0/8".to_string()));
        assert_eq!(acl_address("10.1.2.3/32"), Ok("10.1.2.3".to_string()));
        assert_eq!(acl_address("10.1.2.3"), Ok("10.1.2.3".to_string()));
        assert_eq!(acl_address("fd00::7/64"), Ok("fd00::/64".to_string()));
        assert_eq!(acl_address("ALL"), Err(GuardError::AllNotExplicit));
        assert!(matches!(
            acl_address("0.0.0.0/0"),
            Err(GuardError::Address { .. })
        ));
        assert!(matches!(
            acl_address("10.0.0.0/8,ALL"),
            Err(GuardError::Address { .. })
        ));
    }

    #[test]
    fn accounts_paths_and_identity() {
        assert!(check_account("alice", Some("secretpass12")).is_ok());
        assert!(check_account("al,ice", Some("x")).is_err());
        assert!(check_account("alice", Some("")).is_err());
        let err = check_account("alice", Some("a,b"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("CHAP secret for \"alice\" refused: contains ',' or NUL, which tgtd's parameter syntax cannot carry")
        );
        assert!(check_path("relative").is_err());
        assert!(check_path("/a,b").is_err());
        assert!(check_path("/dev/drbd1").is_ok());
        assert!(check_identity_field("vendor_id", "ACMEACME", 8).is_ok());
        assert!(check_identity_field("vendor_id", "ACMEACME9", 8).is_err());
        assert!(check_block_size(4096).is_ok());
        assert!(check_block_size(1000).is_err());
    }
}
