//! The adapter against real kernel networking: three throwaway hosts in network namespaces on
//! one bridge, with `ip`, `ping` and `tcpdump` as independent witnesses. Needs root.

// clippy.toml allows unwrap in #[test] functions; the shared helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{captured_at, epoch_now, vip, vip_on, Capture, Lab, VIP4, VIP6};
use iscsi_ha_core::ports::{FloatingIp, FloatingIpError};
use iscsi_ha_core::vip::{VipError, VipProbe, VipRefresh};
use iscsi_ha_net::{AddressEvent, AddressEvents, FloatingIpConfig, NetFloatingIp};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

fn adapter() -> NetFloatingIp {
    NetFloatingIp::new(FloatingIpConfig {
        // Keep the tests' own timing free of a second burst, except where a test asks for it.
        refresh_delay: None,
        ..FloatingIpConfig::default()
    })
    .expect("adapter")
}

#[test]
fn a_assigns_the_vip_with_our_label_and_c_reaches_it() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    lab.a.run(|| {
        let mut ip = adapter();
        assert!(!ip.is_assigned(&v).unwrap());
        ip.assign(&v).unwrap();
        assert!(ip.is_assigned(&v).unwrap());
        // Assigning again is success and changes nothing.
        ip.assign(&v).unwrap();
    });
    let addresses = lab.a.addresses();
    let ours: Vec<_> = addresses.iter().filter(|(a, _, _)| a == VIP4).collect();
    assert_eq!(ours.len(), 1, "{addresses:?}");
    assert_eq!(ours[0].1, 24);
    assert_eq!(ours[0].2.as_deref(), Some("eth0:iha"));
    assert!(
        lab.c.exec_ok("ping", &["-c", "1", "-W", "2", VIP4]),
        "C cannot ping the VIP"
    );
    assert!(!lab.b.run(|| adapter().is_assigned(&v).unwrap()));

    lab.a.run(|| {
        let mut ip = adapter();
        ip.release(&v).unwrap();
        // Releasing an address that is gone is success.
        ip.release(&v).unwrap();
        assert!(!ip.is_assigned(&v).unwrap());
    });
    assert!(!lab.a.has_address(VIP4));
    assert!(
        lab.a.has_address(&lab.a.ipv4),
        "the host's own address must stay"
    );
}

/// The whole failover for one address family: A holds the VIP and C talks to it; A releases,
/// B probes, assigns and announces; C's neighbour entry must move to B through B's
/// announcement alone, with no solicitation from C.
fn failover(address: &str, prefix: u8, ping: &[&str], capture_filter: &str) {
    let lab = Lab::new();
    let v = vip(address, prefix);
    lab.a.run(|| adapter().assign(&v).unwrap());
    let mut ping_args = ping.to_vec();
    ping_args.push(address);
    assert!(
        lab.c.exec_ok("ping", &ping_args),
        "C cannot ping the VIP on A"
    );
    assert_eq!(
        lab.c.neighbour_mac(address).as_deref(),
        Some(lab.a.mac.as_str())
    );

    let capture = Capture::start(&lab.c, capture_filter);
    lab.a.run(|| adapter().release(&v).unwrap());
    let probe = lab.b.run(|| {
        let mut ip = adapter();
        let probe = ip.probe(&v).unwrap();
        ip.assign(&v).unwrap();
        probe
    });
    assert_eq!(
        probe,
        VipProbe::Free,
        "nobody held the VIP after A released it"
    );
    lab.c
        .wait_neighbour(address, &lab.b.mac, Duration::from_secs(3));
    let lines = capture.finish();
    eprintln!(
        "C's capture during the {address} failover:\n{}",
        lines.join("\n")
    );

    // C must not have asked about the VIP: the move is the announcement's doing alone.
    let from_c: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(&format!(" {} > ", lab.c.mac)) && l.contains(address))
        .collect();
    assert!(
        from_c.is_empty(),
        "C solicited the VIP during the failover: {from_c:#?}"
    );
    let from_b: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(&format!("{} > ", lab.b.mac)))
        .collect();
    assert!(
        !from_b.is_empty(),
        "no announcement from B seen in C: {lines:#?}"
    );
    assert!(lab.b.has_address(address));
    assert!(!lab.a.has_address(address));
    let mut ping_args = ping.to_vec();
    ping_args.push(address);
    assert!(
        lab.c.exec_ok("ping", &ping_args),
        "C cannot ping the VIP on B"
    );
}

#[test]
fn failover_ipv4_moves_c_by_gratuitous_arp() {
    failover(VIP4, 24, &["-c", "1", "-W", "2"], "arp");
}

#[test]
fn failover_ipv6_moves_c_by_unsolicited_advertisement() {
    failover(
        VIP6,
        64,
        &["-6", "-c", "1", "-W", "2"],
        "icmp6 and (ip6[40] == 135 or ip6[40] == 136)",
    );
}

#[test]
fn gratuitous_arp_is_what_c_sees_on_the_wire() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let capture = Capture::start(&lab.c, "arp");
    lab.b.run(|| {
        let mut ip = adapter();
        ip.assign(&v).unwrap();
        // The rest of the burst (at 150 and 300 ms) follows in the background while the
        // adapter lives.
        std::thread::sleep(Duration::from_millis(700));
    });
    let lines = capture.finish();
    // tcpdump -e prints "<src> > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60:
    // Request who-has 10.213.0.100 (ff:ff:ff:ff:ff:ff) tell 10.213.0.100".
    let garps: Vec<_> = lines
        .iter()
        .filter(|l| {
            l.contains(&format!("{} > ff:ff:ff:ff:ff:ff", lab.b.mac))
                && l.contains(&format!("Request who-has {VIP4}"))
                && l.contains(&format!("tell {VIP4}"))
        })
        .collect();
    assert_eq!(
        garps.len(),
        3,
        "three gratuitous ARPs by default: {lines:#?}"
    );
    // arp_accept=1 lets C learn the VIP from the announcement alone.
    lab.c
        .wait_neighbour(VIP4, &lab.b.mac, Duration::from_secs(2));
}

#[test]
fn probe_reports_the_owner_while_a_holds_the_vip() {
    let lab = Lab::new();
    for (address, prefix) in [(VIP4, 24), (VIP6, 64)] {
        let v = vip(address, prefix);
        lab.a.run(|| adapter().assign(&v).unwrap());
        let probe = lab.b.run(|| adapter().probe(&v).unwrap());
        assert_eq!(
            probe,
            VipProbe::LiveElsewhere {
                owner: Some(lab.a.mac.clone())
            },
            "{address}"
        );
        // The probe changed nothing: A still holds it, B does not.
        assert!(lab.a.has_address(address));
        assert!(!lab.b.has_address(address));
    }
}

/// The daemon probes the VIP while it holds it, to find a second holder (a stale master that
/// was paused): its own MAC never counts, another host's answer does.
#[test]
fn a_host_holding_the_vip_finds_a_second_holder_by_probing() {
    let lab = Lab::new();
    let with_icmp = || {
        NetFloatingIp::new(FloatingIpConfig {
            icmp_check: true,
            refresh_delay: None,
            ..FloatingIpConfig::default()
        })
        .unwrap()
    };
    for (address, prefix) in [(VIP4, 24), (VIP6, 64)] {
        let v = vip(address, prefix);
        // Only A holds it: nobody else answers, whatever A's own stack would say.
        lab.a.run(|| adapter().assign(&v).unwrap());
        assert_eq!(
            lab.a.run(|| adapter().probe(&v).unwrap()),
            VipProbe::Free,
            "{address}: A alone"
        );
        assert_eq!(
            lab.a.run(|| with_icmp().probe(&v).unwrap()),
            VipProbe::Free,
            "{address}: A alone, with the ICMP check (A must not answer itself)"
        );
        // B holds it as well (the kernel of each answers probes for it).
        lab.b.run(|| adapter().assign(&v).unwrap());
        for probe in [
            lab.a.run(|| adapter().probe(&v).unwrap()),
            lab.a.run(|| with_icmp().probe(&v).unwrap()),
        ] {
            assert_eq!(
                probe,
                VipProbe::LiveElsewhere {
                    owner: Some(lab.b.mac.clone())
                },
                "{address}: A and B"
            );
        }
        // Probing changed nothing on either side.
        assert!(lab.a.has_address(address) && lab.b.has_address(address));
        lab.b.run(|| adapter().release(&v).unwrap());
        assert_eq!(
            lab.a.run(|| adapter().probe(&v).unwrap()),
            VipProbe::Free,
            "{address}: B gave it up"
        );
        lab.a.run(|| adapter().release(&v).unwrap());
    }
}

#[test]
fn icmp_echo_is_a_second_opinion_when_arp_probes_go_unanswered() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    lab.a.run(|| adapter().assign(&v).unwrap());
    // A answers no ARP at all (arp_ignore=8, as a filtering firewall would), but B has a
    // static neighbour entry for the VIP, so an echo still reaches A and comes back.
    lab.a.sysctl("net.ipv4.conf.all.arp_ignore", "8");
    lab.a.sysctl("net.ipv4.conf.eth0.arp_ignore", "8");
    lab.b.ip(&[
        "neigh",
        "replace",
        VIP4,
        "lladdr",
        &lab.a.mac,
        "nud",
        "permanent",
        "dev",
        "eth0",
    ]);
    let without = lab.b.run(|| adapter().probe(&v).unwrap());
    assert_eq!(
        without,
        VipProbe::Free,
        "the blind spot the ICMP check covers"
    );
    let with = lab.b.run(|| {
        NetFloatingIp::new(FloatingIpConfig {
            icmp_check: true,
            icmp_timeout: Duration::from_millis(1000),
            refresh_delay: None,
            ..FloatingIpConfig::default()
        })
        .unwrap()
        .probe(&v)
        .unwrap()
    });
    assert_eq!(
        with,
        VipProbe::LiveElsewhere {
            owner: Some(lab.a.mac.clone())
        }
    );
    // And with nobody holding the address the echo check also says free.
    lab.a.run(|| adapter().release(&v).unwrap());
    lab.b.ip(&["neigh", "del", VIP4, "dev", "eth0"]);
    let free = lab.b.run(|| {
        NetFloatingIp::new(FloatingIpConfig {
            icmp_check: true,
            refresh_delay: None,
            ..FloatingIpConfig::default()
        })
        .unwrap()
        .probe(&v)
        .unwrap()
    });
    assert_eq!(free, VipProbe::Free);
    // The IPv6 echo path: unanswered for a free address, no error.
    let free6 = lab.b.run(|| {
        NetFloatingIp::new(FloatingIpConfig {
            icmp_check: true,
            refresh_delay: None,
            ..FloatingIpConfig::default()
        })
        .unwrap()
        .probe(&vip(VIP6, 64))
        .unwrap()
    });
    assert_eq!(free6, VipProbe::Free);
}

fn wait_readable(events: &AddressEvents, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    poll(&mut fds, PollTimeout::from(millis)).unwrap() > 0
}

#[test]
fn removing_the_vip_behind_our_back_wakes_the_subscription() {
    let lab = Lab::new();
    for (address, prefix) in [(VIP4, 24u8), (VIP6, 64)] {
        let v = vip(address, prefix);
        let ip: IpAddr = address.parse().unwrap();
        let mut events = lab.a.run(|| AddressEvents::subscribe().unwrap());
        lab.a.run(|| adapter().assign(&v).unwrap());
        assert!(wait_readable(&events, Duration::from_secs(2)));
        let added = events.drain().unwrap();
        assert!(
            added.iter().any(
                |e| matches!(e, AddressEvent::Added(a) if a.address == ip && a.prefix == prefix)
            ),
            "{added:?}"
        );
        if ip.is_ipv4() {
            assert!(added.iter().any(
                |e| matches!(e, AddressEvent::Added(a) if a.label.as_deref() == Some("eth0:iha"))
            ));
        }
        assert!(
            events.drain().unwrap().is_empty(),
            "drain leaves nothing behind"
        );
        assert!(
            !wait_readable(&events, Duration::from_millis(100)),
            "quiet without changes"
        );

        let started = Instant::now();
        lab.a
            .ip(&["addr", "del", &format!("{address}/{prefix}"), "dev", "eth0"]);
        assert!(
            wait_readable(&events, Duration::from_secs(2)),
            "the descriptor did not wake"
        );
        let removed = events.drain().unwrap();
        assert!(
            removed
                .iter()
                .any(|e| matches!(e, AddressEvent::Removed(a) if a.address == ip)
                    && e.may_concern(ip)),
            "{removed:?}"
        );
        eprintln!(
            "{address}: removal noticed {:?} after `ip addr del` started",
            started.elapsed()
        );
    }
}

#[test]
fn refresh_burst_follows_and_release_cancels_it() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let config = FloatingIpConfig {
        announce_count: 1,
        refresh_delay: Some(Duration::from_millis(400)),
        ..FloatingIpConfig::default()
    };
    let capture = Capture::start(&lab.c, "arp");
    lab.b.run(|| {
        let mut ip = NetFloatingIp::new(config.clone()).unwrap();
        ip.assign(&v).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        // A second assignment schedules another refresh; releasing must stop it.
        ip.assign(&v).unwrap();
        ip.release(&v).unwrap();
        std::thread::sleep(Duration::from_millis(700));
    });
    let lines = capture.finish();
    let garps = lines
        .iter()
        .filter(|l| {
            l.contains(&format!("{} > ff:ff:ff:ff:ff:ff", lab.b.mac))
                && l.contains(&format!("tell {VIP4}"))
        })
        .count();
    assert_eq!(
        garps, 3,
        "first burst, its refresh, second burst, and no refresh after release: {lines:#?}"
    );
}

#[test]
fn release_stops_the_rest_of_the_burst() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let capture = Capture::start(&lab.c, "arp");
    let released_at = lab.b.run(|| {
        let mut ip = NetFloatingIp::new(FloatingIpConfig {
            announce_count: 5,
            announce_interval: Duration::from_millis(100),
            ..FloatingIpConfig::default()
        })
        .unwrap();
        ip.assign(&v).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        ip.release(&v).unwrap();
        let released_at = epoch_now();
        // Without the cancellation the whole burst would be out by now; the adapter lives on.
        std::thread::sleep(Duration::from_millis(600));
        released_at
    });
    let lines = capture.finish();
    let garps: Vec<_> = lines
        .iter()
        .filter(|l| {
            l.contains(&format!("{} > ff:ff:ff:ff:ff:ff", lab.b.mac))
                && l.contains(&format!("tell {VIP4}"))
        })
        .collect();
    assert!(
        (1..5).contains(&garps.len()),
        "the burst was cut short: {lines:#?}"
    );
    for garp in &garps {
        // Frames sent before release() returned may reach C's capture a moment later.
        assert!(
            captured_at(garp) < released_at + 0.05,
            "announced after the release: {garp}"
        );
    }
}

#[test]
fn an_ipv6_vip_that_failed_dad_here_is_a_conflict_not_an_assignment() {
    let lab = Lab::new();
    let v = vip(VIP6, 64);
    lab.a.run(|| adapter().assign(&v).unwrap());
    // Someone adds the VIP in B by hand, with duplicate-address detection: A defends it.
    lab.b.sysctl("net.ipv6.conf.eth0.accept_dad", "1");
    lab.b
        .ip(&["addr", "add", &format!("{VIP6}/64"), "dev", "eth0"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab
        .b
        .ip(&["addr", "show", "dev", "eth0"])
        .contains("dadfailed")
    {
        assert!(Instant::now() < deadline, "B's copy never failed DAD");
        std::thread::sleep(Duration::from_millis(50));
    }
    let capture = Capture::start(&lab.c, "icmp6 and ip6[40] == 136");
    let (result, refreshed) = lab.b.run(|| {
        let mut ip = adapter();
        (ip.assign(&v), ip.refresh(&v))
    });
    let lines = capture.finish();
    let conflict = FloatingIpError::AddressConflict {
        address: VIP6.into(),
        owner: None,
    };
    assert_eq!(result, Err(conflict.clone()));
    // The periodic refresh does not announce it either.
    assert_eq!(refreshed, Err(conflict));
    let from_b: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(&format!("{} > ", lab.b.mac)))
        .collect();
    assert!(
        from_b.is_empty(),
        "B announced an address it may not use: {from_b:#?}"
    );
}

#[test]
fn unknown_interface_is_a_typed_error_and_changes_nothing() {
    let lab = Lab::new();
    let v = vip_on(VIP4, 24, "nosuch0");
    let before = lab.a.addresses();
    lab.a.run(|| {
        let mut ip = adapter();
        let missing = FloatingIpError::NoSuchInterface("nosuch0".into());
        assert_eq!(ip.assign(&v), Err(missing.clone()));
        assert_eq!(ip.probe(&v), Err(missing.clone()));
        assert_eq!(ip.announce(&v), Err(missing));
        // An address cannot be on an interface that does not exist.
        assert_eq!(ip.is_assigned(&v), Ok(false));
        assert_eq!(ip.release(&v), Ok(()));
    });
    assert_eq!(lab.a.addresses(), before);
}

#[test]
fn a_vip_whose_interface_was_deleted_counts_as_released() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    lab.a.run(|| {
        // One adapter throughout, as in the daemon: its cached sockets and pending
        // announcements name the interface that goes away.
        let mut ip = NetFloatingIp::new(FloatingIpConfig::default()).unwrap();
        ip.assign(&v).unwrap();
        assert_eq!(ip.is_assigned(&v), Ok(true));
        lab.a.ip(&["link", "del", "eth0"]);
        assert_eq!(
            ip.release(&v),
            Ok(()),
            "release of a VIP on a deleted interface"
        );
        assert_eq!(ip.is_assigned(&v), Ok(false));
        assert_eq!(ip.release(&v), Ok(()), "and again");
        let missing = FloatingIpError::NoSuchInterface("eth0".into());
        assert_eq!(ip.assign(&v), Err(missing.clone()));
        assert_eq!(ip.probe(&v), Err(missing));
    });
    assert!(!lab.a.ip(&["-j", "addr"]).contains(VIP4));
}

#[test]
fn interface_down_is_a_typed_error_and_changes_nothing() {
    let lab = Lab::new();
    // A second link in A that stays down.
    lab.a.ip(&[
        "link", "add", "down0", "type", "veth", "peer", "name", "down1",
    ]);
    let v = vip_on(VIP4, 24, "down0");
    lab.a.run(|| {
        let mut ip = adapter();
        let down = FloatingIpError::InterfaceDown("down0".into());
        assert_eq!(ip.assign(&v), Err(down.clone()));
        assert_eq!(ip.probe(&v), Err(down.clone()));
        assert_eq!(ip.announce(&v), Err(down));
        assert_eq!(ip.is_assigned(&v), Ok(false));
    });
    assert!(!lab
        .a
        .ip(&["-j", "addr", "show", "dev", "down0"])
        .contains(VIP4));
}

#[test]
fn without_privileges_every_change_is_refused_and_nothing_changes() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    lab.a.run(|| {
        // Become `nobody` on this thread only: the raw syscall, unlike libc's setresuid, does
        // not propagate to the other threads, and a non-zero uid drops every capability.
        // SAFETY: setresuid takes three integers and touches no memory of ours.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let mut ip = adapter();
        assert!(
            matches!(ip.assign(&v), Err(FloatingIpError::PermissionDenied(_))),
            "assign"
        );
        assert!(
            matches!(ip.probe(&v), Err(FloatingIpError::PermissionDenied(_))),
            "probe"
        );
        assert!(
            matches!(ip.announce(&v), Err(FloatingIpError::PermissionDenied(_))),
            "announce"
        );
        // Reading is allowed to anyone.
        assert_eq!(ip.is_assigned(&v), Ok(false));
    });
    assert!(!lab.a.has_address(VIP4));
    // The same refusal for removing an address someone else put there.
    lab.a
        .ip(&["addr", "add", &format!("{VIP4}/24"), "dev", "eth0"]);
    let refused = lab.a.run(|| {
        // SAFETY: as above.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0);
        adapter().release(&v)
    });
    assert!(
        matches!(refused, Err(FloatingIpError::PermissionDenied(_))),
        "{refused:?}"
    );
    assert!(lab.a.has_address(VIP4));
}

#[test]
fn out_of_range_prefix_never_reaches_the_adapter() {
    // The core's Vip refuses it, so the adapter cannot be asked to add 10.213.0.100/33.
    let refused = iscsi_ha_core::vip::Vip::new(
        VIP4.parse().unwrap(),
        33,
        iscsi_ha_core::vip::InterfaceName::new("eth0").unwrap(),
    );
    assert!(matches!(refused, Err(VipError::Prefix { max: 32, .. })));
}

#[test]
fn a_refresh_sends_one_announcement_and_only_while_the_vip_is_here() {
    let lab = Lab::new();
    let v = vip(VIP4, 24);
    let capture = Capture::start(&lab.c, "arp");
    let (absent, sent, released) = lab.b.run(|| {
        let mut ip = adapter();
        let absent = ip.refresh(&v).unwrap();
        ip.assign(&v).unwrap();
        // Past the assignment's burst (3 × 150 ms), so the refresh's frame stands alone.
        std::thread::sleep(Duration::from_millis(600));
        let before = epoch_now();
        let sent = ip.refresh(&v).unwrap();
        let after = epoch_now();
        std::thread::sleep(Duration::from_millis(300));
        ip.release(&v).unwrap();
        let released = ip.refresh(&v).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        (absent, (sent, before, after), released)
    });
    let lines = capture.finish();
    assert_eq!(
        absent,
        VipRefresh::NotHere,
        "refreshed before the assignment"
    );
    assert_eq!(released, VipRefresh::NotHere, "refreshed after the release");
    let (sent, before, after) = sent;
    assert_eq!(sent, VipRefresh::Sent);
    let garps: Vec<_> = lines
        .iter()
        .filter(|l| {
            l.contains(&format!("{} > ff:ff:ff:ff:ff:ff", lab.b.mac))
                && l.contains(&format!("tell {VIP4}"))
        })
        .collect();
    let from_refresh: Vec<_> = garps
        .iter()
        .filter(|l| captured_at(l) >= before - 0.01)
        .collect();
    assert_eq!(
        from_refresh.len(),
        1,
        "one gratuitous ARP from the refresh, none once released: {lines:#?}"
    );
    assert!(
        captured_at(from_refresh[0]) < after + 0.05,
        "{from_refresh:?}"
    );
    assert_eq!(
        garps.len(),
        4,
        "3 for the assignment, 1 refresh: {lines:#?}"
    );
}

#[test]
fn a_refresh_on_a_missing_interface_sends_nothing_and_says_so() {
    let lab = Lab::new();
    let v = vip_on(VIP4, 24, "nosuch0");
    assert_eq!(
        lab.b.run(|| adapter().refresh(&v)).unwrap(),
        VipRefresh::NotHere
    );
}

#[test]
fn an_ipv6_refresh_sends_one_unsolicited_advertisement() {
    let lab = Lab::new();
    let v = vip(VIP6, 64);
    let config = FloatingIpConfig {
        announce_count: 1,
        refresh_delay: None,
        ..FloatingIpConfig::default()
    };
    let capture = Capture::start(&lab.c, "icmp6 and ip6[40] == 136");
    let sent = lab.b.run(|| {
        let mut ip = NetFloatingIp::new(config).unwrap();
        ip.assign(&v).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let sent = ip.refresh(&v).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        sent
    });
    let lines = capture.finish();
    assert_eq!(sent, VipRefresh::Sent);
    let adverts = lines
        .iter()
        .filter(|l| l.contains(&format!("{} > ", lab.b.mac)) && l.contains(VIP6))
        .count();
    assert_eq!(
        adverts, 2,
        "one for the assignment, one for the refresh: {lines:#?}"
    );
}
