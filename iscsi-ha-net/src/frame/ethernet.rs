//! The Ethernet II header.

use super::{take, take_u16, FrameError};
use crate::mac::MacAddr;

/// Length of an Ethernet II header (no VLAN tag: the kernel strips it before `AF_PACKET`).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// The protocol carried in an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// `0x0806`.
    Arp,
    /// `0x86dd`.
    Ipv6,
    /// Anything else.
    Other(u16),
}

impl EtherType {
    /// The value in network byte order semantics (as it appears on the wire).
    pub fn value(self) -> u16 {
        match self {
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Other(v) => v,
        }
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Other(other),
        }
    }
}

/// Destination, source and protocol of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Where the frame goes.
    pub destination: MacAddr,
    /// Who sent it.
    pub source: MacAddr,
    /// What it carries.
    pub ether_type: EtherType,
}

impl EthernetHeader {
    /// Appends the header's 14 bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.destination.0);
        out.extend_from_slice(&self.source.0);
        out.extend_from_slice(&self.ether_type.value().to_be_bytes());
    }

    /// Parses the header at the start of `frame`; returns it and the payload.
    pub fn parse(frame: &[u8]) -> Result<(EthernetHeader, &[u8]), FrameError> {
        let destination = MacAddr(take::<6>(frame, 0)?);
        let source = MacAddr(take::<6>(frame, 6)?);
        let ether_type = EtherType::from(take_u16(frame, 12)?);
        let payload = frame.get(ETHERNET_HEADER_LEN..).unwrap_or_default();
        Ok((
            EthernetHeader {
                destination,
                source,
                ether_type,
            },
            payload,
        ))
    }
}
