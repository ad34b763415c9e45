//! The connection-list datagram between two hosts' namespaces over real UDP: each host binds
//! the one of the two configured addresses that is its own, a list sent by one arrives whole
//! at the other, and whatever is not a list from the peer (garbage, a newer version, a
//! datagram over the maximum, a list from a third host) is dropped with its reason, never a
//! panic, leaving later good lists to arrive. Needs root.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::Lab;
use iscsi_ha_net::handover::{encode, MAX_DATAGRAM};
use iscsi_ha_net::{ConnectionList, HandoverError, HandoverSocket};

const PORT: u16 = 3261;

/// Everything `socket` receives within `wait`, until `count` datagrams came.
fn gather(
    socket: &HandoverSocket,
    count: usize,
    wait: Duration,
) -> Vec<Result<ConnectionList, HandoverError>> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        out.extend(socket.receive(16));
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

#[test]
fn a_list_arrives_whole_and_anything_else_is_dropped_with_its_reason() {
    let lab = Lab::new();
    let a_ip: IpAddr = lab.a.ipv4.parse().unwrap();
    let b_ip: IpAddr = lab.b.ipv4.parse().unwrap();
    let hosts = [a_ip, b_ip];
    let a = lab.a.run(|| HandoverSocket::bind(hosts, PORT).unwrap());
    let b = lab.b.run(|| HandoverSocket::bind(hosts, PORT).unwrap());
    assert_eq!(a.peer(), SocketAddr::new(b_ip, PORT));
    assert_eq!(b.peer(), SocketAddr::new(a_ip, PORT));
    assert_eq!(b.local().unwrap(), SocketAddr::new(b_ip, PORT));

    // C has neither address: it cannot take part.
    let refused = lab.c.run(|| HandoverSocket::bind(hosts, PORT)).unwrap_err();
    assert!(refused.to_string().contains("[tickle] hosts"), "{refused}");

    let server: SocketAddr = "10.213.0.100:3260".parse().unwrap();
    let clients: Vec<SocketAddr> = vec![
        "10.213.0.3:40001".parse().unwrap(),
        "[fd00:213::3]:40002".parse().unwrap(),
    ];
    a.send(server, &clients).unwrap();
    let got = gather(&b, 1, Duration::from_secs(2));
    assert_eq!(
        got,
        vec![Ok(ConnectionList {
            server,
            clients: clients.clone()
        })]
    );

    // From the peer's address but not a list; then a newer version; then too large.
    let raw = lab
        .a
        .run(|| UdpSocket::bind(SocketAddr::new(a_ip, 0)).unwrap());
    let to = SocketAddr::new(b_ip, PORT);
    raw.send_to(b"GET / HTTP/1.0\r\n\r\n", to).unwrap();
    let mut newer = encode(server, &clients);
    newer[4] = 2;
    raw.send_to(&newer, to).unwrap();
    raw.send_to(&vec![0u8; MAX_DATAGRAM + 100], to).unwrap();
    // A good list from a third host.
    let stranger = lab
        .c
        .run(|| UdpSocket::bind(SocketAddr::new(lab.c.ipv4.parse().unwrap(), PORT)).unwrap());
    stranger.send_to(&encode(server, &clients), to).unwrap();
    // And the peer's next list still arrives after all of that.
    a.send(server, &[]).unwrap();

    let got = gather(&b, 5, Duration::from_secs(2));
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(matches!(got[0], Err(HandoverError::Magic(_))), "{got:?}");
    assert_eq!(got[1], Err(HandoverError::Version(2)));
    assert_eq!(got[2], Err(HandoverError::TooLarge));
    assert!(
        matches!(got[3], Err(HandoverError::Stranger(from)) if from.ip().to_string() == lab.c.ipv4),
        "{got:?}"
    );
    assert_eq!(
        got[4],
        Ok(ConnectionList {
            server,
            clients: Vec::new()
        })
    );
}
