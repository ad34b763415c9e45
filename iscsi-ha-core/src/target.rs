//! The iSCSI target we export (desired) and what the target daemon reports (observed).

use crate::iqn::Iqn;
use crate::secret::Secret;
use crate::subnet::Subnet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Longest serial or device identifier SCSI can carry: a designator's length in the Device
/// Identification VPD page (0x83) is one byte, as is the Unit Serial Number page's (0x80)
/// length before SPC-4. A backend may keep less; it says so for its own backend.
pub const MAX_SCSI_IDENTIFIER_LEN: usize = 255;
/// Length of the SCSI INQUIRY vendor field (T10 VENDOR IDENTIFICATION).
pub const MAX_VENDOR_ID_LEN: usize = 8;
/// Length of the SCSI INQUIRY product field (PRODUCT IDENTIFICATION).
pub const MAX_PRODUCT_ID_LEN: usize = 16;

/// A logical unit number. LUN 0 is the target's controller, so exported disks start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct LunId(u64);

/// Why a number is not a usable LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("LUN {0} is not allowed: LUN 0 is the target controller, data LUNs are 1..=16383")]
pub struct LunIdError(pub u64);

impl LunId {
    /// Highest LUN accepted (flat-space addressing).
    pub const MAX: u64 = 16383;

    /// Checks and wraps a LUN number.
    pub fn new(lun: u64) -> Result<Self, LunIdError> {
        if (1..=Self::MAX).contains(&lun) {
            Ok(Self(lun))
        } else {
            Err(LunIdError(lun))
        }
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for LunId {
    type Error = LunIdError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<LunId> for u64 {
    fn from(value: LunId) -> Self {
        value.0
    }
}

impl fmt::Display for LunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an initiator sees of a LUN. Stable across hosts, so that after a failover the
/// initiator (and multipath, and XAPI) finds the same disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunIdentity {
    /// SCSI device identifier (VPD page 0x83), at most [`MAX_SCSI_IDENTIFIER_LEN`] bytes.
    pub scsi_id: String,
    /// SCSI serial number (VPD page 0x80), at most [`MAX_SCSI_IDENTIFIER_LEN`] bytes.
    pub scsi_sn: String,
    /// INQUIRY vendor, at most 8 bytes; `None` keeps the daemon's default.
    pub vendor_id: Option<String>,
    /// INQUIRY product, at most 16 bytes; `None` keeps the daemon's default.
    pub product_id: Option<String>,
}

/// Why a LUN's identity is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is {len} bytes; SCSI takes 1 to {max} bytes of printable ASCII (space to '~')")]
pub struct LunIdentityError {
    /// Which field.
    pub field: &'static str,
    /// The refused value.
    pub value: String,
    /// Its length.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

impl LunIdentity {
    /// Checks what SCSI itself limits: every field non-empty printable ASCII (SPC's rule for
    /// ASCII fields), the INQUIRY fields no longer than their 8 and 16 bytes, the serial and
    /// identifier within what a VPD page can carry. What a backend keeps less of, its crate
    /// refuses at the key.
    pub fn new(
        scsi_id: String,
        scsi_sn: String,
        vendor_id: Option<String>,
        product_id: Option<String>,
    ) -> Result<Self, LunIdentityError> {
        check_field("scsi_id", &scsi_id, MAX_SCSI_IDENTIFIER_LEN)?;
        check_field("scsi_sn", &scsi_sn, MAX_SCSI_IDENTIFIER_LEN)?;
        if let Some(v) = &vendor_id {
            check_field("vendor_id", v, MAX_VENDOR_ID_LEN)?;
        }
        if let Some(p) = &product_id {
            check_field("product_id", p, MAX_PRODUCT_ID_LEN)?;
        }
        Ok(Self {
            scsi_id,
            scsi_sn,
            vendor_id,
            product_id,
        })
    }

    /// A stable default identity derived from the target name and LUN, the same on both hosts.
    pub fn derived(iqn: &Iqn, lun: LunId) -> Self {
        let hash = fnv1a64(format!("{iqn}/{lun}").as_bytes());
        Self {
            scsi_id: format!("iha-{hash:016x}"),
            scsi_sn: format!("{hash:016x}"),
            vendor_id: None,
            product_id: None,
        }
    }
}

fn check_field(field: &'static str, value: &str, max: usize) -> Result<(), LunIdentityError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if ok {
        Ok(())
    } else {
        Err(LunIdentityError {
            field,
            value: value.to_string(),
            len: value.len(),
            max,
        })
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One exported logical unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunSpec {
    /// Its number (≥ 1).
    pub lun: LunId,
    /// The backing block device or file, e.g. `/dev/drbd1`.
    pub path: String,
    /// What initiators see.
    pub identity: LunIdentity,
    /// Export read-only.
    pub read_only: bool,
    /// The initiator is told the LUN has a volatile write cache (SCSI caching mode page,
    /// WCE=1): a completed write may not be stable yet, and what the initiator needs kept it
    /// must flush (SYNCHRONIZE CACHE, or FUA). `false` tells it every completed write is
    /// stable, so it sends no flushes; that is only true with [`LunSpec::stable_writes`].
    #[serde(default)]
    pub volatile_cache_reported: bool,
    /// A write is completed to the initiator only once it is on the backing device's stable
    /// storage (for a DRBD device with protocol C: on both hosts' disks), whatever the
    /// initiator sends. `false` lets the host cache acknowledged writes in memory, so they
    /// are lost when the host dies before it writes them back.
    #[serde(default = "stable_by_default")]
    pub stable_writes: bool,
}

fn stable_by_default() -> bool {
    true
}

impl LunSpec {
    /// Whether the initiator may be told "no volatile cache" while writes are not stable:
    /// it would then never flush, and nothing would make its writes stable.
    pub fn reports_stable_falsely(&self) -> bool {
        !self.volatile_cache_reported && !self.stable_writes
    }
}

/// A CHAP user name and secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapCredentials {
    /// The CHAP user name.
    pub user: String,
    /// The CHAP secret.
    pub password: Secret,
}

/// Who may log in to the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Initiator address ranges allowed.
    pub initiator_addresses: Vec<Subnet>,
    /// Initiator names allowed.
    pub initiator_names: Vec<Iqn>,
    /// Every initiator is allowed, whatever its address or name; only when the configuration
    /// says so.
    pub allow_all: bool,
    /// Accounts initiators log in with (incoming CHAP).
    pub incoming: Vec<ChapCredentials>,
    /// The account the target answers with (outgoing, mutual CHAP).
    pub outgoing: Option<ChapCredentials>,
}

/// The target this host exports while it is master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The target's iSCSI name.
    pub iqn: Iqn,
    /// Its logical units, in LUN order.
    pub luns: Vec<LunSpec>,
    /// Who may log in.
    pub access: Access,
}

/// What the target daemon reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target daemon answers.
    pub daemon_running: bool,
    /// The targets it holds.
    pub targets: Vec<ObservedTarget>,
}

/// One target as the daemon reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTarget {
    /// Its name as reported.
    pub iqn: String,
    /// Accepting logins: built whole and open to initiators.
    pub ready: bool,
    /// Its logical units (LUN 0, the controller, left out).
    pub luns: Vec<ObservedLun>,
    /// Every initiator is allowed, whatever its address or name.
    #[serde(default)]
    pub allow_all: bool,
    /// Allowed initiator address ranges as the daemon shows them. Each matches the spec's
    /// range only written exactly as [`Subnet`] prints it: a daemon may match an entry by its
    /// text, so one with host bits set or a full-length prefix written out is not the spec's
    /// range, nor is one that is not a range.
    pub initiator_addresses: Vec<String>,
    /// Allowed initiator names.
    pub initiator_names: Vec<String>,
    /// Incoming CHAP users bound.
    pub incoming_users: Vec<String>,
    /// Outgoing CHAP user bound.
    pub outgoing_user: Option<String>,
    /// Logged-in sessions.
    pub sessions: u32,
}

/// One logical unit as the daemon reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLun {
    /// Its number.
    pub lun: u64,
    /// Backing path, if any.
    pub path: Option<String>,
    /// SCSI device identifier, if reported.
    pub scsi_id: Option<String>,
    /// SCSI serial, if reported.
    pub scsi_sn: Option<String>,
    /// Read-only, if reported.
    pub read_only: Option<bool>,
    /// Whether completed writes are stable (see [`LunSpec::stable_writes`]), if the daemon
    /// shows what decides it.
    pub stable_writes: Option<bool>,
    /// Whether a volatile write cache is reported to initiators, if the daemon shows it (a
    /// daemon that does not leaves it to an initiator's MODE SENSE).
    pub volatile_cache_reported: Option<bool>,
}

impl TargetStatus {
    /// The observed target of that name, if the daemon holds it.
    pub fn find(&self, iqn: &Iqn) -> Option<&ObservedTarget> {
        self.targets.iter().find(|t| t.iqn == iqn.as_str())
    }
}

impl TargetSpec {
    /// Whether `observed` admits exactly the initiator address ranges of this spec, in any
    /// order, each written as [`Subnet`] prints it.
    fn addresses_match(&self, observed: &ObservedTarget) -> bool {
        let have: Option<BTreeSet<Subnet>> = observed
            .initiator_addresses
            .iter()
            .map(|a| a.parse::<Subnet>().ok().filter(|s| s.to_string() == *a))
            .collect();
        let want: BTreeSet<Subnet> = self.access.initiator_addresses.iter().copied().collect();
        have.is_some_and(|have| have == want)
    }

    /// Whether `status` shows this target fully served: present, ready, every LUN with its
    /// path, identity and read-only flag, the access list and CHAP users exactly as specified.
    /// Fields the daemon does not report are not compared, nor is write durability: the
    /// daemon may be able to fix it only once no initiator is logged in, so serving again
    /// would not help; see [`TargetSpec::durability_mismatches`].
    pub fn is_served_by(&self, status: &TargetStatus) -> bool {
        if !status.daemon_running {
            return false;
        }
        let Some(t) = status.find(&self.iqn) else {
            return false;
        };
        if !t.ready || t.luns.len() != self.luns.len() {
            return false;
        }
        let luns_ok = self.luns.iter().all(|want| {
            t.luns.iter().any(|have| {
                have.lun == want.lun.get()
                    && have.path.as_deref().is_none_or(|p| p == want.path)
                    && have
                        .scsi_id
                        .as_deref()
                        .is_none_or(|v| v == want.identity.scsi_id)
                    && have
                        .scsi_sn
                        .as_deref()
                        .is_none_or(|v| v == want.identity.scsi_sn)
                    && have.read_only.is_none_or(|ro| ro == want.read_only)
            })
        });
        let mut names: Vec<&str> = t.initiator_names.iter().map(String::as_str).collect();
        names.sort_unstable();
        let mut want_names: Vec<&str> = self
            .access
            .initiator_names
            .iter()
            .map(Iqn::as_str)
            .collect();
        want_names.sort_unstable();
        want_names.dedup();
        let mut users: Vec<&str> = t.incoming_users.iter().map(String::as_str).collect();
        users.sort_unstable();
        let mut want_users: Vec<&str> = self
            .access
            .incoming
            .iter()
            .map(|c| c.user.as_str())
            .collect();
        want_users.sort_unstable();
        let outgoing_ok =
            t.outgoing_user.as_deref() == self.access.outgoing.as_ref().map(|c| c.user.as_str());
        luns_ok
            && t.allow_all == self.access.allow_all
            && self.addresses_match(t)
            && names == want_names
            && users == want_users
            && outgoing_ok
    }

    /// The LUNs whose observed write durability differs from the spec (where the daemon
    /// reports it): a LUN meant to have stable writes that does not is an acknowledged-write
    /// loss waiting for this host to die, worth an alert.
    pub fn durability_mismatches(&self, status: &TargetStatus) -> Vec<LunId> {
        let Some(t) = status.find(&self.iqn) else {
            return Vec::new();
        };
        self.luns
            .iter()
            .filter(|want| {
                t.luns.iter().any(|have| {
                    have.lun == want.lun.get()
                        && (have.stable_writes.is_some_and(|s| s != want.stable_writes)
                            || have
                                .volatile_cache_reported
                                .is_some_and(|v| v != want.volatile_cache_reported))
                })
            })
            .map(|l| l.lun)
            .collect()
    }

    /// Whether any trace of this target is still exported.
    pub fn is_present_in(&self, status: &TargetStatus) -> bool {
        status.daemon_running && status.find(&self.iqn).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iqn() -> Iqn {
        Iqn::new("iqn.2024-01.com.example:disk").unwrap_or_else(|e| panic!("{e}"))
    }

    fn lun(n: u64) -> LunId {
        LunId::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn lun_zero_is_refused() {
        assert_eq!(LunId::new(0), Err(LunIdError(0)));
        assert_eq!(LunId::new(16384), Err(LunIdError(16384)));
        assert_eq!(LunId::new(1).map(LunId::get), Ok(1));
    }

    #[test]
    fn derived_identity_is_stable_and_distinct() {
        let a = LunIdentity::derived(&iqn(), lun(1));
        assert_eq!(a, LunIdentity::derived(&iqn(), lun(1)));
        assert_ne!(a, LunIdentity::derived(&iqn(), lun(2)));
        assert!(LunIdentity::new(a.scsi_id.clone(), a.scsi_sn.clone(), None, None).is_ok());
    }

    fn refused_field(
        id: &str,
        sn: &str,
        vendor: Option<&str>,
        product: Option<&str>,
    ) -> Option<&'static str> {
        LunIdentity::new(
            id.into(),
            sn.into(),
            vendor.map(Into::into),
            product.map(Into::into),
        )
        .err()
        .map(|e| e.field)
    }

    #[test]
    fn identity_fields_are_held_to_what_scsi_limits() {
        assert_eq!(
            refused_field("id", "sn", Some(&"x".repeat(9)), None),
            Some("vendor_id")
        );
        assert_eq!(
            refused_field("id", "sn", Some("ACME ACM"), Some(&"p".repeat(16))),
            None
        );
        assert_eq!(
            refused_field("id", "sn", None, Some(&"p".repeat(17))),
            Some("product_id")
        );
        assert_eq!(refused_field("", "sn", None, None), Some("scsi_id"));
        assert_eq!(refused_field("id", "s\nn", None, None), Some("scsi_sn"));
        assert_eq!(refused_field("id", "sé", None, None), Some("scsi_sn"));
        let longest = "s".repeat(MAX_SCSI_IDENTIFIER_LEN);
        assert_eq!(refused_field(&longest, &longest, None, None), None);
        let over = "s".repeat(MAX_SCSI_IDENTIFIER_LEN + 1);
        assert_eq!(refused_field("id", &over, None, None), Some("scsi_sn"));
        assert_eq!(refused_field(&over, "sn", None, None), Some("scsi_id"));
        // What one backend's request syntax cannot carry is that backend's to refuse.
        assert_eq!(
            refused_field("a,b=c", &"s,".repeat(20), Some("A=B"), None),
            None
        );
        let e = LunIdentity::new("id".into(), over.clone(), None, None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e,
            Some(format!("scsi_sn {over:?} is 256 bytes; SCSI takes 1 to 255 bytes of printable ASCII (space to '~')"))
        );
    }

    fn spec() -> TargetSpec {
        TargetSpec {
            iqn: iqn(),
            luns: vec![LunSpec {
                lun: lun(1),
                path: "/dev/drbd1".into(),
                identity: LunIdentity::derived(&iqn(), lun(1)),
                read_only: false,
                volatile_cache_reported: false,
                stable_writes: true,
            }],
            access: Access {
                initiator_addresses: vec!["10.0.0.9/24".parse().unwrap_or_else(|e| panic!("{e}"))],
                ..Access::default()
            },
        }
    }

    fn served(spec: &TargetSpec) -> TargetStatus {
        TargetStatus {
            daemon_running: true,
            targets: vec![ObservedTarget {
                iqn: spec.iqn.to_string(),
                ready: true,
                luns: spec
                    .luns
                    .iter()
                    .map(|l| ObservedLun {
                        lun: l.lun.get(),
                        path: Some(l.path.clone()),
                        scsi_id: Some(l.identity.scsi_id.clone()),
                        scsi_sn: Some(l.identity.scsi_sn.clone()),
                        read_only: Some(l.read_only),
                        stable_writes: Some(l.stable_writes),
                        volatile_cache_reported: None,
                    })
                    .collect(),
                initiator_addresses: vec!["10.0.0.0/24".into()],
                ..ObservedTarget::default()
            }],
        }
    }

    #[test]
    fn served_target_is_recognised() {
        let spec = spec();
        assert!(spec.is_served_by(&served(&spec)));
        // In any order, each written as `Subnet` prints it.
        let mut open = spec.clone();
        open.access.allow_all = true;
        open.access
            .initiator_addresses
            .push("fd00::7/128".parse().unwrap_or_else(|e| panic!("{e}")));
        let mut shown = served(&open);
        shown.targets[0].allow_all = true;
        shown.targets[0].initiator_addresses = vec!["fd00::7".into(), "10.0.0.0/24".into()];
        assert!(open.is_served_by(&shown));
        // The same ranges written otherwise may not match what the spec means.
        for other in ["fd00::7/128", "fd00::0007"] {
            let mut written = shown.clone();
            written.targets[0].initiator_addresses[0] = other.into();
            assert!(!open.is_served_by(&written), "{other}");
        }
        let mut host_bits = served(&spec);
        host_bits.targets[0].initiator_addresses = vec!["10.0.0.9/24".into()];
        assert!(!spec.is_served_by(&host_bits));
    }

    #[test]
    fn any_difference_means_not_served() {
        let spec = spec();
        let mut offline = served(&spec);
        offline.targets[0].ready = false;
        assert!(!spec.is_served_by(&offline));
        let mut wrong_path = served(&spec);
        wrong_path.targets[0].luns[0].path = Some("/dev/drbd2".into());
        assert!(!spec.is_served_by(&wrong_path));
        let mut open = served(&spec);
        open.targets[0].allow_all = true;
        assert!(!spec.is_served_by(&open));
        let mut wider = served(&spec);
        wider.targets[0].initiator_addresses.push("10.0.1.7".into());
        assert!(!spec.is_served_by(&wider));
        let mut unreadable = served(&spec);
        unreadable.targets[0].initiator_addresses = vec!["10.0.0.0/24".into(), "any".into()];
        assert!(!spec.is_served_by(&unreadable));
        let mut closed = spec.clone();
        closed.access.allow_all = true;
        assert!(!closed.is_served_by(&served(&spec)));
        let mut down = served(&spec);
        down.daemon_running = false;
        assert!(!spec.is_served_by(&down));
        assert!(!spec.is_present_in(&down));
    }

    #[test]
    fn durability_is_reported_apart_from_serving() {
        let spec = spec();
        assert!(spec.durability_mismatches(&served(&spec)).is_empty());
        let mut cached = served(&spec);
        cached.targets[0].luns[0].stable_writes = Some(false);
        assert!(spec.is_served_by(&cached));
        assert_eq!(spec.durability_mismatches(&cached), vec![lun(1)]);
        let mut unknown = served(&spec);
        unknown.targets[0].luns[0].stable_writes = None;
        assert!(spec.durability_mismatches(&unknown).is_empty());
    }

    #[test]
    fn older_serialised_luns_default_to_stable_writes() {
        let old = r#"{"lun":1,"path":"/dev/drbd1","identity":{"scsi_id":"a","scsi_sn":"b","vendor_id":null,"product_id":null},"read_only":false}"#;
        let lun: LunSpec = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(lun.stable_writes && !lun.volatile_cache_reported);
        assert!(!lun.reports_stable_falsely());
    }
}
