//! The periodic VIP announcement (`[vip] refresh_interval`) is made only by a settled server
//! that nothing calls into question, and only once the interval has passed. The property was
//! checked to fail with each condition of `refresh_due` removed in turn (the intent, VIP and
//! dispute checks overlap with the settled-plan check, so each was removed together with it).

use super::fakes::{config, split_brain, Fakes};
use crate::config::Config;
use crate::history::ServingHistory;
use crate::observation::{ManualMode, Observation};
use crate::plan::{plan, Intent, Plan, Step};
use crate::refresh::{refresh_due, Refresh, Withheld, QUIET_AFTER_CLAIM_MS};
use crate::role::Role;
use crate::time::{Moment, Timestamp};
use crate::vip::VipClaim;
use crate::volume::VolumeRole;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const RESOURCES: [&str; 2] = ["r0", "r1"];
const MINUTE: Option<Duration> = Some(Duration::from_secs(60));
const T0_WALL: u64 = 1_800_000_000_000;

fn at(t0: Instant, secs: u64) -> Moment {
    Moment {
        instant: t0 + Duration::from_secs(secs),
        wall: Timestamp::from_unix_millis(T0_WALL + secs * 1000),
    }
}

fn claim() -> VipClaim {
    VipClaim {
        owner: Some("52:54:00:00:00:02".into()),
        how: "gratuitous ARP".into(),
    }
}

/// A host serving with everything in place and its peer connected and Secondary.
fn serving() -> (Config, Fakes) {
    let cfg = config(&RESOURCES);
    let f = Fakes::new(&RESOURCES);
    {
        let mut w = f.world.borrow_mut();
        for name in RESOURCES {
            w.roles.insert(name.into(), VolumeRole::Primary);
        }
        w.target_served = true;
        w.vip_here = true;
    }
    (cfg, f)
}

fn look(cfg: &Config, f: &Fakes, role: Role, manual: ManualMode) -> (Observation, Plan) {
    let obs = f.world.borrow_mut().observe(role, manual, &cfg.target);
    let p = plan(cfg, &obs);
    (obs, p)
}

fn decide(cfg: &Config, f: &Fakes, last: Option<Instant>, now: Moment) -> Refresh {
    let (obs, p) = look(cfg, f, Role::Master, ManualMode::Off);
    refresh_due(&obs, &p, MINUTE, last, now)
}

#[test]
fn a_settled_server_refreshes_once_the_interval_has_passed() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    let (obs, p) = look(&cfg, &f, Role::Master, ManualMode::Off);
    assert!(p.steps.is_empty() && p.holds.is_empty(), "{p:?}");
    // Not announced by this daemon yet (a restart while serving): due at once.
    assert_eq!(refresh_due(&obs, &p, MINUTE, None, at(t0, 0)), Refresh::Due);
    // Announced at t0: due at t0 + 60 s, not a moment before.
    assert_eq!(
        refresh_due(&obs, &p, MINUTE, Some(t0), at(t0, 59)),
        Refresh::At(t0 + Duration::from_secs(60))
    );
    assert_eq!(
        refresh_due(&obs, &p, MINUTE, Some(t0), at(t0, 60)),
        Refresh::Due
    );
    assert_eq!(
        refresh_due(&obs, &p, MINUTE, Some(t0), at(t0, 600)),
        Refresh::Due
    );
    // In manual mode "become primary" too.
    let (obs, p) = look(&cfg, &f, Role::Slave, ManualMode::BecomePrimary);
    assert_eq!(refresh_due(&obs, &p, MINUTE, None, at(t0, 0)), Refresh::Due);
}

#[test]
fn zero_seconds_turns_the_refresh_off() {
    let (cfg, f) = serving();
    let (obs, p) = look(&cfg, &f, Role::Master, ManualMode::Off);
    let t0 = Instant::now();
    assert_eq!(
        refresh_due(&obs, &p, None, None, at(t0, 0)),
        Refresh::Withheld(Withheld::Off)
    );
    let text = include_str!("../../../fixtures/config/good/minimal.toml");
    assert!(!text.contains("refresh_interval"));
    let c = Config::parse(
        crate::config::Source {
            text,
            origin: "minimal.toml",
        },
        None,
    )
    .unwrap();
    assert_eq!(
        c.file.vip.refresh_interval.get(),
        Some(Duration::from_secs(60)),
        "on by default, every minute"
    );
    let off = text.replace("[vip]\n", "[vip]\nrefresh_interval = \"0s\"\n");
    let c = Config::parse(
        crate::config::Source {
            text: &off,
            origin: "off.toml",
        },
        None,
    )
    .unwrap();
    assert_eq!(c.file.vip.refresh_interval.get(), None);
}

#[test]
fn a_host_that_does_not_serve_never_refreshes() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    for (role, manual) in [
        (Role::Slave, ManualMode::Off),
        (
            Role::Unknown("pool.conf unreadable".into()),
            ManualMode::Off,
        ),
        (Role::Master, ManualMode::BecomeSecondary),
    ] {
        let (obs, p) = look(&cfg, &f, role.clone(), manual);
        assert_eq!(
            refresh_due(&obs, &p, MINUTE, None, at(t0, 0)),
            Refresh::Withheld(Withheld::NotServing),
            "{role:?} {manual:?}"
        );
    }
}

#[test]
fn no_refresh_without_the_vip_seen_here() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    f.world.borrow_mut().vip_here = false;
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 0)),
        Refresh::Withheld(Withheld::VipNotHere)
    );
    {
        let mut w = f.world.borrow_mut();
        w.vip_here = true;
        w.unobservable_vip = true;
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 0)),
        Refresh::Withheld(Withheld::VipNotHere)
    );
}

#[test]
fn no_refresh_while_the_plan_has_work_or_holds_but_a_reconnect_is_no_obstacle() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    // The target died: serving it again comes first.
    f.world.borrow_mut().target_served = false;
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 0)),
        Refresh::Withheld(Withheld::Unsettled)
    );
    // The host took over from an unreachable peer; its links are StandAlone and due to be
    // connected again: only reconnects are planned, and the server refreshes.
    {
        let mut w = f.world.borrow_mut();
        w.target_served = true;
        for name in RESOURCES {
            w.disconnected.insert(name.into(), true);
            w.standalone.insert(name.into(), true);
        }
        let mut h = ServingHistory {
            took_over_at: Some(Timestamp::from_unix_millis(T0_WALL)),
            ..ServingHistory::default()
        };
        for name in RESOURCES {
            let r = h.resources.entry(name.into()).or_default();
            r.local_primary = true;
            r.parted_by_loss = true;
        }
        w.history = h;
    }
    let (obs, p) = look(&cfg, &f, Role::Master, ManualMode::Off);
    assert!(
        !p.steps.is_empty() && p.steps.iter().all(|s| matches!(s, Step::Reconnect(_))),
        "{p:?}"
    );
    assert_eq!(refresh_due(&obs, &p, MINUTE, None, at(t0, 0)), Refresh::Due);
    // The peer is Primary too (holds): no refresh.
    {
        let mut w = f.world.borrow_mut();
        w.disconnected.clear();
        w.standalone.clear();
        w.roles.insert("r1".into(), VolumeRole::Secondary);
        w.peer_roles.insert("r1".into(), VolumeRole::Primary);
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 0)),
        Refresh::Withheld(Withheld::Unsettled)
    );
}

#[test]
fn a_claim_holds_the_refresh_for_30_seconds() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    // A claim in this very observation, while the peer follows: an address conflict.
    f.world.borrow_mut().claim = Some(claim());
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 100)),
        Refresh::Withheld(Withheld::Disputed)
    );
    // The claim is in the record only: quiet until 30 s after it.
    {
        let mut w = f.world.borrow_mut();
        w.claim = None;
        w.history.last_claim_at = Some(Timestamp::from_unix_millis(T0_WALL + 90_000));
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 100)),
        Refresh::At(t0 + Duration::from_secs(120))
    );
    assert_eq!(decide(&cfg, &f, None, at(t0, 120)), Refresh::Due);
    // Whichever runs out later decides: the interval here.
    assert_eq!(
        decide(&cfg, &f, Some(t0 + Duration::from_secs(100)), at(t0, 120)),
        Refresh::At(t0 + Duration::from_secs(160))
    );
    // A wall clock that went back: the claim looks recent, which only delays the refresh.
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 10)),
        Refresh::At(t0 + Duration::from_secs(10) + Duration::from_millis(QUIET_AFTER_CLAIM_MS))
    );
}

#[test]
fn a_host_that_took_over_stays_silent_while_contested() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    {
        let mut w = f.world.borrow_mut();
        for name in RESOURCES {
            w.disconnected.insert(name.into(), true);
        }
        w.history.took_over_at = Some(Timestamp::from_unix_millis(T0_WALL));
        w.claim = Some(claim());
    }
    let (obs, p) = look(&cfg, &f, Role::Master, ManualMode::Off);
    // The contest has an announcement of its own; the refresh keeps out of it.
    assert!(p.steps.contains(&Step::AnnounceVip), "{p:?}");
    assert_eq!(
        refresh_due(&obs, &p, MINUTE, None, at(t0, 5)),
        Refresh::Withheld(Withheld::Disputed)
    );
}

#[test]
fn a_host_that_may_be_a_stale_master_never_refreshes() {
    let (cfg, f) = serving();
    let t0 = Instant::now();
    // Lost its peer while Primary and has not taken over since: maybe the one cut off.
    {
        let mut w = f.world.borrow_mut();
        for name in RESOURCES {
            w.disconnected.insert(name.into(), true);
        }
        w.history.lost_peer_at = Some(Timestamp::from_unix_millis(T0_WALL));
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 600)),
        Refresh::Withheld(Withheld::MayBeStale)
    );
    // Took over before that loss: still suspect.
    f.world.borrow_mut().history.took_over_at = Some(Timestamp::from_unix_millis(T0_WALL - 1));
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 600)),
        Refresh::Withheld(Withheld::MayBeStale)
    );
    // A split brain on record, peer connected again.
    {
        let mut w = f.world.borrow_mut();
        w.disconnected.clear();
        w.history = ServingHistory::default();
        w.split_brain.insert("r0".into(), split_brain());
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 600)),
        Refresh::Withheld(Withheld::MayBeStale)
    );
    // A host that yielded serves nothing, whatever its intent.
    {
        let mut w = f.world.borrow_mut();
        w.split_brain.clear();
        w.history.yielded_at = Some(Timestamp::from_unix_millis(T0_WALL));
    }
    assert_eq!(
        decide(&cfg, &f, None, at(t0, 600)),
        Refresh::Withheld(Withheld::Disputed)
    );
}

/// A random host: what it observes, what it remembers, and when it last announced.
#[derive(Debug, Clone)]
struct Case {
    role: Role,
    manual: ManualMode,
    primary: [bool; 2],
    peer_primary: [bool; 2],
    disconnected: [bool; 2],
    standalone: [bool; 2],
    parted_by_loss: [bool; 2],
    split_brain: bool,
    target_served: bool,
    vip_here: bool,
    vip_unobservable: bool,
    claim_now: bool,
    /// Seconds before now of the last claim on record (`None`: never).
    last_claim_ago: Option<u64>,
    lost_peer_ago: Option<u64>,
    took_over_ago: Option<u64>,
    yielded: bool,
    interval: Option<u64>,
    last_announced_ago: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    let role = prop_oneof![
        4 => Just(Role::Master),
        1 => Just(Role::Slave),
        1 => Just(Role::Unknown("unreadable".into())),
    ];
    let manual = prop_oneof![
        4 => Just(ManualMode::Off),
        1 => Just(ManualMode::BecomePrimary),
        1 => Just(ManualMode::BecomeSecondary),
    ];
    let mostly = |p: f64| prop::bool::weighted(p);
    let ago = || prop::option::weighted(0.4, 0u64..120);
    (
        (role, manual, any::<[bool; 2]>(), any::<[bool; 2]>()),
        (
            any::<[bool; 2]>(),
            any::<[bool; 2]>(),
            any::<[bool; 2]>(),
            mostly(0.1),
        ),
        (mostly(0.8), mostly(0.8), mostly(0.05), mostly(0.15)),
        (ago(), ago(), ago(), mostly(0.1)),
        (
            prop::option::weighted(0.9, 1u64..90),
            prop::option::weighted(0.8, 0u64..120),
        ),
    )
        .prop_map(
            |(
                (role, manual, primary, peer_primary),
                (disconnected, standalone, parted_by_loss, split_brain),
                (target_served, vip_here, vip_unobservable, claim_now),
                (last_claim_ago, lost_peer_ago, took_over_ago, yielded),
                (interval, last_announced_ago),
            )| Case {
                role,
                manual,
                primary,
                peer_primary,
                disconnected,
                standalone,
                parted_by_loss,
                split_brain,
                target_served,
                vip_here,
                vip_unobservable,
                claim_now,
                last_claim_ago,
                lost_peer_ago,
                took_over_ago,
                yielded,
                interval,
                last_announced_ago,
            },
        )
}

const NOW_SECS: u64 = 1_000;

fn wall_ago(secs: u64) -> Timestamp {
    Timestamp::from_unix_millis(T0_WALL + (NOW_SECS - secs) * 1000)
}

fn build(c: &Case, cfg: &Config) -> Observation {
    let f = Fakes::new(&RESOURCES);
    let mut w = f.world.borrow_mut();
    for (i, name) in RESOURCES.iter().enumerate() {
        let role = |p: bool| {
            if p {
                VolumeRole::Primary
            } else {
                VolumeRole::Secondary
            }
        };
        w.roles.insert((*name).into(), role(c.primary[i]));
        w.peer_roles.insert((*name).into(), role(c.peer_primary[i]));
        w.disconnected.insert((*name).into(), c.disconnected[i]);
        w.standalone.insert((*name).into(), c.standalone[i]);
        let r = w.history.resources.entry((*name).into()).or_default();
        r.local_primary = c.primary[i];
        r.parted_by_loss = c.parted_by_loss[i];
        r.peer_seen_this_boot = true;
    }
    if c.split_brain {
        w.split_brain.insert("r0".into(), split_brain());
    }
    w.target_served = c.target_served;
    w.vip_here = c.vip_here;
    w.unobservable_vip = c.vip_unobservable;
    w.claim = c.claim_now.then(claim);
    w.history.last_claim_at = c.last_claim_ago.map(wall_ago);
    w.history.lost_peer_at = c.lost_peer_ago.map(wall_ago);
    w.history.took_over_at = c.took_over_ago.map(wall_ago);
    if c.yielded {
        w.history.yielded_at = Some(wall_ago(1));
    }
    w.observe(c.role.clone(), c.manual, &cfg.target)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// "Refresh now" only when every safety condition holds, each checked here from the
    /// observation itself rather than through the rule's own helpers; and a later time is
    /// always later.
    #[test]
    fn the_rule_never_refreshes_when_a_safety_condition_fails(c in case()) {
        let cfg = config(&RESOURCES);
        let obs = build(&c, &cfg);
        let p = plan(&cfg, &obs);
        let t0 = Instant::now();
        let now = at(t0, NOW_SECS);
        let last = c.last_announced_ago.map(|s| now.instant - Duration::from_secs(s));
        let interval = c.interval.map(Duration::from_secs);
        let answer = refresh_due(&obs, &p, interval, last, now);
        if let Refresh::At(when) = answer {
            prop_assert!(when > now.instant);
        }
        if answer == Refresh::Due {
            let h = &obs.history;
            let serve = match c.manual {
                ManualMode::BecomePrimary => true,
                ManualMode::BecomeSecondary => false,
                ManualMode::Off => c.role == Role::Master,
            };
            prop_assert!(interval.is_some(), "off");
            prop_assert!(serve && p.intent == Intent::Serve, "not serving");
            prop_assert_eq!(&obs.vip_here, &Ok(true), "VIP not here");
            prop_assert!(p.holds.is_empty(), "holds: {:?}", p.holds);
            prop_assert!(
                p.steps.iter().all(|s| matches!(s, Step::Reconnect(_))),
                "steps: {:?}", p.steps
            );
            prop_assert!(obs.vip_claim.is_none(), "a claim now");
            prop_assert!(
                c.last_claim_ago.is_none_or(|s| s * 1000 >= QUIET_AFTER_CLAIM_MS),
                "a claim {:?} s ago", c.last_claim_ago
            );
            prop_assert!(h.yielded_at.is_none(), "yielded");
            prop_assert!(!c.split_brain, "split brain");
            // Lost its peer while Primary and did not take over after that: maybe stale.
            prop_assert!(
                match (c.lost_peer_ago, c.took_over_ago) {
                    (None, _) => true,
                    (Some(lost), Some(took)) => took < lost,
                    (Some(_), None) => false,
                },
                "may be a stale master: {:?}", h
            );
            prop_assert!(
                c.primary.iter().all(|p| *p),
                "a resource not Primary here"
            );
            if let (Some(i), Some(ago)) = (c.interval, c.last_announced_ago) {
                prop_assert!(ago >= i, "announced {} s ago, interval {} s", ago, i);
            }
        }
    }
}
