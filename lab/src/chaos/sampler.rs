//! The run's witnesses, each on its own thread until told to stop: an ARP monitor in the
//! initiator namespace (who answers for the VIP, every 100 ms) and a sampler per node (its
//! DRBD role, the VIP, the target, every ~500 ms).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::chaos::check::{ArpRound, NodeSample};
use crate::drbd::parse_proc_drbd;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::net::{self, INITIATOR_IP, INITIATOR_NS, VIP};
use crate::writer::node_of_mac;

/// How often the ARP monitor asks.
pub const ARP_EVERY: Duration = crate::chaos::check::ARP_ROUND;

/// How often each node is looked at (plus the look itself).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

const ETH_P_ARP: u16 = 0x0806;

/// The initiator's MAC on the lab bridge (from `ip`, which the lab may use).
fn initiator_mac() -> Result<[u8; 6]> {
    let out = std::process::Command::new("ip")
        .args(["-n", INITIATOR_NS, "-o", "link", "show", "eth0"])
        .output()
        .map_err(|e| LabError::io("running ip link show".to_string(), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .ok_or_else(|| LabError::Invalid(format!("no MAC in `ip link show`: {text}")))?;
    parse_mac(mac).ok_or_else(|| LabError::Invalid(format!("unreadable MAC {mac}")))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A broadcast ARP request for the VIP from the initiator.
fn arp_request(mac: [u8; 6]) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&INITIATOR_IP.octets());
    f[38..42].copy_from_slice(&VIP.octets());
    f
}

/// The sender MAC of an ARP reply from the VIP, if `frame` is one.
pub fn vip_reply_sender(frame: &[u8]) -> Option<String> {
    if frame.len() < 42
        || frame[12..14] != ETH_P_ARP.to_be_bytes()
        || frame[20..22] != 2u16.to_be_bytes()
        || frame[28..32] != VIP.octets()
    {
        return None;
    }
    let m = &frame[22..28];
    Some(format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    ))
}

/// A packet socket for ARP on the initiator's `eth0`, opened from a thread that entered the
/// initiator namespace (only that thread: `setns` acts on the calling thread).
fn arp_socket() -> Result<OwnedFd> {
    let netns = net::open_netns(INITIATOR_NS)?;
    let os = |what: &str| LabError::io(what.to_string(), std::io::Error::last_os_error());
    // SAFETY: setns on a namespace file we hold open; it changes only this thread's namespace.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(os("entering the initiator namespace"));
    }
    // SAFETY: a plain socket(2) call; the result is checked and owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    if fd < 0 {
        return Err(os("opening an AF_PACKET socket"));
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a NUL-terminated constant name.
    let ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
    if ifindex == 0 {
        return Err(os("finding eth0 in the initiator namespace"));
    }
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value before we fill it.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(17);
    addr.sll_protocol = ETH_P_ARP.to_be();
    addr.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    let len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).unwrap_or(20);
    // SAFETY: addr is a valid sockaddr_ll of `len` bytes for the duration of the call.
    if unsafe { libc::bind(sock.as_raw_fd(), std::ptr::addr_of!(addr).cast(), len) } != 0 {
        return Err(os("binding the ARP socket to eth0"));
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 10_000,
    };
    let tvlen = u32::try_from(std::mem::size_of::<libc::timeval>()).unwrap_or(16);
    // SAFETY: tv is a valid timeval of `tvlen` bytes for the duration of the call.
    if unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast(),
            tvlen,
        )
    } != 0
    {
        return Err(os("setting the ARP socket's receive timeout"));
    }
    Ok(sock)
}

/// Asks who has the VIP every [`ARP_EVERY`] until `stop`, from the initiator namespace;
/// returns every round (times from `t0`). Run it on a thread of its own: it moves that thread
/// into the initiator namespace.
pub fn arp_monitor(t0: Instant, stop: &AtomicBool) -> Result<Vec<ArpRound>> {
    let mac = initiator_mac()?;
    let sock = arp_socket()?;
    let request = arp_request(mac);
    let mut rounds = Vec::new();
    let mut buf = [0u8; 1514];
    while !stop.load(Ordering::Relaxed) {
        let at = t0.elapsed();
        let round_start = Instant::now();
        // SAFETY: request is a valid buffer of its length; the socket is bound to eth0.
        let sent =
            unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
        let mut answered: Vec<u8> = Vec::new();
        while round_start.elapsed() < ARP_EVERY {
            // SAFETY: buf is a valid writable buffer of its length.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else { continue };
            if let Some(node) = vip_reply_sender(&buf[..n]).and_then(|m| node_of_mac(&m)) {
                if !answered.contains(&node) {
                    answered.push(node);
                }
            }
        }
        if sent > 0 {
            answered.sort_unstable();
            rounds.push(ArpRound {
                at,
                until: t0.elapsed(),
                answered,
            });
        }
    }
    Ok(rounds)
}

/// What one look at a node found, from the output of [`LOOK`] run between `at` and `until`.
pub fn parse_look(at: Duration, until: Duration, node: u8, text: &str) -> NodeSample {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let first = parse_proc_drbd(text).into_iter().next();
    NodeSample {
        at,
        until,
        node,
        primary: first.as_ref().is_some_and(|m| m.role == "Primary"),
        peer_primary: first.as_ref().is_some_and(|m| m.peer_role == "Primary"),
        vip: value("VIP=").parse::<u32>().unwrap_or(0) > 0,
        target: value("TGT=").parse::<u32>().unwrap_or(0) > 0,
    }
}

/// The script of one look (the lab's tools as witnesses; the product uses none of them).
pub const LOOK: &str = "cat /proc/drbd; \
    echo VIP=$(ip -4 addr show 2>/dev/null | grep -c 'inet 10.99.0.100/'); \
    echo TGT=$(tgtadm --lld iscsi --mode target --op show 2>/dev/null | grep -c '^Target')";

/// Looks at node `id` every [`SAMPLE_EVERY`] until `stop`, except while `away` (the run has
/// paused or powered it off: a look would wait on a frozen guest).
pub fn node_sampler(
    lab: &Lab,
    id: u8,
    t0: Instant,
    stop: &AtomicBool,
    away: &AtomicBool,
) -> Vec<NodeSample> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if !away.load(Ordering::Relaxed) {
            let at = t0.elapsed();
            if let Ok(out) = lab.node(id).exec_timeout(LOOK, Duration::from_secs(3)) {
                samples.push(parse_look(at, t0.elapsed(), id, &out.stdout_text()));
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_from_the_vip_names_its_sender_and_nothing_else_does() {
        let mut reply = arp_request([0x52, 0x54, 0, 0x99, 0, 2]);
        reply[20..22].copy_from_slice(&2u16.to_be_bytes());
        reply[28..32].copy_from_slice(&VIP.octets());
        assert_eq!(
            vip_reply_sender(&reply).as_deref(),
            Some("52:54:00:99:00:02")
        );
        // Our own request (opcode 1, sender the initiator) is not an answer.
        assert_eq!(vip_reply_sender(&arp_request([2; 6])), None);
        // A reply for another address, a short frame, another ethertype.
        let mut other = reply;
        other[28..32].copy_from_slice(&[10, 99, 0, 1]);
        assert_eq!(vip_reply_sender(&other), None);
        assert_eq!(vip_reply_sender(&reply[..40]), None);
        let mut ip = reply;
        ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(vip_reply_sender(&ip), None);
    }

    #[test]
    fn a_look_reads_role_vip_and_target() {
        let text = "version: 8.4.11\n 1: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\nVIP=1\nTGT=1\n";
        let s = parse_look(Duration::from_secs(1), Duration::from_secs(2), 2, text);
        assert!(s.primary && !s.peer_primary && s.vip && s.target && s.node == 2);
        assert_eq!(s.until, Duration::from_secs(2));
        let both =
            "version: 8.4.11\n 1: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate C r-----\n";
        assert!(parse_look(Duration::ZERO, Duration::ZERO, 1, both).peer_primary);
        let s = parse_look(
            Duration::ZERO,
            Duration::ZERO,
            1,
            " 1: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----\nVIP=0\nTGT=\n",
        );
        assert!(!s.primary && !s.vip && !s.target);
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("52:54:00:99:00:0a"),
            Some([0x52, 0x54, 0, 0x99, 0, 10])
        );
        assert_eq!(parse_mac("52:54:00:99:00"), None);
        assert_eq!(parse_mac("52:54:00:99:00:0a:01"), None);
        assert_eq!(parse_mac("zz:54:00:99:00:0a"), None);
    }
}
