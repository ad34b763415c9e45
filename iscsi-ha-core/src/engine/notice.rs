//! What the engine tells an operator through the log: the binary decides how loud.

use super::RefreshNotice;
use crate::resource::ResourceName;
use crate::vip::VipClaim;

/// Something the engine saw that an operator should read about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The conflict watch saw other hosts claim the VIP; the last claim is weighed.
    VipClaimed {
        /// How many claims were pending.
        count: usize,
        /// The one kept for the next pass.
        last: VipClaim,
    },
    /// Probing the VIP this host holds (it may be a stale master), another host answered.
    VipAnsweredElsewhere {
        /// The answering host's hardware address, when known.
        owner: Option<String>,
    },
    /// The VIP this host holds could not be probed; the check is tried again later.
    VipProbeFailed(String),
    /// The operator forces the promotion of a resource (`become-primary --force`).
    OperatorForcesPromotion(ResourceName),
    /// The operator's split-brain recovery demotes a resource and reconnects it discarding
    /// this host's changes.
    OperatorDiscards(ResourceName),
    /// The operator's split-brain recovery reconnects a resource keeping this host's data.
    OperatorReconnects(ResourceName),
    /// What the periodic VIP refresh did (`[vip] refresh_interval`).
    VipRefresh(RefreshNotice),
    /// Whether a resource is in split brain could not be told; it is taken as not.
    SplitBrainUnknown {
        /// The resource.
        resource: ResourceName,
        /// Why.
        error: String,
    },
}

impl Notice {
    /// Whether it is worth a warning (otherwise it is detail, for debugging).
    pub fn is_warning(&self) -> bool {
        match self {
            Notice::SplitBrainUnknown { .. } => false,
            Notice::VipRefresh(r) => r.is_warning(),
            _ => true,
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::VipClaimed { count, last } => {
                write!(f, "another host claims the VIP ({count} claims): {last}")
            }
            Notice::VipAnsweredElsewhere { owner } => write!(
                f,
                "another host ({}) answers for the VIP that this host holds",
                owner.as_deref().unwrap_or("unknown")
            ),
            Notice::VipProbeFailed(e) => write!(f, "cannot probe the VIP held here: {e}"),
            Notice::VipRefresh(r) => r.fmt(f),
            Notice::OperatorForcesPromotion(r) => write!(f, "{r}: operator forces promotion"),
            Notice::OperatorDiscards(r) => write!(
                f,
                "{r}: split-brain recovery: demoting and reconnecting, discarding this host's changes"
            ),
            Notice::OperatorReconnects(r) => write!(
                f,
                "{r}: split-brain recovery: reconnecting, keeping this host's data"
            ),
            Notice::SplitBrainUnknown { resource, error } => write!(
                f,
                "{resource}: cannot tell whether it is in split brain: {error}"
            ),
        }
    }
}
