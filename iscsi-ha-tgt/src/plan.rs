//! The difference between a [`TargetSpec`] and what tgtd holds, as a list of steps. Pure: the
//! adapter reads tgtd, plans, turns every step into a checked request (so a bad spec is
//! refused before anything is sent), then sends them in order.

use std::collections::{BTreeMap, BTreeSet};

use iscsi_ha_core::target::{LunSpec, TargetSpec};

use crate::config::BackingDefaults;
use crate::durability;
use crate::guard::{self, GuardError};
use crate::ops::{LunBacking, LunSettings, State};
use crate::show::{TargetInfo, ALL};
use crate::wire::{AccountDirection, Request};

/// One change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the target.
    CreateTarget,
    /// Set the target's login state.
    SetState(State),
    /// Remove a logical unit.
    DeleteLun(u64),
    /// Add a logical unit.
    NewLun(u64, LunBacking),
    /// Change a logical unit's identity or read-only flag.
    UpdateLun(u64, LunSettings),
    /// Allow an address range (normalised text).
    BindAddress(String),
    /// Allow every address.
    BindAll,
    /// Remove an address rule (as tgtd shows it).
    UnbindAddress(String),
    /// Allow an initiator name.
    BindName(String),
    /// Remove a name rule.
    UnbindName(String),
    /// Delete an account whose secret is not known to match.
    DeleteAccount(String),
    /// Create an account.
    NewAccount(String),
    /// Bind an account to the target.
    BindAccount(String, AccountDirection),
    /// Unbind an account from the target.
    UnbindAccount(String, AccountDirection),
}

/// A change [`plan`] leaves out because tgtd could make it only by disturbing the
/// initiators logged in to the target; it is made once none is (or at the next takeover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// The LU's open flags differ (`want` holds `sync` for stable writes, or not): tgtd sets
    /// them only at creation, and deleting the LU would fail the initiators' I/O.
    OpenFlags {
        /// The LUN.
        lun: u64,
        /// The flags tgtd shows.
        have: String,
        /// The flags wanted.
        want: String,
    },
    /// Reporting a volatile write cache: an initiator that read WCE=0 would go on sending
    /// no SYNCHRONIZE CACHE while its writes were no longer synced.
    VolatileCache {
        /// The LUN.
        lun: u64,
    },
}

/// What this adapter set that tgtd does not show: CHAP secrets, INQUIRY vendor/product and
/// the reported write cache. Lets a second `serve` recognise there is nothing to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Secret fingerprint per account user.
    pub secrets: BTreeMap<String, u64>,
    /// Vendor and product per (target name, LUN, path).
    pub inquiry: BTreeMap<LunKey, Inquiry>,
    /// The caching page's WCE per (target name, LUN, path), as last set.
    pub write_cache: BTreeMap<LunKey, bool>,
}

/// A logical unit as [`Applied`] keys it: target name, LUN, backing path.
pub type LunKey = (String, u64, String);
/// INQUIRY vendor and product as set.
pub type Inquiry = (Option<String>, Option<String>);

/// A fingerprint of a secret: enough to notice a change, not to recover it.
pub fn fingerprint(secret: &str) -> u64 {
    secret.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The steps that make tgtd serve `spec`. `observed` is the target of that name if tgtd
/// holds it; `accounts` are all account users tgtd has.
///
/// tgtd cannot show a CHAP secret, and its accounts are global: an existing account whose
/// secret [`Applied`] does not vouch for is deleted and created again, which also unbinds it
/// from any other target (relevant only for an adopted tgtd that shares account names).
pub fn plan(
    spec: &TargetSpec,
    observed: Option<&TargetInfo>,
    accounts: &[String],
    applied: &Applied,
    backing: &BackingDefaults,
) -> Vec<Step> {
    plan_with_deferred(spec, observed, accounts, applied, backing).0
}

/// [`plan`], and the changes it leaves out while initiators are logged in (see
/// [`Deferred`]).
pub fn plan_with_deferred(
    spec: &TargetSpec,
    observed: Option<&TargetInfo>,
    accounts: &[String],
    applied: &Applied,
    backing: &BackingDefaults,
) -> (Vec<Step>, Vec<Deferred>) {
    let mut steps = Vec::new();
    let mut deferred = Vec::new();
    let empty = TargetInfo::default();
    let have = match observed {
        Some(t) => t,
        None => {
            steps.push(Step::CreateTarget);
            // New targets start ready; keep logins out until LUNs and ACLs are complete.
            steps.push(Step::SetState(State::Offline));
            &empty
        }
    };
    plan_luns(spec, have, applied, backing, &mut steps, &mut deferred);
    plan_acl(spec, have, &mut steps);
    plan_accounts(spec, have, accounts, applied, &mut steps);
    if observed.is_none() || !have.is_ready() {
        steps.push(Step::SetState(State::Ready));
    }
    (steps, deferred)
}

fn backing_for(lun: &LunSpec, backing: &BackingDefaults) -> LunBacking {
    LunBacking {
        path: lun.path.clone(),
        bstype: backing.bstype.clone(),
        block_size: backing.block_size,
        bsoflags: durability::open_flags(backing.bsoflags.as_deref(), lun.stable_writes),
    }
}

fn full_settings(lun: &LunSpec) -> LunSettings {
    LunSettings {
        scsi_id: Some(lun.identity.scsi_id.clone()),
        scsi_sn: Some(lun.identity.scsi_sn.clone()),
        vendor_id: lun.identity.vendor_id.clone(),
        product_id: lun.identity.product_id.clone(),
        readonly: Some(lun.read_only),
        write_cache: Some(lun.volatile_cache_reported),
    }
}

fn plan_luns(
    spec: &TargetSpec,
    have: &TargetInfo,
    applied: &Applied,
    backing: &BackingDefaults,
    steps: &mut Vec<Step>,
    deferred: &mut Vec<Deferred>,
) {
    let wanted: BTreeSet<u64> = spec.luns.iter().map(|l| l.lun.get()).collect();
    for lun in have.data_luns() {
        if !wanted.contains(&lun.lun) {
            steps.push(Step::DeleteLun(lun.lun));
        }
    }
    let logged_in = !have.nexuses.is_empty();
    for want in &spec.luns {
        let n = want.lun.get();
        let existing = have.data_luns().find(|l| l.lun == n);
        let want_flags = backing_for(want, backing).bsoflags;
        // tgtd shows no flags line on versions without it: nothing to compare then.
        let flags_differ = existing.is_some_and(|l| {
            l.backing_flags
                .as_deref()
                .is_some_and(|f| !durability::same_flags(Some(f), want_flags.as_deref()))
        });
        if flags_differ && logged_in {
            deferred.push(Deferred::OpenFlags {
                lun: n,
                have: existing
                    .and_then(|l| l.backing_flags.clone())
                    .unwrap_or_default(),
                want: want_flags.clone().unwrap_or_default(),
            });
        }
        match existing {
            Some(l)
                if l.path.as_deref() == Some(want.path.as_str())
                    && (!flags_differ || logged_in) =>
            {
                let mut s = LunSettings::default();
                if l.scsi_id.as_deref() != Some(want.identity.scsi_id.as_str()) {
                    s.scsi_id = Some(want.identity.scsi_id.clone());
                }
                if l.scsi_sn.as_deref() != Some(want.identity.scsi_sn.as_str()) {
                    s.scsi_sn = Some(want.identity.scsi_sn.clone());
                }
                if l.readonly != Some(want.read_only) {
                    s.readonly = Some(want.read_only);
                }
                let key = (spec.iqn.to_string(), n, want.path.clone());
                let inquiry = (
                    want.identity.vendor_id.clone(),
                    want.identity.product_id.clone(),
                );
                let known = applied.inquiry.get(&key) == Some(&inquiry);
                if !known {
                    s.vendor_id = inquiry.0;
                    s.product_id = inquiry.1;
                }
                let wce = want.volatile_cache_reported;
                if applied.write_cache.get(&key) != Some(&wce) {
                    if wce && logged_in {
                        deferred.push(Deferred::VolatileCache { lun: n });
                    } else {
                        s.write_cache = Some(wce);
                    }
                }
                if !s.is_empty() {
                    steps.push(Step::UpdateLun(n, s));
                }
            }
            other => {
                if other.is_some() {
                    steps.push(Step::DeleteLun(n));
                }
                steps.push(Step::NewLun(n, backing_for(want, backing)));
                steps.push(Step::UpdateLun(n, full_settings(want)));
            }
        }
    }
}

/// The address entries of tgtd's access list once `spec` is served, as tgtd shows them: each
/// range as [`Subnet`](iscsi_ha_core::subnet::Subnet) prints it (tgtd shows a single address
/// without a prefix, and matches it only written so: see [`guard::acl_subnet`]), and
/// [`ALL`] when every initiator is allowed.
pub fn acl_addresses(spec: &TargetSpec) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = spec
        .access
        .initiator_addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    if spec.access.allow_all {
        out.insert(ALL.to_string());
    }
    out
}

fn plan_acl(spec: &TargetSpec, have: &TargetInfo, steps: &mut Vec<Step>) {
    let want = acl_addresses(spec);
    let have_addresses: BTreeSet<String> = have.acl_addresses().into_iter().collect();
    for a in want.difference(&have_addresses) {
        steps.push(if a == ALL {
            Step::BindAll
        } else {
            Step::BindAddress(a.clone())
        });
    }
    let want_names: BTreeSet<String> = spec
        .access
        .initiator_names
        .iter()
        .map(ToString::to_string)
        .collect();
    let have_names: BTreeSet<String> = have.acl_names().into_iter().collect();
    for n in want_names.difference(&have_names) {
        steps.push(Step::BindName(n.clone()));
    }
    // Removals after additions, so an initiator allowed before and after never loses access.
    for a in have_addresses.difference(&want) {
        steps.push(Step::UnbindAddress(a.clone()));
    }
    for n in have_names.difference(&want_names) {
        steps.push(Step::UnbindName(n.clone()));
    }
}

fn plan_accounts(
    spec: &TargetSpec,
    have: &TargetInfo,
    accounts: &[String],
    applied: &Applied,
    steps: &mut Vec<Step>,
) {
    let mut wanted: Vec<(&str, &str, AccountDirection)> = spec
        .access
        .incoming
        .iter()
        .map(|c| {
            (
                c.user.as_str(),
                c.password.expose(),
                AccountDirection::Incoming,
            )
        })
        .collect();
    if let Some(c) = &spec.access.outgoing {
        wanted.push((
            c.user.as_str(),
            c.password.expose(),
            AccountDirection::Outgoing,
        ));
    }
    // Unbind what should not be bound first: tgtd holds one outgoing account per target.
    let want_in: BTreeSet<&str> = spec
        .access
        .incoming
        .iter()
        .map(|c| c.user.as_str())
        .collect();
    for user in &have.incoming_users {
        if !want_in.contains(user.as_str()) {
            steps.push(Step::UnbindAccount(
                user.clone(),
                AccountDirection::Incoming,
            ));
        }
    }
    let want_out = spec.access.outgoing.as_ref().map(|c| c.user.as_str());
    if let Some(user) = &have.outgoing_user {
        if Some(user.as_str()) != want_out {
            steps.push(Step::UnbindAccount(
                user.clone(),
                AccountDirection::Outgoing,
            ));
        }
    }
    let mut recreated: BTreeSet<&str> = BTreeSet::new();
    for (user, secret, _) in &wanted {
        let exists = accounts.iter().any(|a| a == user);
        let known = applied.secrets.get(*user) == Some(&fingerprint(secret));
        if exists && known {
            continue;
        }
        if !recreated.insert(user) {
            continue;
        }
        if exists {
            // tgtd cannot show a secret, so one we did not set is replaced.
            steps.push(Step::DeleteAccount((*user).to_string()));
        }
        steps.push(Step::NewAccount((*user).to_string()));
    }
    for (user, _, direction) in &wanted {
        let bound = match direction {
            AccountDirection::Incoming => have.incoming_users.iter().any(|u| u == user),
            AccountDirection::Outgoing => have.outgoing_user.as_deref() == Some(*user),
        };
        if !bound || recreated.contains(user) {
            steps.push(Step::BindAccount((*user).to_string(), *direction));
        }
    }
}

/// The request for a step on target `tid`, with the guards applied.
pub fn request(step: &Step, tid: i64, spec: &TargetSpec) -> Result<Request, GuardError> {
    match step {
        Step::CreateTarget => Request::target_new(tid, spec.iqn.as_str()),
        Step::SetState(s) => Request::target_set_state(tid, *s),
        Step::DeleteLun(n) => Request::lun_delete(tid, *n),
        Step::NewLun(n, b) => Request::lun_new(tid, *n, b),
        Step::UpdateLun(n, s) => Request::lun_update(tid, *n, s),
        Step::BindAddress(a) => Request::acl_bind_address(tid, a),
        Step::BindAll => {
            if spec.access.allow_all {
                Request::acl_bind_all(tid)
            } else {
                Err(GuardError::AllNotExplicit)
            }
        }
        Step::UnbindAddress(a) => Request::acl_unbind_address(tid, a),
        Step::BindName(n) => Request::acl_bind_name(tid, n),
        Step::UnbindName(n) => Request::acl_unbind_name(tid, n),
        Step::DeleteAccount(u) => Request::account_delete(u),
        Step::NewAccount(u) => {
            let secret = spec
                .access
                .incoming
                .iter()
                .chain(spec.access.outgoing.iter())
                .find(|c| &c.user == u)
                .map(|c| c.password.expose())
                .unwrap_or_default();
            Request::account_new(u, secret)
        }
        Step::BindAccount(u, d) => Request::account_bind(tid, u, *d),
        Step::UnbindAccount(u, d) => Request::account_unbind(tid, u, *d),
    }
}

/// Checks everything in `spec` tgtd would be given when serving it from scratch, so a bad
/// spec is refused whole, before any request.
pub fn validate(spec: &TargetSpec, backing: &BackingDefaults) -> Result<(), GuardError> {
    for lun in &spec.luns {
        let reason = if lun.reports_stable_falsely() {
            Some("initiators would be told there is no volatile write cache while writes are not made stable: they would never flush")
        } else if lun.stable_writes && backing.bstype != durability::RDWR {
            Some("stable writes need the rdwr backing store: tgtd's other stores take no sync open flag (aio never flushes)")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(GuardError::Durability {
                lun: lun.lun.get(),
                reason,
            });
        }
    }
    let steps = plan(spec, None, &[], &Applied::default(), backing);
    for step in &steps {
        request(step, 1, spec)?;
    }
    for subnet in &spec.access.initiator_addresses {
        guard::acl_subnet(subnet)?;
    }
    let mut users = BTreeSet::new();
    for c in spec
        .access
        .incoming
        .iter()
        .chain(spec.access.outgoing.iter())
    {
        if !users.insert(c.user.as_str()) {
            return Err(GuardError::User {
                user: c.user.clone(),
                reason: "listed twice (an incoming and the outgoing account must differ)",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::show::{LunInfo, TargetInfo};
    use iscsi_ha_core::iqn::Iqn;
    use iscsi_ha_core::secret::Secret;
    use iscsi_ha_core::target::{Access, ChapCredentials, LunId, LunIdentity};

    fn iqn() -> Iqn {
        Iqn::new("iqn.2024-01.com.example:disk").unwrap_or_else(|e| panic!("{e}"))
    }

    fn spec() -> TargetSpec {
        let lun = LunId::new(1).unwrap_or_else(|e| panic!("{e}"));
        TargetSpec {
            iqn: iqn(),
            luns: vec![LunSpec {
                lun,
                path: "/dev/drbd1".into(),
                identity: LunIdentity {
                    vendor_id: Some("ACME".into()),
                    ..LunIdentity::derived(&iqn(), lun)
                },
                read_only: false,
                volatile_cache_reported: false,
                stable_writes: true,
            }],
            access: Access {
                initiator_addresses: vec!["10.0.0.7/24".parse().unwrap_or_else(|e| panic!("{e}"))],
                incoming: vec![ChapCredentials {
                    user: "alice".into(),
                    password: Secret::new("secretpass12"),
                }],
                ..Access::default()
            },
        }
    }

    fn served(spec: &TargetSpec) -> (TargetInfo, Applied) {
        let l = &spec.luns[0];
        let info = TargetInfo {
            tid: 1,
            name: spec.iqn.to_string(),
            state: Some("ready".into()),
            luns: vec![
                LunInfo {
                    lun: 0,
                    ..LunInfo::default()
                },
                LunInfo {
                    lun: 1,
                    path: Some(l.path.clone()),
                    scsi_id: Some(l.identity.scsi_id.clone()),
                    scsi_sn: Some(l.identity.scsi_sn.clone()),
                    readonly: Some(false),
                    backing_flags: Some("sync".into()),
                    ..LunInfo::default()
                },
            ],
            incoming_users: vec!["alice".into()],
            acl: vec!["10.0.0.0/24".into()],
            ..TargetInfo::default()
        };
        let mut applied = Applied::default();
        applied
            .secrets
            .insert("alice".into(), fingerprint("secretpass12"));
        applied.inquiry.insert(
            (spec.iqn.to_string(), 1, l.path.clone()),
            (Some("ACME".into()), None),
        );
        applied
            .write_cache
            .insert((spec.iqn.to_string(), 1, l.path.clone()), false);
        (info, applied)
    }

    fn logged_in(info: &mut TargetInfo) {
        info.nexuses.push(crate::show::NexusInfo {
            id: 1,
            ..crate::show::NexusInfo::default()
        });
    }

    fn run(spec: &TargetSpec, info: &TargetInfo, applied: &Applied) -> (Vec<Step>, Vec<Deferred>) {
        let accounts = ["alice".to_string()];
        plan_with_deferred(
            spec,
            Some(info),
            &accounts,
            applied,
            &BackingDefaults::default(),
        )
    }

    #[test]
    fn new_luns_get_sync_and_wce_off_by_default() {
        let steps = plan(
            &spec(),
            None,
            &[],
            &Applied::default(),
            &BackingDefaults::default(),
        );
        let new = steps.iter().find_map(|s| match s {
            Step::NewLun(1, b) => Some(b.clone()),
            _ => None,
        });
        assert_eq!(new.and_then(|b| b.bsoflags).as_deref(), Some("sync"));
        assert!(steps.iter().any(|s| matches!(
            s,
            Step::UpdateLun(
                1,
                LunSettings {
                    write_cache: Some(false),
                    ..
                }
            )
        )));
        let mut cached = spec();
        cached.luns[0].stable_writes = false;
        cached.luns[0].volatile_cache_reported = true;
        let steps = plan(
            &cached,
            None,
            &[],
            &Applied::default(),
            &BackingDefaults::default(),
        );
        assert!(steps
            .iter()
            .any(|s| matches!(s, Step::NewLun(1, b) if b.bsoflags.is_none())));
        assert!(steps.iter().any(|s| matches!(
            s,
            Step::UpdateLun(
                1,
                LunSettings {
                    write_cache: Some(true),
                    ..
                }
            )
        )));
    }

    #[test]
    fn wrong_flags_recreate_the_lun_only_without_initiators() {
        let spec = spec();
        let (mut info, applied) = served(&spec);
        info.luns[1].backing_flags = Some(String::new());
        let (steps, deferred) = run(&spec, &info, &applied);
        assert!(deferred.is_empty());
        assert_eq!(steps.first(), Some(&Step::DeleteLun(1)));
        assert!(
            matches!(steps.get(1), Some(Step::NewLun(1, b)) if b.bsoflags.as_deref() == Some("sync"))
        );
        logged_in(&mut info);
        let (steps, deferred) = run(&spec, &info, &applied);
        assert!(steps.is_empty(), "{steps:?}");
        assert_eq!(
            deferred,
            vec![Deferred::OpenFlags {
                lun: 1,
                have: String::new(),
                want: "sync".into()
            }]
        );
    }

    #[test]
    fn wce_off_goes_in_place_on_only_without_initiators() {
        let spec = spec();
        let (mut info, mut applied) = served(&spec);
        logged_in(&mut info);
        // An adopted tgtd: WCE unknown. Off is safe to set under initiators.
        applied.write_cache.clear();
        let (steps, deferred) = run(&spec, &info, &applied);
        assert!(deferred.is_empty());
        assert_eq!(
            steps,
            vec![Step::UpdateLun(
                1,
                LunSettings {
                    write_cache: Some(false),
                    ..LunSettings::default()
                }
            )]
        );
        // On waits: the initiator read WCE=0 and would never flush.
        let mut cached = spec.clone();
        cached.luns[0].volatile_cache_reported = true;
        cached.luns[0].stable_writes = false;
        info.luns[1].backing_flags = Some(String::new());
        let (steps, deferred) = run(&cached, &info, &applied);
        assert!(steps.is_empty(), "{steps:?}");
        assert_eq!(deferred, vec![Deferred::VolatileCache { lun: 1 }]);
        info.nexuses.clear();
        let (steps, deferred) = run(&cached, &info, &applied);
        assert!(deferred.is_empty());
        assert!(matches!(
            steps.as_slice(),
            [Step::UpdateLun(
                1,
                LunSettings {
                    write_cache: Some(true),
                    ..
                }
            )]
        ));
    }

    #[test]
    fn durability_guards() {
        let mut lie = spec();
        lie.luns[0].stable_writes = false;
        assert!(matches!(
            validate(&lie, &BackingDefaults::default()),
            Err(GuardError::Durability { lun: 1, .. })
        ));
        let aio = BackingDefaults {
            bstype: "aio".into(),
            ..BackingDefaults::default()
        };
        assert!(matches!(
            validate(&spec(), &aio),
            Err(GuardError::Durability { lun: 1, .. })
        ));
        let mut cached = spec();
        cached.luns[0].stable_writes = false;
        cached.luns[0].volatile_cache_reported = true;
        assert_eq!(validate(&cached, &aio), Ok(()));
    }

    #[test]
    fn from_empty_creates_offline_then_ready() {
        let steps = plan(
            &spec(),
            None,
            &[],
            &Applied::default(),
            &BackingDefaults::default(),
        );
        assert_eq!(steps.first(), Some(&Step::CreateTarget));
        assert_eq!(steps.get(1), Some(&Step::SetState(State::Offline)));
        assert_eq!(steps.last(), Some(&Step::SetState(State::Ready)));
        assert!(steps.contains(&Step::BindAddress("10.0.0.0/24".into())));
        assert!(steps.contains(&Step::NewAccount("alice".into())));
        assert!(!steps.contains(&Step::BindAll));
    }

    #[test]
    fn served_target_needs_nothing() {
        let spec = spec();
        let (info, applied) = served(&spec);
        let steps = plan(
            &spec,
            Some(&info),
            &["alice".into()],
            &applied,
            &BackingDefaults::default(),
        );
        assert_eq!(steps, vec![]);
    }

    #[test]
    fn the_access_list_is_rendered_as_tgtd_shows_it() {
        let mut spec = spec();
        assert_eq!(
            acl_addresses(&spec),
            BTreeSet::from(["10.0.0.0/24".to_string()])
        );
        spec.access.allow_all = true;
        spec.access
            .initiator_addresses
            .push("10.9.9.9/32".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            acl_addresses(&spec),
            BTreeSet::from(["10.0.0.0/24", "10.9.9.9", ALL].map(String::from))
        );
    }

    #[test]
    fn differences_are_planned() {
        let mut spec = spec();
        spec.access.allow_all = true;
        spec.luns[0].read_only = true;
        let (mut info, mut applied) = served(&spec);
        info.acl.push("iqn.2024-01.com.example:old".into());
        applied.secrets.clear();
        let steps = plan(
            &spec,
            Some(&info),
            &["alice".into()],
            &applied,
            &BackingDefaults::default(),
        );
        assert_eq!(
            steps,
            vec![
                Step::UpdateLun(
                    1,
                    LunSettings {
                        readonly: Some(true),
                        ..LunSettings::default()
                    }
                ),
                Step::BindAll,
                Step::UnbindName("iqn.2024-01.com.example:old".into()),
                Step::DeleteAccount("alice".into()),
                Step::NewAccount("alice".into()),
                Step::BindAccount("alice".into(), AccountDirection::Incoming),
            ]
        );
    }

    #[test]
    fn validate_refuses_bad_specs_whole() {
        let mut bad = spec();
        bad.luns[0].path = "relative/path".into();
        assert!(matches!(
            validate(&bad, &BackingDefaults::default()),
            Err(GuardError::Path { .. })
        ));
        let mut zero = spec();
        zero.access.initiator_addresses =
            vec!["0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"))];
        assert!(matches!(
            validate(&zero, &BackingDefaults::default()),
            Err(GuardError::Address { .. })
        ));
        assert_eq!(validate(&spec(), &BackingDefaults::default()), Ok(()));
    }
}
