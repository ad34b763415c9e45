//! `[tickle]` in the running daemon: it listens on its own one of the two configured
//! replication addresses, keeps a good list from the peer's address, and drops anything else
//! with one rate-limited warning naming why, answering its control socket at once throughout
//! (the datagrams are read in the poll loop, never waited on), and reads the kept list back
//! after a restart (so a restart between the peer's push and its death loses nothing). The
//! peer is a second network
//! namespace on the other end of the daemon's veth. Sending lists while serving and the
//! tickles at a takeover need DRBD: `iha-lab bench failover --scenario hard`. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use iscsi_ha_net::handover::encode;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use support::{config, require_root, sh, Daemon, Netns, VIP};

const DAEMON_IP: &str = "10.79.0.1";
const PEER_IP: &str = "10.79.0.2";

/// The veth's other end, moved into a namespace of its own with the peer's address.
struct Peer {
    name: String,
}

impl Peer {
    fn new(ns: &Netns) -> Peer {
        let name = format!("{}p", ns.name);
        let out = sh(&format!(
            "set -e; ip netns add {name}; ip -n {ns} link set d0p netns {name}; \
             ip -n {name} link set lo up; ip -n {name} addr add {PEER_IP}/24 dev d0p; \
             ip -n {name} link set d0p up",
            ns = ns.name
        ));
        assert!(out.status.success(), "{out:?}");
        Peer { name }
    }

    /// A UDP socket in the peer's namespace, bound to its address.
    fn socket(&self) -> UdpSocket {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap();
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                UdpSocket::bind((PEER_IP, 0)).unwrap()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

#[test]
fn the_peers_list_is_kept_and_anything_else_is_dropped_once_logged_without_stalling_the_loop() {
    require_root();
    let ns = Netns::new("tk");
    let peer = Peer::new(&ns);
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        &format!("[tickle]\nhosts = [\"{PEER_IP}\", \"{DAEMON_IP}\"]\nport = 3261\n"),
    );
    let mut d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(Duration::from_secs(5), "the listener announced", |d| {
        d.log().contains("tickle: connection lists go to the peer")
    });
    let log = d.log();
    assert!(log.contains(&format!("local={DAEMON_IP}:3261")), "{log}");
    assert!(log.contains(&format!("peer={PEER_IP}:3261")), "{log}");

    let socket = peer.socket();
    let to: SocketAddr = format!("{DAEMON_IP}:3261").parse().unwrap();
    // Garbage, then a flood of it: one warning, and the loop answers at once meanwhile.
    socket.send_to(b"GET / HTTP/1.0\r\n\r\n", to).unwrap();
    d.wait_for(Duration::from_secs(2), "the drop logged", |d| {
        d.log()
            .contains("tickle: dropped a datagram: not a connection list")
    });
    for _ in 0..500 {
        socket.send_to(&[0xff; 1000], to).unwrap();
    }
    let t0 = Instant::now();
    assert_eq!(d.status()["host_role"], "slave");
    let answered = t0.elapsed();
    eprintln!("status answered in {answered:?} during a flood of 500 bad datagrams");
    assert!(answered < Duration::from_secs(2), "{answered:?}");
    // A good list from the peer is kept.
    let server: SocketAddr = format!("{VIP}:3260").parse().unwrap();
    let clients: Vec<SocketAddr> = vec![
        "10.79.0.9:40001".parse().unwrap(),
        "10.79.0.9:40002".parse().unwrap(),
    ];
    socket.send_to(&encode(server, &clients), to).unwrap();
    d.wait_for(Duration::from_secs(2), "the peer's list kept", |d| {
        d.log().contains("tickle: the peer's connection list")
    });
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("the peer's connection list") && l.contains("connections=2")),
        "{log}"
    );
    assert_eq!(
        log.matches("tickle: dropped a datagram").count(),
        1,
        "one warning for the flood (rate-limited):\n{log}"
    );

    // Restarted, it reads the kept list back.
    // Written just after that log line: waited for, not raced.
    let kept = d.dir.path().join("state/tickle-peer-list.json");
    d.wait_for(Duration::from_secs(2), "the kept list's file", |_| {
        kept.is_file()
    });
    d.stop();
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let again = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    again.wait_for(Duration::from_secs(5), "the kept list read back", |d| {
        d.log()
            .lines()
            .any(|l| l.contains("kept before this start") && l.contains("connections=2"))
    });
}
