//! The serving host's iSCSI connection list, handed to its peer in one UDP datagram over the
//! replication link, so that after a hard failure the peer knows whom to tickle
//! ([`crate::tickle`]). ARCHITECTURE.md, "Where a new master learns whom to tickle", says why
//! a push and why this link.
//!
//! # The datagram (version 1)
//!
//! ```text
//!  0      4    5    6        8                      24       26
//! +------+----+----+--------+----------------------+--------+---- count x 18 bytes ----+
//! | IHTL | 01 | 00 | count  | server address (16)  | port   | client address (16), port |
//! +------+----+----+--------+----------------------+--------+---------------------------+
//! ```
//!
//! Integers are big-endian; addresses are 16 bytes, IPv4 ones IPv4-mapped. `server` is the VIP
//! and the iSCSI port the list is for; each client is an initiator's end. An empty list is
//! sent too: it says "nobody is logged in now".

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use crate::frame::canonical;

/// The first bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"IHTL";
/// The version this code writes and reads.
pub const VERSION: u8 = 1;
/// The most connections one datagram carries: a storage host serves a few dozen; a longer
/// list is cut here (the rest wait for their own timers after a failover, as without tickles).
pub const MAX_CONNECTIONS: usize = 512;
const HEADER: usize = 26;
const ENTRY: usize = 18;
/// The largest datagram a peer sends (about 9 KiB); anything larger is dropped unread.
pub const MAX_DATAGRAM: usize = HEADER + MAX_CONNECTIONS * ENTRY;

/// One host's connection list as its peer received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionList {
    /// The VIP and iSCSI port the connections were made to.
    pub server: SocketAddr,
    /// The initiators' ends, canonical (IPv4 as IPv4).
    pub clients: Vec<SocketAddr>,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandoverError {
    /// Shorter than its header or than the entries its count announces, or longer.
    #[error("{len} bytes do not hold the header and {count} entries")]
    Length {
        /// The datagram's length.
        len: usize,
        /// The count it announced (0 when the header itself is short).
        count: usize,
    },
    /// Not one of ours.
    #[error("not a connection list (magic {0:02x?})")]
    Magic([u8; 4]),
    /// A version this code does not read (a newer peer).
    #[error("version {0}, this host reads version {VERSION}")]
    Version(u8),
    /// More entries than [`MAX_CONNECTIONS`].
    #[error("{0} connections, at most {MAX_CONNECTIONS} are accepted")]
    TooMany(usize),
    /// Larger than [`MAX_DATAGRAM`].
    #[error("larger than {MAX_DATAGRAM} bytes")]
    TooLarge,
    /// From an address other than the configured peer.
    #[error("from {0}, which is not the configured peer")]
    Stranger(SocketAddr),
}

/// The datagram for `server`'s connections from `clients` (at most [`MAX_CONNECTIONS`] of
/// them are written; the caller says when it cut).
pub fn encode(server: SocketAddr, clients: &[SocketAddr]) -> Vec<u8> {
    let clients = &clients[..clients.len().min(MAX_CONNECTIONS)];
    let mut out = Vec::with_capacity(HEADER + clients.len() * ENTRY);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    let count = u16::try_from(clients.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for end in std::iter::once(&server).chain(clients) {
        out.extend_from_slice(&mapped(end.ip()).octets());
        out.extend_from_slice(&end.port().to_be_bytes());
    }
    out
}

/// Reads a datagram; anything but a well-formed version-1 list is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<ConnectionList, HandoverError> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(HandoverError::TooLarge);
    }
    let (Some(magic), Some(&version), Some(count)) =
        (bytes.get(..4), bytes.get(4), bytes.get(6..8))
    else {
        return Err(HandoverError::Length {
            len: bytes.len(),
            count: 0,
        });
    };
    if magic != MAGIC {
        let mut m = [0u8; 4];
        m.copy_from_slice(magic);
        return Err(HandoverError::Magic(m));
    }
    if version != VERSION {
        return Err(HandoverError::Version(version));
    }
    let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
    if count > MAX_CONNECTIONS {
        return Err(HandoverError::TooMany(count));
    }
    if bytes.len() != HEADER + count * ENTRY {
        return Err(HandoverError::Length {
            len: bytes.len(),
            count,
        });
    }
    let mut ends = bytes[8..].chunks_exact(ENTRY).map(|e| {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&e[..16]);
        let port = u16::from_be_bytes([e[16], e[17]]);
        canonical(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(octets),
            port,
            0,
            0,
        )))
    });
    let server = ends.next().ok_or(HandoverError::Length {
        len: bytes.len(),
        count,
    })?;
    Ok(ConnectionList {
        server,
        clients: ends.collect(),
    })
}

fn mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The UDP socket on the replication link: bound to this host's address there (one of the
/// configured pair: the one that binds), sending to the other, accepting only from it. It never
/// blocks: a send that does not fit is an error, a receive with nothing pending returns nothing.
#[derive(Debug)]
pub struct HandoverSocket {
    socket: UdpSocket,
    peer: SocketAddr,
}

impl HandoverSocket {
    /// Binds to whichever of `hosts` is an address of this host (port `port`); the other is
    /// the peer. An error when none or both are.
    pub fn bind(hosts: [IpAddr; 2], port: u16) -> io::Result<HandoverSocket> {
        let tries = hosts.map(|ip| UdpSocket::bind(SocketAddr::new(ip, port)));
        let (socket, peer) = match tries {
            [Ok(s), Err(_)] => (s, hosts[1]),
            [Err(_), Ok(s)] => (s, hosts[0]),
            [Ok(_), Ok(_)] => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("both {} and {} are addresses of this host; [tickle] hosts must name this host's and its peer's replication addresses", hosts[0], hosts[1]),
                ))
            }
            [Err(a), Err(b)] => {
                return Err(io::Error::new(
                    a.kind(),
                    format!("cannot bind {}:{port} ({a}) nor {}:{port} ({b}); [tickle] hosts must name this host's and its peer's replication addresses", hosts[0], hosts[1]),
                ))
            }
        };
        socket.set_nonblocking(true)?;
        Ok(HandoverSocket {
            socket,
            peer: SocketAddr::new(peer, port),
        })
    }

    /// Where lists go and come from.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Where this host listens.
    pub fn local(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `server`'s list to the peer, without waiting.
    pub fn send(&self, server: SocketAddr, clients: &[SocketAddr]) -> io::Result<()> {
        let datagram = encode(server, clients);
        self.socket.send_to(&datagram, self.peer).map(drop)
    }

    /// Every datagram pending now, each read or the reason it was dropped. Bounded: at most
    /// `max` datagrams per call, each read into a buffer one byte larger than
    /// [`MAX_DATAGRAM`] (a larger one is cut by the kernel and dropped here).
    pub fn receive(&self, max: usize) -> Vec<Result<ConnectionList, HandoverError>> {
        let mut out = Vec::new();
        let mut buffer = vec![0u8; MAX_DATAGRAM + 1];
        for _ in 0..max {
            match self.socket.recv_from(&mut buffer) {
                Ok((n, from)) => out.push(if from.ip() != self.peer.ip() {
                    Err(HandoverError::Stranger(from))
                } else {
                    decode(&buffer[..n])
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // An ICMP error for an earlier send (the peer's port closed) surfaces here;
                // it says nothing about what is pending.
                Err(_) => continue,
            }
        }
        out
    }
}

impl AsFd for HandoverSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn end() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(a, p)| canonical(SocketAddr::new(IpAddr::from(a), p))),
        ]
    }

    proptest! {
        #[test]
        fn a_list_reads_back_as_written(
            server in end(),
            clients in proptest::collection::vec(end(), 0..40),
        ) {
            let list = decode(&encode(server, &clients)).unwrap();
            prop_assert_eq!(list.server, server);
            prop_assert_eq!(list.clients, clients);
        }

        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let _ = decode(&bytes);
        }

        #[test]
        fn a_cut_or_padded_list_is_refused(
            clients in proptest::collection::vec(end(), 1..10),
            cut in 1usize..18,
        ) {
            let server = SocketAddr::from(([10, 0, 0, 1], 3260));
            let bytes = encode(server, &clients);
            let short = decode(&bytes[..bytes.len() - cut]);
            prop_assert!(matches!(short, Err(HandoverError::Length { .. })), "{:?}", short);
            let mut long = bytes.clone();
            long.push(0);
            prop_assert!(
                matches!(decode(&long), Err(HandoverError::Length { .. })),
                "padded"
            );
        }
    }

    #[test]
    fn wrong_magic_version_and_count_are_named() {
        let server = SocketAddr::from(([10, 0, 0, 1], 3260));
        let good = encode(server, &[]);
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(decode(&magic), Err(HandoverError::Magic(_))));
        let mut version = good.clone();
        version[4] = 2;
        assert_eq!(decode(&version), Err(HandoverError::Version(2)));
        let mut many = good.clone();
        many[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            decode(&many),
            Err(HandoverError::TooMany(usize::from(u16::MAX)))
        );
        assert_eq!(
            decode(&vec![0u8; MAX_DATAGRAM + 1]),
            Err(HandoverError::TooLarge)
        );
    }

    #[test]
    fn a_list_longer_than_the_maximum_is_cut_to_it() {
        let server = SocketAddr::from(([10, 0, 0, 1], 3260));
        let clients: Vec<SocketAddr> = (0..600u16)
            .map(|p| SocketAddr::from(([10, 0, 0, 9], p)))
            .collect();
        let bytes = encode(server, &clients);
        assert_eq!(bytes.len(), MAX_DATAGRAM);
        assert_eq!(decode(&bytes).unwrap().clients, clients[..MAX_CONNECTIONS]);
    }
}
