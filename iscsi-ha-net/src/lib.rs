//! Floating-IP adapter for iscsi-ha: the `FloatingIp` port done natively, without `ip`,
//! `arping` or `ping` processes.
//!
//! | Module | Job | Command it replaces |
//! |---|---|---|
//! | [`rtnl`] | interfaces and addresses over rtnetlink | `ip link show`, `ip addr show/add/del` |
//! | [`frame`] | ARP and ICMPv6 neighbour-discovery codecs | |
//! | [`packet`] | `AF_PACKET` sockets bound to one interface | |
//! | announcements (in [`NetFloatingIp`]) | gratuitous ARP / unsolicited NA bursts | `arping -U`, `send_ua` |
//! | probes (in [`NetFloatingIp`]) | RFC 5227 ARP probe, IPv6 DAD solicitation, ICMP echo | `arping -D`, `ping` |
//! | [`events`] | address-change notifications as a pollable descriptor | `ip monitor address` |
//! | [`connections`] | the established TCP connections on the VIP's iSCSI port | `ss -tn state established src VIP:3260` |
//! | [`handover`] | the serving host's connection list, pushed to its peer in a UDP datagram | `portblock`'s `tickle_dir` + `sync_script`, CTDB's tickle list exchange |
//! | [`tickle`] | tickle ACKs that make a dead master's initiators reset and log in again | CTDB's `ctdb_killtcp`/tickle, `portblock`'s `tickle_tcp` |
//! | [`claims`] | ongoing conflict detection: another host claiming the VIP (RFC 5227 2.4) | `arpwatch`, `tcpdump arp` |
//! | [`witness`] | the fence-peer handler's witnesses: is this host the one cut off? | HA-Lizard's `FENCE_HEURISTICS_IPS` pings |
//!
//! # One netlink stack
//!
//! Netlink goes through the rust-netlink crates only: `netlink-packet-route` for the rtnetlink
//! message types, `netlink-packet-core` for the framing and `netlink-sys` for the socket. They
//! are synchronous at the socket level (no async runtime, unlike `rtnetlink`), keep unknown
//! attributes instead of failing on them, and are what the rest of the ecosystem (youki,
//! netavark) builds on; `neli` would do as well, but two stacks in one crate would be two
//! sets of bugs.
//!
//! # What the adapter does on the wire
//!
//! - **assign**: `RTM_NEWADDR` with label `IFNAME:iha` (IPv4) or `IFA_F_NODAD` (IPv6, as
//!   keepalived does, so the address is usable at once and never sticks in `dadfailed`), then
//!   a burst of gratuitous ARP requests (sender IP = target IP = VIP, target MAC broadcast) or
//!   unsolicited neighbour advertisements to `ff02::1` with the Override flag; optionally a
//!   second burst later.
//! - **probe**: ARP requests with sender IP `0.0.0.0` (RFC 5227), or neighbour solicitations
//!   from `::` to the solicited-node group (RFC 4862); any other host claiming the address is
//!   its owner. Optionally an ICMP echo as a second opinion.
//! - **release**: `RTM_DELADDR`; pending refresh announcements are cancelled first.

pub mod claims;
pub mod config;
pub mod connections;
mod errors;
pub mod events;
pub mod frame;
pub mod handover;
mod icmp;
pub mod mac;
pub mod packet;
mod probe;
pub mod rtnl;
pub mod tickle;
mod wait;
pub mod wake;
pub mod witness;

mod adapter;

pub use adapter::NetFloatingIp;
pub use claims::{classify_claim, ClaimKind, ClaimWatchError, VipClaim, VipClaimWatch};
pub use config::{vip_label, FloatingIpConfig};
pub use connections::{established_on, ConnectionsError, TcpConnection};
pub use events::{AddressEvent, AddressEvents};
pub use handover::{ConnectionList, HandoverError, HandoverSocket};
pub use mac::MacAddr;
pub use tickle::{TickleError, TickleSender};
pub use wake::{ReopeningClaimWatch, VipAddressEvents};

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>() {}

    #[test]
    fn the_daemon_can_move_the_adapter_and_the_subscription_to_its_threads() {
        is_send::<NetFloatingIp>();
        is_send::<AddressEvents>();
        is_send::<VipClaimWatch>();
        is_send::<TickleSender>();
        is_send::<HandoverSocket>();
        // And it serves as the port behind a trait object.
        let _boxed: fn(NetFloatingIp) -> Box<dyn iscsi_ha_core::ports::FloatingIp + Send> =
            |adapter| Box::new(adapter);
    }
}
