//! Property tests for the operator's checks (`crate::operator`): which verb may run on which
//! observation, over random pool roles, manual modes, DRBD roles (unreadable ones included),
//! links, split brains, VIP and target states and probe answers. Each property states the
//! whole rule (allowed exactly when ...), so a rule removed from a check fails it; the one
//! for become-primary was checked to fail with the peer-Primary refusal removed.

use super::fakes::{config, split_brain, Fakes};
use crate::observation::{ManualMode, Observation, VolumeObservation};
use crate::operator::{
    become_primary_needs_probe, check_become_primary, check_become_secondary,
    check_manual_mode_disable, check_manual_mode_enable, check_split_brain_resolve,
    split_brain_reconnect_targets, ManualModeChange, Refusal,
};
use crate::ports::FloatingIpError;
use crate::resource::ResourceName;
use crate::role::Role;
use crate::vip::VipProbe;
use crate::volume::{Connection, DiskState, VolumeRole, VolumeStatus};
use proptest::prelude::*;

const RESOURCES: [&str; 2] = ["r0", "r1"];

/// One resource as this host may see it.
#[derive(Debug, Clone)]
struct Volume {
    readable: bool,
    role: VolumeRole,
    peer_role: VolumeRole,
    connection: Connection,
    split: bool,
}

fn volume_role() -> impl Strategy<Value = VolumeRole> {
    prop_oneof![
        Just(VolumeRole::Primary),
        Just(VolumeRole::Secondary),
        Just(VolumeRole::Unknown),
    ]
}

fn volume() -> impl Strategy<Value = Volume> {
    (
        prop::bool::weighted(0.85),
        volume_role(),
        volume_role(),
        prop_oneof![
            Just(Connection::StandAlone),
            Just(Connection::Connecting),
            Just(Connection::Connected),
        ],
        prop::bool::weighted(0.25),
    )
        .prop_map(|(readable, role, peer_role, connection, split)| Volume {
            readable,
            role,
            peer_role,
            connection,
            split,
        })
}

/// A whole host: the pool role, manual mode, both resources, and the target and VIP each
/// served, not served or unreadable.
#[derive(Debug, Clone)]
struct Host {
    role: Role,
    manual: ManualMode,
    volumes: [Volume; 2],
    target_served: bool,
    vip_here: bool,
    unobservable_target: bool,
    unobservable_vip: bool,
}

fn host() -> impl Strategy<Value = Host> {
    (
        prop_oneof![
            3 => Just(Role::Master),
            3 => Just(Role::Slave),
            1 => Just(Role::Unknown("pool.conf broken".into())),
        ],
        prop_oneof![
            Just(ManualMode::Off),
            Just(ManualMode::BecomePrimary),
            Just(ManualMode::BecomeSecondary),
        ],
        [volume(), volume()],
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(role, manual, volumes, target_served, vip_here, ut, uv)| Host {
                role,
                manual,
                volumes,
                target_served,
                vip_here,
                unobservable_target: ut,
                unobservable_vip: uv,
            },
        )
}

/// The observation of `h`: the fake world gives the target and VIP parts (so "served" means
/// what the configured target looks like), the resources are set directly so unreadable
/// statuses and StandAlone links occur, which the fake's own volumes never show.
fn observe(h: &Host) -> Observation {
    let cfg = config(&RESOURCES);
    let f = Fakes::new(&RESOURCES);
    let mut o = {
        let mut w = f.world.borrow_mut();
        w.target_served = h.target_served;
        w.vip_here = h.vip_here;
        w.unobservable_target = h.unobservable_target;
        w.unobservable_vip = h.unobservable_vip;
        w.observe(h.role.clone(), h.manual, &cfg.target)
    };
    o.volumes = RESOURCES
        .iter()
        .zip(&h.volumes)
        .map(|(name, v)| {
            let name = ResourceName::new(*name).unwrap();
            VolumeObservation {
                status: if v.readable {
                    Ok(VolumeStatus {
                        name: name.clone(),
                        role: v.role,
                        peer_role: v.peer_role,
                        connection: v.connection,
                        connection_detail: format!("{:?}", v.connection),
                        disk: DiskState::UpToDate,
                        peer_disk: DiskState::UpToDate,
                        sync: None,
                        suspended: false,
                    })
                } else {
                    Err("netlink timeout".into())
                },
                split_brain: v.split.then(split_brain),
                name,
            }
        })
        .collect();
    o
}

fn probe() -> impl Strategy<Value = Option<Result<VipProbe, FloatingIpError>>> {
    prop_oneof![
        Just(None),
        Just(Some(Ok(VipProbe::Free))),
        Just(Some(Ok(VipProbe::LiveElsewhere {
            owner: Some("52:54:00:00:00:02".into())
        }))),
        Just(Some(Ok(VipProbe::LiveElsewhere { owner: None }))),
        Just(Some(Err(FloatingIpError::InterfaceDown("eth0".into())))),
    ]
}

fn seen(o: &Observation, i: usize) -> Option<&VolumeStatus> {
    o.volumes[i].status.as_ref().ok()
}

/// The verbs a refusal may send the operator to: an `iscsi-cfg` verb, or trying again once
/// the named cause is fixed.
const NEXT_STEPS: [&str; 8] = [
    "manual-mode-enable",
    "manual-mode-disable",
    "become-primary",
    "become-secondary",
    "split-brain",
    "iscsi-cfg status",
    "try again",
    "resolve again",
];

fn names_what_to_do(r: &Refusal) -> bool {
    !r.reason.is_empty() && NEXT_STEPS.iter().any(|s| r.hint.contains(s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// become-primary is allowed exactly in manual mode, while no resource shows its peer
    /// Primary, and with the VIP seen here or a probe that found it free; `--force` changes
    /// none of that, it only promotes (with DRBD's force) every resource not seen Primary.
    /// A missing or failed probe refuses: not knowing is not "free".
    #[test]
    fn become_primary_never_runs_beside_a_primary_peer_or_a_vip_elsewhere(h in host(), force in any::<bool>(), probe in probe()) {
        let cfg = config(&RESOURCES);
        let o = observe(&h);
        let peer_primary = (0..2).any(|i| seen(&o, i).is_some_and(|s| s.peer_role == VolumeRole::Primary));
        let vip_free = o.vip_here == Ok(true) || matches!(probe, Some(Ok(VipProbe::Free)));
        let allowed = o.manual.is_on() && !peer_primary && vip_free;
        match check_become_primary(&o, force, &cfg.vip, probe) {
            Ok(b) => {
                prop_assert!(allowed, "allowed on {:?}", o);
                let expected: Vec<ResourceName> = (0..2)
                    .filter(|i| force && seen(&o, *i).is_none_or(|s| s.role != VolumeRole::Primary))
                    .map(|i| o.volumes[i].name.clone())
                    .collect();
                prop_assert_eq!(b.forced, expected);
            }
            Err(r) => {
                prop_assert!(!allowed, "refused ({r}) on {:?}", o);
                prop_assert!(names_what_to_do(&r), "{r}");
            }
        }
    }

    /// The daemon probes the VIP only when the answer depends on it: when no probe is
    /// needed, every probe answer gives the same verdict.
    #[test]
    fn become_primary_probes_only_when_the_answer_depends_on_it(h in host(), force in any::<bool>(), probe in probe()) {
        let cfg = config(&RESOURCES);
        let o = observe(&h);
        if !become_primary_needs_probe(&o) {
            prop_assert_eq!(
                check_become_primary(&o, force, &cfg.vip, probe),
                check_become_primary(&o, force, &cfg.vip, None)
            );
        } else {
            prop_assert!(o.manual.is_on() && o.vip_here != Ok(true));
        }
    }

    /// manual-mode-disable hands the host back to the pool role only when that role is known
    /// and every resource's DRBD role is readable and matches it (Primary exactly on a
    /// master); it is refused whenever one disagrees, naming the verb that fixes it.
    #[test]
    fn manual_mode_disable_is_refused_whenever_drbd_disagrees_with_the_pool_role(h in host()) {
        let o = observe(&h);
        let agree = |primary: bool| (0..2).all(|i| seen(&o, i).is_some_and(|s| (s.role == VolumeRole::Primary) == primary));
        let agrees = match o.role {
            Role::Master => agree(true),
            Role::Slave => agree(false),
            Role::Unknown(_) => false,
        };
        match check_manual_mode_disable(&o) {
            Ok(ManualModeChange::Unchanged) => prop_assert!(!o.manual.is_on()),
            Ok(ManualModeChange::To(mode)) => {
                prop_assert_eq!(mode, ManualMode::Off);
                prop_assert!(o.manual.is_on() && agrees, "disabled on {:?}", o);
            }
            Err(r) => {
                prop_assert!(o.manual.is_on() && !agrees, "refused ({r}) on {:?}", o);
                prop_assert!(names_what_to_do(&r), "{r}");
                if agree(matches!(o.role, Role::Slave)) && !matches!(o.role, Role::Unknown(_)) {
                    // Every resource readable and the opposite of the role: the verb that
                    // moves storage to the pool role is named.
                    let verb = if o.role == Role::Master { "become-primary" } else { "become-secondary" };
                    prop_assert!(r.hint.contains(verb), "{r}");
                }
            }
        }
    }

    /// manual-mode-enable moves nothing: it records the known pool role, or (role unknown)
    /// what storage shows, and keeps a mode already on.
    #[test]
    fn manual_mode_enable_holds_what_the_host_does_now(h in host()) {
        let o = observe(&h);
        match check_manual_mode_enable(&o) {
            Ok(ManualModeChange::Unchanged) => prop_assert!(o.manual.is_on()),
            Ok(ManualModeChange::To(mode)) => {
                prop_assert!(!o.manual.is_on());
                match o.role {
                    Role::Master => prop_assert_eq!(mode, ManualMode::BecomePrimary),
                    Role::Slave => prop_assert_eq!(mode, ManualMode::BecomeSecondary),
                    Role::Unknown(_) => {
                        let want = if mode == ManualMode::BecomePrimary { VolumeRole::Primary } else { VolumeRole::Secondary };
                        prop_assert!((0..2).all(|i| seen(&o, i).is_some_and(|s| s.role == want)));
                    }
                }
            }
            Err(r) => {
                prop_assert!(!o.manual.is_on() && matches!(o.role, Role::Unknown(_)));
                prop_assert!(names_what_to_do(&r), "{r}");
            }
        }
    }

    /// split-brain resolve discards data only with both flags, only on this host's resources
    /// that are in split brain or StandAlone (at least one), and only when the VIP and the
    /// target are both seen not served here: never on the host initiators use, nor when that
    /// cannot be told.
    #[test]
    fn split_brain_resolve_runs_only_with_both_flags_on_a_host_that_does_not_serve(h in host(), discard in any::<bool>(), yes in any::<bool>()) {
        let cfg = config(&RESOURCES);
        let o = observe(&h);
        let broken: Vec<ResourceName> = (0..2)
            .filter(|i| o.volumes[*i].split_brain.is_some() || seen(&o, *i).is_some_and(|s| s.connection == Connection::StandAlone))
            .map(|i| o.volumes[i].name.clone())
            .collect();
        let not_serving = o.vip_here == Ok(false) && o.target.as_ref().is_ok_and(|t| !cfg.target.is_present_in(t));
        let allowed = discard && yes && !broken.is_empty() && not_serving;
        match check_split_brain_resolve(&cfg, &o, discard, yes) {
            Ok(victims) => {
                prop_assert!(allowed, "allowed on {:?}", o);
                prop_assert_eq!(victims, broken);
            }
            Err(r) => {
                prop_assert!(!allowed, "refused ({r}) on {:?}", o);
                prop_assert!(names_what_to_do(&r), "{r}");
            }
        }
    }

    /// split-brain reconnect (keeping this host's data) reconnects exactly the resources in
    /// split brain or StandAlone, and never refuses.
    #[test]
    fn split_brain_reconnect_takes_exactly_the_broken_resources(h in host()) {
        let o = observe(&h);
        let names = split_brain_reconnect_targets(&o);
        for (i, v) in o.volumes.iter().enumerate() {
            let broken = v.split_brain.is_some() || seen(&o, i).is_some_and(|s| s.connection == Connection::StandAlone);
            prop_assert_eq!(names.contains(&v.name), broken);
        }
    }

    /// become-secondary needs manual mode and nothing else: a release is always safe.
    #[test]
    fn become_secondary_needs_only_manual_mode(h in host()) {
        let o = observe(&h);
        match check_become_secondary(o.manual) {
            Ok(()) => prop_assert!(o.manual.is_on()),
            Err(r) => {
                prop_assert!(!o.manual.is_on());
                prop_assert!(names_what_to_do(&r), "{r}");
            }
        }
    }
}
