//! Sending tickle ACKs ([`crate::frame::tickle_packet`]) on raw IP sockets, so that the
//! initiators of a dead master reset their connections and log in to the new one at once.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    SockaddrIn6,
};

use crate::frame::{canonical, tickle_packet, FrameError};

/// Why a tickle did not leave.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TickleError {
    /// The two ends of the connection cannot make one packet (mixed address families).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The raw socket of this family could not be opened (no `CAP_NET_RAW`, or no IPv6).
    #[error("cannot open a raw {family} socket for tickle ACKs: {source}")]
    Open {
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// The socket(2) error.
        #[source]
        source: io::Error,
    },
    /// sendto(2) refused the packet (no route to the initiator, a full socket buffer).
    #[error("cannot send a tickle ACK to {client}: {source}")]
    Send {
        /// The initiator's end of the connection.
        client: SocketAddr,
        /// The sendto(2) error.
        #[source]
        source: io::Error,
    },
}

/// Raw IP sockets for tickles, opened per family at the first tickle of that family (a host
/// without IPv6 can still tickle IPv4 initiators) and kept for the next ones. They never
/// receive (`IPPROTO_RAW` sockets get no incoming packets) and never block: a full send
/// buffer is a [`TickleError::Send`], not a wait in the daemon's loop.
#[derive(Debug, Default)]
pub struct TickleSender {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
}

impl TickleSender {
    /// A sender with no socket open yet.
    pub fn new() -> TickleSender {
        TickleSender::default()
    }

    /// Sends one tickle ACK from `server` (the VIP and the iSCSI port, which must be on this
    /// host for the initiator's answer to reach our stack) to `client`, in the network
    /// namespace of the calling thread. Needs `CAP_NET_RAW`.
    pub fn send(&mut self, server: SocketAddr, client: SocketAddr) -> Result<(), TickleError> {
        let packet = tickle_packet(server, client)?;
        let sent = match canonical(client) {
            SocketAddr::V4(c) => {
                let fd = open_once(&mut self.v4, AddressFamily::Inet, "IPv4")?;
                // The port of a raw socket's destination is ignored; the packet carries it.
                let to = SockaddrIn::from(std::net::SocketAddrV4::new(*c.ip(), 0));
                sendto(fd, &packet, &to, MsgFlags::empty())
            }
            SocketAddr::V6(c) => {
                let fd = open_once(&mut self.v6, AddressFamily::Inet6, "IPv6")?;
                // An IPv6 raw socket refuses a destination port other than 0 (or its protocol).
                let to =
                    SockaddrIn6::from(std::net::SocketAddrV6::new(*c.ip(), 0, 0, c.scope_id()));
                sendto(fd, &packet, &to, MsgFlags::empty())
            }
        };
        match sent {
            Ok(n) if n == packet.len() => Ok(()),
            Ok(n) => Err(TickleError::Send {
                client,
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("sent {n} of {} bytes", packet.len()),
                ),
            }),
            Err(e) => Err(TickleError::Send {
                client,
                source: e.into(),
            }),
        }
    }
}

/// The descriptor in `slot`, opening it first if needed.
fn open_once(
    slot: &mut Option<OwnedFd>,
    family: AddressFamily,
    name: &'static str,
) -> Result<RawFd, TickleError> {
    if let Some(fd) = slot {
        return Ok(fd.as_raw_fd());
    }
    // IPPROTO_RAW implies IP_HDRINCL for IPv4 (raw(7)) and IPV6_HDRINCL for IPv6 (the kernel
    // sets it in inet6_create), so the packet goes out with the headers we built: the kernel
    // only fills in an IPv4 identification of 0 and recomputes the IPv4 header checksum.
    let fd = socket(
        family,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::Raw,
    )
    .map_err(|e| TickleError::Open {
        family: name,
        source: e.into(),
    })?;
    let raw = fd.as_raw_fd();
    *slot = Some(fd);
    Ok(raw)
}
