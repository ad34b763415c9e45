//! A subscription to the kernel's address notifications (`RTNLGRP_IPV4_IFADDR`,
//! `RTNLGRP_IPV6_IFADDR`), so that the daemon learns at once when someone removes the VIP.
//!
//! The subscription is a non-blocking netlink socket: register it with `poll`/`epoll` through
//! [`AsFd`]/[`AsRawFd`], and when it is readable call [`AddressEvents::drain`].

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use iscsi_ha_core::ports::FloatingIpError;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use crate::errors::from_netlink;
use crate::rtnl::{address_entry, parse_messages, AddressEntry, NetlinkError};

/// `RTNLGRP_IPV4_IFADDR` from `linux/rtnetlink.h`.
const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV6_IFADDR` from `linux/rtnetlink.h`.
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RECV_BUFFER_LEN: usize = 64 * 1024;

/// One change to the addresses of this host's interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressEvent {
    /// An address appeared (`RTM_NEWADDR`; also sent when its flags change).
    Added(AddressEntry),
    /// An address went away (`RTM_DELADDR`).
    Removed(AddressEntry),
    /// The kernel dropped notifications because we read too slowly (`ENOBUFS`): whatever
    /// happened meanwhile is unknown, so re-read the state.
    Lost,
}

impl AddressEvent {
    /// Whether the event may concern `address`: an event for it, or lost events.
    pub fn may_concern(&self, address: IpAddr) -> bool {
        match self {
            AddressEvent::Added(e) | AddressEvent::Removed(e) => e.address == address,
            AddressEvent::Lost => true,
        }
    }
}

/// A live subscription to address changes in the network namespace of the thread that
/// created it.
#[derive(Debug)]
pub struct AddressEvents {
    socket: Socket,
    buffer: Vec<u8>,
}

impl AddressEvents {
    /// Subscribes to IPv4 and IPv6 address changes.
    pub fn subscribe() -> Result<AddressEvents, FloatingIpError> {
        let open = || -> Result<Socket, NetlinkError> {
            let mut socket = Socket::new(NETLINK_ROUTE)?;
            socket.bind_auto()?;
            socket.add_membership(RTNLGRP_IPV4_IFADDR)?;
            socket.add_membership(RTNLGRP_IPV6_IFADDR)?;
            socket.set_non_blocking(true)?;
            Ok(socket)
        };
        let socket = open().map_err(|e| from_netlink(&e, "address events", "subscribe"))?;
        Ok(AddressEvents {
            socket,
            buffer: vec![0; RECV_BUFFER_LEN],
        })
    }

    /// Reads every notification queued now, without blocking, and returns them in order
    /// (empty when nothing was queued).
    pub fn drain(&mut self) -> Result<Vec<AddressEvent>, FloatingIpError> {
        let mut events = Vec::new();
        loop {
            match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Ok(len) => {
                    let datagram = self.buffer.get(..len).unwrap_or_default();
                    let messages = parse_messages(datagram)
                        .map_err(|e| from_netlink(&e, "address events", "read"))?;
                    events.extend(messages.into_iter().filter_map(|m| match m.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                            address_entry(&a).map(AddressEvent::Added)
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => {
                            address_entry(&a).map(AddressEvent::Removed)
                        }
                        _ => None,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(events),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    events.push(AddressEvent::Lost);
                }
                Err(e) => return Err(from_netlink(&NetlinkError::Io(e), "address events", "read")),
            }
        }
    }
}

impl AsFd for AddressEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for AddressEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtnl::{NewAddress, Rtnetlink};
    use std::net::Ipv4Addr;

    /// Runs `f` on a thread with a network namespace of its own (only `lo`), which vanishes
    /// with the thread. Needs root, like the namespace tests.
    fn in_fresh_namespace<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root to create a network namespace; run the tests as root"
        );
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("unshare(CLONE_NEWNET): {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    #[test]
    fn an_overflowing_subscription_reports_lost_events() {
        let events = in_fresh_namespace(|| {
            let mut events = AddressEvents::subscribe().unwrap();
            // The smallest buffer the kernel allows holds a handful of notifications.
            events.socket.set_rx_buf_sz(1usize).unwrap();
            let mut rtnl = Rtnetlink::open().unwrap();
            let lo = rtnl.link_by_name("lo").unwrap().unwrap();
            for n in 1..=200u8 {
                rtnl.add_address(&NewAddress {
                    index: lo.index,
                    address: IpAddr::V4(Ipv4Addr::new(10, 213, 9, n)),
                    prefix: 32,
                    label: None,
                    nodad: false,
                })
                .unwrap();
            }
            let first = events.drain().unwrap();
            // After the overflow is reported the subscription goes on working.
            rtnl.delete_address(lo.index, IpAddr::V4(Ipv4Addr::new(10, 213, 9, 7)), 32)
                .unwrap();
            let after = events.drain().unwrap();
            (first, after)
        });
        let (first, after) = events;
        assert!(
            first.contains(&AddressEvent::Lost),
            "{} events, none Lost",
            first.len()
        );
        assert!(
            first.len() < 200,
            "all {} notifications fitted",
            first.len()
        );
        assert!(
            after.iter().any(|e| matches!(e, AddressEvent::Removed(a)
                if a.address == IpAddr::V4(Ipv4Addr::new(10, 213, 9, 7)))),
            "{after:?}"
        );
    }
}
