//! The order of plans and the reconciler's behaviour in named situations.

use super::fakes::{config, Call, Fakes};
use crate::alert::Severity;
use crate::observation::ManualMode;
use crate::plan::{plan, Hold, Intent, Step};
use crate::reconcile::{Delivery, Outcome, Reconciler};
use crate::resource::ResourceName;
use crate::role::Role;
use crate::time::{Moment, Timestamp};
use crate::volume::VolumeRole;
use std::time::{Duration, Instant};

fn r(name: &str) -> ResourceName {
    ResourceName::new(name).unwrap()
}

fn moment(t0: Instant, secs: u64) -> Moment {
    Moment {
        instant: t0 + Duration::from_secs(secs),
        wall: Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000),
    }
}

#[test]
fn master_from_cold_promotes_all_then_serves_then_assigns() {
    let cfg = config(&["r0", "r1"]);
    let mut f = Fakes::new(&["r0", "r1"]);
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert_eq!(p.intent, Intent::Serve);
    assert_eq!(
        p.steps,
        vec![
            Step::ProbeVip,
            Step::Promote(r("r0")),
            Step::Promote(r("r1")),
            Step::ServeTarget,
            Step::AssignVip
        ]
    );
    let mut rec = Reconciler::new(&cfg);
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(Instant::now(), 0));
    assert!(report.actions.iter().all(|a| a.outcome == Outcome::Done));
    let w = f.world.borrow();
    assert_eq!(
        w.calls,
        vec![
            Call::Probe,
            Call::Promote("r0".into()),
            Call::Promote("r1".into()),
            Call::Serve,
            Call::Assign
        ],
        "one probe before promoting stands for the one before assigning in the same pass"
    );
    assert!(w.violations.is_empty(), "{:?}", w.violations);
}

#[test]
fn slave_releases_vip_then_stops_target_then_demotes() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.target_served = true;
        w.vip_here = true;
    }
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Slave, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert_eq!(
        p.steps,
        vec![Step::ReleaseVip, Step::StopTarget, Step::Demote(r("r0"))]
    );
    let mut rec = Reconciler::new(&cfg);
    rec.reconcile(&cfg, &obs, &mut f.ports(), moment(Instant::now(), 0));
    let w = f.world.borrow();
    assert_eq!(
        w.calls,
        vec![Call::Release, Call::Stop, Call::Demote("r0".into())]
    );
    assert!(w.violations.is_empty(), "{:?}", w.violations);
}

#[test]
fn peer_primary_holds_before_anything_starts() {
    let cfg = config(&["r0", "r1"]);
    let mut f = Fakes::new(&["r0", "r1"]);
    f.world
        .borrow_mut()
        .peer_roles
        .insert("r1".into(), VolumeRole::Primary);
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert_eq!(p.steps, vec![Step::ProbeVip, Step::Promote(r("r0"))]);
    assert_eq!(p.holds, vec![Hold::PeerPrimary { resource: r("r1") }]);
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 0));
    assert!(!f.world.borrow().calls.contains(&Call::Serve));
    // The middle of a planned switch: no alert yet, but a wake-up to raise one if it lasts.
    assert!(
        report
            .alerts
            .iter()
            .all(|a| !a.alert.message.contains("peer is Primary")),
        "{:?}",
        report.alerts
    );
    assert_eq!(
        report.wake_at,
        Some(t0 + crate::reconcile::PEER_PRIMARY_ALERT_AFTER)
    );
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let later = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 11));
    let held: Vec<_> = later
        .alerts
        .iter()
        .filter(|a| a.alert.message.contains("peer is Primary"))
        .collect();
    assert_eq!(held.len(), 1, "{:?}", later.alerts);
    assert_eq!(held[0].alert.severity, Severity::Warning);
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let again = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 30));
    assert!(
        again
            .alerts
            .iter()
            .all(|a| !a.alert.message.contains("peer is Primary")),
        "alerted once"
    );
}

#[test]
fn unknown_role_changes_nothing_and_alerts_once() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    for i in 0..5 {
        let obs = f.world.borrow_mut().observe(
            Role::Unknown("pool.conf missing".into()),
            ManualMode::Off,
            &cfg.target,
        );
        let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, i * 3600));
        assert!(report.plan.steps.is_empty());
    }
    let w = f.world.borrow();
    assert!(w.calls.is_empty());
    assert_eq!(w.alerts.len(), 1, "{:?}", w.alerts);
    assert_eq!(w.alerts[0].severity, Severity::Error);
}

#[test]
fn manual_mode_overrides_the_pool_role_and_mutes_alerts() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Slave, ManualMode::BecomePrimary, &cfg.target);
    assert_eq!(plan(&cfg, &obs).intent, Intent::Serve);
    let mut rec = Reconciler::new(&cfg);
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(Instant::now(), 0));
    assert!(f.world.borrow().vip_here);
    assert!(
        f.world.borrow().alerts.is_empty(),
        "manual mode mutes alerts"
    );
    assert!(!report.alerts.is_empty(), "but they are still recorded");
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::BecomeSecondary, &cfg.target);
    assert_eq!(plan(&cfg, &obs).intent, Intent::Release);
}

#[test]
fn vip_live_elsewhere_is_not_taken_and_nothing_is_promoted() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    f.world.borrow_mut().vip_elsewhere = true;
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let mut rec = Reconciler::new(&cfg);
    let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(Instant::now(), 0));
    let last = report.actions.last().unwrap();
    assert_eq!(last.step, Step::ProbeVip);
    assert!(matches!(
        last.outcome,
        Outcome::Failed {
            retry_can_help: true,
            ..
        }
    ));
    let w = f.world.borrow();
    assert_eq!(
        w.calls,
        vec![Call::Probe],
        "nothing promoted, served or assigned"
    );
    assert!(w
        .alerts
        .iter()
        .any(|a| a.message.contains("answers on another host")));
}

#[test]
fn a_failing_component_exhausts_its_budget_and_alerts_once() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    f.world.borrow_mut().faults.serve = true;
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    // Every 3 s for 50 s: past the 2 s retry delay each time, inside the 60 s window.
    for i in 0..17 {
        let obs = f
            .world
            .borrow_mut()
            .observe(Role::Master, ManualMode::Off, &cfg.target);
        rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, i * 3));
    }
    let w = f.world.borrow();
    let serves = w.calls.iter().filter(|c| **c == Call::Serve).count();
    assert_eq!(serves, 3, "max_starts = 3");
    let exhausted: Vec<_> = w
        .alerts
        .iter()
        .filter(|a| a.message.contains("keeps failing"))
        .collect();
    assert_eq!(exhausted.len(), 1);
    drop(w);
    assert_eq!(
        rec.exhausted(t0 + Duration::from_secs(50)),
        vec![crate::plan::Component::Target]
    );
    rec.reset_budgets();
    f.world.borrow_mut().faults.serve = false;
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 51));
    assert!(
        f.world.borrow().target_served,
        "an operator reset lets it run again"
    );
}

#[test]
fn a_failure_defers_the_next_attempt_and_asks_to_be_woken() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    f.world.borrow_mut().faults.promote = true;
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let first = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 0));
    assert_eq!(first.wake_at, Some(t0 + Duration::from_secs(2)));
    let second = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(t0, 1));
    let promote = second
        .actions
        .iter()
        .find(|a| a.step == Step::Promote(r("r0")))
        .unwrap();
    assert!(matches!(
        promote.outcome,
        Outcome::Deferred { retry_in_ms: 1000 }
    ));
    let w = f.world.borrow();
    let promotes = w
        .calls
        .iter()
        .filter(|c| matches!(c, Call::Promote(_)))
        .count();
    assert_eq!(promotes, 1);
}

#[test]
fn unobservable_target_on_master_is_served_and_on_slave_stopped() {
    let cfg = config(&["r0"]);
    let f = Fakes::new(&["r0"]);
    f.world.borrow_mut().unobservable_target = true;
    f.world
        .borrow_mut()
        .roles
        .insert("r0".into(), VolumeRole::Primary);
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    assert_eq!(
        plan(&cfg, &obs).steps,
        vec![Step::ServeTarget, Step::AssignVip]
    );
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Slave, ManualMode::Off, &cfg.target);
    assert_eq!(
        plan(&cfg, &obs).steps,
        vec![Step::StopTarget, Step::Demote(r("r0"))]
    );
}

#[test]
fn unobservable_vip_on_master_holds_before_assigning() {
    let cfg = config(&["r0"]);
    let f = Fakes::new(&["r0"]);
    f.world.borrow_mut().unobservable_vip = true;
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let p = plan(&cfg, &obs);
    assert_eq!(
        p.steps,
        vec![Step::ProbeVip, Step::Promote(r("r0")), Step::ServeTarget]
    );
    assert!(matches!(p.holds[0], Hold::Unobservable { .. }));
}

#[test]
fn split_brain_holds_promotion_and_the_vip_but_never_a_release() {
    let cfg = config(&["r0", "r1"]);
    let mut f = Fakes::new(&["r0", "r1"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.target_served = true;
        w.split_brain
            .insert("r1".into(), super::fakes::split_brain());
    }
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    let master = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    let report = rec.reconcile(&cfg, &master, &mut f.ports(), moment(t0, 0));
    assert!(report.plan.steps.is_empty(), "{:?}", report.plan);
    assert_eq!(
        report.plan.holds,
        vec![Hold::SplitBrain { resource: r("r1") }]
    );
    assert!(f.world.borrow().calls.is_empty());
    let slave = f
        .world
        .borrow_mut()
        .observe(Role::Slave, ManualMode::Off, &cfg.target);
    let report = rec.reconcile(&cfg, &slave, &mut f.ports(), moment(t0, 1));
    assert_eq!(
        report.plan.steps,
        vec![Step::StopTarget, Step::Demote(r("r0"))],
        "a split brain never holds a release"
    );
    let w = f.world.borrow();
    assert!(!w.target_served && w.roles["r0"] == VolumeRole::Secondary);
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    let errors: Vec<_> = w
        .alerts
        .iter()
        .filter(|a| a.message.contains("split brain"))
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", w.alerts);
    assert_eq!(errors[0].severity, Severity::Error);
}

#[test]
fn split_brain_on_the_serving_host_still_restarts_its_target() {
    let cfg = config(&["r0"]);
    let f = Fakes::new(&["r0"]);
    {
        let mut w = f.world.borrow_mut();
        w.roles.insert("r0".into(), VolumeRole::Primary);
        w.vip_here = true;
        w.split_brain
            .insert("r0".into(), super::fakes::split_brain());
    }
    let obs = f
        .world
        .borrow_mut()
        .observe(Role::Master, ManualMode::Off, &cfg.target);
    assert_eq!(plan(&cfg, &obs).steps, vec![Step::ServeTarget]);
}

#[test]
fn an_alert_is_recorded_as_sent_only_when_the_port_sends_it_on() {
    let cfg = config(&["r0"]);
    for (logged_only, expected) in [(false, Delivery::Sent), (true, Delivery::Logged)] {
        let mut f = Fakes::new(&["r0"]);
        f.world.borrow_mut().alerts_logged_only = logged_only;
        let mut rec = Reconciler::new(&cfg);
        let obs = f.world.borrow_mut().observe(
            Role::Unknown("pool.conf is missing".into()),
            ManualMode::Off,
            &cfg.target,
        );
        let report = rec.reconcile(&cfg, &obs, &mut f.ports(), moment(Instant::now(), 0));
        assert!(!report.alerts.is_empty(), "an unknown role alerts");
        for a in &report.alerts {
            assert_eq!(a.delivery, expected, "{a:?}");
        }
    }
}

#[test]
fn an_alert_raised_outside_a_pass_is_screened_muted_and_recorded_like_the_pass_alerts() {
    let cfg = config(&["r0"]);
    let mut f = Fakes::new(&["r0"]);
    let mut rec = Reconciler::new(&cfg);
    let t0 = Instant::now();
    let alert = crate::alert::Alert::new(Severity::Error, "PBD re-plug failed");
    let ports = f.ports();
    let sent = rec
        .raise(alert.clone(), ManualMode::Off, ports.alerts, moment(t0, 0))
        .unwrap();
    assert_eq!(sent.delivery, Delivery::Sent);
    assert!(
        rec.raise(alert.clone(), ManualMode::Off, ports.alerts, moment(t0, 1))
            .is_none(),
        "a repeat inside the screen window is screened out"
    );
    let other = crate::alert::Alert::new(Severity::Error, "another re-plug failure");
    let muted = rec
        .raise(
            other,
            ManualMode::BecomePrimary,
            ports.alerts,
            moment(t0, 2),
        )
        .unwrap();
    assert_eq!(muted.delivery, Delivery::Muted);
    assert_eq!(f.world.borrow().alerts, vec![alert]);
    assert_eq!(rec.recent_alerts().count(), 2, "both recorded for status");
}
