//! Failover benchmark: how long after `assign()` the initiator's neighbour entry for the VIP
//! points at the new owner, and what `assign()` and `release()` cost, compared with the same
//! move done by `ip addr add` + `arping -U` processes. Needs root (it builds the same
//! namespace hosts as the tests). Run: `cargo bench -p iscsi-ha-net --bench failover`.

// clippy.toml allows unwrap in tests; this benchmark is test code too.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{vip, Host, Lab, VIP4, VIP6};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_core::vip::Vip;
use iscsi_ha_net::{FloatingIpConfig, NetFloatingIp};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

const RUNS: usize = 30;
/// `RTNLGRP_NEIGH` from `linux/rtnetlink.h`.
const RTNLGRP_NEIGH: u32 = 3;

/// A neighbour-table listener in C: notices the moment the kernel rewrites the entry.
struct NeighbourWatch {
    socket: Socket,
}

impl NeighbourWatch {
    fn open() -> NeighbourWatch {
        let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
        socket.bind_auto().unwrap();
        socket.add_membership(RTNLGRP_NEIGH).unwrap();
        socket.set_non_blocking(true).unwrap();
        NeighbourWatch { socket }
    }

    fn drain(&mut self) {
        let mut buffer = vec![0u8; 65536];
        while self.socket.recv(&mut &mut buffer[..], 0).is_ok() {}
    }

    /// The instant the entry for `address` was seen with `mac`, or `None` after `timeout`.
    fn wait_for(&mut self, address: IpAddr, mac: [u8; 6], timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok(len) = self.socket.recv(&mut &mut buffer[..], 0) else {
                // Sleep in poll(2) until the kernel queues a notification.
                let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(50u16));
                continue;
            };
            let seen = Instant::now();
            let mut bytes = &buffer[..len];
            while bytes.len() >= 16 {
                let length = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                if length < 16 || length > bytes.len() {
                    break;
                }
                if let Ok(message) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length])
                {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) =
                        message.payload
                    {
                        let dst = n.attributes.iter().find_map(|a| match a {
                            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                                Some(IpAddr::V4(*v4))
                            }
                            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                                Some(IpAddr::V6(*v6))
                            }
                            _ => None,
                        });
                        let lladdr = n.attributes.iter().find_map(|a| match a {
                            NeighbourAttribute::LinkLayerAddress(l) => Some(l.clone()),
                            _ => None,
                        });
                        if dst == Some(address) && lladdr.as_deref() == Some(&mac[..]) {
                            return Some(seen);
                        }
                    }
                }
                bytes = &bytes[(length + 3) & !3..];
            }
        }
        None
    }
}

fn mac_bytes(host: &Host) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(host.mac.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap();
    }
    out
}

#[derive(Default)]
struct Series {
    name: String,
    samples: Vec<Duration>,
}

impl Series {
    fn new(name: &str) -> Series {
        Series {
            name: name.to_owned(),
            samples: Vec::new(),
        }
    }

    fn print(&self) {
        let mut s = self.samples.clone();
        s.sort();
        if s.is_empty() {
            println!("{:<58} no samples", self.name);
            return;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |percent: usize| s[(s.len() - 1) * percent / 100];
        println!(
            "{:<58} n={:<3} min {:>8.3} ms  median {:>8.3} ms  p90 {:>8.3} ms  max {:>8.3} ms",
            self.name,
            s.len(),
            ms(s[0]),
            ms(at(50)),
            ms(at(90)),
            ms(s[s.len() - 1])
        );
    }
}

/// One failover per run, alternating A→B and B→A, with the adapter.
fn native(lab: &Lab, v: &Vip, config: &FloatingIpConfig, label: &str) -> Vec<Series> {
    let mut flip = Series::new(&format!("{label}: assign() start -> C's entry moved"));
    let mut assign = Series::new(&format!("{label}: assign() (to the first announcement)"));
    let mut release = Series::new(&format!("{label}: release()"));
    let mut watch = lab.c.run(NeighbourWatch::open);
    lab.a.run(|| {
        NetFloatingIp::new(config.clone())
            .unwrap()
            .assign(v)
            .unwrap()
    });
    let ping: &[&str] = if v.address().is_ipv4() {
        &["-c", "1", "-W", "2"]
    } else {
        &["-6", "-c", "1", "-W", "2"]
    };
    let mut args = ping.to_vec();
    let address = v.address().to_string();
    args.push(&address);
    assert!(lab.c.exec_ok("ping", &args), "C cannot reach the VIP");
    let (mut from, mut to) = (&lab.a, &lab.b);
    for _ in 0..RUNS {
        watch.drain();
        release.samples.push(from.run(|| {
            let mut ip = NetFloatingIp::new(config.clone()).unwrap();
            let t = Instant::now();
            ip.release(v).unwrap();
            t.elapsed()
        }));
        let target = mac_bytes(to);
        let (started, took, moved) = std::thread::scope(|scope| {
            let watcher =
                scope.spawn(|| watch.wait_for(v.address(), target, Duration::from_secs(5)));
            let (started, took) = to.run(|| {
                let mut ip = NetFloatingIp::new(config.clone()).unwrap();
                let t = Instant::now();
                ip.assign(v).unwrap();
                (t, t.elapsed())
            });
            (started, took, watcher.join().unwrap())
        });
        assign.samples.push(took);
        let moved = moved.expect("C's neighbour entry never moved");
        flip.samples.push(moved.saturating_duration_since(started));
        std::mem::swap(&mut from, &mut to);
    }
    from.run(|| {
        NetFloatingIp::new(config.clone())
            .unwrap()
            .release(v)
            .unwrap()
    });
    vec![flip, assign, release]
}

fn timed(program: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
    t.elapsed()
}

/// The same failovers with `ip addr add/del` and `arping -U -c 1` processes.
fn processes(lab: &Lab) -> Vec<Series> {
    let mut flip = Series::new("ip+arping: `ip addr add` start -> C's entry moved");
    let mut add = Series::new("ip+arping: `ip addr add` process");
    let mut arping = Series::new("ip+arping: `arping -U -c 1` process");
    let mut del = Series::new("ip+arping: `ip addr del` process");
    let mut watch = lab.c.run(NeighbourWatch::open);
    let cidr = format!("{VIP4}/24");
    let add_args = |h: &Host| -> Vec<String> {
        [
            "-n", &h.ns, "addr", "add", &cidr, "dev", "eth0", "label", "eth0:iha",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    timed(
        "ip",
        &add_args(&lab.a)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(lab.c.exec_ok("ping", &["-c", "1", "-W", "2", VIP4]));
    let (mut from, mut to) = (&lab.a, &lab.b);
    for _ in 0..RUNS {
        watch.drain();
        del.samples.push(timed(
            "ip",
            &["-n", &from.ns, "addr", "del", &cidr, "dev", "eth0"],
        ));
        let target = mac_bytes(to);
        let (started, add_took, arping_took, moved) = std::thread::scope(|scope| {
            let watcher = scope
                .spawn(|| watch.wait_for(VIP4.parse().unwrap(), target, Duration::from_secs(5)));
            let started = Instant::now();
            let add_took = timed(
                "ip",
                &add_args(to).iter().map(String::as_str).collect::<Vec<_>>(),
            );
            let arping_took = timed(
                "ip",
                &[
                    "netns", "exec", &to.ns, "arping", "-q", "-U", "-c", "1", "-I", "eth0", VIP4,
                ],
            );
            (started, add_took, arping_took, watcher.join().unwrap())
        });
        add.samples.push(add_took);
        arping.samples.push(arping_took);
        flip.samples.push(
            moved
                .expect("C's entry never moved")
                .saturating_duration_since(started),
        );
        std::mem::swap(&mut from, &mut to);
    }
    timed("ip", &["-n", &from.ns, "addr", "del", &cidr, "dev", "eth0"]);
    vec![flip, add, arping, del]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: one pass either way.
    let lab = Lab::new();
    let default = FloatingIpConfig {
        refresh_delay: None,
        ..FloatingIpConfig::default()
    };
    let single = FloatingIpConfig {
        announce_count: 1,
        ..default.clone()
    };
    let mut all = Vec::new();
    all.extend(native(
        &lab,
        &vip(VIP4, 24),
        &default,
        "adapter v4, 3 GARPs/150 ms",
    ));
    all.extend(native(&lab, &vip(VIP4, 24), &single, "adapter v4, 1 GARP"));
    all.extend(native(&lab, &vip(VIP6, 64), &single, "adapter v6, 1 NA"));
    all.extend(processes(&lab));
    let mut probe = Series::new("adapter v4: probe() of a free VIP (= probe_timeout)");
    for _ in 0..5 {
        probe.samples.push(lab.b.run(|| {
            let mut ip = NetFloatingIp::new(default.clone()).unwrap();
            let t = Instant::now();
            ip.probe(&vip(VIP4, 24)).unwrap();
            t.elapsed()
        }));
    }
    all.push(probe);
    println!("failover benchmark, {RUNS} failovers per series, hosts in network namespaces on one bridge");
    for s in &all {
        s.print();
    }
}
