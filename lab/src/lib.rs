//! The two-node lab: two VMs booting Debian's kernel with the in-tree DRBD 8.4 module, tgtd and
//! the iscsi-ha binaries, joined by a bridge in a network namespace with an initiator.
//!
//! This machine's kernel has no DRBD, so everything that touches DRBD is proven in here.
//!
//! - [`Lab::up`] takes the lab-wide lock ([`lock`]), builds or reuses the cache ([`image`]:
//!   qemu 7.2 and the kernel unpacked from Debian packages, an initramfs of busybox, drbd-utils'
//!   8.4 tools, tgt, libiscsi and tcpdump), picks the accelerator ([`accel`]), creates the
//!   network ([`net`]), boots both VMs and configures DRBD from a `drbd.conf` with `drbdadm`.
//! - [`Node`] runs commands in a VM over virtio-serial ([`Node::exec`]) and suffers faults:
//!   [`Node::kill`], [`Node::pause`]/[`Node::resume`], [`Node::cut_link`]/[`Node::restore_link`],
//!   [`Node::reboot`].
//! - [`Lab::initiator`] runs host tools in the initiator namespace; [`Lab::copy_in`] puts a host
//!   binary where both guests see it (`/host/bin/...`, 9p) without rebuilding anything.
//! - [`adverts`] watches, from the initiator namespace, the neighbour advertisements that move
//!   an IPv6 floating address.
//! - [`capture`] records DRBD's generic-netlink traffic inside a VM (the fixtures of
//!   iscsi-ha-drbd, `iha-lab capture-drbd`).
//! - [`writer`] is the checking writer through the VIP; [`chaos`] runs seeded faults in a row
//!   against iscsi-ha under it and checks the history (`iha-lab chaos`).
//! - Dropping a [`Lab`] removes everything; `iha-lab down` ([`Lab::down`]) removes what a crashed
//!   run left.

pub mod accel;
pub mod adverts;
pub mod capture;
mod channel;
pub mod chaos;
pub mod cluster;
mod cpio;
pub mod dirs;
pub mod drbd;
mod error;
mod host;
pub mod image;
pub mod kernel;
mod lab;
pub mod lock;
pub mod net;
mod node;
pub mod phases;
mod qmp;
pub mod session;
mod vm;
pub mod writer;

pub use accel::{Accel, AccelVerdict};
pub use channel::CommandOutput;
pub use dirs::LabDirs;
pub use drbd::{DrbdTiming, MinorState, ResourceSpec};
pub use error::{LabError, Result};
pub use host::check_privileges;
pub use lab::{DrbdOptions, Lab, LabOptions};
pub use node::{Node, DEFAULT_EXEC_TIMEOUT};
