//! Asking the link whether another host uses an address: RFC 5227 ARP probes for IPv4 and
//! RFC 4862 duplicate-address-detection solicitations for IPv6.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::frame::{ArpPacket, EtherType, NdFrame};
use crate::mac::MacAddr;
use crate::packet::PacketSocket;

/// Sends `count` probes for `address` spread over `timeout` from interface `index` (its MAC
/// `mac`) and returns the MAC of the first other host that claims the address. Answers from
/// any of `ours` (this host's MACs) are ignored, so a host may probe an address it holds
/// itself to find a second holder.
pub(crate) fn find_owner(
    index: u32,
    mac: MacAddr,
    ours: &[MacAddr],
    address: IpAddr,
    timeout: Duration,
    count: u32,
) -> io::Result<Option<MacAddr>> {
    match address {
        IpAddr::V4(v4) => {
            let socket = PacketSocket::open(index, EtherType::Arp)?;
            let probe = ArpPacket::probe(mac, v4).to_broadcast_frame();
            probe_and_listen(&socket, &probe, timeout, count, |frame| {
                arp_owner(frame, ours, v4)
            })
        }
        IpAddr::V6(v6) => {
            let socket = PacketSocket::open(index, EtherType::Ipv6)?;
            let probe = NdFrame::dad_probe(mac, v6).to_frame();
            probe_and_listen(&socket, &probe, timeout, count, |frame| {
                nd_owner(frame, ours, v6)
            })
        }
    }
}

fn probe_and_listen(
    socket: &PacketSocket,
    probe: &[u8],
    timeout: Duration,
    count: u32,
    mut owner: impl FnMut(&[u8]) -> Option<MacAddr>,
) -> io::Result<Option<MacAddr>> {
    let count = count.max(1);
    let start = Instant::now();
    let step = timeout / count;
    for sent in 1..=count {
        socket.send(probe)?;
        let listen_until = if sent == count {
            start + timeout
        } else {
            start + step * sent
        };
        if let Some(found) = socket.receive_until(listen_until, &mut owner)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The sender of an ARP frame claiming `address`, unless it is us.
fn arp_owner(frame: &[u8], ours: &[MacAddr], address: Ipv4Addr) -> Option<MacAddr> {
    let (ethernet, arp) = ArpPacket::parse_frame(frame).ok()?;
    (arp.claims(address) && !ours.contains(&arp.sender_mac) && !ours.contains(&ethernet.source))
        .then_some(arp.sender_mac)
}

/// The advertised owner of `address` in a neighbour-discovery frame, unless it is us.
fn nd_owner(frame: &[u8], ours: &[MacAddr], address: Ipv6Addr) -> Option<MacAddr> {
    let nd = NdFrame::parse_frame(frame).ok()?;
    if ours.contains(&nd.ethernet.source) {
        return None;
    }
    nd.owner_of(address).filter(|owner| !ours.contains(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn an_arp_reply_from_another_host_names_the_owner() {
        let vip = Ipv4Addr::new(10, 213, 0, 100);
        let mut reply = ArpPacket::gratuitous(THEM, vip);
        reply.operation = crate::frame::ArpOperation::Reply;
        reply.target_ip = Ipv4Addr::UNSPECIFIED;
        assert_eq!(
            arp_owner(&reply.to_broadcast_frame(), &[US], vip),
            Some(THEM)
        );
        // Our own announcement, another address, or another prober are not owners.
        assert_eq!(
            arp_owner(
                &ArpPacket::gratuitous(US, vip).to_broadcast_frame(),
                &[US],
                vip
            ),
            None
        );
        let other = Ipv4Addr::new(10, 213, 0, 7);
        assert_eq!(
            arp_owner(
                &ArpPacket::gratuitous(THEM, other).to_broadcast_frame(),
                &[US],
                vip
            ),
            None
        );
        assert_eq!(
            arp_owner(
                &ArpPacket::probe(THEM, vip).to_broadcast_frame(),
                &[US],
                vip
            ),
            None
        );
        assert_eq!(arp_owner(b"garbage", &[US], vip), None);
    }

    #[test]
    fn an_advert_from_another_host_names_the_owner() {
        let vip: Ipv6Addr = "fd00:213::100".parse().unwrap();
        let advert = NdFrame::unsolicited_advert(THEM, vip).to_frame();
        assert_eq!(nd_owner(&advert, &[US], vip), Some(THEM));
        assert_eq!(
            nd_owner(&NdFrame::unsolicited_advert(US, vip).to_frame(), &[US], vip),
            None
        );
        assert_eq!(
            nd_owner(&NdFrame::dad_probe(THEM, vip).to_frame(), &[US], vip),
            None
        );
    }
}
