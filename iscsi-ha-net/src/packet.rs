//! `AF_PACKET` raw sockets bound to one interface and one ethertype: how ARP and neighbour
//! discovery frames are sent and read without a helper process.

use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use nix::sys::socket::{recv, MsgFlags};

use crate::frame::EtherType;
use crate::wait::wait_readable;

/// Largest frame we read (an MTU of 1500 plus the Ethernet header, rounded up generously).
const FRAME_BUFFER_LEN: usize = 2048;

/// A raw packet socket on one interface. Outgoing frames carry their own Ethernet header.
/// A receiving socket gets incoming frames of its ethertype whole, our own sends excluded (the
/// kernel loops outgoing frames back only to `ETH_P_ALL` sockets); a sending socket receives
/// nothing and so costs nothing to keep open.
pub struct PacketSocket {
    fd: OwnedFd,
    destination: libc::sockaddr_ll,
}

impl PacketSocket {
    /// Opens a non-blocking socket that sends and receives `ether_type` frames on interface
    /// `index`, in the network namespace of the calling thread. Needs `CAP_NET_RAW`.
    pub fn open(index: u32, ether_type: EtherType) -> io::Result<PacketSocket> {
        PacketSocket::open_bound(index, ether_type, true)
    }

    /// Opens a socket that only sends `ether_type` frames on interface `index`. It is bound
    /// with protocol 0, so the kernel hands it no incoming frames.
    pub fn open_sender(index: u32, ether_type: EtherType) -> io::Result<PacketSocket> {
        PacketSocket::open_bound(index, ether_type, false)
    }

    /// Opens a non-blocking socket like [`PacketSocket::open`] whose incoming frames first
    /// pass the classic BPF program `filter` in the kernel (what `tcpdump -dd` prints), so
    /// that frames nobody wants never wake the reader. The filter is in place before the
    /// socket is bound, so no unfiltered frame is ever queued.
    pub fn open_filtered(
        index: u32,
        ether_type: EtherType,
        filter: &[libc::sock_filter],
    ) -> io::Result<PacketSocket> {
        PacketSocket::open_bound_with(index, ether_type, true, Some(filter))
    }

    fn open_bound(index: u32, ether_type: EtherType, receive: bool) -> io::Result<PacketSocket> {
        PacketSocket::open_bound_with(index, ether_type, receive, None)
    }

    fn open_bound_with(
        index: u32,
        ether_type: EtherType,
        receive: bool,
        filter: Option<&[libc::sock_filter]>,
    ) -> io::Result<PacketSocket> {
        // Created with protocol 0 and given its protocol by bind(2) only: a socket created
        // with a protocol is hooked to every interface at once, and moving the hook to one
        // interface in bind costs an RCU grace period (milliseconds) in the kernel.
        // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1; nothing
        // is borrowed.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor socket(2) just returned to us and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        if let Some(filter) = filter {
            attach_filter(fd.as_fd(), filter)?;
        }

        let protocol = ether_type.value().to_be();
        let destination = link_address(index, protocol)?;
        let bound_to = link_address(index, if receive { protocol } else { 0 })?;
        let length = sockaddr_ll_len()?;
        // SAFETY: `bound_to` is a fully initialised sockaddr_ll that outlives the call, and
        // `length` is its size; bind(2) only reads it.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&bound_to).cast::<libc::sockaddr>(),
                length,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd, destination })
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let length = sockaddr_ll_len()?;
        // SAFETY: `frame` is a live slice whose pointer and length are passed together, and
        // `self.destination` is an initialised sockaddr_ll of `length` bytes; sendto(2) only
        // reads both.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast::<libc::c_void>(),
                frame.len(),
                0,
                std::ptr::from_ref(&self.destination).cast::<libc::sockaddr>(),
                length,
            )
        };
        let sent = usize::try_from(sent).map_err(|_| io::Error::last_os_error())?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} frame bytes", frame.len()),
            ))
        }
    }

    /// Reads one queued frame into `buffer` without blocking: its length (the frame may have
    /// been cut to the buffer's size), or `None` when nothing is queued. A socket whose
    /// interface went down or away reports `ENETDOWN` once.
    pub fn try_receive(&self, buffer: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match recv(self.fd.as_raw_fd(), buffer, MsgFlags::MSG_DONTWAIT) {
                Ok(len) => return Ok(Some(len)),
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
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

impl fmt::Debug for PacketSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketSocket")
            .field("fd", &self.fd)
            .field("ifindex", &self.destination.sll_ifindex)
            .field("protocol", &u16::from_be(self.destination.sll_protocol))
            .finish()
    }
}

/// The link-layer address of interface `index` for `protocol` (network byte order).
fn link_address(index: u32, protocol: u16) -> io::Result<libc::sockaddr_ll> {
    // SAFETY: sockaddr_ll is plain old data for which all-zero bytes are a valid value.
    let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
    address.sll_family = libc::c_ushort::try_from(libc::AF_PACKET)
        .map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    address.sll_protocol = protocol;
    address.sll_ifindex =
        i32::try_from(index).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    Ok(address)
}

/// Attaches a classic BPF program to a socket (`SO_ATTACH_FILTER`).
fn attach_filter(fd: BorrowedFd<'_>, filter: &[libc::sock_filter]) -> io::Result<()> {
    let program = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        // The kernel copies the program and never writes through this pointer.
        filter: filter.as_ptr().cast_mut(),
    };
    let length = libc::socklen_t::try_from(mem::size_of::<libc::sock_fprog>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `program` is an initialised sock_fprog of `length` bytes whose `filter` points
    // at `filter.len()` live instructions; setsockopt(2) copies both before returning.
    let set = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::from_ref(&program).cast::<libc::c_void>(),
            length,
        )
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr_ll_len() -> io::Result<libc::socklen_t> {
    libc::socklen_t::try_from(mem::size_of::<libc::sockaddr_ll>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
