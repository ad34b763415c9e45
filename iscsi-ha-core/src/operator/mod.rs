//! The operator's requests (`iscsi-cfg` verbs), checked against a fresh observation: pure
//! functions that say what a request would do, or why it is refused and what to do instead.
//! The daemon only observes, calls the check, and performs what it allows through the ports.
//!
//! | module | verbs |
//! |---|---|
//! | [`manual`] | `manual-mode-enable`, `manual-mode-disable` |
//! | [`serve`] | `become-primary [--force]`, `become-secondary` |
//! | [`split_brain`] | `split-brain resolve`, `split-brain reconnect` |

pub mod manual;
pub mod serve;
pub mod split_brain;

pub use manual::{
    check_manual_mode_disable, check_manual_mode_enable, manual_mode_holding_now, ManualModeChange,
};
pub use serve::{
    become_primary_needs_probe, check_become_primary, check_become_secondary, BecomePrimary,
};
pub use split_brain::{check_split_brain_resolve, split_brain_reconnect_targets};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A refused request: why, and what the operator can do. Every refusal names a next step
/// (an `iscsi-cfg` verb, or what to fix before trying again); the property tests hold that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why it is refused, in the operator's terms (resources and roles by name).
    pub reason: String,
    /// What to do instead.
    pub hint: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.hint)
    }
}

/// The hint shared by the verbs that need manual mode: outside it the pool role decides, and
/// a verb that moved storage would be undone by the next pass.
fn not_in_manual_mode() -> Refusal {
    Refusal {
        reason: "not in manual mode".into(),
        hint: "run iscsi-cfg manual-mode-enable first (the pool role decides otherwise)".into(),
    }
}
