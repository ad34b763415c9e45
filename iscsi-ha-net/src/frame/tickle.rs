//! The tickle ACK: a bare TCP ACK from the VIP's iSCSI port to an initiator's port, with
//! sequence and acknowledgement numbers (0/0) that are out of the connection's window.
//!
//! After a hard failover the initiator's connection still points at the dead master. The
//! initiator's stack answers an out-of-window segment with an ACK carrying its real numbers
//! (RFC 793 / RFC 5961 section 4); the new master's stack has no such connection and answers
//! that ACK with a reset whose sequence number is exactly what the initiator expects, so the
//! initiator drops the connection and logs in again at once instead of waiting for its
//! retransmission or NOP-out timers. CTDB (`ctdb_sys_send_tcp`) and the Pacemaker `portblock`
//! agent's `tickle_tcp` send the same segment.
//!
//! The packets built here start at the IP header: they go out on raw IP sockets
//! (`IPPROTO_RAW`), whose routing picks the interface and the link-layer header.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{internet_checksum, FrameError};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of a TCP header without options: the whole segment, since a tickle has no payload.
pub const TCP_HEADER_LEN: usize = 20;
/// The window a tickle advertises. Any value works (the segment is out of window anyway);
/// CTDB's 1234 makes tickles easy to pick out in a capture, so ours look the same.
pub const TICKLE_WINDOW: u16 = 1234;
/// Hop limit / TTL of a tickle: the usual default, enough for a routed initiator.
pub const TICKLE_HOP_LIMIT: u8 = 64;

const PROTOCOL_TCP: u8 = 6;
const TCP_FLAG_ACK: u8 = 0x10;
/// "Don't fragment": a 40-byte packet never needs fragmenting, and a router must not try.
const IPV4_DONT_FRAGMENT: u16 = 0x4000;

/// Builds the tickle for the connection between `server` (the VIP and the iSCSI port, the
/// source) and `client` (the initiator's address and port, the destination): an IPv4 packet
/// of 40 bytes or an IPv6 packet of 60, with both checksums filled in. Addresses of different
/// families are [`FrameError::Invalid`]; an IPv4-mapped IPv6 address counts as IPv4, as
/// `/proc/net/tcp6` shows dual-stack sockets that way.
pub fn tickle_packet(server: SocketAddr, client: SocketAddr) -> Result<Vec<u8>, FrameError> {
    match (canonical(server), canonical(client)) {
        (SocketAddr::V4(s), SocketAddr::V4(c)) => Ok(tickle_v4(s, c)),
        (SocketAddr::V6(s), SocketAddr::V6(c)) => Ok(tickle_v6(s, c)),
        (s, c) => Err(FrameError::Invalid(format!(
            "a tickle from {s} to {c} mixes IPv4 and IPv6"
        ))),
    }
}

/// `address` with an IPv4-mapped IPv6 address turned into the IPv4 one.
pub fn canonical(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => address,
        },
        SocketAddr::V4(_) => address,
    }
}

fn tickle_v4(server: SocketAddrV4, client: SocketAddrV4) -> Vec<u8> {
    let mut packet = Vec::with_capacity(IPV4_HEADER_LEN + TCP_HEADER_LEN);
    let total = u16::try_from(IPV4_HEADER_LEN + TCP_HEADER_LEN).unwrap_or(u16::MAX);
    packet.push(0x45); // version 4, header length 5 words
    packet.push(0); // DSCP/ECN
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&0u16.to_be_bytes()); // identification: the kernel fills a 0
    packet.extend_from_slice(&IPV4_DONT_FRAGMENT.to_be_bytes());
    packet.push(TICKLE_HOP_LIMIT);
    packet.push(PROTOCOL_TCP);
    packet.extend_from_slice(&[0, 0]); // header checksum, below
    packet.extend_from_slice(&server.ip().octets());
    packet.extend_from_slice(&client.ip().octets());
    let header_sum = internet_checksum(&[&packet]);
    packet[10..12].copy_from_slice(&header_sum.to_be_bytes());

    let pseudo = pseudo_header_v4(*server.ip(), *client.ip());
    packet.extend_from_slice(&tcp_ack(server.port(), client.port(), &pseudo));
    packet
}

fn tickle_v6(server: SocketAddrV6, client: SocketAddrV6) -> Vec<u8> {
    let mut packet = Vec::with_capacity(IPV6_HEADER_LEN + TCP_HEADER_LEN);
    let payload = u16::try_from(TCP_HEADER_LEN).unwrap_or(u16::MAX);
    packet.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no traffic class, no flow label
    packet.extend_from_slice(&payload.to_be_bytes());
    packet.push(PROTOCOL_TCP);
    packet.push(TICKLE_HOP_LIMIT);
    packet.extend_from_slice(&server.ip().octets());
    packet.extend_from_slice(&client.ip().octets());

    let pseudo = pseudo_header_v6(server.ip(), client.ip());
    packet.extend_from_slice(&tcp_ack(server.port(), client.port(), &pseudo));
    packet
}

/// The TCP header of a tickle: ACK only, seq 0, ack 0, no options, checksum over `pseudo`.
fn tcp_ack(source: u16, destination: u16, pseudo: &[u8]) -> [u8; TCP_HEADER_LEN] {
    let mut tcp = [0u8; TCP_HEADER_LEN];
    tcp[0..2].copy_from_slice(&source.to_be_bytes());
    tcp[2..4].copy_from_slice(&destination.to_be_bytes());
    // Bytes 4..12: sequence and acknowledgement numbers, both 0 (out of the window of
    // all but one connection in 2^31; see the module doc).
    tcp[12] = 5 << 4; // data offset: 5 words, no options
    tcp[13] = TCP_FLAG_ACK;
    tcp[14..16].copy_from_slice(&TICKLE_WINDOW.to_be_bytes());
    let sum = internet_checksum(&[pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    tcp
}

fn pseudo_header_v4(source: Ipv4Addr, destination: Ipv4Addr) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.push(0);
    pseudo.push(PROTOCOL_TCP);
    let length = u16::try_from(TCP_HEADER_LEN).unwrap_or(u16::MAX);
    pseudo.extend_from_slice(&length.to_be_bytes());
    pseudo
}

fn pseudo_header_v6(source: &Ipv6Addr, destination: &Ipv6Addr) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    let length = u32::try_from(TCP_HEADER_LEN).unwrap_or(u32::MAX);
    pseudo.extend_from_slice(&length.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, PROTOCOL_TCP]);
    pseudo
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use etherparse::{IpSlice, NetSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    /// What etherparse, an independent parser, reads back from a tickle.
    struct Parsed {
        source: SocketAddr,
        destination: SocketAddr,
        tcp_checksum_ok: bool,
        ip_checksum_ok: bool,
        flags: (bool, bool, bool, bool, bool, bool),
        seq: u32,
        ack: u32,
        window: u16,
        payload_len: usize,
    }

    fn parse(packet: &[u8]) -> Parsed {
        let sliced = SlicedPacket::from_ip(packet).expect("etherparse reads the packet");
        let (source, destination, ip_checksum_ok): (IpAddr, IpAddr, bool) = match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                let ok = h.calc_header_checksum() == h.header_checksum;
                (
                    Ipv4Addr::from(h.source).into(),
                    Ipv4Addr::from(h.destination).into(),
                    ok,
                )
            }
            // IPv6 has no header checksum.
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header().to_header();
                (
                    Ipv6Addr::from(h.source).into(),
                    Ipv6Addr::from(h.destination).into(),
                    true,
                )
            }
            other => panic!("not an IP packet: {other:?}"),
        };
        let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
            panic!("not TCP: {:?}", sliced.transport)
        };
        let header = tcp.to_header();
        let expected = match IpSlice::from_slice(packet).expect("an IP packet") {
            IpSlice::Ipv4(ip) => header
                .calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
                .expect("a checksum"),
            IpSlice::Ipv6(ip) => header
                .calc_checksum_ipv6(&ip.header().to_header(), tcp.payload())
                .expect("a checksum"),
        };
        Parsed {
            source: SocketAddr::new(source, tcp.source_port()),
            destination: SocketAddr::new(destination, tcp.destination_port()),
            tcp_checksum_ok: expected == tcp.checksum(),
            ip_checksum_ok,
            flags: (
                tcp.ack(),
                tcp.syn(),
                tcp.fin(),
                tcp.rst(),
                tcp.psh(),
                tcp.urg(),
            ),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            window: tcp.window_size(),
            payload_len: tcp.payload().len(),
        }
    }

    fn assert_tickle(server: SocketAddr, client: SocketAddr, packet: &[u8]) {
        let p = parse(packet);
        assert_eq!(p.source, canonical(server));
        assert_eq!(p.destination, canonical(client));
        assert!(p.ip_checksum_ok, "IPv4 header checksum");
        assert!(p.tcp_checksum_ok, "TCP checksum");
        assert_eq!(
            p.flags,
            (true, false, false, false, false, false),
            "ACK only"
        );
        assert_eq!((p.seq, p.ack), (0, 0));
        assert_eq!(p.window, TICKLE_WINDOW);
        assert_eq!(p.payload_len, 0);
    }

    #[test]
    fn a_tickle_matches_a_hand_checked_capture() {
        // 10.213.0.100:3260 -> 10.213.0.3:51000, every field laid out by hand from RFC 791 and
        // RFC 793; both checksums computed separately (RFC 1071 in a Python one-liner).
        let packet = tickle_packet(
            "10.213.0.100:3260".parse().unwrap(),
            "10.213.0.3:51000".parse().unwrap(),
        )
        .unwrap();
        #[rustfmt::skip]
        let expected: [u8; 40] = [
            0x45, 0x00, 0x00, 0x28, // v4, ihl 5, total length 40
            0x00, 0x00, 0x40, 0x00, // id 0, DF
            0x40, 0x06, 0x24, 0xc0, // ttl 64, TCP, header checksum
            10, 213, 0, 100,        // source: the VIP
            10, 213, 0, 3,          // destination: the initiator
            0x0c, 0xbc, 0xc7, 0x38, // ports 3260 -> 51000
            0, 0, 0, 0,             // seq 0
            0, 0, 0, 0,             // ack 0
            0x50, 0x10, 0x04, 0xd2, // data offset 5, ACK, window 1234
            0xc0, 0xfd, 0x00, 0x00, // TCP checksum, urgent pointer 0
        ];
        assert_eq!(packet, expected);
    }

    #[test]
    fn mixed_families_are_refused_and_mapped_addresses_are_ipv4() {
        assert!(matches!(
            tickle_packet(
                "10.0.0.1:3260".parse().unwrap(),
                "[fd00::1]:5000".parse().unwrap()
            ),
            Err(FrameError::Invalid(_))
        ));
        let server: SocketAddr = "[::ffff:10.0.0.1]:3260".parse().unwrap();
        let client: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let packet = tickle_packet(server, client).unwrap();
        assert_eq!(packet.len(), IPV4_HEADER_LEN + TCP_HEADER_LEN);
        assert_tickle(server, client, &packet);
    }

    proptest! {
        #[test]
        fn every_ipv4_tickle_parses_back_with_valid_checksums(
            s in any::<[u8; 4]>(), c in any::<[u8; 4]>(), sp in any::<u16>(), cp in any::<u16>()
        ) {
            let server = SocketAddr::new(Ipv4Addr::from(s).into(), sp);
            let client = SocketAddr::new(Ipv4Addr::from(c).into(), cp);
            let packet = tickle_packet(server, client).unwrap();
            prop_assert_eq!(packet.len(), IPV4_HEADER_LEN + TCP_HEADER_LEN);
            assert_tickle(server, client, &packet);
        }

        #[test]
        fn every_ipv6_tickle_parses_back_with_a_valid_checksum(
            s in any::<[u8; 16]>(), c in any::<[u8; 16]>(), sp in any::<u16>(), cp in any::<u16>()
        ) {
            let (s, c) = (Ipv6Addr::from(s), Ipv6Addr::from(c));
            // Mapped addresses are IPv4 (tested above); the rest are IPv6 packets.
            prop_assume!(s.to_ipv4_mapped().is_none() && c.to_ipv4_mapped().is_none());
            let server = SocketAddr::new(s.into(), sp);
            let client = SocketAddr::new(c.into(), cp);
            let packet = tickle_packet(server, client).unwrap();
            prop_assert_eq!(packet.len(), IPV6_HEADER_LEN + TCP_HEADER_LEN);
            assert_tickle(server, client, &packet);
        }
    }
}
