//! DRBD adapter for iscsi-ha.
//!
//! Will hold the `ReplicatedVolume` port implementation that talks to the DRBD kernel module over
//! its generic netlink family (8.4 dialect first, DRBD 9 detected), with a `/proc/drbd` parser as
//! a read-only fallback and cross-check. No `drbdadm`/`drbdsetup` processes.
