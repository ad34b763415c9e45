//! Floating-IP adapter for iscsi-ha.
//!
//! Will hold the `FloatingIp` port implementation: addresses over rtnetlink, gratuitous ARP and
//! unsolicited neighbour advertisements, and RFC 5227 ARP probes on `AF_PACKET` sockets.
