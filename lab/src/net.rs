//! The lab's network: namespace `ihalab-net` holds bridge `br0` with two taps per VM
//! (`ihalab-tap1`, `ihalab-tap2` for `eth0`; `ihalab-spare1`, `ihalab-spare2` for a spare
//! `eth1`, down until a test uses it) and a veth to namespace `ihalab-ini`, the initiator
//! (10.99.0.10). The VMs are 10.99.0.1 and 10.99.0.2; 10.99.0.100 is free for a floating address.
//! The same network carries IPv6 too, on the ULA prefix fd99::/64: the VMs are fd99::1 and
//! fd99::2, the initiator fd99::10, and fd99::100 is free for an IPv6 floating address.
//! Nothing outside these namespaces is touched.
//!
//! The lab is test scaffolding, so it builds this with `ip` like an administrator would.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use crate::error::{LabError, Result};
use crate::host::run;

/// The namespace with the bridge and the taps.
pub const NET_NS: &str = "ihalab-net";
/// The initiator's namespace.
pub const INITIATOR_NS: &str = "ihalab-ini";
/// The bridge inside [`NET_NS`].
pub const BRIDGE: &str = "br0";
/// Prefix length of the lab subnet.
pub const PREFIX_LEN: u8 = 24;
/// The initiator's address.
pub const INITIATOR_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
/// A free address for a floating IP (VIP) in the lab subnet.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);

/// Prefix length of the lab's IPv6 subnet (fd99::/64).
pub const PREFIX_LEN6: u8 = 64;
/// The initiator's IPv6 address.
pub const INITIATOR_IP6: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x10);
/// A free IPv6 address for a floating IP in the lab's IPv6 subnet.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x100);

/// The address of node `id` (1 or 2).
pub fn node_ip(id: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, id)
}

/// The IPv6 address of node `id` (1 or 2).
pub fn node_ip6(id: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, u16::from(id))
}

/// The address family of the floating address a lab cluster uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VipFamily {
    /// [`VIP`], 10.99.0.100/24.
    #[default]
    V4,
    /// [`VIP6`], fd99::100/64: moved with unsolicited neighbour advertisements, not ARP.
    V6,
}

impl VipFamily {
    /// The floating address.
    pub fn vip(self) -> IpAddr {
        match self {
            VipFamily::V4 => IpAddr::V4(VIP),
            VipFamily::V6 => IpAddr::V6(VIP6),
        }
    }

    /// The floating address with the lab subnet's prefix length, as `[vip] address` takes it.
    pub fn vip_cidr(self) -> String {
        match self {
            VipFamily::V4 => format!("{VIP}/{PREFIX_LEN}"),
            VipFamily::V6 => format!("{VIP6}/{PREFIX_LEN6}"),
        }
    }

    /// The floating address as the host part of a URL (IPv6 in brackets, RFC 3986).
    pub fn url_host(self) -> String {
        match self {
            VipFamily::V4 => VIP.to_string(),
            VipFamily::V6 => format!("[{VIP6}]"),
        }
    }

    /// The lab subnet of this family, the range of initiators a target admits.
    pub fn subnet(self) -> &'static str {
        match self {
            VipFamily::V4 => "10.99.0.0/24",
            VipFamily::V6 => "fd99::/64",
        }
    }
}

/// The tap device of node `id` inside [`NET_NS`].
pub fn tap_name(id: u8) -> String {
    format!("ihalab-tap{id}")
}

/// The tap of node `id`'s spare NIC (`eth1` in the guest, down until a test uses it) inside
/// [`NET_NS`], on the same bridge: a second interface a floating address can sit on, and that
/// a test can make disappear (unbinding its driver) without touching replication.
pub fn spare_tap_name(id: u8) -> String {
    format!("ihalab-spare{id}")
}

/// The MAC of node `id`'s spare NIC is this prefix followed by `id` in two hex digits.
pub const SPARE_MAC_PREFIX: &str = "52:54:00:99:01:";

/// The bind-mounted namespace file `ip netns` keeps for `ns`.
pub(crate) fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Opens a namespace file for `setns(2)`.
pub(crate) fn open_netns(ns: &str) -> Result<File> {
    let path = netns_path(ns);
    File::open(&path).map_err(|e| LabError::io(format!("opening {}", path.display()), e))
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// Owns the namespaces (and so the bridge, taps and veth in them); removes them on drop.
#[derive(Debug)]
pub struct Topology {
    owned: bool,
}

impl Topology {
    /// Creates the topology, after removing what a crashed run may have left.
    pub fn create() -> Result<Self> {
        remove_all();
        let topo = Self { owned: true };
        let n = NET_NS;
        ip(&["netns", "add", NET_NS])?;
        ip(&["netns", "add", INITIATOR_NS])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        // No multicast snooping: the bridge floods neighbour discovery as a plain switch
        // would, whether or not the guests' MLD reports reached it yet.
        ip(&[
            "-n",
            n,
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", n, "link", "set", BRIDGE, "up"])?;
        for tap in [1, 2]
            .into_iter()
            .flat_map(|id| [tap_name(id), spare_tap_name(id)])
        {
            ip(&["-n", n, "tuntap", "add", &tap, "mode", "tap"])?;
            ip(&["-n", n, "link", "set", &tap, "master", BRIDGE])?;
            ip(&["-n", n, "link", "set", &tap, "up"])?;
        }
        ip(&[
            "-n",
            n,
            "link",
            "add",
            "ini-port",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            INITIATOR_NS,
        ])?;
        ip(&["-n", n, "link", "set", "ini-port", "master", BRIDGE])?;
        ip(&["-n", n, "link", "set", "ini-port", "up"])?;
        let i = INITIATOR_NS;
        let addr = format!("{INITIATOR_IP}/{PREFIX_LEN}");
        ip(&["-n", i, "link", "set", "lo", "up"])?;
        ip(&["-n", i, "addr", "add", &addr, "dev", "eth0"])?;
        enable_ipv6(i, "eth0")?;
        // nodad: the lab's own address is usable at once instead of after a second of DAD.
        let addr6 = format!("{INITIATOR_IP6}/{PREFIX_LEN6}");
        ip(&["-n", i, "addr", "add", &addr6, "dev", "eth0", "nodad"])?;
        ip(&["-n", i, "link", "set", "eth0", "up"])?;
        Ok(topo)
    }

    /// Leaves the namespaces in place when dropped (a lab left running by `iha-lab up`).
    pub(crate) fn disown(mut self) {
        self.owned = false;
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.owned {
            remove_all();
        }
    }
}

/// Turns IPv6 on for `dev` in namespace `ns` (a host may turn it off by default).
fn enable_ipv6(ns: &str, dev: &str) -> Result<()> {
    for key in ["all", dev] {
        run(Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{key}.disable_ipv6=0"),
        ]))?;
    }
    Ok(())
}

/// Removes the lab's namespaces if they exist (idempotent; failures are ignored because this
/// also runs from `Drop`, and what is left is removed by the next run or `iha-lab down`).
pub fn remove_all() {
    for ns in [INITIATOR_NS, NET_NS] {
        if netns_path(ns).exists() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Sets the host side of node `id`'s link up or down (a pulled cable / dead switch port).
pub(crate) fn set_link(id: u8, up: bool) -> Result<()> {
    set_tap(&tap_name(id), up)
}

/// As [`set_link`], for node `id`'s spare NIC (`eth1`) only: replication on `eth0` goes on.
pub(crate) fn set_spare_link(id: u8, up: bool) -> Result<()> {
    set_tap(&spare_tap_name(id), up)
}

fn set_tap(tap: &str, up: bool) -> Result<()> {
    ip(&[
        "-n",
        NET_NS,
        "link",
        "set",
        tap,
        if up { "up" } else { "down" },
    ])
}
