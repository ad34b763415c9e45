//! Ongoing address-conflict detection (RFC 5227 section 2.4): while this host holds the VIP,
//! notice at once when another host claims it too (a stale master that was paused, a
//! misconfigured machine), so that the daemon can re-establish its right to serve or yield.
//!
//! [`VipClaimWatch`] is a non-blocking `AF_PACKET` socket on the VIP's interface, for the
//! daemon's `poll` loop. A kernel BPF filter passes only frames that can be claims of this one
//! address (ARP with the VIP as sender address; ICMPv6 neighbour advertisements for it), so a
//! busy segment does not wake the daemon; [`classify_claim`] then decides in user space.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use iscsi_ha_core::ports::{Cause, FloatingIpError};
use iscsi_ha_core::vip::Vip;

use crate::errors::{from_io, from_netlink};
use crate::frame::{ArpOperation, ArpPacket, EtherType, NdFrame, NdMessage, ND_HOP_LIMIT};
use crate::mac::MacAddr;
use crate::packet::PacketSocket;
use crate::rtnl::{NetlinkError, Rtnetlink};

/// Frames read by one [`VipClaimWatch::drain`]: a flood of claims cannot keep the daemon's
/// loop in one call; what is left keeps the descriptor readable for the next turn.
pub const MAX_FRAMES_PER_DRAIN: usize = 64;
/// Bytes of each frame the kernel filter keeps: ARP is 28 bytes after the Ethernet header, a
/// neighbour advertisement with a few options well under this.
const SNAP_LEN: u32 = 512;
/// Receive buffer for one frame; larger than what the filter keeps.
const FRAME_BUFFER_LEN: usize = 1024;

/// How a host claimed the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimKind {
    /// An ARP reply from the VIP to some other address (an answer to a request or to a probe,
    /// whose target is `0.0.0.0`).
    Reply,
    /// An ARP reply with sender = target = VIP: a gratuitous reply (`arping -A`).
    Gratuitous,
    /// An ARP request with sender = target = VIP: an RFC 5227 announcement, the gratuitous
    /// ARP that `arping -U`, keepalived and this adapter send.
    Announcement,
    /// An ARP request from the VIP for another address: the claimant uses the VIP as its
    /// source while resolving a neighbour.
    Request,
    /// An IPv6 neighbour advertisement for the VIP (solicited or not).
    NeighbourAdvert,
}

impl fmt::Display for ClaimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimKind::Reply => "ARP reply",
            ClaimKind::Gratuitous => "gratuitous ARP reply",
            ClaimKind::Announcement => "ARP announcement",
            ClaimKind::Request => "ARP request",
            ClaimKind::NeighbourAdvert => "neighbour advertisement",
        })
    }
}

/// Another host said on the link that it has the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VipClaim {
    /// The claimed address (the watched VIP).
    pub address: IpAddr,
    /// The claimant's link-layer address: the ARP sender hardware address, or the NA's
    /// target link-layer option (its Ethernet source when the option is absent). Displays
    /// as `aa:bb:cc:dd:ee:ff`.
    pub claimant: MacAddr,
    /// The kind of frame.
    pub kind: ClaimKind,
}

impl fmt::Display for VipClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} claimed by {} ({})",
            self.address, self.claimant, self.kind
        )
    }
}

/// Whether `frame` (a whole Ethernet frame) is another host claiming `vip`, and how. Pure:
/// the whole decision of [`VipClaimWatch`], so that it can be tested on generated frames.
///
/// - IPv4: an ARP request or reply whose sender protocol address is `vip` and whose sender
///   hardware address (and Ethernet source) is none of `ours`. Probes (sender `0.0.0.0`)
///   and requests asking for `vip` from another address are not claims.
/// - IPv6: a neighbour advertisement (hop limit 255, checksum right) whose target is `vip`,
///   from a MAC that is none of `ours`.
///
/// Anything else, malformed frames included, is `None`.
pub fn classify_claim(frame: &[u8], ours: &[MacAddr], vip: IpAddr) -> Option<VipClaim> {
    match vip {
        IpAddr::V4(v4) => classify_arp(frame, ours, v4),
        IpAddr::V6(v6) => classify_advert(frame, ours, v6),
    }
}

fn classify_arp(frame: &[u8], ours: &[MacAddr], vip: Ipv4Addr) -> Option<VipClaim> {
    let (ethernet, arp) = ArpPacket::parse_frame(frame).ok()?;
    if arp.sender_ip != vip || arp.sender_ip.is_unspecified() {
        return None;
    }
    if ours.contains(&arp.sender_mac) || ours.contains(&ethernet.source) {
        return None;
    }
    let to_itself = arp.target_ip == vip;
    let kind = match arp.operation {
        ArpOperation::Request if to_itself => ClaimKind::Announcement,
        ArpOperation::Request => ClaimKind::Request,
        ArpOperation::Reply if to_itself => ClaimKind::Gratuitous,
        ArpOperation::Reply => ClaimKind::Reply,
        ArpOperation::Other(_) => return None,
    };
    Some(VipClaim {
        address: IpAddr::V4(vip),
        claimant: arp.sender_mac,
        kind,
    })
}

fn classify_advert(frame: &[u8], ours: &[MacAddr], vip: Ipv6Addr) -> Option<VipClaim> {
    let nd = NdFrame::parse_frame(frame).ok()?;
    // RFC 4861 7.1.2: an advertisement that was routed is not from the link; drop it.
    if nd.hop_limit != ND_HOP_LIMIT {
        return None;
    }
    let NdMessage::Advert(advert) = nd.message else {
        return None;
    };
    if advert.target != vip {
        return None;
    }
    let claimant = advert.target_mac.unwrap_or(nd.ethernet.source);
    if ours.contains(&claimant) || ours.contains(&nd.ethernet.source) {
        return None;
    }
    Some(VipClaim {
        address: IpAddr::V6(vip),
        claimant,
        kind: ClaimKind::NeighbourAdvert,
    })
}

/// Why a claim watch could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimWatchError {
    /// No interface of that name when the watch was opened.
    #[error("no interface named {0}")]
    NoSuchInterface(String),
    /// The interface the watch was opened on was deleted (or replaced by another of the same
    /// name): the socket will never see a frame again. Open a new watch.
    #[error("interface {0} went away; the claim watch must be reopened")]
    InterfaceGone(String),
    /// The interface has no Ethernet address, so ARP and neighbour discovery do not run on it.
    #[error("interface {0} has no Ethernet address")]
    NotEthernet(String),
    /// Not root, or missing `CAP_NET_RAW`.
    #[error("watching {interface} for claims needs root or CAP_NET_RAW: {source}")]
    PermissionDenied {
        /// Name of the watched interface.
        interface: String,
        /// The kernel's refusal (`EPERM`/`EACCES`).
        #[source]
        source: io::Error,
    },
    /// The packet socket failed.
    #[error("{operation} on {interface}: {source}")]
    Io {
        /// Name of the watched interface.
        interface: String,
        /// What was being done ("read frames", "open packet socket").
        operation: &'static str,
        /// The errno from the packet socket.
        #[source]
        source: io::Error,
    },
    /// Looking up the interface over rtnetlink failed.
    #[error("looking up {interface}: {source}")]
    Netlink {
        /// Name of the watched interface.
        interface: String,
        /// The rtnetlink request that failed, with its errno when the kernel refused it.
        #[source]
        source: NetlinkError,
    },
}

impl From<ClaimWatchError> for FloatingIpError {
    fn from(error: ClaimWatchError) -> Self {
        match error {
            ClaimWatchError::NoSuchInterface(name) | ClaimWatchError::InterfaceGone(name) => {
                FloatingIpError::NoSuchInterface(name)
            }
            ClaimWatchError::PermissionDenied { interface, source }
            | ClaimWatchError::Io {
                interface, source, ..
            } => from_io(&source, &interface, "watch for claims"),
            ClaimWatchError::Netlink { interface, source } => {
                from_netlink(&source, &interface, "look up interface")
            }
            other @ ClaimWatchError::NotEthernet(_) => FloatingIpError::Io(Cause::of(other)),
        }
    }
}

/// A watch for other hosts claiming one VIP, on the VIP's interface, in the network namespace
/// of the thread that opened it. Needs root or `CAP_NET_RAW`.
///
/// Register it with `poll` through [`AsFd`]/[`AsRawFd`] and call [`VipClaimWatch::drain`]
/// when it is readable (an error on the socket, such as the interface going away, also wakes
/// `poll`). Also call `drain` from the daemon's periodic timer: an interface deleted while
/// it was down wakes nothing, and `drain` is where that is found out.
///
/// This host's own frames never reach the socket (the kernel loops outgoing frames back only
/// to `ETH_P_ALL` sockets); frames from any MAC of this host, learned at open and re-learned
/// whenever a claim is about to be reported or the link changes state, are ignored as well.
#[derive(Debug)]
pub struct VipClaimWatch {
    address: IpAddr,
    interface: String,
    index: u32,
    ours: Vec<MacAddr>,
    /// The link was down at the last look: the socket sleeps until it is up again, and a
    /// deletion meanwhile would go unnoticed without looking.
    link_down: bool,
    socket: PacketSocket,
    rtnl: Rtnetlink,
    buffer: Vec<u8>,
}

impl VipClaimWatch {
    /// Opens a watch for `vip` on its interface. The interface may be down (the watch sees
    /// frames once it is up), but it must exist.
    pub fn open(vip: &Vip) -> Result<VipClaimWatch, ClaimWatchError> {
        let interface = vip.interface().as_str().to_owned();
        let mut rtnl = Rtnetlink::open().map_err(|source| ClaimWatchError::Netlink {
            interface: interface.clone(),
            source,
        })?;
        let link = rtnl
            .link_by_name(&interface)
            .map_err(|source| ClaimWatchError::Netlink {
                interface: interface.clone(),
                source,
            })?
            .ok_or_else(|| ClaimWatchError::NoSuchInterface(interface.clone()))?;
        if link.mac.is_none() {
            return Err(ClaimWatchError::NotEthernet(interface));
        }
        let address = vip.address();
        let (ether_type, filter) = match address {
            IpAddr::V4(v4) => (EtherType::Arp, arp_sender_filter(v4)),
            IpAddr::V6(v6) => (EtherType::Ipv6, advert_target_filter(v6)),
        };
        let socket =
            PacketSocket::open_filtered(link.index, ether_type, &filter).map_err(|source| {
                match source.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => ClaimWatchError::PermissionDenied {
                        interface: interface.clone(),
                        source,
                    },
                    Some(libc::ENODEV | libc::ENXIO) => {
                        ClaimWatchError::InterfaceGone(interface.clone())
                    }
                    _ => ClaimWatchError::Io {
                        interface: interface.clone(),
                        operation: "open packet socket",
                        source,
                    },
                }
            })?;
        let mut watch = VipClaimWatch {
            address,
            interface,
            index: link.index,
            ours: Vec::new(),
            link_down: false,
            socket,
            rtnl,
            buffer: vec![0; FRAME_BUFFER_LEN],
        };
        watch.relearn()?;
        Ok(watch)
    }

    /// The VIP this watch reports claims of.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// This host's MACs as last learned; frames from them are never claims.
    pub fn our_macs(&self) -> &[MacAddr] {
        &self.ours
    }

    /// Reads up to [`MAX_FRAMES_PER_DRAIN`] queued frames without blocking and returns the
    /// claims among them, in arrival order (empty when there were none). More frames may be
    /// left queued; the descriptor then stays readable. `InterfaceGone` means: reopen.
    pub fn drain(&mut self) -> Result<Vec<VipClaim>, ClaimWatchError> {
        if self.link_down {
            self.relearn()?;
        }
        let mut candidates: Vec<Vec<u8>> = Vec::new();
        for _ in 0..MAX_FRAMES_PER_DRAIN {
            match self.socket.try_receive(&mut self.buffer) {
                Ok(Some(len)) => {
                    let frame = self.buffer.get(..len).unwrap_or_default();
                    if classify_claim(frame, &self.ours, self.address).is_some() {
                        candidates.push(frame.to_vec());
                    }
                }
                Ok(None) => break,
                // The link went down or away (reported once); find out which.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    self.relearn()?;
                    break;
                }
                Err(source) => {
                    return Err(ClaimWatchError::Io {
                        interface: self.interface.clone(),
                        operation: "read frames",
                        source,
                    })
                }
            }
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // A claim is rare and consequential: make sure the "other" MAC is not one this host
        // has taken since the last look (a MAC change, a new interface) before reporting it.
        self.relearn()?;
        Ok(candidates
            .iter()
            .filter_map(|frame| classify_claim(frame, &self.ours, self.address))
            .collect())
    }

    /// Re-reads this host's MACs and the interface's state; `InterfaceGone` when no interface
    /// of the name has the index the socket is bound to.
    fn relearn(&mut self) -> Result<(), ClaimWatchError> {
        let netlink = |source| ClaimWatchError::Netlink {
            interface: self.interface.clone(),
            source,
        };
        let link = self.rtnl.link_by_name(&self.interface).map_err(netlink)?;
        let link = match link {
            Some(link) if link.index == self.index => link,
            _ => return Err(ClaimWatchError::InterfaceGone(self.interface.clone())),
        };
        let mut ours = self
            .rtnl
            .host_macs()
            .map_err(|source| ClaimWatchError::Netlink {
                interface: self.interface.clone(),
                source,
            })?;
        ours.extend(link.mac);
        self.ours = ours;
        self.link_down = !link.up;
        Ok(())
    }
}

impl AsFd for VipClaimWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for VipClaimWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_fd().as_raw_fd()
    }
}

/// Classic BPF opcodes (`linux/bpf_common.h`).
const BPF_LD_H_ABS: u16 = 0x28;
const BPF_LD_B_ABS: u16 = 0x30;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

/// A program that accepts a frame (its first [`SNAP_LEN`] bytes) when every `(load opcode,
/// offset, value)` check holds, and drops it otherwise.
fn all_of(checks: &[(u16, u32, u32)]) -> Vec<libc::sock_filter> {
    let n = checks.len();
    let mut program = Vec::with_capacity(2 * n + 2);
    for (i, &(load, offset, value)) in checks.iter().enumerate() {
        program.push(libc::sock_filter {
            code: load,
            jt: 0,
            jf: 0,
            k: offset,
        });
        // From the instruction after this jump to the final "drop".
        let to_drop = u8::try_from(2 * (n - i) - 1).unwrap_or(u8::MAX);
        program.push(libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: to_drop,
            k: value,
        });
    }
    for keep in [SNAP_LEN, 0] {
        program.push(libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: keep,
        });
    }
    program
}

/// ARP frames whose sender protocol address (offset 14 + 14) is `vip`.
fn arp_sender_filter(vip: Ipv4Addr) -> Vec<libc::sock_filter> {
    all_of(&[
        (BPF_LD_H_ABS, 12, u32::from(EtherType::Arp.value())),
        (BPF_LD_W_ABS, 28, u32::from(vip)),
    ])
}

/// ICMPv6 neighbour advertisements (IPv6 next header 58 at 14 + 6, type 136 at 14 + 40)
/// whose target (at 14 + 40 + 8) is `vip`. Frames with extension headers do not pass; the
/// parser refuses them too.
fn advert_target_filter(vip: Ipv6Addr) -> Vec<libc::sock_filter> {
    let o = vip.octets();
    let word = |at: usize| u32::from_be_bytes([o[at], o[at + 1], o[at + 2], o[at + 3]]);
    all_of(&[
        (BPF_LD_H_ABS, 12, u32::from(EtherType::Ipv6.value())),
        (BPF_LD_B_ABS, 20, 58),
        (BPF_LD_B_ABS, 54, 136),
        (BPF_LD_W_ABS, 62, word(0)),
        (BPF_LD_W_ABS, 66, word(4)),
        (BPF_LD_W_ABS, 70, word(8)),
        (BPF_LD_W_ABS, 74, word(12)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{EthernetHeader, NeighbourAdvert, NeighbourSolicit};
    use proptest::prelude::*;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const US_TOO: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const VIP4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 100);
    const OTHER4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 3);

    fn vip6() -> Ipv6Addr {
        "fd00:213::100".parse().unwrap()
    }

    fn arp(operation: ArpOperation, sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        ArpPacket {
            operation,
            sender_mac: sha,
            sender_ip: spa,
            target_mac: MacAddr::ZERO,
            target_ip: tpa,
        }
        .to_broadcast_frame()
    }

    fn kind_of(frame: &[u8]) -> Option<ClaimKind> {
        classify_claim(frame, &[US, US_TOO], IpAddr::V4(VIP4)).map(|c| c.kind)
    }

    #[test]
    fn every_arp_that_uses_the_vip_as_sender_is_a_claim_of_its_kind() {
        use ArpOperation::{Reply, Request};
        assert_eq!(
            kind_of(&ArpPacket::gratuitous(THEM, VIP4).to_broadcast_frame()),
            Some(ClaimKind::Announcement)
        );
        assert_eq!(
            kind_of(&arp(Reply, THEM, VIP4, VIP4)),
            Some(ClaimKind::Gratuitous)
        );
        assert_eq!(
            kind_of(&arp(Reply, THEM, VIP4, OTHER4)),
            Some(ClaimKind::Reply)
        );
        // The answer to an RFC 5227 probe goes to 0.0.0.0.
        assert_eq!(
            kind_of(&arp(Reply, THEM, VIP4, Ipv4Addr::UNSPECIFIED)),
            Some(ClaimKind::Reply)
        );
        assert_eq!(
            kind_of(&arp(Request, THEM, VIP4, OTHER4)),
            Some(ClaimKind::Request)
        );
        let claim =
            classify_claim(&arp(Reply, THEM, VIP4, OTHER4), &[US], IpAddr::V4(VIP4)).unwrap();
        assert_eq!(
            claim.to_string(),
            "10.213.0.100 claimed by 02:00:00:00:00:02 (ARP reply)"
        );
    }

    #[test]
    fn asking_probing_ourselves_and_other_addresses_are_not_claims() {
        use ArpOperation::{Reply, Request};
        // C asks who has the VIP.
        assert_eq!(kind_of(&arp(Request, THEM, OTHER4, VIP4)), None);
        // Someone probes for it (RFC 5227).
        assert_eq!(
            kind_of(&ArpPacket::probe(THEM, VIP4).to_broadcast_frame()),
            None
        );
        // A gratuitous ARP for another address.
        assert_eq!(
            kind_of(&ArpPacket::gratuitous(THEM, OTHER4).to_broadcast_frame()),
            None
        );
        // Our own announcement, from either of our MACs.
        for us in [US, US_TOO] {
            assert_eq!(
                kind_of(&ArpPacket::gratuitous(us, VIP4).to_broadcast_frame()),
                None
            );
        }
        // RARP and friends.
        assert_eq!(
            kind_of(&arp(ArpOperation::Other(3), THEM, VIP4, VIP4)),
            None
        );
        // A frame sent by us carrying a foreign sender MAC is still ours.
        let mut relayed = arp(Reply, THEM, VIP4, OTHER4);
        relayed[6..12].copy_from_slice(&US.0);
        assert_eq!(kind_of(&relayed), None);
        // An IPv4 watch ignores IPv6 frames and garbage.
        assert_eq!(
            kind_of(&NdFrame::unsolicited_advert(THEM, vip6()).to_frame()),
            None
        );
        assert_eq!(kind_of(b"\xff\xff"), None);
    }

    #[test]
    fn an_advert_for_the_vip_from_another_mac_is_a_claim() {
        let vip = IpAddr::V6(vip6());
        let advert = NdFrame::unsolicited_advert(THEM, vip6()).to_frame();
        assert_eq!(
            classify_claim(&advert, &[US], vip),
            Some(VipClaim {
                address: vip,
                claimant: THEM,
                kind: ClaimKind::NeighbourAdvert
            })
        );
        // Ours, a DAD probe, and an advert for another address are not.
        let ours = NdFrame::unsolicited_advert(US, vip6()).to_frame();
        assert_eq!(classify_claim(&ours, &[US], vip), None);
        let probe = NdFrame::dad_probe(THEM, vip6()).to_frame();
        assert_eq!(classify_claim(&probe, &[US], vip), None);
        let other = NdFrame::unsolicited_advert(THEM, "fd00:213::7".parse().unwrap()).to_frame();
        assert_eq!(classify_claim(&other, &[US], vip), None);
        // A routed advertisement (hop limit below 255) is not from the link.
        let mut routed = NdFrame::unsolicited_advert(THEM, vip6());
        routed.hop_limit = 64;
        assert_eq!(classify_claim(&routed.to_frame(), &[US], vip), None);
    }

    /// The rule as the RFCs and the brief state it, written apart from the code under test.
    fn expected_arp(
        op: ArpOperation,
        eth_source: MacAddr,
        sha: MacAddr,
        spa: Ipv4Addr,
        tpa: Ipv4Addr,
        ours: &[MacAddr],
    ) -> Option<ClaimKind> {
        let foreign = !ours.contains(&sha) && !ours.contains(&eth_source);
        if spa != VIP4 || !foreign {
            return None;
        }
        match (op, tpa == VIP4) {
            (ArpOperation::Request, true) => Some(ClaimKind::Announcement),
            (ArpOperation::Request, false) => Some(ClaimKind::Request),
            (ArpOperation::Reply, true) => Some(ClaimKind::Gratuitous),
            (ArpOperation::Reply, false) => Some(ClaimKind::Reply),
            (ArpOperation::Other(_), _) => None,
        }
    }

    fn arb_mac() -> impl Strategy<Value = MacAddr> {
        prop_oneof![
            Just(US),
            Just(US_TOO),
            Just(THEM),
            any::<[u8; 6]>().prop_map(MacAddr)
        ]
    }

    fn arb_v4() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            Just(VIP4),
            Just(OTHER4),
            Just(Ipv4Addr::UNSPECIFIED),
            any::<u32>().prop_map(Ipv4Addr::from)
        ]
    }

    fn arb_v6() -> impl Strategy<Value = Ipv6Addr> {
        prop_oneof![
            Just(vip6()),
            Just(Ipv6Addr::UNSPECIFIED),
            any::<u128>().prop_map(Ipv6Addr::from)
        ]
    }

    fn arb_op() -> impl Strategy<Value = ArpOperation> {
        prop_oneof![
            Just(ArpOperation::Request),
            Just(ArpOperation::Reply),
            any::<u16>().prop_map(ArpOperation::from)
        ]
    }

    proptest! {
        #[test]
        fn arp_frames_are_classified_as_the_rule_says(
            op in arb_op(), eth_source in arb_mac(), sha in arb_mac(), spa in arb_v4(),
            tha in arb_mac(), tpa in arb_v4(), ours in proptest::collection::vec(arb_mac(), 0..3)
        ) {
            let mut frame = ArpPacket {
                operation: op,
                sender_mac: sha,
                sender_ip: spa,
                target_mac: tha,
                target_ip: tpa,
            }
            .to_broadcast_frame();
            frame[6..12].copy_from_slice(&eth_source.0);
            let got = classify_claim(&frame, &ours, IpAddr::V4(VIP4));
            prop_assert_eq!(got.map(|c| c.kind), expected_arp(op, eth_source, sha, spa, tpa, &ours));
            if let Some(claim) = got {
                prop_assert_eq!(claim.claimant, sha);
                prop_assert_eq!(claim.address, IpAddr::V4(VIP4));
            }
        }

        #[test]
        fn nd_frames_are_claims_only_when_they_advertise_the_vip_from_elsewhere(
            eth_source in arb_mac(), target in arb_v6(), option in proptest::option::of(arb_mac()),
            advert in any::<bool>(), flags in any::<[bool; 3]>(), hop_limit in prop_oneof![Just(255u8), any::<u8>()],
            ours in proptest::collection::vec(arb_mac(), 0..3)
        ) {
            let message = if advert {
                NdMessage::Advert(NeighbourAdvert {
                    target,
                    router: flags[0],
                    solicited: flags[1],
                    override_flag: flags[2],
                    target_mac: option,
                })
            } else {
                NdMessage::Solicit(NeighbourSolicit { target, source_mac: option })
            };
            let frame = NdFrame {
                ethernet: EthernetHeader {
                    destination: MacAddr([0x33, 0x33, 0, 0, 0, 1]),
                    source: eth_source,
                    ether_type: EtherType::Ipv6,
                },
                source: target,
                destination: "ff02::1".parse().unwrap(),
                hop_limit,
                message,
            }
            .to_frame();
            let claimant = option.unwrap_or(eth_source);
            let expected = (advert && target == vip6() && hop_limit == 255
                && !ours.contains(&claimant) && !ours.contains(&eth_source))
                .then_some(VipClaim { address: IpAddr::V6(vip6()), claimant, kind: ClaimKind::NeighbourAdvert });
            prop_assert_eq!(classify_claim(&frame, &ours, IpAddr::V6(vip6())), expected);
            // An IPv4 watch never takes an ND frame for a claim.
            prop_assert_eq!(classify_claim(&frame, &ours, IpAddr::V4(VIP4)), None);
        }

        #[test]
        fn arbitrary_and_mutated_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..120), at in 0usize..86, value in any::<u8>(), cut in 0usize..=86
        ) {
            let _ = classify_claim(&bytes, &[US], IpAddr::V4(VIP4));
            let _ = classify_claim(&bytes, &[US], IpAddr::V6(vip6()));
            let mut advert = NdFrame::unsolicited_advert(THEM, vip6()).to_frame();
            advert[at] = value;
            let _ = classify_claim(&advert[..cut], &[US], IpAddr::V6(vip6()));
            let mut garp = ArpPacket::gratuitous(THEM, VIP4).to_broadcast_frame();
            garp[at % 60] = value;
            let _ = classify_claim(&garp[..cut.min(60)], &[US], IpAddr::V4(VIP4));
        }
    }

    #[test]
    fn the_filters_jump_to_the_final_drop() {
        let program = advert_target_filter(vip6());
        assert_eq!(program.len(), 16);
        for (i, insn) in program.iter().enumerate() {
            if insn.code == BPF_JEQ_K {
                assert_eq!(i + 1 + usize::from(insn.jf), program.len() - 1, "at {i}");
            }
        }
        let last = program.last().unwrap();
        assert_eq!((last.code, last.k), (BPF_RET_K, 0));
        let arp = arp_sender_filter(VIP4);
        assert_eq!(arp[3].k, u32::from(VIP4));
        assert_eq!(arp[1].jf, 3);
    }
}
