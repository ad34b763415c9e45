//! `[vip] refresh_interval`, captured with `tcpdump` on the far end of the daemon's veth.
//!
//! This kernel has no DRBD, so the real daemon never becomes a settled server here: the first
//! test shows the daemon holding the VIP as master without DRBD seen Primary, and sending no
//! refresh however short the interval. The second drives the daemon's own refresher
//! ([`iscsi_ha_core::engine::VipRefresher`]) with the real adapter and the observation a
//! settled server makes (values, as the DRBD adapter would report them), the way the loop
//! does after each wake-up: repeated gratuitous ARPs one interval apart while serving, none
//! with "0s", none within 30 s of another host's claim, none once the address is gone, none
//! when found late (the loop or the host was stopped meanwhile), none while another host
//! answers the probe before it (its answer handed back as a claim). The
//! loop's waking for it is the timer the daemon arms at [`VipRefresher::due`]; the whole
//! path with DRBD runs in the lab. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use iscsi_ha_core::config::{Config, Source};
use iscsi_ha_core::engine::{Hooks, VipRefresher};
use iscsi_ha_core::history::ServingHistory;
use iscsi_ha_core::observation::{ManualMode, Observation, VolumeObservation};
use iscsi_ha_core::plan::plan;
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_core::role::Role;
use iscsi_ha_core::target::{ObservedLun, ObservedTarget, TargetStatus};
use iscsi_ha_core::time::{Moment, Timestamp};
use iscsi_ha_core::volume::{Connection, DiskState, VolumeRole, VolumeStatus};
use iscsi_ha_net::NetFloatingIp;
use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::{config, require_root, sh, Daemon, Netns, VIP};

/// `tcpdump` on `d0p`, the veth end facing the daemon's `d0`: what an initiator there sees.
struct Capture {
    guard: support::Guard,
    out: tempfile::NamedTempFile,
}

impl Capture {
    fn start(ns: &Netns) -> Capture {
        Self::start_in(&ns.name)
    }

    fn start_in(ns: &str) -> Capture {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "tcpdump"])
            .args([
                "-l",
                "-n",
                "-e",
                "-tt",
                "--immediate-mode",
                "-i",
                "d0p",
                "arp",
            ])
            .stdout(Stdio::from(out.reopen().unwrap()))
            .stderr(Stdio::from(err.reopen().unwrap()))
            .spawn()
            .expect("tcpdump (scripts/packages.d/net.txt)");
        let guard = support::Guard(Some(child));
        support::wait(Duration::from_secs(5), "tcpdump listening", || {
            std::fs::read_to_string(err.path())
                .unwrap_or_default()
                .contains("listening on")
        });
        Capture { guard, out }
    }

    /// Stops the capture; the capture times of the gratuitous ARPs for the VIP.
    fn finish(self) -> Vec<f64> {
        std::thread::sleep(Duration::from_millis(200));
        drop(self.guard);
        let text = std::fs::read_to_string(self.out.path()).unwrap();
        eprintln!("capture on d0p:\n{text}");
        text.lines()
            .filter(|l| l.contains("ff:ff:ff:ff:ff:ff") && l.contains(&format!("tell {VIP}")))
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    }
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_master_that_cannot_show_drbd_primary_never_refreshes_the_vip_it_holds() {
    require_root();
    let ns = Netns::new("vr");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "").replace(
        "interface = \"d0\"\n",
        "interface = \"d0\"\nrefresh_interval = \"1s\"\n",
    );
    assert!(text.contains("refresh_interval = \"1s\""));
    let out = sh(&format!("ip -n {} addr add {VIP}/24 dev d0", ns.name));
    assert!(out.status.success());
    let capture = Capture::start(&ns);
    let d = Daemon::start_in(&ns, dir, "master\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "the master role held", |d| {
        let s = d.status();
        s["host_role"] == "master" && s["vip"]["here"] == true
    });
    std::thread::sleep(Duration::from_millis(3500));
    let garps = capture.finish();
    assert!(
        garps.is_empty(),
        "refreshed a VIP while DRBD cannot be seen Primary: {garps:?}\n{}",
        d.log()
    );
    assert!(!d.log().contains("VIP refreshed"), "{}", d.log());
    // It still holds the address: a hold changes nothing, and announces nothing either.
    assert_eq!(d.status()["vip"]["here"], true);
}

fn settled_config(interval: &str) -> Config {
    let dir = std::path::Path::new("/nonexistent");
    let text = config(dir, "").replace(
        "interface = \"d0\"\n",
        &format!("interface = \"d0\"\nrefresh_interval = \"{interval}\"\n"),
    );
    Config::parse(
        Source {
            text: &text,
            origin: "test",
        },
        None,
    )
    .unwrap()
}

/// What a settled server observes: the pool master, r0 Primary with its peer connected and
/// Secondary, the target exported as configured, the VIP here, no claim.
fn settled_observation(config: &Config) -> Observation {
    let spec = &config.target;
    let r0 = config.resources[0].clone();
    Observation {
        role: Role::Master,
        manual: ManualMode::Off,
        volumes: vec![VolumeObservation {
            name: r0.clone(),
            status: Ok(VolumeStatus {
                name: r0,
                role: VolumeRole::Primary,
                peer_role: VolumeRole::Secondary,
                connection: Connection::Connected,
                connection_detail: "Connected".into(),
                disk: DiskState::UpToDate,
                peer_disk: DiskState::UpToDate,
                sync: None,
                suspended: false,
            }),
            split_brain: None,
        }],
        target: Ok(TargetStatus {
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
                        ..ObservedLun::default()
                    })
                    .collect(),
                allow_all: spec.access.allow_all,
                ..ObservedTarget::default()
            }],
        }),
        vip_here: Ok(true),
        vip_claim: None,
        history: ServingHistory::default(),
    }
}

/// The engine's hooks as the refresher needs them: the real clocks, nothing told.
struct RealClock;

impl Hooks for RealClock {
    fn now(&self) -> Moment {
        moment()
    }
}

fn moment() -> Moment {
    Moment {
        instant: Instant::now(),
        wall: Timestamp::from_system_time(SystemTime::now()),
    }
}

/// Runs the refresher as the loop does for `length`: after each wake-up (here: whenever the
/// refresher's own deadline comes, or every 100 ms), with the same observation.
fn run_for(
    refresher: &mut VipRefresher,
    config: &Config,
    observation: &Observation,
    vip: &mut NetFloatingIp,
    length: Duration,
) {
    let end = Instant::now() + length;
    let p = plan(config, observation);
    while Instant::now() < end {
        refresher.after_wake(config, observation, &p, vip, &mut RealClock);
        let next = refresher
            .due()
            .unwrap_or(end)
            .min(Instant::now() + Duration::from_millis(100))
            .min(end);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Runs `f` on a thread inside the namespace (the adapter's sockets live where they are made).
fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn a_settled_server_refreshes_every_interval_and_stays_silent_when_it_should() {
    require_root();
    let ns = Netns::new("vs");
    let on = settled_config("1s");
    let off = settled_config("0s");
    let serving = settled_observation(&on);
    assert!(plan(&on, &serving).is_empty() && plan(&on, &serving).holds.is_empty());

    // The adapter's sockets open in the caller's namespace: everything runs in there.
    let (garps, assigned_at, quiet) = in_ns(&ns, || {
        // Serving with "1s": the assignment's burst, then one refresh a second.
        let capture = Capture::start(&ns);
        let mut vip = NetFloatingIp::new(iscsi_ha_bin::wiring::net_config(&on)).unwrap();
        vip.assign(&on.vip).unwrap();
        let assigned_at = epoch_now();
        std::thread::sleep(Duration::from_millis(700));
        run_for(
            &mut VipRefresher::default(),
            &on,
            &serving,
            &mut vip,
            Duration::from_millis(3300),
        );
        let garps = capture.finish();
        let quiet = stay_silent(&ns, &on, &off, &serving, &mut vip);
        (garps, assigned_at, quiet)
    });
    let refreshes: Vec<f64> = garps
        .iter()
        .copied()
        .filter(|t| *t > assigned_at + 0.6)
        .collect();
    assert_eq!(
        garps.len() - refreshes.len(),
        3,
        "the assignment's burst: {garps:?}"
    );
    assert!(
        (3..=5).contains(&refreshes.len()),
        "one refresh a second for 3.3 s: {refreshes:?}"
    );
    for pair in refreshes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (0.9..1.3).contains(&gap),
            "refreshes {gap:.3} s apart: {refreshes:?}"
        );
    }

    assert!(
        quiet.is_empty(),
        "announced with \"0s\", after a claim or without the address: {quiet:?}"
    );
    let out = Command::new("ip")
        .args(["-n", &ns.name, "-br", "addr", "show", "dev", "d0"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(VIP));
}

/// The same settled server with "0s", then with a claim 5 s ago, then with the address gone
/// behind the daemon's back (the observation still says here): what the capture saw.
fn stay_silent(
    ns: &Netns,
    on: &Config,
    off: &Config,
    serving: &Observation,
    vip: &mut NetFloatingIp,
) -> Vec<f64> {
    let capture = Capture::start(ns);
    let mut claimed = serving.clone();
    claimed.history.last_claim_at = Some(Timestamp::from_system_time(
        SystemTime::now() - Duration::from_secs(5),
    ));
    run_for(
        &mut VipRefresher::default(),
        off,
        serving,
        vip,
        Duration::from_millis(1500),
    );
    let mut after_claim = VipRefresher::default();
    run_for(
        &mut after_claim,
        on,
        &claimed,
        vip,
        Duration::from_millis(1500),
    );
    assert!(
        after_claim
            .due()
            .is_some_and(|at| at > Instant::now() + Duration::from_secs(20)),
        "the next refresh waits for 30 s of quiet after the claim"
    );
    vip.release(&on.vip).unwrap();
    run_for(
        &mut VipRefresher::default(),
        on,
        serving,
        vip,
        Duration::from_millis(1500),
    );
    capture.finish()
}

#[test]
fn a_refresh_found_late_is_skipped_and_the_next_comes_an_interval_later() {
    require_root();
    let ns = Netns::new("vl");
    let on = settled_config("1s");
    let serving = settled_observation(&on);
    let p = plan(&on, &serving);
    let (garps, sent_at, resumed_at) = in_ns(&ns, || {
        let mut vip = NetFloatingIp::new(iscsi_ha_bin::wiring::net_config(&on)).unwrap();
        vip.assign(&on.vip).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let capture = Capture::start(&ns);
        let mut refresher = VipRefresher::default();
        refresher.after_wake(&on, &serving, &p, &mut vip, &mut RealClock);
        let sent_at = epoch_now();
        // The loop stopped for 2.5 s: the refresh due after 1 s is found 1.5 s late.
        std::thread::sleep(Duration::from_millis(2500));
        let resumed_at = epoch_now();
        refresher.after_wake(&on, &serving, &p, &mut vip, &mut RealClock);
        let next = refresher.due().unwrap();
        assert!(
            next > Instant::now() + Duration::from_millis(900),
            "{next:?}"
        );
        run_for(
            &mut refresher,
            &on,
            &serving,
            &mut vip,
            Duration::from_millis(1300),
        );
        (capture.finish(), sent_at, resumed_at)
    });
    assert_eq!(
        garps.len(),
        2,
        "the first refresh and the one after the skip: {garps:?}"
    );
    assert!(garps[0] <= sent_at + 0.05, "{garps:?}");
    assert!(
        garps[1] >= resumed_at + 0.95,
        "nothing at the resumption, the next an interval later: {garps:?} (resumed at {resumed_at})"
    );
}

#[test]
fn no_refresh_while_another_host_answers_for_the_vip_and_its_answer_is_a_claim() {
    require_root();
    let ns = Netns::new("vp");
    // The veth's far end in a namespace of its own, holding the VIP too: a host that took
    // over while this one was away.
    let other = format!("{}o", ns.name);
    let out = sh(&format!(
        "set -e; ip netns add {other}; ip -n {ns} link set d0p netns {other}; \
         ip -n {other} link set lo up; ip -n {other} addr add {VIP}/24 dev d0p; \
         ip -n {other} link set d0p up",
        ns = ns.name
    ));
    let _other = Cleanup(other.clone());
    assert!(out.status.success(), "{out:?}");
    let on = settled_config("1s");
    let serving = settled_observation(&on);
    let p = plan(&on, &serving);
    let (garps, claims) = in_ns(&ns, || {
        let mut vip = NetFloatingIp::new(iscsi_ha_bin::wiring::net_config(&on)).unwrap();
        vip.assign(&on.vip).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let capture = Capture::start_in(&other);
        let mut refresher = VipRefresher::default();
        let mut claims = Vec::new();
        let end = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < end {
            claims.extend(refresher.after_wake(&on, &serving, &p, &mut vip, &mut RealClock));
            std::thread::sleep(Duration::from_millis(100));
        }
        (capture.finish(), claims)
    });
    assert!(
        garps.is_empty(),
        "announced over another host's VIP: {garps:?}"
    );
    assert!(
        (2..=4).contains(&claims.len()),
        "one probe per interval, each answered: {claims:?}"
    );
    assert!(claims.iter().all(|c| c.owner.is_some()), "{claims:?}");
}

/// Deletes a namespace on drop.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.0));
    }
}
