//! The two-node lab: two VMs booting Debian's kernel with the in-tree DRBD module, tgtd and
//! the iscsi-ha binaries, joined by a bridge in a network namespace with an initiator.
