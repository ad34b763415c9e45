//! Wire formats of the frames the adapter sends and reads on `AF_PACKET` sockets: Ethernet
//! headers, ARP for IPv4 and neighbour discovery (ICMPv6 NS/NA) for IPv6; and the TCP tickle
//! ACK, an IP packet for raw IP sockets (see [`tickle_packet`]).
//!
//! Pure codecs without I/O: encoding builds a whole Ethernet frame, decoding takes whatever
//! bytes a socket returned and either yields a typed value or a [`FrameError`], never a panic.

mod arp;
mod ethernet;
mod ndisc;
mod tickle;

pub use arp::{ArpOperation, ArpPacket};
pub use ethernet::{EtherType, EthernetHeader};
pub use ndisc::{
    all_nodes_mac, solicited_node, NdFrame, NdMessage, NeighbourAdvert, NeighbourSolicit,
    ALL_NODES, ND_HOP_LIMIT,
};
pub use tickle::{
    canonical, tickle_packet, IPV4_HEADER_LEN, IPV6_HEADER_LEN, TCP_HEADER_LEN, TICKLE_HOP_LIMIT,
    TICKLE_WINDOW,
};

/// Why some bytes are not the frame we look for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the format needs.
    #[error("frame truncated: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes the format needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// A field holds a value this codec does not handle (another protocol, another hardware type).
    #[error("not handled: {0}")]
    Unsupported(String),
    /// A field's value breaks the protocol's rules.
    #[error("invalid frame: {0}")]
    Invalid(String),
}

/// Reads `N` bytes at `at`, or reports how many were needed.
fn take<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], FrameError> {
    let needed = at.saturating_add(N);
    bytes
        .get(at..needed)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(FrameError::Truncated {
            needed,
            got: bytes.len(),
        })
}

fn take_u16(bytes: &[u8], at: usize) -> Result<u16, FrameError> {
    take::<2>(bytes, at).map(u16::from_be_bytes)
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`, each of even length
/// except possibly the last.
pub(crate) fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let hi = pair.first().copied().unwrap_or(0);
            let lo = pair.get(1).copied().unwrap_or(0);
            sum += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold above leaves at most 16 bits.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, complemented 220d.
        assert_eq!(
            internet_checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
    }
}
