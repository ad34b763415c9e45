//! The requests tgtadm would send for each operation, built with the guards applied. Pure:
//! nothing here talks to tgtd.

use crate::durability;
use crate::guard::{self, GuardError};
use crate::wire::{AccountDirection, Body, Lld, Mode, Op, Request};

/// A target's or the daemon's login state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Accepts logins.
    Ready,
    /// Refuses new logins.
    Offline,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Offline => "offline",
        }
    }
}

/// How a logical unit is backed: tgtadm's `-b`, `--bstype`, `--blocksize`, `--bsoflags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunBacking {
    /// Backing file or block device (absolute).
    pub path: String,
    /// Backing store type, e.g. `rdwr` (tgtd's default for iSCSI) or `aio`.
    pub bstype: String,
    /// Logical block size, a power of two; `None` keeps 512.
    pub block_size: Option<u32>,
    /// Open flags, e.g. `sync` or `direct` (`sync:direct` for both); `None` for none.
    pub bsoflags: Option<String>,
}

impl LunBacking {
    /// A `rdwr` LUN on `path` with tgtd's defaults.
    pub fn rdwr(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            bstype: "rdwr".to_string(),
            block_size: None,
            bsoflags: None,
        }
    }
}

/// Logical-unit parameters an update sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LunSettings {
    /// SCSI ID (VPD 0x83), at most 36 bytes.
    pub scsi_id: Option<String>,
    /// SCSI serial (VPD 0x80), at most 36 bytes.
    pub scsi_sn: Option<String>,
    /// INQUIRY vendor, at most 8 bytes.
    pub vendor_id: Option<String>,
    /// INQUIRY product, at most 16 bytes.
    pub product_id: Option<String>,
    /// Read-only.
    pub readonly: Option<bool>,
    /// Report a volatile write cache (caching mode page WCE; see [`crate::durability`]).
    pub write_cache: Option<bool>,
}

impl LunSettings {
    /// Whether the update would set nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn with_tid(mode: Mode, op: Op, tid: i64) -> Result<Request, GuardError> {
    let mut req = Request::new(mode, op);
    req.tid = guard::check_tid(tid)?;
    Ok(req)
}

fn with_lun(op: Op, tid: i64, lun: u64) -> Result<Request, GuardError> {
    let mut req = with_tid(Mode::Device, op, tid)?;
    req.lun = guard::check_lun(lun)?.get();
    Ok(req)
}

fn body(pairs: &[(&str, &str)]) -> Result<Option<Body>, GuardError> {
    Ok(Some(Body::params(pairs)?))
}

impl Request {
    /// `--op show --mode system`.
    pub fn system_show() -> Self {
        let mut req = Request::new(Mode::System, Op::Show);
        req.lld = Lld::none();
        req
    }

    /// `--op update --mode sys --name State -v ready|offline`: while offline, tgtd refuses
    /// every new login on every target.
    pub fn system_set_state(state: State) -> Result<Self, GuardError> {
        let mut req = Request::new(Mode::System, Op::Update);
        req.lld = Lld::none();
        req.body = body(&[("State", state.as_str())])?;
        Ok(req)
    }

    /// `--op delete --mode system`: tgtd exits after replying, if it holds no target.
    pub fn system_delete() -> Self {
        let mut req = Request::new(Mode::System, Op::Delete);
        req.lld = Lld::none();
        req
    }

    /// `--op new --mode target --tid T -T NAME`. Never without a name (tgtd crashes).
    pub fn target_new(tid: i64, name: &str) -> Result<Self, GuardError> {
        guard::check_target_name(name)?;
        let mut req = with_tid(Mode::Target, Op::New, tid)?;
        req.body = body(&[("targetname", name)])?;
        Ok(req)
    }

    /// `--op delete --mode target --tid T [--force]`.
    pub fn target_delete(tid: i64, force: bool) -> Result<Self, GuardError> {
        let mut req = with_tid(Mode::Target, Op::Delete, tid)?;
        req.force = force;
        Ok(req)
    }

    /// `--op show --mode target` (all targets).
    pub fn targets_show() -> Self {
        Request::new(Mode::Target, Op::Show)
    }

    /// `--op show --mode target --tid T`: the target's iSCSI parameters.
    pub fn target_params_show(tid: i64) -> Result<Self, GuardError> {
        with_tid(Mode::Target, Op::Show, tid)
    }

    /// `--op update --mode target --tid T -n state -v ready|offline`.
    pub fn target_set_state(tid: i64, state: State) -> Result<Self, GuardError> {
        Self::target_update(tid, "state", state.as_str())
    }

    /// `--op update --mode target --tid T -n KEY -v VALUE` (an iSCSI key, `nop_interval`...).
    pub fn target_update(tid: i64, key: &str, value: &str) -> Result<Self, GuardError> {
        let mut req = with_tid(Mode::Target, Op::Update, tid)?;
        req.body = body(&[(key, value)])?;
        Ok(req)
    }

    /// `--op new --mode logicalunit --tid T --lun L -b PATH --bstype ... [--bsoflags]
    /// [--blocksize]`.
    pub fn lun_new(tid: i64, lun: u64, backing: &LunBacking) -> Result<Self, GuardError> {
        guard::check_path(&backing.path)?;
        let mut req = with_lun(Op::New, tid, lun)?;
        let block_size = backing
            .block_size
            .map(|b| guard::check_block_size(b).map(|()| b.to_string()))
            .transpose()?;
        let mut pairs = vec![("path", backing.path.as_str())];
        pairs.push(("bstype", backing.bstype.as_str()));
        if let Some(flags) = &backing.bsoflags {
            pairs.push(("bsoflags", flags.as_str()));
        }
        if let Some(size) = &block_size {
            pairs.push(("blocksize", size.as_str()));
        }
        req.body = body(&pairs)?;
        Ok(req)
    }

    /// `--op delete --mode logicalunit --tid T --lun L`. Never LUN 0.
    pub fn lun_delete(tid: i64, lun: u64) -> Result<Self, GuardError> {
        with_lun(Op::Delete, tid, lun)
    }

    /// `--op update --mode logicalunit --tid T --lun L --params k=v,...`.
    pub fn lun_update(tid: i64, lun: u64, settings: &LunSettings) -> Result<Self, GuardError> {
        let mut req = with_lun(Op::Update, tid, lun)?;
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (field, value) in [
            ("scsi_id", &settings.scsi_id),
            ("scsi_sn", &settings.scsi_sn),
            ("vendor_id", &settings.vendor_id),
            ("product_id", &settings.product_id),
        ] {
            if let Some(value) = value {
                guard::check_identity_field(field, value, guard::identity_limit(field))?;
                pairs.push((field, value));
            }
        }
        if let Some(ro) = settings.readonly {
            pairs.push(("readonly", if ro { "1" } else { "0" }));
        }
        let page = settings.write_cache.map(durability::caching_mode_page);
        if let Some(page) = &page {
            pairs.push(("mode_page", page));
        }
        if pairs.is_empty() {
            return Err(GuardError::EmptyUpdate);
        }
        req.body = Some(Body::target_ops(&pairs)?);
        Ok(req)
    }

    /// `--op bind --mode target --tid T -I ADDR`: one address rule, normalised (host bits
    /// cleared, `/32` written bare); `ALL` is refused here, see [`Request::acl_bind_all`].
    pub fn acl_bind_address(tid: i64, address: &str) -> Result<Self, GuardError> {
        let text = guard::acl_address(address)?;
        let mut req = with_tid(Mode::Target, Op::Bind, tid)?;
        req.body = body(&[("initiator-address", &text)])?;
        Ok(req)
    }

    /// `--op bind --mode target --tid T -I ALL`: every initiator address is allowed.
    pub fn acl_bind_all(tid: i64) -> Result<Self, GuardError> {
        let mut req = with_tid(Mode::Target, Op::Bind, tid)?;
        req.body = body(&[("initiator-address", "ALL")])?;
        Ok(req)
    }

    /// `--op unbind --mode target --tid T -I ENTRY`: removes an address rule exactly as tgtd
    /// shows it (`ALL` included).
    pub fn acl_unbind_address(tid: i64, entry: &str) -> Result<Self, GuardError> {
        check_acl_entry(entry)?;
        let mut req = with_tid(Mode::Target, Op::Unbind, tid)?;
        req.body = body(&[("initiator-address", entry)])?;
        Ok(req)
    }

    /// `--op bind --mode target --tid T -Q IQN`.
    pub fn acl_bind_name(tid: i64, name: &str) -> Result<Self, GuardError> {
        guard::check_initiator_name(name)?;
        let mut req = with_tid(Mode::Target, Op::Bind, tid)?;
        req.body = body(&[("initiator-name", name)])?;
        Ok(req)
    }

    /// `--op unbind --mode target --tid T -Q NAME`: removes a name rule as tgtd shows it.
    pub fn acl_unbind_name(tid: i64, name: &str) -> Result<Self, GuardError> {
        check_acl_entry(name)?;
        let mut req = with_tid(Mode::Target, Op::Unbind, tid)?;
        req.body = body(&[("initiator-name", name)])?;
        Ok(req)
    }

    /// `--mode account --op new --user U --password P`.
    pub fn account_new(user: &str, secret: &str) -> Result<Self, GuardError> {
        guard::check_account(user, Some(secret))?;
        let mut req = Request::new(Mode::Account, Op::New);
        req.body = body(&[("user", user), ("password", secret)])?;
        Ok(req)
    }

    /// `--mode account --op delete --user U` (tgtd unbinds it from every target first).
    pub fn account_delete(user: &str) -> Result<Self, GuardError> {
        guard::check_account(user, None)?;
        let mut req = Request::new(Mode::Account, Op::Delete);
        req.body = body(&[("user", user)])?;
        Ok(req)
    }

    /// `--mode account --op bind --tid T --user U [--outgoing]`.
    pub fn account_bind(
        tid: i64,
        user: &str,
        direction: AccountDirection,
    ) -> Result<Self, GuardError> {
        Self::account_ctl(Op::Bind, tid, user, direction)
    }

    /// `--mode account --op unbind --tid T --user U [--outgoing]`.
    pub fn account_unbind(
        tid: i64,
        user: &str,
        direction: AccountDirection,
    ) -> Result<Self, GuardError> {
        Self::account_ctl(Op::Unbind, tid, user, direction)
    }

    fn account_ctl(
        op: Op,
        tid: i64,
        user: &str,
        direction: AccountDirection,
    ) -> Result<Self, GuardError> {
        guard::check_account(user, None)?;
        let mut req = with_tid(Mode::Account, op, tid)?;
        req.ac_dir = direction;
        req.body = body(&[("user", user)])?;
        Ok(req)
    }

    /// `--mode account --op show`.
    pub fn accounts_show() -> Self {
        Request::new(Mode::Account, Op::Show)
    }

    /// `--op show --mode conn --tid T`.
    pub fn connections_show(tid: i64) -> Result<Self, GuardError> {
        with_tid(Mode::Connection, Op::Show, tid)
    }

    /// `--op delete --mode conn --tid T --sid S --cid C`: drops one connection.
    pub fn connection_delete(tid: i64, sid: u64, cid: u32) -> Result<Self, GuardError> {
        let mut req = with_tid(Mode::Connection, Op::Delete, tid)?;
        req.sid = sid;
        req.cid = cid;
        Ok(req)
    }
}

fn check_acl_entry(entry: &str) -> Result<(), GuardError> {
    if entry.is_empty() {
        return Err(GuardError::Address {
            text: entry.to_string(),
            reason: "empty".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(req: &Request) -> Option<&str> {
        req.body.as_ref().map(Body::as_str)
    }

    #[test]
    fn bodies_match_tgtadm() {
        let lun = Request::lun_new(
            1,
            1,
            &LunBacking {
                path: "/p".into(),
                bstype: "rdwr".into(),
                block_size: Some(4096),
                bsoflags: Some("sync".into()),
            },
        );
        let lun = lun.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body_of(&lun),
            Some("path=/p,bstype=rdwr,bsoflags=sync,blocksize=4096")
        );
        assert_eq!((lun.tid, lun.lun), (1, 1));
        let upd = Request::lun_update(
            2,
            1,
            &LunSettings {
                vendor_id: Some("ACME".into()),
                readonly: Some(true),
                ..LunSettings::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body_of(&upd), Some("targetOps vendor_id=ACME,readonly=1,"));
        let wce = Request::lun_update(
            2,
            1,
            &LunSettings {
                write_cache: Some(false),
                ..LunSettings::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body_of(&wce),
            Some("targetOps mode_page=8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0,")
        );
        let acct = Request::account_new("alice", "pw").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body_of(&acct), Some("user=alice,password=pw"));
        assert_eq!(acct.tid, -1);
        let sys = Request::system_set_state(State::Offline).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body_of(&sys), Some("State=offline"));
        assert_eq!(sys.lld.as_str(), "");
    }

    #[test]
    fn binds_always_carry_a_body() {
        let reqs = [
            Request::acl_bind_address(1, "10.0.0.9/24"),
            Request::acl_bind_all(1),
            Request::acl_unbind_address(1, "ALL"),
            Request::acl_bind_name(1, "iqn.2024-01.com.example:i"),
            Request::acl_unbind_name(1, "iqn.2024-01.com.example:i"),
        ];
        for req in reqs {
            let req = req.unwrap_or_else(|e| panic!("{e}"));
            assert!(req.encode().len() > 120, "{req:?}");
        }
        let addr = Request::acl_bind_address(1, "10.0.0.9/24").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body_of(&addr), Some("initiator-address=10.0.0.0/24"));
        assert!(Request::acl_unbind_address(1, "").is_err());
    }

    #[test]
    fn guards_refuse_before_building() {
        assert_eq!(
            Request::target_new(0, "iqn.2024-01.com.example:a"),
            Err(GuardError::Tid(0))
        );
        assert!(matches!(
            Request::target_new(1, ""),
            Err(GuardError::TargetName { .. })
        ));
        assert_eq!(Request::lun_delete(1, 0), Err(GuardError::Lun(0)));
        assert_eq!(
            Request::acl_bind_address(1, "ALL"),
            Err(GuardError::AllNotExplicit)
        );
        assert!(Request::lun_update(1, 1, &LunSettings::default()).is_err());
    }
}
