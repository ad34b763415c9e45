//! Tickle ACKs against real kernel TCP: C (the initiator) holds an established connection to
//! the VIP on A; A vanishes without a FIN or a reset (its link goes down, its sockets stay
//! open); B takes the VIP over with a listener on the iSCSI port, as tgtd has. Without a
//! tickle, C's idle connection stays established; with one sent from B to the connection A's
//! own `/proc/net/tcp` listed, C's socket reports the reset at once. The list reaches B as the
//! daemons hand it over: A's connection-list datagram, sent over the A-B link before A fails
//! and kept by B. Needs root.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{vip, Lab, VIP4, VIP6};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_net::{
    established_on, FloatingIpConfig, HandoverSocket, NetFloatingIp, TcpConnection, TickleSender,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

const ISCSI_PORT: u16 = 3260;
/// How long C is given to see the reset; the control waits as long and must see nothing.
const BOUND: Duration = Duration::from_secs(2);

fn one_shot() -> NetFloatingIp {
    NetFloatingIp::new(FloatingIpConfig {
        announce_count: 1,
        refresh_delay: None,
        ..FloatingIpConfig::default()
    })
    .expect("adapter")
}

/// Waits up to `timeout` for anything on `stream` (data, a FIN, an error): whether it came.
fn stirs(stream: &TcpStream, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(
        stream.as_fd(),
        PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP,
    )];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    poll(&mut fds, PollTimeout::from(millis)).unwrap() > 0
}

fn failover_then_tickle(vip_text: &str, prefix: u8) {
    let lab = Lab::new();
    let v = vip(vip_text, prefix);
    let vip_ip: IpAddr = vip_text.parse().unwrap();
    let server = SocketAddr::new(vip_ip, ISCSI_PORT);

    // A serves; C logs in.
    lab.a.run(|| one_shot().assign(&v).unwrap());
    let a_listener = lab.a.run(|| TcpListener::bind(server).unwrap());
    let initiator = lab
        .c
        .run(|| TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap());
    let (a_accepted, _) = a_listener.accept().unwrap();

    // A's own view of whom it serves: the list the new master needs.
    let connections = lab
        .a
        .run(|| established_on(server, Path::new("/proc/thread-self/net")).unwrap());
    assert_eq!(
        connections,
        vec![TcpConnection {
            server,
            client: initiator.local_addr().unwrap(),
        }]
    );

    // Before failing, A hands its list to B over their link, as the serving daemon does.
    let hosts = [lab.a.ipv4.parse().unwrap(), lab.b.ipv4.parse().unwrap()];
    let a_handover = lab.a.run(|| HandoverSocket::bind(hosts, 3261).unwrap());
    let b_handover = lab.b.run(|| HandoverSocket::bind(hosts, 3261).unwrap());
    let clients: Vec<SocketAddr> = connections.iter().map(|c| c.client).collect();
    a_handover.send(server, &clients).unwrap();
    let received = arrives(|| b_handover.receive(4).pop());
    let handed = received.unwrap();
    assert_eq!((handed.server, &handed.clients), (server, &clients));

    // A fails hard: its link goes down and its sockets stay open, so no FIN or reset leaves.
    lab.a.ip(&["link", "set", "eth0", "down"]);

    // B takes over, with a listener on the iSCSI port as tgtd has, and C follows the VIP.
    lab.b.run(|| one_shot().assign(&v).unwrap());
    let _b_listener = lab.b.run(|| TcpListener::bind(server).unwrap());
    lab.c
        .wait_neighbour(vip_text, &lab.b.mac, Duration::from_secs(5));

    // The control: without a tickle the idle initiator notices nothing.
    assert!(
        !stirs(&initiator, BOUND),
        "C's connection stirred within {BOUND:?} without a tickle"
    );
    initiator.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 16];
    let before = (&initiator).read(&mut buffer).map_err(|e| e.kind());
    assert_eq!(
        before,
        Err(ErrorKind::WouldBlock),
        "C's connection without a tickle"
    );

    // The tickle, from B, for the connections A handed over.
    let sent = Instant::now();
    lab.b.run(|| {
        let mut sender = TickleSender::new();
        for client in &handed.clients {
            sender.send(handed.server, *client).unwrap();
        }
    });
    assert!(
        stirs(&initiator, BOUND),
        "C's connection did not stir within {BOUND:?} of the tickle"
    );
    let after = (&initiator).read(&mut buffer).map_err(|e| e.kind());
    let took = sent.elapsed();
    assert_eq!(
        after,
        Err(ErrorKind::ConnectionReset),
        "C's connection after the tickle"
    );
    eprintln!("{vip_text}: tickle sent -> C's read returns ECONNRESET in {took:?}");
    drop((a_listener, a_accepted));
}

/// Polls `f` every 10 ms for up to 2 s until it gives something.
fn arrives<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "nothing arrived within {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_tickle_from_the_new_master_resets_the_initiators_ipv4_connection_at_once() {
    failover_then_tickle(VIP4, 24);
}

#[test]
fn a_tickle_from_the_new_master_resets_the_initiators_ipv6_connection_at_once() {
    failover_then_tickle(VIP6, 64);
}
