//! How the adapter announces and probes: the knobs the daemon reads from its TOML.

use std::time::Duration;

/// Timing of announcements and probes. The defaults aim at a fast failover on a switched LAN:
/// the first announcement leaves at once, a short burst covers a lost frame, and the probe
/// waits a few hundred milliseconds, which is ample for an answer on one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingIpConfig {
    /// Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) per burst; the
    /// first is sent before `assign`/`announce` return, the rest in the background.
    /// keepalived sends 5, IPaddr2 5. Values below 1 count as 1.
    pub announce_count: u32,
    /// Pause between the messages of a burst.
    pub announce_interval: Duration,
    /// When set, a second burst this long after an assignment, for switches and hosts that
    /// missed the first (keepalived's `garp_master_delay`, 5 s). Cancelled by a release.
    pub refresh_delay: Option<Duration>,
    /// How long a probe listens for an owner of the address (ARP reply / neighbour
    /// advertisement).
    pub probe_timeout: Duration,
    /// Probes sent, evenly spread over `probe_timeout`, the first immediately. Values below 1
    /// count as 1.
    pub probe_count: u32,
    /// Also ask with an ICMP echo (the original's `ping`) when no ARP/ND answer came: a host
    /// with `arp_ignore` set may still answer an echo.
    pub icmp_check: bool,
    /// How long the ICMP echo check waits for a reply.
    pub icmp_timeout: Duration,
}

impl Default for FloatingIpConfig {
    fn default() -> Self {
        FloatingIpConfig {
            announce_count: 3,
            announce_interval: Duration::from_millis(150),
            refresh_delay: Some(Duration::from_secs(5)),
            probe_timeout: Duration::from_millis(250),
            probe_count: 2,
            icmp_check: false,
            icmp_timeout: Duration::from_millis(200),
        }
    }
}

/// The label marking an IPv4 VIP as ours: `IFNAME:iha`, with the interface part cut so that
/// the whole fits the kernel's 15-byte label (`IFNAMSIZ` less the NUL).
pub fn vip_label(interface: &str) -> String {
    const SUFFIX: &str = ":iha";
    const MAX: usize = 15;
    let mut cut = interface.len().min(MAX - SUFFIX.len());
    while !interface.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{SUFFIX}", &interface[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_names_keep_their_name() {
        assert_eq!(vip_label("eth0"), "eth0:iha");
        assert_eq!(vip_label("xenbr1"), "xenbr1:iha");
    }

    #[test]
    fn long_names_are_cut_to_fit() {
        assert_eq!(vip_label("bond0.1234"), "bond0.1234:iha");
        assert_eq!(vip_label("enp0s31f6.4000"), "enp0s31f6.4:iha");
        assert_eq!(vip_label("enp0s31f6.4000").len(), 15);
    }

    #[test]
    fn defaults_send_the_first_announcement_at_once_and_probe_briefly() {
        let c = FloatingIpConfig::default();
        assert!(c.announce_count >= 1);
        assert!(c.probe_timeout <= Duration::from_millis(300));
    }

    proptest! {
        #[test]
        fn labels_always_fit(name in "\\PC{1,20}") {
            let label = vip_label(&name);
            prop_assert!(label.len() <= 15);
            prop_assert!(label.ends_with(":iha"));
        }
    }
}
