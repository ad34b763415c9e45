//! Property tests for the rules that keep one server under faults: a release always releases,
//! only current data is promoted, a stale master yields, the split-brain advice never
//! discards the side that took over, manual mode never guesses. Each was checked to fail on a
//! planner without its rule.

use super::fakes::{config, Call, Fakes, Faults};
use crate::history::ServingHistory;
use crate::observation::ManualMode;
use crate::operator::manual_mode_holding_now;
use crate::plan::{plan, Hold, Intent};
use crate::reconcile::Reconciler;
use crate::role::Role;
use crate::standing::{split_brain_advice, Keep, TIE_AFTER_MS};
use crate::time::{Moment, Timestamp};
use crate::vip::VipClaim;
use crate::volume::{DiskState, VolumeRole};
use proptest::prelude::*;
use std::time::{Duration, Instant};

const RESOURCES: [&str; 2] = ["r0", "r1"];

fn at(t0: Instant, secs: u64) -> Moment {
    Moment {
        instant: t0 + Duration::from_secs(secs),
        wall: Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000),
    }
}

fn volume_role() -> impl Strategy<Value = VolumeRole> {
    prop_oneof![
        Just(VolumeRole::Primary),
        Just(VolumeRole::Secondary),
        // A resource whose volumes are in mixed roles.
        Just(VolumeRole::Unknown),
    ]
}

fn disk() -> impl Strategy<Value = DiskState> {
    prop_oneof![
        3 => Just(DiskState::UpToDate),
        1 => Just(DiskState::Consistent),
        1 => Just(DiskState::Outdated),
        1 => Just(DiskState::Inconsistent),
        1 => Just(DiskState::Diskless),
    ]
}

/// A host in any state: roles (mixed included), disks, links, split brains, target, VIP.
#[derive(Debug, Clone)]
struct Host {
    roles: [VolumeRole; 2],
    disks: [DiskState; 2],
    disconnected: [bool; 2],
    split: [bool; 2],
    frozen: [bool; 2],
    target_served: bool,
    vip_here: bool,
    claim: bool,
}

fn host() -> impl Strategy<Value = Host> {
    (
        [volume_role(), volume_role()],
        [disk(), disk()],
        any::<[bool; 2]>(),
        prop::array::uniform2(prop::bool::weighted(0.3)),
        prop::array::uniform2(prop::bool::weighted(0.2)),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(roles, disks, disconnected, split, frozen, target_served, vip_here, claim)| Host {
                roles,
                disks,
                disconnected,
                split,
                // Only a Primary's I/O is frozen by fencing.
                frozen: [
                    frozen[0] && roles[0] == VolumeRole::Primary,
                    frozen[1] && roles[1] == VolumeRole::Primary,
                ],
                target_served,
                vip_here,
                claim,
            },
        )
}

fn claim() -> VipClaim {
    VipClaim {
        owner: Some("52:54:00:00:00:02".into()),
        how: "gratuitous ARP".into(),
    }
}

fn setup(h: &Host) -> Fakes {
    let f = Fakes::new(&RESOURCES);
    {
        let mut w = f.world.borrow_mut();
        for (i, name) in RESOURCES.iter().enumerate() {
            w.roles.insert((*name).into(), h.roles[i]);
            w.disks.insert((*name).into(), h.disks[i]);
            w.disconnected.insert((*name).into(), h.disconnected[i]);
            w.suspended.insert((*name).into(), h.frozen[i]);
            if h.split[i] {
                w.split_brain
                    .insert((*name).into(), super::fakes::split_brain());
            }
        }
        w.target_served = h.target_served;
        w.vip_here = h.vip_here;
        w.claim = h.claim.then(claim);
    }
    f
}

fn faults() -> impl Strategy<Value = Faults> {
    let p = || prop::bool::weighted(0.3);
    (p(), p(), p(), p()).prop_map(|(demote, stop, release, probe)| Faults {
        demote,
        stop,
        release,
        probe,
        ..Faults::default()
    })
}

fn released(f: &Fakes) -> bool {
    let w = f.world.borrow();
    !w.vip_here && !w.target_served && w.roles.values().all(|r| *r == VolumeRole::Secondary)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A host whose intent is release always releases, from any state (split brain, mixed
    /// roles, a claim, stale disks) and across failing steps: each pass runs every release
    /// step that is still safe after a failure, and once the faults stop the host is released.
    #[test]
    fn a_release_intent_always_releases(h in host(), manual in any::<bool>(), faulty in prop::collection::vec(faults(), 0..4)) {
        let cfg = config(&RESOURCES);
        let mut f = setup(&h);
        let (role, mode) = if manual { (Role::Master, ManualMode::BecomeSecondary) } else { (Role::Slave, ManualMode::Off) };
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let mut t = 0;
        for fault in faulty {
            f.world.borrow_mut().faults = fault.clone();
            f.world.borrow_mut().calls.clear();
            let before = f.world.borrow().roles.clone();
            let obs = f.world.borrow_mut().observe(role.clone(), mode, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            prop_assert_eq!(report.plan.intent.clone(), Intent::Release);
            let w = f.world.borrow();
            if !fault.release {
                // The VIP is gone, so every later step runs, whatever else failed.
                for (name, role) in &before {
                    if *role != VolumeRole::Secondary {
                        prop_assert!(w.calls.contains(&Call::Demote(name.clone())), "{} not demoted: {:?} {:?}", name, w.calls, report);
                    }
                }
            }
            // Past any retry delay, so every step is tried in every pass.
            t += crate::budget::MAX_RETRY_DELAY.as_secs();
        }
        f.world.borrow_mut().faults = Faults::default();
        // Once the faults stop, two passes each past the longest retry delay release
        // everything (the second resumes I/O frozen under a VIP the first released).
        for _ in 0..2 {
            t += crate::budget::MAX_RETRY_DELAY.as_secs();
            let obs = f.world.borrow_mut().observe(role.clone(), mode, &cfg.target);
            rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
        }
        prop_assert!(released(&f), "not released: {:?}", f.world.borrow());
        prop_assert!(f.world.borrow().violations.is_empty(), "{:?}", f.world.borrow().violations);
    }

    /// Only current data is promoted: UpToDate, or Inconsistent while connected to an
    /// UpToDate peer. Anything else holds with the operator's way out, alerted once.
    #[test]
    fn only_current_data_is_promoted(h in host(), passes in 1usize..6) {
        let cfg = config(&RESOURCES);
        let h = Host { split: [false, false], claim: false, ..h };
        let mut f = setup(&h);
        let mut rec = Reconciler::new(&cfg);
        let t0 = Instant::now();
        let mut stale_holds = 0;
        for i in 0..passes {
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, i as u64 * 5));
            stale_holds = report.plan.holds.iter().filter(|h| matches!(h, Hold::StaleData { .. })).count();
        }
        let w = f.world.borrow();
        prop_assert!(w.violations.is_empty(), "{:?}", w.violations);
        for (i, name) in RESOURCES.iter().enumerate() {
            let current = h.disks[i] == DiskState::UpToDate
                || (h.disks[i] == DiskState::Inconsistent && !h.disconnected[i]);
            if !current && h.roles[i] != VolumeRole::Primary {
                prop_assert!(w.roles[*name] != VolumeRole::Primary, "{} promoted from {:?}", name, h);
            }
        }
        if stale_holds > 0 {
            let alerts = w.alerts.iter().filter(|a| a.message.contains("may hold old data")).count();
            prop_assert_eq!(alerts, stale_holds, "one alert per held resource, not one per pass");
            prop_assert!(w.alerts.iter().any(|a| a.message.contains("become-primary --force")));
        }
    }

    /// A stale master yields: serving, having lost its peer while Primary, it hears another
    /// host claim the VIP. In that pass it stops serving (VIP, target, demotion), and while
    /// its role stays master it promotes, serves and assigns nothing again.
    #[test]
    fn a_stale_master_yields_and_stays_down(later in prop::collection::vec(any::<bool>(), 1..6), frozen in any::<bool>(), release_fails in any::<bool>()) {
        let cfg = config(&RESOURCES);
        let mut f = Fakes::new(&RESOURCES);
        let t0 = Instant::now();
        let mut rec = Reconciler::new(&cfg);
        {
            let mut w = f.world.borrow_mut();
            for name in RESOURCES { w.roles.insert(name.into(), VolumeRole::Primary); }
            w.target_served = true;
            w.vip_here = true;
        }
        // Serving and connected, then the link goes (the host was paused or cut off).
        let mut t = 0;
        for disconnected in [false, true] {
            for name in RESOURCES { f.world.borrow_mut().disconnected.insert(name.into(), disconnected); }
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            let mut h = f.world.borrow().history.clone();
            h.note(&obs, &report.plan, at(t0, t).wall);
            f.world.borrow_mut().history = h;
            t += 1;
        }
        prop_assert!(f.world.borrow().history.lost_peer_at.is_some());
        {
            // DRBD's fencing may have frozen I/O when the peer was lost.
            let mut w = f.world.borrow_mut();
            for name in RESOURCES { w.suspended.insert(name.into(), frozen); }
            w.faults.release = release_fails;
            w.calls.clear();
        }
        for (i, claimed) in std::iter::once(true).chain(later).enumerate() {
            f.world.borrow_mut().claim = claimed.then(claim);
            if i == 1 { f.world.borrow_mut().faults.release = false; }
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            prop_assert!(report.plan.holds.iter().any(|h| matches!(h, Hold::Yielded { tie: false, .. })), "{:?}", report.plan);
            let mut h = f.world.borrow().history.clone();
            h.note(&obs, &report.plan, at(t0, t).wall);
            f.world.borrow_mut().history = h;
            if !release_fails || i > 0 {
                // Serving stops in this pass; frozen I/O is resumed (and the device demoted)
                // once a pass has seen the VIP gone.
                let w = f.world.borrow();
                prop_assert!(!w.vip_here && !w.target_served, "{:?}", w);
            } else {
                // The VIP could not be released: the target still stops (two servers are
                // worse than none), but frozen I/O stays frozen.
                prop_assert!(!f.world.borrow().target_served);
            }
            t += 3;
        }
        for _ in 0..2 {
            t += crate::budget::MAX_RETRY_DELAY.as_secs();
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
        }
        prop_assert!(released(&f), "{:?}", f.world.borrow());
        let w = f.world.borrow();
        prop_assert!(!w.calls.iter().any(|c| matches!(c, Call::Promote(_) | Call::Serve | Call::Assign)), "{:?}", w.calls);
        prop_assert!(w.violations.is_empty(), "{:?}", w.violations);
        prop_assert_eq!(w.alerts.iter().filter(|a| a.message.contains("yielded")).count(), 1);
        let advice = split_brain_advice(&w.history, "r0", false);
        prop_assert_eq!(advice.keep, Keep::OtherHost);
    }

    /// The side that took over keeps serving against a claim and announces the VIP again; if
    /// the claims go on past the tie time, it stops too. It is never advised to discard its
    /// data unless it yielded in a tie (then nobody is).
    #[test]
    fn the_host_that_took_over_stays_and_is_never_advised_to_discard(claims in prop::collection::vec(any::<bool>(), 1..12), gap in 1u64..4) {
        let cfg = config(&RESOURCES);
        let mut f = Fakes::new(&RESOURCES);
        let t0 = Instant::now();
        let mut rec = Reconciler::new(&cfg);
        let mut t = 0;
        // Observed Secondary and connected first (so the record knows the resource and has
        // seen the peer since boot), then the peer is lost and it takes over.
        for pass in 0..4 {
            for name in RESOURCES { f.world.borrow_mut().disconnected.insert(name.into(), pass > 0); }
            let role = if pass == 0 { Role::Slave } else { Role::Master };
            let obs = f.world.borrow_mut().observe(role, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            let mut h = f.world.borrow().history.clone();
            h.note(&obs, &report.plan, at(t0, t).wall);
            f.world.borrow_mut().history = h;
            t += 1;
        }
        prop_assert!(f.world.borrow().history.took_over_at.is_some(), "{:?}", f.world.borrow().history);
        prop_assert!(f.world.borrow().vip_here);
        let mut first_claim = None;
        for claimed in claims {
            f.world.borrow_mut().claim = claimed.then(claim);
            let obs = f.world.borrow_mut().observe(Role::Master, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, t));
            if claimed && first_claim.is_none() { first_claim = Some(t); }
            let yielded = report.plan.holds.iter().any(|h| matches!(h, Hold::Yielded { .. }));
            let tie_due = first_claim.is_some_and(|c| (t - c) * 1000 >= TIE_AFTER_MS);
            if !tie_due {
                prop_assert!(!yielded, "yielded before the tie time: {:?}", report.plan);
            }
            if claimed && !yielded {
                prop_assert!(f.world.borrow().calls.contains(&Call::Announce));
            }
            let mut h = f.world.borrow().history.clone();
            h.note(&obs, &report.plan, at(t0, t).wall);
            f.world.borrow_mut().history = h;
            let w = f.world.borrow();
            let advice = split_brain_advice(&w.history, "r0", !released(&f));
            if !(w.history.yielded_at.is_some() && w.history.yielded_in_tie) {
                prop_assert_eq!(advice.keep, Keep::ThisHost, "{:?}", w.history);
            } else {
                prop_assert_eq!(advice.keep, Keep::Undecided);
            }
            t += gap;
        }
        prop_assert!(f.world.borrow().violations.is_empty(), "{:?}", f.world.borrow().violations);
    }

    /// Manual mode never picks a direction it cannot observe: with the role unknown, it holds
    /// what every resource shows, or refuses.
    #[test]
    fn manual_mode_never_guesses(h in host(), unreadable in any::<bool>()) {
        let cfg = config(&RESOURCES);
        let f = setup(&h);
        let mut obs = f.world.borrow_mut().observe(Role::Unknown("pool.conf missing".into()), ManualMode::Off, &cfg.target);
        if unreadable { obs.volumes[1].status = Err("netlink timeout".into()); }
        match manual_mode_holding_now(&obs) {
            Ok(ManualMode::BecomePrimary) => prop_assert!(!unreadable && h.roles.iter().all(|r| *r == VolumeRole::Primary)),
            Ok(ManualMode::BecomeSecondary) => prop_assert!(!unreadable && h.roles.iter().all(|r| *r == VolumeRole::Secondary) && !h.vip_here),
            Ok(ManualMode::Off) => prop_assert!(false, "manual mode must be on"),
            Err(refusal) => prop_assert!(unreadable || !h.roles.iter().all(|r| *r == h.roles[0]) || h.roles[0] == VolumeRole::Unknown || h.vip_here, "{refusal}"),
        }
    }
}

#[test]
fn a_maintenance_disconnect_keeps_serving() {
    // No split-brain evidence, the peer gone: the serving host keeps everything, restarts a
    // dead target and repairs its VIP.
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.disconnected.insert("r0".into(), true);
    }
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let mut rec = Reconciler::new(&cfg);
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(Instant::now(), 0));
    assert!(report.plan.holds.is_empty(), "{:?}", report.plan);
    let w = f.world.borrow();
    assert!(w.target_served && w.vip_here);
}

#[test]
fn a_claim_while_the_peer_follows_is_an_address_conflict_not_a_yield() {
    let cfg = config(&["r0"]);
    let f = Fakes::new(&["r0"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.target_served = true;
        w.vip_here = true;
        w.claim = Some(claim());
        w.history = ServingHistory {
            lost_peer_at: Some(Timestamp::from_unix_millis(1)),
            ..ServingHistory::default()
        };
    }
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert!(p.steps.is_empty(), "{p:?}");
    assert!(
        matches!(p.holds[..], [Hold::AddressConflict { .. }]),
        "{p:?}"
    );
}

#[test]
fn split_brain_advice_names_the_side_the_initiators_used() {
    let t = Timestamp::from_unix_millis;
    // The master whose peer was cut off kept the VIP and nobody claimed it: keep it.
    let kept_serving = ServingHistory {
        lost_peer_at: Some(t(10)),
        vip_held: true,
        ..ServingHistory::default()
    };
    assert_eq!(
        split_brain_advice(&kept_serving, "r0", true).keep,
        Keep::ThisHost
    );
    // ... but once another host claimed the VIP after the loss, the other side served.
    let claimed = ServingHistory {
        last_claim_at: Some(t(20)),
        ..kept_serving.clone()
    };
    assert_eq!(
        split_brain_advice(&claimed, "r0", true).keep,
        Keep::OtherHost
    );
    // The peer made Primary by hand while cut off, never holding the VIP: discard it.
    let forced_without_vip = ServingHistory {
        promoted_alone: true,
        promoted_alone_at: Some(t(15)),
        ..ServingHistory::default()
    };
    assert_eq!(
        split_brain_advice(&forced_without_vip, "r0", false).keep,
        Keep::OtherHost
    );
    // The side that took over keeps its data with high confidence.
    let took_over = ServingHistory {
        took_over_at: Some(t(15)),
        vip_held: true,
        ..ServingHistory::default()
    };
    let advice = split_brain_advice(&took_over, "r0", true);
    assert_eq!(
        (advice.keep, advice.confidence),
        (Keep::ThisHost, crate::standing::Confidence::High)
    );
    assert!(advice
        .recovery
        .contains("on the OTHER host run `iscsi-cfg split-brain resolve"));
}

/// A host that booted alone: DRBD calls its disk UpToDate (fencing `dont-care` attaches it so)
/// but it has not been connected to its peer since it booted, so the peer may have written on
/// after they parted. It holds with one alert until the operator forces; a host that saw its
/// peer in this boot and then lost it takes over as before.
#[test]
fn an_uptodate_disk_not_connected_since_boot_is_held() {
    let cfg = config(&RESOURCES);
    let t0 = Instant::now();
    let run = |seen_peer: bool| {
        let mut f = Fakes::new(&RESOURCES);
        let mut rec = Reconciler::new(&cfg);
        let mut last = None;
        for pass in 0..4u64 {
            let disconnected = !(seen_peer && pass == 0);
            for name in RESOURCES {
                f.world
                    .borrow_mut()
                    .disconnected
                    .insert(name.into(), disconnected);
            }
            let role = if pass == 0 { Role::Slave } else { Role::Master };
            let obs = f
                .world
                .borrow_mut()
                .observe(role, ManualMode::Off, &cfg.target);
            let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, pass * 5));
            let mut h = f.world.borrow().history.clone();
            h.note(&obs, &report.plan, at(t0, pass * 5).wall);
            f.world.borrow_mut().history = h;
            last = Some(report.plan);
        }
        (f, last.unwrap())
    };
    let (f, plan) = run(false);
    let w = f.world.borrow();
    assert!(
        !w.calls
            .iter()
            .any(|c| matches!(c, Call::Promote(_) | Call::Serve | Call::Assign)),
        "{:?}",
        w.calls
    );
    assert_eq!(
        plan.holds
            .iter()
            .filter(|h| matches!(
                h,
                Hold::StaleData {
                    peer_unseen: true,
                    ..
                }
            ))
            .count(),
        RESOURCES.len(),
        "{plan:?}"
    );
    assert!(plan.holds[0]
        .to_string()
        .contains("has not been connected to its peer since this host booted"));
    assert_eq!(
        w.alerts
            .iter()
            .filter(|a| a.message.contains("may hold old data"))
            .count(),
        RESOURCES.len(),
        "one alert per resource"
    );
    drop(w);
    let (f, plan) = run(true);
    assert!(plan.holds.is_empty(), "{plan:?}");
    assert!(f.world.borrow().vip_here);

    // A new boot forgets that the peer was seen; the same boot keeps it.
    let mut h = f.world.borrow().history.clone();
    assert!(h.start_boot(Some("boot-a")));
    assert!(h.resources.values().all(|r| !r.peer_seen_this_boot));
    assert!(!h.start_boot(Some("boot-a")));
}

#[test]
fn an_uptodate_disk_whose_peer_drbd_marked_outdated_is_promoted_after_a_lone_boot() {
    // The master that went on alone (its fencing outdated the peer) reboots alone: DRBD says
    // UpToDate/Outdated, so its data is the newest and it may serve without an operator.
    let cfg = config(&["r0"]);
    let f = Fakes::new(&["r0"]);
    f.world.borrow_mut().disconnected.insert("r0".into(), true);
    let mut obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let plan_unknown_peer = plan(&cfg, &obs);
    assert!(
        plan_unknown_peer.holds.iter().any(|h| matches!(
            h,
            Hold::StaleData {
                peer_unseen: true,
                ..
            }
        )),
        "{plan_unknown_peer:?}"
    );
    if let Ok(s) = obs.volumes[0].status.as_mut() {
        s.peer_disk = DiskState::Outdated;
    }
    let p = plan(&cfg, &obs);
    assert!(p.holds.is_empty(), "{p:?}");
    assert!(p.steps.contains(&crate::plan::Step::Promote(
        crate::resource::ResourceName::new("r0").unwrap()
    )));
}

#[test]
fn a_claim_heard_with_the_disconnect_itself_is_a_stale_master_not_a_tie() {
    // A paused master resumes: DRBD's disconnect and the new master's claim reach it in the
    // same wake-up, before its history could note the loss.
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.target_served = true;
        w.vip_here = true;
    }
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), at(t0, 0));
    let mut h = f.world.borrow().history.clone();
    h.note(&obs, &report.plan, at(t0, 0).wall);
    f.world.borrow_mut().history = h;
    {
        let mut w = f.world.borrow_mut();
        w.disconnected.insert("r0".into(), true);
        w.claim = Some(claim());
    }
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert!(
        matches!(p.holds[..], [Hold::Yielded { tie: false, .. }]),
        "{p:?}"
    );
}
