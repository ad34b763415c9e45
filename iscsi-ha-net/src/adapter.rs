//! [`NetFloatingIp`]: the `FloatingIp` port over rtnetlink and packet sockets.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use iscsi_ha_core::ports::{FloatingIp, FloatingIpError};
use iscsi_ha_core::vip::{Vip, VipProbe, VipRefresh};
use netlink_packet_route::address::AddressFlags;

use crate::config::{vip_label, FloatingIpConfig};
use crate::errors::{from_io, from_netlink};
use crate::frame::{ArpPacket, EtherType, NdFrame};
use crate::icmp::echo_answered;
use crate::mac::MacAddr;
use crate::packet::PacketSocket;
use crate::probe::find_owner;
use crate::rtnl::{LinkInfo, NewAddress, Rtnetlink};

/// The floating-IP adapter. Its sockets live in the network namespace of the thread that
/// created the adapter (netlink) or that calls it (packet sockets): create and use it from the
/// same namespace. Needs root, or `CAP_NET_ADMIN` and `CAP_NET_RAW`.
///
/// `assign` and `announce` return once the first announcement has left; the rest of the
/// burst (and the refresh burst) follows on a background thread that `release`, a newer
/// announcement of the same address, or dropping the adapter cancels. Keep the adapter for
/// the daemon's lifetime.
#[derive(Debug)]
pub struct NetFloatingIp {
    config: FloatingIpConfig,
    rtnl: Rtnetlink,
    follow_ups: HashMap<IpAddr, FollowUp>,
    /// Send-only packet sockets by interface and ethertype, kept because closing a packet
    /// socket waits for an RCU grace period, which would add milliseconds to every assign.
    senders: HashMap<(u32, EtherType), Arc<PacketSocket>>,
}

/// Pending announcements; dropping `cancel` stops them before their next frame.
#[derive(Debug)]
struct FollowUp {
    cancel: Sender<()>,
    thread: JoinHandle<()>,
}

impl FollowUp {
    fn stop(self) {
        drop(self.cancel);
        // The thread only sends frames; if it panicked there is nothing left to undo.
        let _ = self.thread.join();
    }
}

/// The link facts an announcement or probe needs.
struct UsableLink {
    index: u32,
    mac: MacAddr,
}

impl NetFloatingIp {
    /// Opens the adapter's netlink socket.
    pub fn new(config: FloatingIpConfig) -> Result<NetFloatingIp, FloatingIpError> {
        let rtnl = Rtnetlink::open().map_err(|e| from_netlink(&e, "rtnetlink", "open"))?;
        Ok(NetFloatingIp {
            config,
            rtnl,
            follow_ups: HashMap::new(),
            senders: HashMap::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FloatingIpConfig {
        &self.config
    }

    /// The VIP's interface, or `None` when there is no interface of that name.
    fn existing_link(&mut self, vip: &Vip) -> Result<Option<LinkInfo>, FloatingIpError> {
        let name = vip.interface().as_str();
        self.rtnl
            .link_by_name(name)
            .map_err(|e| from_netlink(&e, name, "look up interface"))
    }

    fn link(&mut self, vip: &Vip) -> Result<LinkInfo, FloatingIpError> {
        let name = vip.interface().as_str();
        self.existing_link(vip)?
            .ok_or_else(|| FloatingIpError::NoSuchInterface(name.to_owned()))
    }

    /// The interface, which must be up with a carrier and have an Ethernet address.
    fn usable_link(&mut self, vip: &Vip) -> Result<UsableLink, FloatingIpError> {
        let name = vip.interface().as_str();
        let link = self.link(vip)?;
        if !link.up || !link.lower_up {
            return Err(FloatingIpError::InterfaceDown(name.to_owned()));
        }
        let mac = link.mac.ok_or_else(|| {
            FloatingIpError::Io(
                format!("{name} has no Ethernet address; ARP and neighbour discovery need one")
                    .into(),
            )
        })?;
        Ok(UsableLink {
            index: link.index,
            mac,
        })
    }

    /// An IPv6 address that was already there (added by someone else, with DAD) may have
    /// failed duplicate-address detection: the kernel will not use it, because another host
    /// answered for it. Announcing it would be wrong; say so instead.
    fn refuse_dad_failed(&mut self, vip: &Vip, index: u32) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        let failed = self
            .rtnl
            .addresses(index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?
            .iter()
            .any(|a| a.address == vip.address() && a.flags.contains(AddressFlags::Dadfailed));
        if failed {
            return Err(FloatingIpError::AddressConflict {
                address: vip.address().to_string(),
                owner: None,
            });
        }
        Ok(())
    }

    /// An announcer for `address` on `link`, over a cached send-only socket.
    fn announcer(&mut self, link: &UsableLink, address: IpAddr) -> io::Result<Announcer> {
        let (ether_type, frame) = match address {
            IpAddr::V4(v4) => (
                EtherType::Arp,
                ArpPacket::gratuitous(link.mac, v4).to_broadcast_frame(),
            ),
            IpAddr::V6(v6) => (
                EtherType::Ipv6,
                NdFrame::unsolicited_advert(link.mac, v6).to_frame(),
            ),
        };
        let socket = match self.senders.get(&(link.index, ether_type)) {
            Some(socket) => Arc::clone(socket),
            None => {
                let socket = Arc::new(PacketSocket::open_sender(link.index, ether_type)?);
                self.senders
                    .insert((link.index, ether_type), Arc::clone(&socket));
                socket
            }
        };
        Ok(Announcer {
            socket,
            ether_type,
            frame,
        })
    }

    fn cancel_follow_ups(&mut self, address: IpAddr) {
        if let Some(pending) = self.follow_ups.remove(&address) {
            pending.stop();
        }
    }

    /// Sends the first announcement now, so that a failure is reported to the caller, and
    /// leaves the rest of the burst, and after an assignment the refresh burst, to a
    /// background thread that a release, a new announcement or dropping the adapter cancels.
    fn announce_now(
        &mut self,
        vip: &Vip,
        link: &UsableLink,
        with_refresh: bool,
    ) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        let address = vip.address();
        self.cancel_follow_ups(address);
        let announcer = self
            .announcer(link, address)
            .map_err(|e| from_io(&e, name, "open packet socket"))?;
        if let Err(e) = announcer.send() {
            // A socket that failed once (interface gone) is not reused.
            self.senders.remove(&(link.index, announcer.ether_type));
            return Err(from_io(&e, name, "announce"));
        }
        let rest = self.config.announce_count.max(1) - 1;
        let refresh = self.config.refresh_delay.filter(|_| with_refresh);
        if rest == 0 && refresh.is_none() {
            return Ok(());
        }
        let count = self.config.announce_count;
        let interval = self.config.announce_interval;
        let (cancel, cancelled) = mpsc::channel::<()>();
        // Any message or a dropped sender means: stop.
        let wait =
            move |pause: Duration| cancelled.recv_timeout(pause) == Err(RecvTimeoutError::Timeout);
        let thread = thread::Builder::new()
            .name("iha-vip-announce".into())
            .spawn(move || {
                let result = announcer
                    .burst(rest, interval, true, &wait)
                    .and_then(|done| match refresh {
                        Some(delay) if done && wait(delay) => {
                            announcer.burst(count, interval, false, &wait).map(drop)
                        }
                        _ => Ok(()),
                    });
                if let Err(e) = result {
                    tracing::warn!(%address, error = %e, "follow-up announcement failed");
                }
            })
            .map_err(|e| FloatingIpError::Io(format!("start announcement thread: {e}").into()))?;
        self.follow_ups.insert(address, FollowUp { cancel, thread });
        Ok(())
    }
}

impl FloatingIp for NetFloatingIp {
    /// A missing interface cannot carry the address: `Ok(false)`, not an error.
    fn is_assigned(&mut self, vip: &Vip) -> Result<bool, FloatingIpError> {
        let name = vip.interface().as_str();
        let Some(link) = self.existing_link(vip)? else {
            return Ok(false);
        };
        let addresses = self
            .rtnl
            .addresses(link.index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?;
        Ok(addresses.iter().any(|a| a.address == vip.address()))
    }

    fn probe(&mut self, vip: &Vip) -> Result<VipProbe, FloatingIpError> {
        let name = vip.interface().as_str();
        let link = self.usable_link(vip)?;
        // Every MAC of this host, so that the probe also works while we hold the address
        // ourselves: only another host's answer counts.
        let mut ours = self
            .rtnl
            .host_macs()
            .map_err(|e| from_netlink(&e, name, "list links"))?;
        ours.push(link.mac);
        let owner = find_owner(
            link.index,
            link.mac,
            &ours,
            vip.address(),
            self.config.probe_timeout,
            self.config.probe_count,
        )
        .map_err(|e| from_io(&e, name, "probe"))?;
        if let Some(owner) = owner {
            return Ok(VipProbe::LiveElsewhere {
                owner: Some(owner.to_string()),
            });
        }
        // Pinging an address we hold ourselves would only reach our own stack (the kernel
        // routes it to `lo`), so while we hold it the second opinion is skipped: an answer
        // would be ours and prove nothing about another host.
        if self.config.icmp_check && !self.is_assigned(vip)? {
            let answered = echo_answered(name, vip.address(), self.config.icmp_timeout)
                .map_err(|e| from_io(&e, name, "ICMP echo check"))?;
            if answered {
                // The echo made the kernel resolve the address: its neighbour entry names
                // the owner. Not finding one only loses the detail, not the answer.
                let owner = self
                    .rtnl
                    .neighbour_mac(link.index, vip.address())
                    .ok()
                    .flatten()
                    .map(|mac| mac.to_string());
                return Ok(VipProbe::LiveElsewhere { owner });
            }
        }
        Ok(VipProbe::Free)
    }

    fn assign(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        let link = self.usable_link(vip)?;
        let new = NewAddress {
            index: link.index,
            address: vip.address(),
            prefix: vip.prefix(),
            label: Some(vip_label(name)),
            nodad: true,
        };
        self.rtnl
            .add_address(&new)
            .map_err(|e| from_netlink(&e, name, "add address"))?;
        if vip.address().is_ipv6() {
            self.refuse_dad_failed(vip, link.index)?;
        }
        tracing::info!(%vip, "floating address assigned");
        self.announce_now(vip, &link, true)
    }

    fn announce(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        let link = self.usable_link(vip)?;
        self.announce_now(vip, &link, false)
    }

    /// One frame on the cached sender, after one address listing: the address must be on
    /// the interface now (a VIP removed behind the daemon's back is not announced), and an
    /// IPv6 address that failed duplicate-address detection is a conflict, as in `assign`.
    /// A burst under way is left alone.
    fn refresh(&mut self, vip: &Vip) -> Result<VipRefresh, FloatingIpError> {
        let name = vip.interface().as_str();
        let Some(link) = self.existing_link(vip)? else {
            return Ok(VipRefresh::NotHere);
        };
        let entry = self
            .rtnl
            .addresses(link.index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?
            .into_iter()
            .find(|a| a.address == vip.address());
        let Some(entry) = entry else {
            return Ok(VipRefresh::NotHere);
        };
        if entry.flags.contains(AddressFlags::Dadfailed) {
            return Err(FloatingIpError::AddressConflict {
                address: vip.address().to_string(),
                owner: None,
            });
        }
        let link = self.usable_link(vip)?;
        let announcer = self
            .announcer(&link, vip.address())
            .map_err(|e| from_io(&e, name, "open packet socket"))?;
        if let Err(e) = announcer.send() {
            self.senders.remove(&(link.index, announcer.ether_type));
            return Err(from_io(&e, name, "refresh announcement"));
        }
        Ok(VipRefresh::Sent)
    }

    /// Releasing on an interface that no longer exists succeeds: the address went with it,
    /// and a host that must stop serving may not be held up by a failing release.
    fn release(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        // No announcement for an address we are giving up may leave after this point.
        self.cancel_follow_ups(vip.address());
        let Some(link) = self.existing_link(vip)? else {
            tracing::info!(%vip, "interface gone, so the floating address is too");
            return Ok(());
        };
        let present = self
            .rtnl
            .addresses(link.index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?
            .into_iter()
            .filter(|a| a.address == vip.address());
        for entry in present {
            match self
                .rtnl
                .delete_address(link.index, entry.address, entry.prefix)
            {
                // The interface vanished between the listing and the removal.
                Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(()),
                other => other.map_err(|e| from_netlink(&e, name, "delete address"))?,
            }
            tracing::info!(%vip, "floating address released");
        }
        Ok(())
    }
}

impl Drop for NetFloatingIp {
    fn drop(&mut self) {
        for (_, pending) in self.follow_ups.drain() {
            pending.stop();
        }
    }
}

/// A socket and the announcement frame for one address.
struct Announcer {
    socket: Arc<PacketSocket>,
    ether_type: EtherType,
    frame: Vec<u8>,
}

impl Announcer {
    /// Sends one frame.
    fn send(&self) -> io::Result<()> {
        self.socket.send(&self.frame)
    }

    /// Sends `count` frames `interval` apart (after a first pause when `pause_first`), waiting
    /// with `wait`; returns `false` when `wait` says stop.
    fn burst(
        &self,
        count: u32,
        interval: Duration,
        pause_first: bool,
        wait: impl Fn(Duration) -> bool,
    ) -> io::Result<bool> {
        for n in 0..count {
            if (n > 0 || pause_first) && !wait(interval) {
                return Ok(false);
            }
            self.send()?;
        }
        Ok(true)
    }
}
