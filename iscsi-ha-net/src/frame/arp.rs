//! ARP over Ethernet for IPv4 (RFC 826), as gratuitous announcements and RFC 5227 probes use it.

use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetHeader, ETHERNET_HEADER_LEN};
use super::{take, take_u16, FrameError};
use crate::mac::MacAddr;

const ARP_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
/// Shortest Ethernet frame without the FCS; shorter frames are padded so that every driver
/// puts a legal frame on the wire.
const MIN_FRAME_LEN: usize = 60;

/// What an ARP packet asks or tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    /// 1: who has the target address?
    Request,
    /// 2: the sender has the sender address.
    Reply,
    /// Another operation (RARP, InARP).
    Other(u16),
}

impl ArpOperation {
    fn value(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Other(v) => v,
        }
    }
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Other(other),
        }
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address (SHA).
    pub sender_mac: MacAddr,
    /// Sender protocol address (SPA); `0.0.0.0` in an RFC 5227 probe.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (THA).
    pub target_mac: MacAddr,
    /// Target protocol address (TPA).
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// A gratuitous ARP as keepalived and IPaddr2 send it: a request with sender IP = target
    /// IP = `ip`, our MAC as sender and the broadcast address as target MAC.
    pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::BROADCAST,
            target_ip: ip,
        }
    }

    /// An RFC 5227 probe: a request for `ip` with sender IP `0.0.0.0`, so that nobody's ARP
    /// cache learns anything from it, and a zero target MAC.
    pub fn probe(mac: MacAddr, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// Whether this packet says that its sender uses `ip`: a reply from `ip`, or a request
    /// (announcement) whose sender address is `ip`. An RFC 5227 conflict.
    pub fn claims(&self, ip: Ipv4Addr) -> bool {
        matches!(self.operation, ArpOperation::Request | ArpOperation::Reply)
            && self.sender_ip == ip
    }

    /// The whole Ethernet frame, broadcast, padded to the Ethernet minimum.
    pub fn to_broadcast_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MIN_FRAME_LEN);
        EthernetHeader {
            destination: MacAddr::BROADCAST,
            source: self.sender_mac,
            ether_type: EtherType::Arp,
        }
        .emit(&mut out);
        out.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        out.extend_from_slice(&PTYPE_IPV4.to_be_bytes());
        out.push(6);
        out.push(4);
        out.extend_from_slice(&self.operation.value().to_be_bytes());
        out.extend_from_slice(&self.sender_mac.0);
        out.extend_from_slice(&self.sender_ip.octets());
        out.extend_from_slice(&self.target_mac.0);
        out.extend_from_slice(&self.target_ip.octets());
        out.resize(MIN_FRAME_LEN, 0);
        out
    }

    /// Parses an Ethernet frame that should carry Ethernet/IPv4 ARP. Padding after the 28
    /// ARP bytes is ignored.
    pub fn parse_frame(frame: &[u8]) -> Result<(EthernetHeader, ArpPacket), FrameError> {
        let (header, payload) = EthernetHeader::parse(frame)?;
        if header.ether_type != EtherType::Arp {
            return Err(FrameError::Unsupported(format!(
                "ethertype {:#06x} is not ARP",
                header.ether_type.value()
            )));
        }
        if payload.len() < ARP_LEN {
            return Err(FrameError::Truncated {
                needed: ETHERNET_HEADER_LEN + ARP_LEN,
                got: frame.len(),
            });
        }
        let htype = take_u16(payload, 0)?;
        let ptype = take_u16(payload, 2)?;
        let [hlen, plen] = take::<2>(payload, 4)?;
        if htype != HTYPE_ETHERNET || ptype != PTYPE_IPV4 || hlen != 6 || plen != 4 {
            return Err(FrameError::Unsupported(format!(
                "ARP for hardware {htype}/{hlen} and protocol {ptype:#06x}/{plen}"
            )));
        }
        let packet = ArpPacket {
            operation: ArpOperation::from(take_u16(payload, 6)?),
            sender_mac: MacAddr(take::<6>(payload, 8)?),
            sender_ip: Ipv4Addr::from(take::<4>(payload, 14)?),
            target_mac: MacAddr(take::<6>(payload, 18)?),
            target_ip: Ipv4Addr::from(take::<4>(payload, 24)?),
        };
        Ok((header, packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);

    // Captured with `tcpdump -xx -i peer0 arp` on the veth peer of eth0 (MAC
    // 02:00:5e:10:20:30, 10.213.0.100/24) in a namespace while
    // `arping -U -c 1 -I eth0 10.213.0.100` ran there; veth does not pad, so 42 bytes.
    #[rustfmt::skip]
    const ARPING_UNSOLICITED: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // source
        0x08, 0x06,                         // ethertype ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet/IPv4, 6/4
        0x00, 0x01,                         // request
        0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // sender MAC
        10, 213, 0, 100,                    // sender IP
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // target MAC
        10, 213, 0, 100,                    // target IP
    ];

    #[test]
    fn gratuitous_matches_what_arping_sends() {
        let frame = ArpPacket::gratuitous(MAC, Ipv4Addr::new(10, 213, 0, 100)).to_broadcast_frame();
        assert_eq!(frame.len(), 60);
        assert_eq!(&frame[..42], &ARPING_UNSOLICITED[..]);
        assert!(frame[42..].iter().all(|b| *b == 0));
    }

    #[test]
    fn parses_an_unpadded_capture() {
        let (eth, arp) = ArpPacket::parse_frame(&ARPING_UNSOLICITED).unwrap();
        assert_eq!(eth.destination, MacAddr::BROADCAST);
        assert_eq!(
            arp,
            ArpPacket::gratuitous(MAC, Ipv4Addr::new(10, 213, 0, 100))
        );
        assert!(arp.claims(Ipv4Addr::new(10, 213, 0, 100)));
    }

    #[test]
    fn probe_has_no_sender_address() {
        let probe = ArpPacket::probe(MAC, Ipv4Addr::new(10, 213, 0, 100));
        assert_eq!(probe.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert!(!probe.claims(Ipv4Addr::new(10, 213, 0, 100)));
        let (_, back) = ArpPacket::parse_frame(&probe.to_broadcast_frame()).unwrap();
        assert_eq!(back, probe);
    }

    #[test]
    fn refuses_other_protocols_and_short_frames() {
        let mut ipv6 = ARPING_UNSOLICITED;
        ipv6[12] = 0x86;
        ipv6[13] = 0xdd;
        assert!(matches!(
            ArpPacket::parse_frame(&ipv6),
            Err(FrameError::Unsupported(_))
        ));
        assert!(matches!(
            ArpPacket::parse_frame(&ARPING_UNSOLICITED[..30]),
            Err(FrameError::Truncated {
                needed: 42,
                got: 30
            })
        ));
        let mut tokenring = ARPING_UNSOLICITED;
        tokenring[15] = 6;
        assert!(matches!(
            ArpPacket::parse_frame(&tokenring),
            Err(FrameError::Unsupported(_))
        ));
    }

    fn arb_mac() -> impl Strategy<Value = MacAddr> {
        any::<[u8; 6]>().prop_map(MacAddr)
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(
            op in any::<u16>(), sha in arb_mac(), spa in any::<u32>(), tha in arb_mac(), tpa in any::<u32>()
        ) {
            let packet = ArpPacket {
                operation: ArpOperation::from(op),
                sender_mac: sha,
                sender_ip: Ipv4Addr::from(spa),
                target_mac: tha,
                target_ip: Ipv4Addr::from(tpa),
            };
            let (eth, back) = ArpPacket::parse_frame(&packet.to_broadcast_frame()).unwrap();
            prop_assert_eq!(back, packet);
            prop_assert_eq!(eth.source, sha);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = ArpPacket::parse_frame(&bytes);
        }

        #[test]
        fn decoding_mutated_arp_never_panics(
            at in 0usize..42, value in any::<u8>(), cut in 0usize..=42
        ) {
            let mut frame = ARPING_UNSOLICITED;
            frame[at] = value;
            let _ = ArpPacket::parse_frame(&frame[..cut]);
        }
    }
}
