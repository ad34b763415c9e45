//! The floating IP address (VIP) that initiators use.

use crate::subnet::{max_prefix, Subnet};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Longest Linux interface name (`IFNAMSIZ` less the NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// A network interface name the kernel would accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InterfaceName(String);

/// Why a text is not an interface name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an interface name: 1..=15 bytes, no '/', ':' or whitespace, not '.' or '..'")]
pub struct InterfaceNameError(pub String);

impl InterfaceName {
    /// Checks and wraps an interface name.
    pub fn new(name: impl Into<String>) -> Result<Self, InterfaceNameError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= MAX_INTERFACE_NAME_LEN
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
        if ok {
            Ok(Self(name))
        } else {
            Err(InterfaceNameError(name))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InterfaceName {
    type Error = InterfaceNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<InterfaceName> for String {
    fn from(value: InterfaceName) -> Self {
        value.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The floating address, its prefix and the interface it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vip {
    address: IpAddr,
    prefix: u8,
    interface: InterfaceName,
}

/// Why a VIP is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipError {
    /// The prefix is longer than the family allows.
    #[error("prefix /{prefix} is out of range for {address}: 0..={max}")]
    Prefix {
        /// The address.
        address: IpAddr,
        /// The refused prefix.
        prefix: u8,
        /// The family's longest prefix.
        max: u8,
    },
    /// The address can never be a host's address.
    #[error("{0} cannot be a floating address (unspecified, multicast, loopback or broadcast)")]
    Unusable(IpAddr),
    /// The address is its own subnet's network or broadcast address, which no host may hold.
    #[error("{address} is the {which} address of {subnet}, not a host address: pick one inside it, e.g. {example}/{prefix}")]
    NotAHost {
        /// The address.
        address: IpAddr,
        /// Its prefix.
        prefix: u8,
        /// The subnet it belongs to.
        subnet: Subnet,
        /// `network` or `broadcast`.
        which: &'static str,
        /// A host address of the same subnet.
        example: IpAddr,
    },
}

impl Vip {
    /// Checks and builds a VIP.
    pub fn new(address: IpAddr, prefix: u8, interface: InterfaceName) -> Result<Self, VipError> {
        let max = max_prefix(address);
        if prefix > max {
            return Err(VipError::Prefix {
                address,
                prefix,
                max,
            });
        }
        let unusable = address.is_unspecified()
            || address.is_multicast()
            || address.is_loopback()
            || matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
        if unusable {
            return Err(VipError::Unusable(address));
        }
        if let Ok(subnet) = Subnet::new(address, prefix) {
            let which = if subnet.network_is_reserved() && address == subnet.network() {
                Some("network")
            } else if subnet.broadcast() == Some(address) {
                Some("broadcast")
            } else {
                None
            };
            if let Some(which) = which {
                return Err(VipError::NotAHost {
                    address,
                    prefix,
                    subnet,
                    which,
                    example: first_host(subnet),
                });
            }
        }
        Ok(Self {
            address,
            prefix,
            interface,
        })
    }

    /// The address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The interface it is assigned on.
    pub fn interface(&self) -> &InterfaceName {
        &self.interface
    }
}

/// The first address after the network address (for advice only).
fn first_host(subnet: Subnet) -> IpAddr {
    match subnet.network() {
        IpAddr::V4(v4) => IpAddr::V4(u32::from(v4).wrapping_add(1).into()),
        IpAddr::V6(v6) => IpAddr::V6(u128::from(v6).wrapping_add(1).into()),
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} on {}", self.address, self.prefix, self.interface)
    }
}

/// What a probe for the VIP on the network found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VipProbe {
    /// Nobody answered: the address is free to take.
    Free,
    /// Another host answers for the address.
    LiveElsewhere {
        /// The answering host's link-layer address, when known (`aa:bb:cc:dd:ee:ff`).
        owner: Option<String>,
    },
}

/// What a periodic announcement of the VIP ([`crate::ports::FloatingIp::refresh`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VipRefresh {
    /// One announcement left.
    Sent,
    /// The VIP is not on its interface (released, removed by hand, the interface gone):
    /// nothing was sent, since announcing an address this host does not hold would draw
    /// initiators to nothing.
    NotHere,
}

/// Another host claiming the VIP while it is here: an ARP reply, a gratuitous ARP or a
/// neighbour advertisement for our address from a link-layer address that is not ours, seen
/// by the ongoing conflict watch (RFC 5227 section 2.4) or by a probe sent while holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipClaim {
    /// The claimant's link-layer address, when known (`aa:bb:cc:dd:ee:ff`).
    pub owner: Option<String>,
    /// How it was seen (e.g. "gratuitous ARP", "reply to our probe").
    pub how: String,
}

impl fmt::Display for VipClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(o) => write!(f, "{} from {o}", self.how),
            None => f.write_str(&self.how),
        }
    }
}

/// What is known of the VIP on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// The address is assigned to the interface here.
    pub here: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifname(n: &str) -> InterfaceName {
        InterfaceName::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn prefix_out_of_range_is_refused() {
        let v4: IpAddr = [10, 0, 0, 3].into();
        assert!(matches!(
            Vip::new(v4, 33, ifname("eth0")),
            Err(VipError::Prefix { max: 32, .. })
        ));
        let v6: IpAddr = "fd00::3".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(Vip::new(v6, 64, ifname("eth0")).is_ok());
        assert!(matches!(
            Vip::new(v6, 129, ifname("eth0")),
            Err(VipError::Prefix { max: 128, .. })
        ));
    }

    #[test]
    fn unusable_addresses_are_refused() {
        for a in [
            "0.0.0.0",
            "127.0.0.5",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "ff02::1",
        ] {
            let addr: IpAddr = a.parse().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                matches!(
                    Vip::new(addr, 24.min(max_prefix(addr)), ifname("eth0")),
                    Err(VipError::Unusable(_))
                ),
                "{a}"
            );
        }
    }

    #[test]
    fn the_network_and_broadcast_addresses_of_its_own_prefix_are_refused() {
        let refused = |a: &str, prefix: u8| {
            let addr: IpAddr = a.parse().unwrap_or_else(|e| panic!("{e}"));
            match Vip::new(addr, prefix, ifname("eth0")) {
                Err(VipError::NotAHost { which, .. }) => which,
                other => panic!("{a}/{prefix}: {other:?}"),
            }
        };
        assert_eq!(refused("10.10.10.0", 24), "network");
        assert_eq!(refused("10.10.10.255", 24), "broadcast");
        assert_eq!(refused("10.10.10.3", 30), "broadcast");
        assert_eq!(refused("fd00::", 64), "network");
        let err = Vip::new([10, 10, 10, 255].into(), 24, ifname("eth0"));
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("10.10.10.255 is the broadcast address of 10.10.10.0/24, not a host address: pick one inside it, e.g. 10.10.10.1/24".to_string())
        );
        // Point-to-point prefixes have no network or broadcast address (RFC 3021).
        for (a, prefix) in [
            ("10.0.0.0", 31),
            ("10.0.0.1", 31),
            ("10.0.0.7", 32),
            ("fd00::", 127),
        ] {
            let addr: IpAddr = a.parse().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                Vip::new(addr, prefix, ifname("eth0")).is_ok(),
                "{a}/{prefix}"
            );
        }
        assert!(Vip::new([10, 10, 10, 254].into(), 24, ifname("eth0")).is_ok());
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(InterfaceName::new("xenbr1").is_ok());
        assert!(InterfaceName::new("bond0.100").is_ok());
        for bad in ["", "a/b", "x y", "eth0:1", ".", "0123456789abcdef"] {
            assert!(InterfaceName::new(bad).is_err(), "{bad}");
        }
    }
}
