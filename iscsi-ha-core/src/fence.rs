//! The answer to the replication layer's fencing question: this host lost its peer (or is
//! about to be promoted without it); may it go on writing alone?
//!
//! With DRBD's `fencing resource-and-stonith`, a Primary that loses its peer freezes I/O and
//! asks a `fence-peer` handler; a Secondary promoted without its peer asks the same handler
//! first. iscsi-ha ships that handler (`iscsi-ha fence-peer`). Its verdict is a pure function
//! of what the host can see in a few hundred milliseconds: its intent (manual mode, then the
//! pool role) and whether another host answers for the VIP. The peer can only serve the
//! initiators through the VIP, so "nobody else answers for the VIP and this host is the
//! master" means the peer cannot be serving, and this host may go on, provided this host is
//! not the one cut off: a master whose own link went down sees no VIP owner either, and a
//! write it accepted when the link returned, before it yielded to the host that took over,
//! would be lost (the chaos run's seed 33, fault 4). So where witnesses are configured
//! (`[fence] witnesses`), one must answer. Anything else keeps the I/O frozen (or the
//! promotion refused): no write is accepted that could go two ways, and the daemon yields or
//! an operator decides. DRBD lifts the freeze itself when the peer connects again.

use crate::observation::ManualMode;
use crate::plan::{intent_of, Intent};
use crate::role::Role;
use crate::vip::VipProbe;
use std::fmt;
use std::net::IpAddr;

/// Whether this host can still reach its network: the witnesses' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessCheck {
    /// No witness is configured: being cut off cannot be told from a dead peer.
    NotConfigured,
    /// This witness answered.
    Answered(IpAddr),
    /// None of them answered (or could be asked: why).
    NoneAnswered {
        /// The witnesses asked.
        asked: Vec<IpAddr>,
        /// What went wrong asking, if anything did besides silence.
        why: Option<String>,
    },
}

/// The handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceVerdict {
    /// The peer cannot be serving: this host may go on alone (I/O resumes, the promotion
    /// proceeds).
    PeerCannotServe {
        /// Why, for the log.
        why: String,
    },
    /// This host must not go on alone: I/O stays frozen, the promotion is refused.
    Refuse {
        /// Why, for the log.
        why: String,
    },
}

impl fmt::Display for FenceVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceVerdict::PeerCannotServe { why } => write!(f, "go on alone: {why}"),
            FenceVerdict::Refuse { why } => write!(f, "refused: {why}"),
        }
    }
}

/// Decides from the host's manual mode, its pool role (or why it could not be read), a probe
/// of the VIP (or why it failed) and, asked only when all of them let this host go on, the
/// witnesses.
pub fn fence_verdict(
    manual: ManualMode,
    role: &Role,
    probe: &Result<VipProbe, String>,
    witnesses: impl FnOnce() -> WitnessCheck,
) -> FenceVerdict {
    match intent_of(manual, role) {
        Intent::Serve => {}
        Intent::Release => {
            return FenceVerdict::Refuse {
                why: format!(
                    "this host is not the one to serve (role {}, manual mode {manual:?}); it must not write alone",
                    role.name()
                ),
            }
        }
        Intent::Hold(reason) => {
            return FenceVerdict::Refuse {
                why: format!(
                    "the pool role is unknown ({reason}); whether the peer took over cannot be told, so I/O stays frozen until the peer returns, the role is known again, or an operator resumes it"
                ),
            }
        }
    }
    match probe {
        Ok(VipProbe::Free) => match witnesses() {
            WitnessCheck::NotConfigured => FenceVerdict::PeerCannotServe {
                why: "this host is the master and no other host answers for the VIP, so the peer cannot be serving the initiators (no [fence] witnesses are configured, so a cut in this host's own link is not told apart)".into(),
            },
            WitnessCheck::Answered(w) => FenceVerdict::PeerCannotServe {
                why: format!("this host is the master, no other host answers for the VIP and witness {w} answers, so this host is not the one cut off and the peer cannot be serving the initiators"),
            },
            WitnessCheck::NoneAnswered { asked, why } => FenceVerdict::Refuse {
                why: format!(
                    "none of the witnesses ({}) answers{}: this host may be the one cut off while the peer takes over, so it must not write alone; I/O stays frozen until the peer connects again (DRBD resumes it), or the daemon yields; check this host's link to the initiators",
                    asked.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                ),
            },
        },
        Ok(VipProbe::LiveElsewhere { owner }) => FenceVerdict::Refuse {
            why: format!(
                "another host answers for the VIP{}: it serves, so this host must not write alone; the daemon yields",
                owner.as_deref().map(|o| format!(" ({o})")).unwrap_or_default()
            ),
        },
        Err(e) => FenceVerdict::Refuse {
            why: format!("the VIP could not be probed ({e}), so whether another host serves cannot be told"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elsewhere() -> Result<VipProbe, String> {
        Ok(VipProbe::LiveElsewhere {
            owner: Some("52:54:00:00:00:02".into()),
        })
    }

    #[test]
    fn only_a_master_that_nobody_contradicts_goes_on_alone() {
        let free = Ok(VipProbe::Free);
        let cases = [
            (ManualMode::Off, Role::Master, free.clone(), true),
            (ManualMode::Off, Role::Master, elsewhere(), false),
            (
                ManualMode::Off,
                Role::Master,
                Err("no interface".into()),
                false,
            ),
            (ManualMode::Off, Role::Slave, free.clone(), false),
            (
                ManualMode::Off,
                Role::Unknown("pool.conf missing".into()),
                free.clone(),
                false,
            ),
            (ManualMode::BecomePrimary, Role::Slave, free.clone(), true),
            (ManualMode::BecomePrimary, Role::Master, elsewhere(), false),
            (ManualMode::BecomeSecondary, Role::Master, free, false),
        ];
        for (manual, role, probe, goes_on) in cases {
            let v = fence_verdict(manual, &role, &probe, || WitnessCheck::NotConfigured);
            assert_eq!(
                matches!(v, FenceVerdict::PeerCannotServe { .. }),
                goes_on,
                "{manual:?} {role:?} {probe:?}: {v}"
            );
        }
    }

    /// A master cut off from everything sees no VIP owner either: it goes on only when a
    /// witness answers; the witnesses are not asked when the verdict is already a refusal.
    #[test]
    fn a_master_goes_on_alone_only_if_a_witness_answers() {
        let w: IpAddr = "10.0.0.254".parse().unwrap();
        let free = Ok(VipProbe::Free);
        let answered = fence_verdict(ManualMode::Off, &Role::Master, &free, || {
            WitnessCheck::Answered(w)
        });
        assert!(
            matches!(&answered, FenceVerdict::PeerCannotServe { why } if why.contains("witness 10.0.0.254 answers")),
            "{answered}"
        );
        let silent = fence_verdict(ManualMode::Off, &Role::Master, &free, || {
            WitnessCheck::NoneAnswered {
                asked: vec![w],
                why: None,
            }
        });
        assert!(
            matches!(&silent, FenceVerdict::Refuse { why } if why.contains("none of the witnesses (10.0.0.254) answers") && why.contains("cut off")),
            "{silent}"
        );
        for (role, probe) in [(Role::Slave, free.clone()), (Role::Master, elsewhere())] {
            let v = fence_verdict(ManualMode::Off, &role, &probe, || {
                panic!("witnesses asked for {role:?} {probe:?}")
            });
            assert!(matches!(v, FenceVerdict::Refuse { .. }));
        }
    }
}
