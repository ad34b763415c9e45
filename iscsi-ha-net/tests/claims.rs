//! [`VipClaimWatch`] against real kernel networking: A watches the VIP, B claims it with our
//! own announcement code and with `arping` as an independent tool, C asks for it. Needs root.

// clippy.toml allows unwrap in #[test] functions; the shared helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{vip, Lab, VIP4, VIP6};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_net::frame::ArpPacket;
use iscsi_ha_net::frame::EtherType;
use iscsi_ha_net::packet::PacketSocket;
use iscsi_ha_net::rtnl::Rtnetlink;
use iscsi_ha_net::{
    ClaimKind, ClaimWatchError, FloatingIpConfig, MacAddr, NetFloatingIp, VipClaim, VipClaimWatch,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// One announcement per call and no refresh, so that each claim in a test is one frame.
fn one_shot() -> NetFloatingIp {
    NetFloatingIp::new(FloatingIpConfig {
        announce_count: 1,
        refresh_delay: None,
        ..FloatingIpConfig::default()
    })
    .expect("adapter")
}

fn readable(fd: &impl AsFd, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    poll(&mut fds, PollTimeout::from(millis)).unwrap() > 0
}

/// Waits for the watch to wake and drains it until it reports claims; panics after `timeout`.
fn claims_within(watch: &mut VipClaimWatch, timeout: Duration) -> Vec<VipClaim> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no claim reported within {timeout:?}");
        if readable(watch, left) {
            let claims = watch.drain().unwrap();
            if !claims.is_empty() {
                return claims;
            }
        }
    }
}

/// Nothing wakes the watch for `quiet` and a drain finds no claim.
fn assert_quiet(watch: &mut VipClaimWatch, quiet: Duration, what: &str) {
    let woke = readable(watch, quiet);
    let claims = watch.drain().unwrap();
    assert!(claims.is_empty(), "{what} was reported: {claims:?}");
    assert!(!woke, "{what} woke the watch");
}

fn parse_mac(text: &str) -> MacAddr {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(text.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap();
    }
    MacAddr(out)
}

#[test]
fn another_hosts_claims_of_the_vip_are_reported_and_nothing_else_is() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let address: IpAddr = VIP4.parse().unwrap();
    let b_mac = parse_mac(&lab.b.mac);
    let mut watch = lab.a.run(|| VipClaimWatch::open(&v).unwrap());
    assert_eq!(watch.address(), address);
    assert!(watch.our_macs().contains(&parse_mac(&lab.a.mac)));
    assert_quiet(&mut watch, Duration::from_millis(100), "an idle link");

    // A's own assignment and announcement.
    lab.a.run(|| one_shot().assign(&v).unwrap());
    assert_quiet(
        &mut watch,
        Duration::from_millis(300),
        "A's own announcement",
    );

    // C asks who has the VIP (and A answers it).
    assert!(
        lab.c
            .exec_ok("arping", &["-c", "1", "-w", "2", "-I", "eth0", VIP4]),
        "C got no answer from A"
    );
    assert_quiet(&mut watch, Duration::from_millis(200), "C's question");

    // B announces another address.
    lab.b
        .run(|| one_shot().announce(&vip("10.213.0.101", 24)).unwrap());
    assert_quiet(
        &mut watch,
        Duration::from_millis(200),
        "B's announcement of another address",
    );

    // B announces the VIP with our own code.
    lab.b.run(|| one_shot().announce(&v).unwrap());
    let claims = claims_within(&mut watch, Duration::from_secs(2));
    assert_eq!(
        claims,
        vec![VipClaim {
            address,
            claimant: b_mac,
            kind: ClaimKind::Announcement
        }]
    );
    assert_eq!(claims[0].claimant.to_string(), lab.b.mac);

    // And with arping, an independent implementation: B holds the VIP too (a stale master),
    // sends an unsolicited request (-U) and an unsolicited reply (-A).
    lab.b
        .ip(&["addr", "add", &format!("{VIP4}/24"), "dev", "eth0"]);
    for (flag, kind) in [
        ("-U", ClaimKind::Announcement),
        ("-A", ClaimKind::Gratuitous),
    ] {
        assert!(
            lab.b
                .exec_ok("arping", &[flag, "-c", "1", "-w", "0", "-I", "eth0", VIP4]),
            "arping {flag} failed in B"
        );
        let claims = claims_within(&mut watch, Duration::from_secs(3));
        assert!(
            claims
                .iter()
                .all(|c| c.claimant == b_mac && c.address == address),
            "{claims:?}"
        );
        assert!(
            claims.iter().any(|c| c.kind == kind),
            "arping {flag}: {claims:?}"
        );
    }
}

#[test]
fn another_hosts_advertisement_of_an_ipv6_vip_is_reported() {
    let lab = Lab::new();
    let v = vip(VIP6, 64);
    let address: IpAddr = VIP6.parse().unwrap();
    let mut watch = lab.a.run(|| VipClaimWatch::open(&v).unwrap());
    lab.a.run(|| one_shot().assign(&v).unwrap());
    assert_quiet(
        &mut watch,
        Duration::from_millis(300),
        "A's own advertisement",
    );
    // C talks to the VIP on A: solicitation from C, solicited advertisement from A.
    assert!(lab.c.exec_ok("ping", &["-6", "-c", "1", "-W", "2", VIP6]));
    assert_quiet(
        &mut watch,
        Duration::from_millis(200),
        "C resolving the VIP",
    );
    lab.b
        .run(|| one_shot().announce(&vip("fd00:213::101", 64)).unwrap());
    assert_quiet(
        &mut watch,
        Duration::from_millis(200),
        "B's advertisement of another address",
    );
    lab.b.run(|| one_shot().announce(&v).unwrap());
    assert_eq!(
        claims_within(&mut watch, Duration::from_secs(2)),
        vec![VipClaim {
            address,
            claimant: parse_mac(&lab.b.mac),
            kind: ClaimKind::NeighbourAdvert
        }]
    );
}

#[test]
fn a_watch_survives_its_link_going_down_and_says_when_the_interface_is_gone() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let mut watch = lab.a.run(|| VipClaimWatch::open(&v).unwrap());
    lab.a.ip(&["link", "set", "eth0", "down"]);
    // The socket reports the link going down; drain takes it as "nothing to report".
    assert!(
        readable(&watch, Duration::from_secs(1)),
        "down woke nothing"
    );
    assert!(watch.drain().unwrap().is_empty());
    lab.a.ip(&["link", "set", "eth0", "up"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.a.ip(&["link", "show", "eth0"]).contains("LOWER_UP") {
        assert!(Instant::now() < deadline, "eth0 never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
    lab.b.run(|| one_shot().announce(&v).unwrap());
    let claims = claims_within(&mut watch, Duration::from_secs(2));
    assert_eq!(claims[0].claimant.to_string(), lab.b.mac);

    // Deleted while up: the descriptor wakes and drain says reopen.
    lab.a.ip(&["link", "del", "eth0"]);
    assert!(
        readable(&watch, Duration::from_secs(1)),
        "deletion woke nothing"
    );
    assert!(
        matches!(watch.drain(), Err(ClaimWatchError::InterfaceGone(ref n)) if n == "eth0"),
        "drain after deletion"
    );
    // Opening on a missing interface is a typed error too.
    assert!(matches!(
        lab.a.run(|| VipClaimWatch::open(&v)),
        Err(ClaimWatchError::NoSuchInterface(ref n)) if n == "eth0"
    ));
}

#[test]
fn an_interface_deleted_while_down_is_found_by_the_next_drain() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let mut watch = lab.a.run(|| VipClaimWatch::open(&v).unwrap());
    lab.a.ip(&["link", "set", "eth0", "down"]);
    assert!(readable(&watch, Duration::from_secs(1)));
    assert!(watch.drain().unwrap().is_empty());
    // Deleting a down link wakes nothing; the daemon's periodic drain finds it.
    lab.a.ip(&["link", "del", "eth0"]);
    assert!(matches!(
        watch.drain(),
        Err(ClaimWatchError::InterfaceGone(_))
    ));
}

/// How long from B putting a gratuitous ARP on the wire to A's `drain` returning it, with A
/// sleeping in `poll` as the daemon does. Printed, not asserted beyond a generous bound.
#[test]
fn time_from_a_gratuitous_arp_to_the_drain_that_reports_it() {
    const RUNS: usize = 20;
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let mut watch = lab.a.run(|| VipClaimWatch::open(&v).unwrap());
    let (socket, frame) = lab.b.run(|| {
        let link = Rtnetlink::open()
            .unwrap()
            .link_by_name("eth0")
            .unwrap()
            .unwrap();
        let socket = PacketSocket::open_sender(link.index, EtherType::Arp).unwrap();
        let frame =
            ArpPacket::gratuitous(link.mac.unwrap(), VIP4.parse().unwrap()).to_broadcast_frame();
        (socket, frame)
    });
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        std::thread::scope(|scope| {
            let watcher = scope.spawn(|| {
                let claims = claims_within(&mut watch, Duration::from_secs(2));
                (Instant::now(), claims.len())
            });
            // Let the watcher reach poll(2) first.
            std::thread::sleep(Duration::from_millis(20));
            let sent = Instant::now();
            socket.send(&frame).unwrap();
            let (seen, count) = watcher.join().unwrap();
            assert_eq!(count, 1);
            samples.push(seen.saturating_duration_since(sent));
        });
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "B's GARP -> A's drain: n={RUNS} min {:.3} ms  median {:.3} ms  p90 {:.3} ms  max {:.3} ms",
        ms(samples[0]),
        ms(samples[RUNS / 2]),
        ms(samples[RUNS * 9 / 10]),
        ms(samples[RUNS - 1])
    );
    assert!(
        samples[RUNS / 2] < Duration::from_millis(100),
        "{samples:?}"
    );
}
