//! The fault catalogue and a seeded schedule drawn from it: the same seed gives the same
//! faults with the same parameters, so a run that broke something can be replayed.

use std::fmt;

/// Which node a fault hits, named by its role when the fault is drawn (the run resolves it
/// against the master of the moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// The node serving now.
    Master,
    /// The other one.
    Slave,
}

/// One fault, with what the pool does about it where something is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The master hangs (QMP stop) for `secs` and then runs on. From
    /// [`TAKEOVER_AFTER_S`] seconds on the pool makes the peer master during the hang and the
    /// old master slave once it is back.
    PauseMaster {
        /// How long it hangs (1..=40).
        secs: u64,
    },
    /// The master is powered off (qemu killed); the pool makes the peer master; the old master
    /// is booted again as slave.
    KillMaster,
    /// A node's link is cut for `secs`; the master's cut of [`TAKEOVER_AFTER_S`] or more is
    /// followed by the peer made master (and the old master slave once it is back).
    CutLink {
        /// Whose link.
        whom: Whom,
        /// How long (3..=30).
        secs: u64,
    },
    /// Both links cut for `secs` (no role change: the pool is cut in two as well).
    CutBoth {
        /// How long (3..=20).
        secs: u64,
    },
    /// A planned switch: master to slave and slave to master at once.
    RoleFlip,
    /// A node's role file holds garbage for `secs`, then its role again.
    GarbageRole {
        /// Whose role file.
        whom: Whom,
        /// How long (2..=10).
        secs: u64,
    },
    /// `iscsi-cfg manual-mode-enable`, a few seconds, `manual-mode-disable`.
    ManualOnOff {
        /// On which node.
        whom: Whom,
    },
    /// The daemon SIGKILLed, then started again.
    DaemonKill {
        /// Whose daemon.
        whom: Whom,
    },
    /// The master's tgtd SIGKILLed.
    TgtdKill,
    /// The VIP deleted by hand on the master.
    VipDelete,
    /// A node powered off in the middle of a resync and booted again: the slave's link is cut
    /// while the master takes writes (so the slave falls behind), the resync is slowed and
    /// started by restoring the link, and `whom` is killed while it runs. The slave killed is
    /// the SyncTarget (Inconsistent): it must resume the resync after its boot. The master
    /// killed is the SyncSource: the pool makes the Inconsistent slave master, which must not
    /// serve until the old master is back (booted as slave) and resyncing it.
    RebootInResync {
        /// Who is powered off: the SyncSource (master) or the SyncTarget (slave).
        whom: Whom,
    },
}

/// From how many seconds of a master's hang or cut the pool hands its role to the peer.
pub const TAKEOVER_AFTER_S: u64 = 8;

/// How many kinds of fault [`schedule`] draws from.
pub const KINDS: usize = 11;

impl Fault {
    /// Whether the fault parts the two nodes, so that two Primaries are the design's stale
    /// master (frozen by DRBD's fencing, then yielding) rather than a violation.
    pub fn partitions(&self) -> bool {
        matches!(
            self,
            Fault::PauseMaster { .. }
                | Fault::KillMaster
                | Fault::CutLink { .. }
                | Fault::CutBoth { .. }
                | Fault::RebootInResync { .. }
        )
    }

    /// Whether the pool makes the other node master because of this fault.
    pub fn moves_the_role(&self) -> bool {
        match *self {
            Fault::PauseMaster { secs } => secs >= TAKEOVER_AFTER_S,
            Fault::CutLink {
                whom: Whom::Master,
                secs,
            } => secs >= TAKEOVER_AFTER_S,
            Fault::KillMaster | Fault::RoleFlip | Fault::RebootInResync { whom: Whom::Master } => {
                true
            }
            _ => false,
        }
    }

    #[cfg(test)]
    fn kind(&self) -> usize {
        match self {
            Fault::PauseMaster { .. } => 0,
            Fault::KillMaster => 1,
            Fault::CutLink { .. } => 2,
            Fault::CutBoth { .. } => 3,
            Fault::RoleFlip => 4,
            Fault::GarbageRole { .. } => 5,
            Fault::ManualOnOff { .. } => 6,
            Fault::DaemonKill { .. } => 7,
            Fault::TgtdKill => 8,
            Fault::VipDelete => 9,
            Fault::RebootInResync { .. } => 10,
        }
    }
}

impl fmt::Display for Whom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Whom::Master => "master",
            Whom::Slave => "slave",
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PauseMaster { secs } => write!(f, "pause master {secs}s"),
            Fault::KillMaster => f.write_str("kill master"),
            Fault::CutLink { whom, secs } => write!(f, "cut {whom}'s link {secs}s"),
            Fault::CutBoth { secs } => write!(f, "cut both links {secs}s"),
            Fault::RoleFlip => f.write_str("role flip"),
            Fault::GarbageRole { whom, secs } => write!(f, "garbage role on {whom} {secs}s"),
            Fault::ManualOnOff { whom } => write!(f, "manual mode on/off on {whom}"),
            Fault::DaemonKill { whom } => write!(f, "daemon SIGKILL on {whom}"),
            Fault::TgtdKill => f.write_str("tgtd SIGKILL on master"),
            Fault::VipDelete => f.write_str("VIP deleted on master"),
            Fault::RebootInResync { whom } => write!(f, "reboot {whom} in a resync"),
        }
    }
}

/// `n` faults drawn from the catalogue with a generator seeded by `seed`: kinds uniformly,
/// each fault's parameters from its documented range.
pub fn schedule(seed: u64, n: usize) -> Vec<Fault> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let whom = |rng: &mut fastrand::Rng| {
        if rng.bool() {
            Whom::Master
        } else {
            Whom::Slave
        }
    };
    (0..n)
        .map(|_| match rng.usize(0..KINDS) {
            0 => Fault::PauseMaster {
                secs: rng.u64(1..=40),
            },
            1 => Fault::KillMaster,
            2 => Fault::CutLink {
                whom: whom(&mut rng),
                secs: rng.u64(3..=30),
            },
            3 => Fault::CutBoth {
                secs: rng.u64(3..=20),
            },
            4 => Fault::RoleFlip,
            5 => Fault::GarbageRole {
                whom: whom(&mut rng),
                secs: rng.u64(2..=10),
            },
            6 => Fault::ManualOnOff {
                whom: whom(&mut rng),
            },
            7 => Fault::DaemonKill {
                whom: whom(&mut rng),
            },
            8 => Fault::TgtdKill,
            9 => Fault::VipDelete,
            _ => Fault::RebootInResync {
                whom: whom(&mut rng),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        assert_eq!(schedule(17, 50), schedule(17, 50));
        assert_ne!(schedule(17, 50), schedule(18, 50));
        assert_eq!(schedule(17, 10), schedule(17, 50)[..10]);
    }

    #[test]
    fn a_long_schedule_draws_every_kind_within_its_ranges() {
        let s = schedule(1, 400);
        let mut seen = [false; KINDS];
        for f in &s {
            seen[f.kind()] = true;
            match *f {
                Fault::PauseMaster { secs } => assert!((1..=40).contains(&secs)),
                Fault::CutLink { secs, .. } => assert!((3..=30).contains(&secs)),
                Fault::CutBoth { secs } => assert!((3..=20).contains(&secs)),
                Fault::GarbageRole { secs, .. } => assert!((2..=10).contains(&secs)),
                _ => {}
            }
        }
        assert!(seen.iter().all(|s| *s), "every kind drawn: {seen:?}");
    }

    #[test]
    fn only_a_long_hang_or_cut_of_the_master_moves_the_role() {
        assert!(!Fault::PauseMaster { secs: 7 }.moves_the_role());
        assert!(Fault::PauseMaster { secs: 8 }.moves_the_role());
        let cut = |whom, secs| Fault::CutLink { whom, secs };
        assert!(cut(Whom::Master, 30).moves_the_role());
        assert!(!cut(Whom::Slave, 30).moves_the_role());
        assert!(!Fault::CutBoth { secs: 20 }.moves_the_role());
        assert!(Fault::KillMaster.moves_the_role() && Fault::RoleFlip.moves_the_role());
        assert!(!Fault::TgtdKill.moves_the_role());
        let resync = |whom| Fault::RebootInResync { whom };
        assert!(resync(Whom::Master).moves_the_role() && !resync(Whom::Slave).moves_the_role());
    }
}
