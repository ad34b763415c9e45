//! Interfaces and addresses over rtnetlink (`NETLINK_ROUTE`): the `ip link show` and
//! `ip addr show|add|del` of this adapter.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::mac::MacAddr;

/// Largest datagram the kernel sends us in one read (it sizes dump chunks to a page or to
/// 32 KiB); a bigger buffer costs nothing.
const RECV_BUFFER_LEN: usize = 64 * 1024;
/// How long to wait for the kernel's answer to one request.
const REPLY_TIMEOUT_SECS: i64 = 5;

/// Why an rtnetlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused the request with this errno.
    #[error("{operation}: {source}")]
    Refused {
        /// What was asked.
        operation: &'static str,
        /// The kernel's errno.
        source: io::Error,
    },
    /// The socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel's reply could not be decoded.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

impl NetlinkError {
    /// The errno behind the failure, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Refused { source, .. } | NetlinkError::Io(source) => {
                source.raw_os_error()
            }
            NetlinkError::Malformed(_) => None,
        }
    }
}

/// What the adapter needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The kernel's interface index.
    pub index: u32,
    /// The link-layer address; `None` on links without one.
    pub mac: Option<MacAddr>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub lower_up: bool,
}

/// One address on an interface, as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    /// The interface index.
    pub index: u32,
    /// The local address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The IPv4 label (`eth0:iha`), if any.
    pub label: Option<String>,
    /// `IFA_F_*` flags (the 32-bit attribute when present, else the header's 8 bits).
    pub flags: AddressFlags,
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    /// The interface index.
    pub index: u32,
    /// The address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// IPv4 label; ignored for IPv6 (the kernel has no IPv6 labels).
    pub label: Option<String>,
    /// Set `IFA_F_NODAD` (IPv6): usable at once, and never stuck in `dadfailed` after a
    /// transient split.
    pub nodad: bool,
}

/// A `NETLINK_ROUTE` socket for requests, bound in the network namespace of the thread that
/// opened it.
#[derive(Debug)]
pub struct Rtnetlink {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl Rtnetlink {
    /// Opens a request socket.
    pub fn open() -> Result<Rtnetlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers every request at once; a bound on the wait turns a lost answer
        // into an error instead of a hung daemon.
        let timeout = TimeVal::new(REPLY_TIMEOUT_SECS, 0);
        setsockopt(&socket.as_fd(), sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        Ok(Rtnetlink {
            socket,
            sequence: 0,
            buffer: vec![0; RECV_BUFFER_LEN],
        })
    }

    /// The interface called `name`, or `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut request = LinkMessage::default();
        request
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        let replies = match self.request(
            RouteNetlinkMessage::GetLink(request),
            NLM_F_REQUEST,
            "get link",
        ) {
            Ok(replies) => replies,
            Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        let link = replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Malformed(format!("no link in the reply for {name}")))?;
        let mac = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(bytes) => MacAddr::from_slice(bytes),
            _ => None,
        });
        Ok(Some(LinkInfo {
            index: link.header.index,
            mac,
            up: link.header.flags.contains(LinkFlags::Up),
            lower_up: link.header.flags.contains(LinkFlags::LowerUp),
        }))
    }

    /// The link-layer addresses of every interface in this namespace, current and
    /// permanent: frames from any of them are this host's own, whichever interface sent
    /// them (Linux answers ARP for an address on one interface out of another by default).
    pub fn host_macs(&mut self) -> Result<Vec<MacAddr>, NetlinkError> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
            "list links",
        )?;
        let mut macs: Vec<MacAddr> = replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(&link.attributes),
                _ => None,
            })
            .flatten()
            .filter_map(|a| match a {
                LinkAttribute::Address(bytes) | LinkAttribute::PermAddress(bytes) => {
                    MacAddr::from_slice(bytes)
                }
                _ => None,
            })
            .filter(|mac| *mac != MacAddr::ZERO)
            .collect();
        macs.sort_unstable_by_key(MacAddr::octets);
        macs.dedup();
        Ok(macs)
    }

    /// The addresses on interface `index` (both families).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<AddressEntry>, NetlinkError> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
            "list addresses",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_entry(&a),
                _ => None,
            })
            .filter(|a| a.index == index)
            .collect())
    }

    /// The link-layer address this host's neighbour table holds for `address` on interface
    /// `index` (`ip neigh show to ADDRESS dev IFNAME`), if any.
    pub fn neighbour_mac(
        &mut self,
        index: u32,
        address: IpAddr,
    ) -> Result<Option<MacAddr>, NetlinkError> {
        let mut request = NeighbourMessage::default();
        request.header.family = family_of(address);
        let replies = self.request(
            RouteNetlinkMessage::GetNeighbour(request),
            NLM_F_REQUEST | NLM_F_DUMP,
            "list neighbours",
        )?;
        Ok(replies.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == index => {
                let destination = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        Some(IpAddr::V4(*v4))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        Some(IpAddr::V6(*v6))
                    }
                    _ => None,
                })?;
                if destination != address {
                    return None;
                }
                n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(l) => MacAddr::from_slice(l),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    /// Adds an address. An address that is already there is success.
    pub fn add_address(&mut self, new: &NewAddress) -> Result<(), NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(new.address);
        message.header.prefix_len = new.prefix;
        message.header.scope = AddressScope::Universe;
        message.header.index = new.index;
        message
            .attributes
            .push(AddressAttribute::Local(new.address));
        message
            .attributes
            .push(AddressAttribute::Address(new.address));
        match new.address {
            IpAddr::V4(v4) => {
                if let Some(broadcast) = broadcast_of(v4, new.prefix) {
                    message
                        .attributes
                        .push(AddressAttribute::Broadcast(broadcast));
                }
                if let Some(label) = &new.label {
                    message
                        .attributes
                        .push(AddressAttribute::Label(label.clone()));
                }
            }
            IpAddr::V6(_) => {
                if new.nodad {
                    message.header.flags = AddressHeaderFlags::Nodad;
                    message
                        .attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
            }
        }
        match self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            "add address",
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Removes an address. An address that is not there is success.
    pub fn delete_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = family_of(address);
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes.push(AddressAttribute::Local(address));
        match self.request(
            RouteNetlinkMessage::DelAddress(message),
            NLM_F_REQUEST | NLM_F_ACK,
            "delete address",
        ) {
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Sends one request and collects the replies up to the ACK (or `NLMSG_DONE` for a dump).
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        operation: &'static str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let len = self.socket.recv(&mut &mut self.buffer[..], 0)?;
            let received = self.buffer.get(..len).unwrap_or_default();
            for reply in parse_messages(received)? {
                if reply.header.sequence_number != sequence {
                    continue; // a late answer to an earlier, abandoned request
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(replies),
                            Some(code) => Err(NetlinkError::Refused {
                                operation,
                                source: io::Error::from_raw_os_error(code.get().saturating_abs()),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }
}

/// Splits one datagram into netlink messages and decodes them. A datagram that does not
/// decode is an error, never a panic.
pub(crate) fn parse_messages(
    mut bytes: &[u8],
) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, NetlinkError> {
    let mut messages = Vec::new();
    while bytes.len() >= 16 {
        let length = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length < 16 || length > bytes.len() {
            return Err(NetlinkError::Malformed(format!(
                "message length {length} with {} bytes left",
                bytes.len()
            )));
        }
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length])
            .map_err(|e| NetlinkError::Malformed(e.to_string()))?;
        messages.push(message);
        // Messages are 4-byte aligned within a datagram.
        let next = length.saturating_add(3) & !3;
        bytes = bytes.get(next..).unwrap_or_default();
    }
    Ok(messages)
}

/// The entry an address message describes, or `None` for families other than IPv4/IPv6.
pub(crate) fn address_entry(message: &AddressMessage) -> Option<AddressEntry> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = Some(*f),
            _ => {}
        }
    }
    // For IPv4 IFA_LOCAL is the host's address and IFA_ADDRESS the peer on point-to-point
    // links; IPv6 sends only IFA_ADDRESS unless there is a peer.
    let address = local.or(address)?;
    let flags = flags
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(message.header.flags.bits())));
    Some(AddressEntry {
        index: message.header.index,
        address,
        prefix: message.header.prefix_len,
        label,
        flags,
    })
}

fn family_of(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The directed broadcast address of `address/prefix`, as `ip addr add ... brd +` sets it;
/// none for /31 and /32, which have no broadcast (RFC 3021).
fn broadcast_of(address: std::net::Ipv4Addr, prefix: u8) -> Option<std::net::Ipv4Addr> {
    if prefix >= 31 {
        return None;
    }
    let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    Some((u32::from(address) | host_bits).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    #[test]
    fn broadcast_follows_the_prefix() {
        let a = Ipv4Addr::new(10, 213, 0, 100);
        assert_eq!(broadcast_of(a, 24), Some(Ipv4Addr::new(10, 213, 0, 255)));
        assert_eq!(broadcast_of(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast_of(a, 30), Some(Ipv4Addr::new(10, 213, 0, 103)));
        assert_eq!(broadcast_of(a, 31), None);
        assert_eq!(broadcast_of(a, 32), None);
    }

    // What a RTNLGRP_IPV4_IFADDR listener (a python AF_NETLINK socket bound to group 0x10)
    // read in a namespace when `ip addr add 10.213.0.100/24 dev eth0 label eth0:iha` ran there
    // (interface index 3).
    #[rustfmt::skip]
    const NEWADDR_V4: [u8; 84] = [
        84, 0, 0, 0,                  // length 84
        20, 0, 0, 0,                  // RTM_NEWADDR, no flags
        82, 70, 2, 107, 131, 35, 0, 0, // sequence, port (of the `ip` request)
        2, 24, 128, 0,                // AF_INET, /24, IFA_F_PERMANENT, scope universe
        3, 0, 0, 0,                   // index 3
        8, 0, 1, 0, 10, 213, 0, 100,  // IFA_ADDRESS
        8, 0, 2, 0, 10, 213, 0, 100,  // IFA_LOCAL
        13, 0, 3, 0, 101, 116, 104, 48, 58, 105, 104, 97, 0, 0, 0, 0, // IFA_LABEL "eth0:iha"
        8, 0, 8, 0, 128, 0, 0, 0,     // IFA_FLAGS permanent
        20, 0, 6, 0,                  // IFA_CACHEINFO: forever, forever, created, updated
        255, 255, 255, 255, 255, 255, 255, 255, 30, 226, 0, 0, 30, 226, 0, 0,
    ];

    #[test]
    fn decodes_an_address_notification() {
        let messages = parse_messages(&NEWADDR_V4).unwrap();
        assert_eq!(messages.len(), 1);
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = &messages[0].payload
        else {
            panic!("not an address: {:?}", messages[0]);
        };
        let entry = address_entry(a).unwrap();
        assert_eq!(entry.address, IpAddr::from([10, 213, 0, 100]));
        assert_eq!(entry.prefix, 24);
        assert_eq!(entry.index, 3);
        assert_eq!(entry.label.as_deref(), Some("eth0:iha"));
        assert!(entry.flags.contains(AddressFlags::Permanent));
    }

    #[test]
    fn bad_lengths_are_malformed_not_panics() {
        let mut short = NEWADDR_V4;
        short[0] = 200;
        assert!(matches!(
            parse_messages(&short),
            Err(NetlinkError::Malformed(_))
        ));
        short[0] = 3;
        assert!(matches!(
            parse_messages(&short),
            Err(NetlinkError::Malformed(_))
        ));
        assert!(parse_messages(&NEWADDR_V4[..10]).unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_datagrams_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(messages) = parse_messages(&bytes) {
                for m in messages {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = &m.payload {
                        let _ = address_entry(a);
                    }
                }
            }
        }

        #[test]
        fn parsing_mutated_notifications_never_panics(at in 0usize..84, value in any::<u8>(), cut in 0usize..=84) {
            let mut bytes = NEWADDR_V4;
            bytes[at] = value;
            if let Ok(messages) = parse_messages(&bytes[..cut]) {
                for m in messages {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = &m.payload {
                        let _ = address_entry(a);
                    }
                }
            }
        }
    }
}
