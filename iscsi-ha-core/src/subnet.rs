//! Address ranges used in initiator access lists.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 address range with its host bits cleared (`10.0.0.0/24`), or a single
/// address (full-length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// The address part does not parse.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix does not parse or is too long for the address family.
    #[error("prefix length in {text:?} must be 0..={max}")]
    Prefix {
        /// The refused text.
        text: String,
        /// The family's longest prefix.
        max: u8,
    },
}

impl Subnet {
    /// A range from an address and a prefix length; host bits are cleared, so `10.0.0.7/24`
    /// becomes `10.0.0.0/24`.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, SubnetError> {
        let max = max_prefix(address);
        if prefix > max {
            return Err(SubnetError::Prefix {
                text: format!("{address}/{prefix}"),
                max,
            });
        }
        Ok(Self {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` is inside this range (same family, same network bits).
    pub fn contains(&self, address: IpAddr) -> bool {
        max_prefix(address) == max_prefix(self.network)
            && mask(address, self.prefix) == self.network
    }

    /// The IPv4 broadcast address (every host bit set); `None` for IPv6, which has none, and
    /// for /31 and /32, whose addresses are all hosts (RFC 3021).
    pub fn broadcast(&self) -> Option<IpAddr> {
        match self.network {
            IpAddr::V4(v4) if self.prefix < 31 => {
                let host_bits = u32::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0);
                Some(IpAddr::V4((u32::from(v4) | host_bits).into()))
            }
            _ => None,
        }
    }

    /// Whether the network address itself is reserved rather than a host's: true up to /30 for
    /// IPv4 and /126 for IPv6 (the subnet-router anycast address, RFC 4291 2.6.1).
    pub fn network_is_reserved(&self) -> bool {
        self.prefix < max_prefix(self.network).saturating_sub(1)
    }
}

/// The longest prefix of the address's family: 32 or 128.
pub fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & keep).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & keep).into())
        }
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| SubnetError::Address(addr.to_string()))?;
        let max = max_prefix(address);
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().map_err(|_| SubnetError::Prefix {
                text: text.to_string(),
                max,
            })?,
        };
        Self::new(address, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = SubnetError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Subnet> for String {
    fn from(value: Subnet) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Subnet {
    /// A single address (a full-length prefix) prints without a prefix: it names one host,
    /// not a range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_host_bits() {
        let s: Result<Subnet, _> = "10.1.2.3/24".parse();
        assert_eq!(s.map(|s| s.to_string()), Ok("10.1.2.0/24".to_string()));
        let s: Result<Subnet, _> = "fd00::1:2/112".parse();
        assert_eq!(s.map(|s| s.to_string()), Ok("fd00::1:0/112".to_string()));
        let s: Result<Subnet, _> = "0.0.0.0/0".parse();
        assert_eq!(s.map(|s| s.to_string()), Ok("0.0.0.0/0".to_string()));
    }

    #[test]
    fn single_address_has_no_prefix() {
        let s: Result<Subnet, _> = "192.168.7.9".parse();
        assert_eq!(s.map(|s| s.to_string()), Ok("192.168.7.9".to_string()));
    }

    #[test]
    fn refuses_bad_prefixes_and_addresses() {
        assert!(matches!(
            "10.0.0.0/33".parse::<Subnet>(),
            Err(SubnetError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "::/129".parse::<Subnet>(),
            Err(SubnetError::Prefix { max: 128, .. })
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Subnet>(),
            Err(SubnetError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Subnet>(),
            Err(SubnetError::Prefix { .. })
        ));
    }
}
