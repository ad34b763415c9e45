//! [`NetFloatingIp`]: the `FloatingIp` port over rtnetlink and packet sockets.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use iscsi_ha_core::ports::{FloatingIp, FloatingIpError};
use iscsi_ha_core::vip::{Vip, VipProbe};

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
#[derive(Debug)]
pub struct NetFloatingIp {
    config: FloatingIpConfig,
    rtnl: Rtnetlink,
    refreshes: HashMap<IpAddr, Refresh>,
}

/// A pending refresh burst; dropping `cancel` stops it before its next frame.
#[derive(Debug)]
struct Refresh {
    cancel: Sender<()>,
    thread: JoinHandle<()>,
}

impl Refresh {
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
            refreshes: HashMap::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FloatingIpConfig {
        &self.config
    }

    fn link(&mut self, vip: &Vip) -> Result<LinkInfo, FloatingIpError> {
        let name = vip.interface().as_str();
        self.rtnl
            .link_by_name(name)
            .map_err(|e| from_netlink(&e, name, "look up interface"))?
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
            FloatingIpError::Io(format!(
                "{name} has no Ethernet address; ARP and neighbour discovery need one"
            ))
        })?;
        Ok(UsableLink {
            index: link.index,
            mac,
        })
    }

    fn cancel_refresh(&mut self, address: IpAddr) {
        if let Some(refresh) = self.refreshes.remove(&address) {
            refresh.stop();
        }
    }

    fn schedule_refresh(&mut self, vip: &Vip, link: &UsableLink) -> Result<(), FloatingIpError> {
        self.cancel_refresh(vip.address());
        let Some(delay) = self.config.refresh_delay else {
            return Ok(());
        };
        let name = vip.interface().as_str();
        let announcer = Announcer::open(link, vip.address())
            .map_err(|e| from_io(&e, name, "open packet socket"))?;
        let (cancel, cancelled) = mpsc::channel::<()>();
        let count = self.config.announce_count;
        let interval = self.config.announce_interval;
        let address = vip.address();
        let thread = thread::Builder::new()
            .name("iha-vip-refresh".into())
            .spawn(move || {
                // Any message or a dropped sender means: stop.
                if cancelled.recv_timeout(delay) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                if let Err(e) = announcer.burst(count, interval, |pause| {
                    cancelled.recv_timeout(pause) == Err(RecvTimeoutError::Timeout)
                }) {
                    tracing::warn!(%address, error = %e, "refresh announcement failed");
                }
            })
            .map_err(|e| FloatingIpError::Io(format!("start refresh thread: {e}")))?;
        self.refreshes
            .insert(vip.address(), Refresh { cancel, thread });
        Ok(())
    }

    fn announce_now(&mut self, vip: &Vip, link: &UsableLink) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        let announcer = Announcer::open(link, vip.address())
            .map_err(|e| from_io(&e, name, "open packet socket"))?;
        announcer
            .burst(
                self.config.announce_count,
                self.config.announce_interval,
                |pause| {
                    thread::sleep(pause);
                    true
                },
            )
            .map_err(|e| from_io(&e, name, "announce"))
    }
}

impl FloatingIp for NetFloatingIp {
    fn is_assigned(&mut self, vip: &Vip) -> Result<bool, FloatingIpError> {
        let name = vip.interface().as_str();
        let link = self.link(vip)?;
        let addresses = self
            .rtnl
            .addresses(link.index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?;
        Ok(addresses.iter().any(|a| a.address == vip.address()))
    }

    fn probe(&mut self, vip: &Vip) -> Result<VipProbe, FloatingIpError> {
        let name = vip.interface().as_str();
        let link = self.usable_link(vip)?;
        let owner = find_owner(
            link.index,
            link.mac,
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
        // Pinging an address we hold ourselves would only reach our own stack.
        if self.config.icmp_check && !self.is_assigned(vip)? {
            let answered = echo_answered(name, vip.address(), self.config.icmp_timeout)
                .map_err(|e| from_io(&e, name, "ICMP echo check"))?;
            if answered {
                return Ok(VipProbe::LiveElsewhere { owner: None });
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
        tracing::info!(%vip, "floating address assigned");
        self.announce_now(vip, &link)?;
        self.schedule_refresh(vip, &link)
    }

    fn announce(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        let link = self.usable_link(vip)?;
        self.announce_now(vip, &link)
    }

    fn release(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        let name = vip.interface().as_str();
        // No announcement for an address we are giving up may leave after this point.
        self.cancel_refresh(vip.address());
        let link = self.link(vip)?;
        let present = self
            .rtnl
            .addresses(link.index)
            .map_err(|e| from_netlink(&e, name, "list addresses"))?
            .into_iter()
            .filter(|a| a.address == vip.address());
        for entry in present {
            self.rtnl
                .delete_address(link.index, entry.address, entry.prefix)
                .map_err(|e| from_netlink(&e, name, "delete address"))?;
            tracing::info!(%vip, "floating address released");
        }
        Ok(())
    }
}

impl Drop for NetFloatingIp {
    fn drop(&mut self) {
        for (_, refresh) in self.refreshes.drain() {
            refresh.stop();
        }
    }
}

/// A socket and the announcement frame for one address.
struct Announcer {
    socket: PacketSocket,
    frame: Vec<u8>,
}

impl Announcer {
    fn open(link: &UsableLink, address: IpAddr) -> io::Result<Announcer> {
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
        Ok(Announcer {
            socket: PacketSocket::open(link.index, ether_type)?,
            frame,
        })
    }

    /// Sends `count` frames, the first at once, calling `pause` between them; stops early
    /// when `pause` returns `false`.
    fn burst(
        &self,
        count: u32,
        interval: Duration,
        mut pause: impl FnMut(Duration) -> bool,
    ) -> io::Result<()> {
        for n in 0..count.max(1) {
            if n > 0 && !pause(interval) {
                return Ok(());
            }
            self.socket.send(&self.frame)?;
        }
        Ok(())
    }
}
