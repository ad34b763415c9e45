//! The ICMP echo second opinion: does anything answer a ping to the address through this
//! interface? Raw ICMP sockets, so it needs `CAP_NET_RAW` like the rest of the adapter.

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    recvfrom, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol,
    SockType, SockaddrIn, SockaddrIn6, SockaddrStorage,
};

use crate::frame::internet_checksum;
use crate::wait::wait_readable;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Sends one echo request to `target` out of `interface` and waits up to `timeout` for the
/// matching reply. An unreachable destination counts as no answer.
pub(crate) fn echo_answered(
    interface: &str,
    target: IpAddr,
    timeout: Duration,
) -> io::Result<bool> {
    let (family, protocol) = match target {
        IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        protocol,
    )?;
    setsockopt(&fd, sockopt::BindToDevice, &OsString::from(interface))?;
    let identifier = echo_identifier();
    let sequence = 1u16;
    let request = echo_request(target, identifier, sequence);
    let sent = match target {
        IpAddr::V4(v4) => sendto(
            fd.as_raw_fd(),
            &request,
            &SockaddrIn::from(SocketAddrV4::new(v4, 0)),
            MsgFlags::empty(),
        ),
        IpAddr::V6(v6) => sendto(
            fd.as_raw_fd(),
            &request,
            &SockaddrIn6::from(SocketAddrV6::new(v6, 0, 0, 0)),
            MsgFlags::empty(),
        ),
    };
    match sent {
        Ok(_) => {}
        Err(Errno::ENETUNREACH | Errno::EHOSTUNREACH) => return Ok(false),
        Err(e) => return Err(e.into()),
    }

    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 1500];
    loop {
        if !wait_readable(fd.as_fd(), deadline)? {
            return Ok(false);
        }
        loop {
            match recvfrom::<SockaddrStorage>(fd.as_raw_fd(), &mut buffer) {
                Ok((len, from)) => {
                    let packet = buffer.get(..len).unwrap_or_default();
                    if is_reply(packet, from, target, identifier, sequence) {
                        return Ok(true);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                // An ICMP error for our request (host unreachable after ARP failed).
                Err(Errno::EHOSTUNREACH | Errno::ENETUNREACH) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// An identifier unlikely to match another pinger's: the process id mixed with the clock.
fn echo_identifier() -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = std::process::id() ^ nanos;
    let low = u16::try_from(mixed & 0xffff).unwrap_or(0);
    let high = u16::try_from(mixed >> 16).unwrap_or(0);
    low ^ high
}

/// The ICMP(v6) echo request bytes. The kernel fills in the ICMPv6 checksum (it needs the
/// source address); the ICMPv4 one is ours to compute.
fn echo_request(target: IpAddr, identifier: u16, sequence: u16) -> Vec<u8> {
    let kind = if target.is_ipv4() {
        ECHO_REQUEST_V4
    } else {
        ECHO_REQUEST_V6
    };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(b"iscsi-ha-probe");
    if target.is_ipv4() {
        let sum = internet_checksum(&[&packet]);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// Whether `packet` (with its IPv4 header on IPv4 raw sockets; bare ICMPv6 on IPv6 ones) is
/// the reply to our request from `target`.
fn is_reply(
    packet: &[u8],
    from: Option<SockaddrStorage>,
    target: IpAddr,
    identifier: u16,
    sequence: u16,
) -> bool {
    let (icmp, source, reply_kind) = match target {
        IpAddr::V4(_) => {
            let Some(first) = packet.first() else {
                return false;
            };
            let header_len = usize::from(first & 0x0f) * 4;
            let source = packet
                .get(12..16)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(IpAddr::from);
            (packet.get(header_len..), source, ECHO_REPLY_V4)
        }
        IpAddr::V6(_) => {
            let source = from
                .as_ref()
                .and_then(|a| a.as_sockaddr_in6())
                .map(|a| IpAddr::V6(a.ip()));
            (Some(packet), source, ECHO_REPLY_V6)
        }
    };
    let Some(icmp) = icmp else {
        return false;
    };
    source == Some(target)
        && icmp.first() == Some(&reply_kind)
        && icmp.get(4..6) == Some(&identifier.to_be_bytes()[..])
        && icmp.get(6..8) == Some(&sequence.to_be_bytes()[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    #[test]
    fn v4_request_checksums_to_zero() {
        let request = echo_request(IpAddr::V4(Ipv4Addr::new(10, 213, 0, 100)), 0x1234, 1);
        assert_eq!(request[0], ECHO_REQUEST_V4);
        assert_eq!(internet_checksum(&[&request]), 0);
    }

    #[test]
    fn recognises_the_matching_v4_reply_only() {
        let target = IpAddr::V4(Ipv4Addr::new(10, 213, 0, 100));
        let mut reply = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 213, 0, 100, 10, 213, 0, 2,
        ];
        reply.extend_from_slice(&[ECHO_REPLY_V4, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert!(is_reply(&reply, None, target, 0x1234, 1));
        assert!(!is_reply(&reply, None, target, 0x1235, 1));
        assert!(!is_reply(
            &reply,
            None,
            IpAddr::V4(Ipv4Addr::new(10, 213, 0, 9)),
            0x1234,
            1
        ));
        assert!(!is_reply(&reply[..22], None, target, 0x1234, 1));
    }

    #[test]
    fn recognises_the_matching_v6_reply_by_its_sender() {
        let target: IpAddr = "fd00:213::100".parse().unwrap();
        let IpAddr::V6(v6) = target else {
            unreachable!()
        };
        let from = SockaddrStorage::from(SocketAddrV6::new(v6, 0, 0, 0));
        let other =
            SockaddrStorage::from(SocketAddrV6::new("fd00:213::9".parse().unwrap(), 0, 0, 0));
        let reply = [ECHO_REPLY_V6, 0, 0, 0, 0xab, 0xcd, 0, 1];
        assert!(is_reply(&reply, Some(from), target, 0xabcd, 1));
        assert!(!is_reply(&reply, Some(other), target, 0xabcd, 1));
        assert!(!is_reply(&reply, None, target, 0xabcd, 1));
        let request = [ECHO_REQUEST_V6, 0, 0, 0, 0xab, 0xcd, 0, 1];
        assert!(!is_reply(&request, Some(from), target, 0xabcd, 1));
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = is_reply(&bytes, None, IpAddr::V4(Ipv4Addr::new(10, 213, 0, 100)), 1, 1);
            let _ = is_reply(&bytes, None, "fd00::1".parse().unwrap(), 1, 1);
        }
    }
}
