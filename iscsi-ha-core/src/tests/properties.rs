//! Property tests for every invariant in ARCHITECTURE.md, over random observations, random
//! port failures and random role sequences.

use super::fakes::{config, Fakes, Faults, World};
use crate::observation::ManualMode;
use crate::plan::{intent, plan, Intent, Step};
use crate::reconcile::Reconciler;
use crate::role::Role;
use crate::time::{Moment, Timestamp};
use crate::volume::VolumeRole;
use proptest::prelude::*;
use std::time::{Duration, Instant};

pub(crate) const RESOURCES: [&str; 2] = ["r0", "r1"];

#[derive(Debug, Clone)]
pub(crate) struct Start {
    roles: [bool; 2],
    peer_primary: [bool; 2],
    target_served: bool,
    vip_here: bool,
    vip_elsewhere: bool,
    unobservable_target: bool,
    unobservable_vip: bool,
}

pub(crate) fn start() -> impl Strategy<Value = Start> {
    (
        any::<[bool; 2]>(),
        any::<[bool; 2]>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(roles, peer_primary, target_served, vip_here, vip_elsewhere, ut, uv)| Start {
                roles,
                peer_primary,
                target_served,
                vip_here,
                vip_elsewhere,
                unobservable_target: ut,
                unobservable_vip: uv,
            },
        )
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        3 => Just(Role::Master),
        3 => Just(Role::Slave),
        1 => Just(Role::Unknown("pool.conf broken".into())),
    ]
}

fn manual() -> impl Strategy<Value = ManualMode> {
    prop_oneof![
        4 => Just(ManualMode::Off),
        1 => Just(ManualMode::BecomePrimary),
        1 => Just(ManualMode::BecomeSecondary),
    ]
}

fn faults() -> impl Strategy<Value = Faults> {
    let p = || prop::bool::weighted(0.2);
    (p(), p(), p(), p(), p(), p(), p()).prop_map(
        |(promote, demote, serve, stop, assign, release, probe)| Faults {
            promote,
            demote,
            serve,
            stop,
            assign,
            release,
            probe,
        },
    )
}

/// One pass: the role and manual mode then, faults, what the peer and the outside world did,
/// and how much time passed.
#[derive(Debug, Clone)]
pub(crate) struct Pass {
    pub(crate) role: Role,
    pub(crate) manual: ManualMode,
    faults: Faults,
    peer_primary: [bool; 2],
    target_died: bool,
    vip_removed: bool,
    vip_elsewhere: bool,
    pub(crate) seconds: u64,
}

impl Pass {
    /// What the peer and the outside world did before this pass: the faults armed, the peer's
    /// roles (only where this host is not Primary: DRBD refuses two), a dead target, a VIP
    /// removed, the VIP live elsewhere (only while not here).
    pub(crate) fn apply(&self, w: &mut World) {
        w.faults = self.faults.clone();
        w.vip_elsewhere = self.vip_elsewhere && !w.vip_here;
        for (i, name) in RESOURCES.iter().enumerate() {
            let here = w.roles.get(*name).copied();
            let peer = if self.peer_primary[i] && here != Some(VolumeRole::Primary) {
                VolumeRole::Primary
            } else {
                VolumeRole::Secondary
            };
            w.peer_roles.insert((*name).into(), peer);
        }
        if self.target_died {
            w.target_served = false;
        }
        if self.vip_removed {
            w.vip_here = false;
        }
    }
}

pub(crate) fn pass() -> impl Strategy<Value = Pass> {
    (
        role(),
        manual(),
        faults(),
        any::<[bool; 2]>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        0u64..30,
    )
        .prop_map(
            |(
                role,
                manual,
                faults,
                peer_primary,
                target_died,
                vip_removed,
                vip_elsewhere,
                seconds,
            )| Pass {
                role,
                manual,
                faults,
                peer_primary,
                target_died,
                vip_removed,
                vip_elsewhere,
                seconds,
            },
        )
}

pub(crate) fn setup(s: &Start) -> Fakes {
    let f = Fakes::new(&RESOURCES);
    {
        let mut w = f.world.borrow_mut();
        for (i, name) in RESOURCES.iter().enumerate() {
            let role = if s.roles[i] {
                VolumeRole::Primary
            } else {
                VolumeRole::Secondary
            };
            w.roles.insert((*name).into(), role);
            let peer = if s.peer_primary[i] {
                VolumeRole::Primary
            } else {
                VolumeRole::Secondary
            };
            w.peer_roles.insert((*name).into(), peer);
        }
        w.target_served = s.target_served;
        w.vip_here = s.vip_here;
        w.vip_elsewhere = s.vip_elsewhere;
        w.unobservable_target = s.unobservable_target;
        w.unobservable_vip = s.unobservable_vip;
    }
    f
}

fn at(t0: Instant, secs: u64) -> Moment {
    Moment {
        instant: t0 + Duration::from_secs(secs),
        wall: Timestamp::from_unix_millis(secs * 1000),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never start the target or assign the VIP unless every resource is Primary here; never
    /// assign the VIP while it is live elsewhere; never promote while the peer is observed
    /// Primary (and never force); on release, VIP before target before demotion. The fake
    /// checks each at the moment of the call, across random role sequences and failures.
    #[test]
    fn safety_invariants_hold_over_random_role_sequences(s in start(), passes in prop::collection::vec(pass(), 1..12)) {
        let cfg = config(&RESOURCES);
        let mut f = setup(&s);
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let mut t = 0;
        for p in &passes {
            t += p.seconds;
            p.apply(&mut f.world.borrow_mut());
            let obs = f.world.borrow_mut().observe(p.role.clone(), p.manual, &cfg.target);
            rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            let w = f.world.borrow();
            prop_assert!(w.violations.is_empty(), "{:?}", w.violations);
        }
    }

    /// `Unknown` role: hold, change nothing, alert once.
    #[test]
    fn unknown_role_changes_nothing_and_alerts_once(s in start(), gaps in prop::collection::vec(0u64..7200, 1..10)) {
        let cfg = config(&RESOURCES);
        let mut f = setup(&s);
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let mut t = 0;
        for gap in gaps {
            t += gap;
            let obs = f.world.borrow_mut().observe(Role::Unknown("pool.conf missing".into()), ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            prop_assert!(report.plan.steps.is_empty());
        }
        let w = f.world.borrow();
        prop_assert!(w.calls.is_empty(), "{:?}", w.calls);
        prop_assert_eq!(w.alerts.iter().filter(|a| a.message.contains("role unknown")).count(), 1);
    }

    /// Manual mode overrides the pool role until disabled.
    #[test]
    fn manual_mode_overrides_the_pool_role(s in start(), role in role()) {
        let cfg = config(&RESOURCES);
        let f = setup(&s);
        let mut obs = f.world.borrow_mut().observe(role.clone(), ManualMode::BecomePrimary, &cfg.target);
        prop_assert_eq!(intent(&obs), Intent::Serve);
        obs.manual = ManualMode::BecomeSecondary;
        prop_assert_eq!(intent(&obs), Intent::Release);
        obs.manual = ManualMode::Off;
        let expected = match role {
            Role::Master => Intent::Serve,
            Role::Slave => Intent::Release,
            Role::Unknown(r) => Intent::Hold(r),
        };
        prop_assert_eq!(intent(&obs), expected);
    }

    /// A plan applied to the state it produces is empty: a quiet cycle does no work.
    #[test]
    fn a_plan_applied_to_its_own_result_is_empty(s in start(), master in any::<bool>()) {
        let cfg = config(&RESOURCES);
        let s = Start { peer_primary: [false, false], vip_elsewhere: false, unobservable_target: false, unobservable_vip: false, ..s };
        let mut f = setup(&s);
        let role = if master { Role::Master } else { Role::Slave };
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let obs = f.world.borrow_mut().observe(role.clone(), ManualMode::Off, &cfg.target);
        rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, 0));
        let calls = f.world.borrow().calls.len();
        let again = f.world.borrow_mut().observe(role, ManualMode::Off, &cfg.target);
        prop_assert!(plan(&cfg, &again).is_empty(), "{:?}", plan(&cfg, &again));
        rec.reconcile(&cfg, &again, &mut f.ports(), at(t0, 1));
        prop_assert_eq!(f.world.borrow().calls.len(), calls);
    }

    /// Plans keep their order: promotions, then the target, then the VIP; or VIP, then target,
    /// then demotions. Nothing after a held promotion.
    #[test]
    fn plans_keep_their_order(s in start(), role in role(), manual in manual()) {
        let cfg = config(&RESOURCES);
        let f = setup(&s);
        let obs = f.world.borrow_mut().observe(role, manual, &cfg.target);
        let p = plan(&cfg, &obs);
        let rank = |step: &Step| match (&p.intent, step) {
            (Intent::Serve, Step::ProbeVip) => 0,
            (Intent::Serve, Step::Promote(_)) => 1,
            (Intent::Serve, Step::ServeTarget) => 2,
            (Intent::Serve, Step::AssignVip) => 3,
            (Intent::Release, Step::ReleaseVip) => 0,
            (Intent::Release, Step::StopTarget) => 1,
            (Intent::Release, Step::ResumeIo(_) | Step::Demote(_)) => 2,
            _ => 99,
        };
        let ranks: Vec<u8> = p.steps.iter().map(rank).collect();
        prop_assert!(ranks.iter().all(|r| *r < 99), "{:?}", p);
        prop_assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{:?}", p);
        if !p.holds.is_empty() && p.intent == Intent::Serve {
            prop_assert!(!p.steps.contains(&Step::AssignVip));
        }
    }

    /// While a resource is in split brain, nothing is promoted and the VIP is not taken,
    /// whatever the role sequence; a release intent still releases everything.
    #[test]
    fn split_brain_never_promotes_or_takes_the_vip_but_releases(s in start(), roles in prop::collection::vec((role(), manual()), 1..8)) {
        let cfg = config(&RESOURCES);
        let mut f = setup(&s);
        f.world.borrow_mut().split_brain.insert("r0".into(), super::fakes::split_brain());
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        for (i, (role, manual)) in roles.into_iter().enumerate() {
            let obs = f.world.borrow_mut().observe(role, manual, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, i as u64 * 5));
            if report.plan.intent == Intent::Release {
                let w = f.world.borrow();
                prop_assert!(!w.vip_here && !w.target_served && w.roles.values().all(|r| *r == VolumeRole::Secondary),
                    "a release during a split brain left {:?}", report);
            }
        }
        let w = f.world.borrow();
        let taken = w.calls.iter().any(|c| matches!(c, super::fakes::Call::Promote(_) | super::fakes::Call::Assign));
        prop_assert!(!taken, "{:?}", w.calls);
        prop_assert!(w.violations.is_empty(), "{:?}", w.violations);
    }

    /// A component that keeps failing is started at most max_starts times in its window, and
    /// its exhaustion is alerted once.
    #[test]
    fn restart_budgets_bound_starts(gaps in prop::collection::vec(2u64..6, 5..25)) {
        let cfg = config(&["r0"]);
        let mut f = Fakes::new(&["r0"]);
        f.world.borrow_mut().faults.serve = true;
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let mut t = 0;
        for gap in gaps {
            t += gap;
            if t >= 60 { break; }
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
        }
        let w = f.world.borrow();
        let serves = w.calls.iter().filter(|c| **c == super::fakes::Call::Serve).count();
        prop_assert!(serves <= 3);
        prop_assert!(w.alerts.iter().filter(|a| a.message.contains("keeps failing")).count() <= 1);
    }

    /// A flapping role does not bypass the budget: a target that keeps failing to start is
    /// started at most max_starts times within the window, however often the role flips.
    #[test]
    fn a_flapping_role_cannot_bypass_the_budget(flips in prop::collection::vec(any::<bool>(), 5..30)) {
        let cfg = config(&["r0"]);
        let mut f = Fakes::new(&["r0"]);
        f.world.borrow_mut().faults.serve = true;
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        for (i, master) in flips.into_iter().enumerate() {
            let role = if master { Role::Master } else { Role::Slave };
            let obs = f.world.borrow_mut().observe(role, ManualMode::Off, &cfg.target);
            rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, i as u64 * 2));
        }
        let w = f.world.borrow();
        let serves = w.calls.iter().filter(|c| **c == super::fakes::Call::Serve).count();
        prop_assert!(serves <= 3, "{} starts within a minute", serves);
    }

    /// Planned switches are never refused by the budget: every role change whose steps work
    /// serves or releases completely, however many there are within the window.
    #[test]
    fn planned_switches_are_never_refused(flips in prop::collection::vec(any::<bool>(), 5..40)) {
        let cfg = config(&["r0"]);
        let mut f = Fakes::new(&["r0"]);
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        for (i, master) in flips.into_iter().enumerate() {
            let role = if master { Role::Master } else { Role::Slave };
            let obs = f.world.borrow_mut().observe(role, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, i as u64));
            prop_assert!(report.actions.iter().all(|a| a.outcome.is_done()), "{:?}", report.actions);
            let w = f.world.borrow();
            prop_assert_eq!(w.target_served, master);
        }
    }
}
