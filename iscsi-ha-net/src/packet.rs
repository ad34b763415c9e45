//! `AF_PACKET` raw sockets bound to one interface and one ethertype: how ARP and neighbour
//! discovery frames are sent and read without a helper process.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use nix::sys::socket::{recv, send, MsgFlags};

use crate::frame::EtherType;
use crate::wait::wait_readable;

/// Largest frame we read (an MTU of 1500 plus the Ethernet header, rounded up generously).
const FRAME_BUFFER_LEN: usize = 2048;

/// A raw packet socket on one interface for one ethertype. Outgoing frames carry their own
/// Ethernet header; incoming frames of that ethertype arrive whole, our own sends excluded
/// (the kernel loops outgoing frames back only to `ETH_P_ALL` sockets).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a non-blocking socket for `ether_type` on interface `index`, in the network
    /// namespace of the calling thread. Needs `CAP_NET_RAW`.
    pub fn open(index: u32, ether_type: EtherType) -> io::Result<PacketSocket> {
        let protocol = ether_type.value().to_be();
        // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1; nothing
        // is borrowed.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor socket(2) just returned to us and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: sockaddr_ll is plain old data for which all-zero bytes are a valid value.
        let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
        address.sll_family = libc::c_ushort::try_from(libc::AF_PACKET)
            .map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
        address.sll_protocol = protocol;
        address.sll_ifindex =
            i32::try_from(index).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
        let length = libc::socklen_t::try_from(mem::size_of::<libc::sockaddr_ll>())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `address` is a fully initialised sockaddr_ll that outlives the call, and
        // `length` is its size; bind(2) only reads it.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&address).cast::<libc::sockaddr>(),
                length,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd })
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = send(self.fd.as_raw_fd(), frame, MsgFlags::empty())?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} frame bytes", frame.len()),
            ))
        }
    }

    /// Reads frames until `wanted` returns `Some` for one of them or `deadline` passes
    /// (`Ok(None)`). `wanted` gets each frame's bytes; frames it rejects are dropped.
    pub fn receive_until<T>(
        &self,
        deadline: Instant,
        mut wanted: impl FnMut(&[u8]) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let mut buffer = [0u8; FRAME_BUFFER_LEN];
        loop {
            if !wait_readable(self.fd.as_fd(), deadline)? {
                return Ok(None);
            }
            loop {
                match recv(self.fd.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT) {
                    Ok(len) => {
                        let frame = buffer.get(..len).unwrap_or_default();
                        if let Some(found) = wanted(frame) {
                            return Ok(Some(found));
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
