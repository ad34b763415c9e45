//! The chaos run (`iha-lab chaos --faults N --seed S`): both daemons running, the checking
//! writer ([`crate::writer`]) writing and reading through the VIP the whole time, an ARP
//! monitor and a sampler per node ([`sampler`]) recording, and between checks a seeded
//! schedule of faults ([`schedule`]), each followed by the role change a pool would make. After
//! each fault the run waits for one server with good reads, then for DRBD to be whole again,
//! following `iscsi-cfg split-brain`'s advice when a split brain is reported ([`run`]). The
//! history is checked at the end ([`check`]): no acknowledged write lost, never two hosts
//! answering for the VIP, never two Primaries outside a partition, never a stale read, both
//! daemons alive and no panic in their logs.

pub mod check;
pub mod run;
pub mod sampler;
pub mod schedule;

pub use check::{check, History, Verdict};
pub use run::{run, ChaosOptions};
pub use schedule::{schedule, Fault, Whom};
