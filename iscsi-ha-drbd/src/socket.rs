//! A generic netlink socket: `netlink-sys` for the socket itself, `nix` for waiting on it with
//! a timeout, and sequence numbers for matching replies.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Largest datagram we accept. The kernel sizes dump datagrams after the reader's buffer, up
/// to 32 KiB; a single DRBD message is far below that.
const RECV_BUFFER: usize = 64 * 1024;

/// A bound `NETLINK_GENERIC` socket.
#[derive(Debug)]
pub struct GenlSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Why a receive returned no datagram.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The datagram was larger than the receive buffer.
    #[error("datagram of {0} bytes truncated")]
    Truncated(usize),
    /// The socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
}

impl GenlSocket {
    /// Opens and binds a generic netlink socket with a kernel-assigned port.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind(&SocketAddr::new(0, 0))?;
        Ok(GenlSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// The next request sequence number (never 0: broadcasts and some replies use 0).
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends one request.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.socket.send_to(bytes, &SocketAddr::new(0, 0), 0)?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "short netlink send: {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Joins a multicast group by id.
    pub fn join_group(&self, group: u32) -> io::Result<()> {
        self.socket.add_membership(group)
    }

    /// Switches the socket between blocking and non-blocking reads.
    pub fn set_non_blocking(&self, non_blocking: bool) -> io::Result<()> {
        self.socket.set_non_blocking(non_blocking)
    }

    /// Waits until the socket is readable or `deadline` passes.
    fn wait_readable(&self, deadline: Instant) -> Result<(), RecvError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if Instant::now() >= deadline => {
                    return Err(RecvError::Timeout(left));
                }
                Ok(0) => continue,
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(RecvError::Io(e.into())),
            }
        }
    }

    /// Receives one datagram, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<&[u8], RecvError> {
        self.wait_readable(Instant::now() + timeout)?;
        self.recv_now()
    }

    /// Receives one datagram that is already waiting (or blocks, on a blocking socket).
    /// On a non-blocking socket with nothing queued, the error kind is `WouldBlock`.
    pub fn recv_now(&mut self) -> Result<&[u8], RecvError> {
        self.buf.clear();
        self.buf.reserve(RECV_BUFFER);
        let n = self.socket.recv(&mut self.buf, libc::MSG_TRUNC)?;
        if n > self.buf.len() {
            return Err(RecvError::Truncated(n));
        }
        Ok(&self.buf[..n])
    }
}

impl AsFd for GenlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for GenlSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}
