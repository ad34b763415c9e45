//! Requests and responses on the control socket, one JSON object per line.

use iscsi_ha_core::status::Status;
use serde::{Deserialize, Serialize};

/// What an operator asks the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// The current status.
    Status,
    /// Manual mode on, holding the current state (become-primary on the pool master,
    /// become-secondary elsewhere).
    ManualModeEnable,
    /// Manual mode off: follow the pool role again.
    ManualModeDisable,
    /// In manual mode: serve here. `force` promotes even a disk not known to be current (the
    /// operator's path for a peer that is gone); a peer seen Primary is still refused.
    BecomePrimary {
        /// Promote with force.
        #[serde(default)]
        force: bool,
    },
    /// In manual mode: stop serving here.
    BecomeSecondary,
    /// Reload the configuration file (like SIGHUP).
    Reload,
    /// Forget restart budgets and retry delays (an operator has fixed the cause).
    Reset,
    /// Split-brain recovery on the victim: demote, then reconnect throwing this host's
    /// changes away. Both flags must be set.
    SplitBrainResolve {
        /// The operator says this host's changes are to be discarded.
        discard_local_data: bool,
        /// The operator confirmed.
        yes: bool,
    },
    /// Split-brain recovery on the survivor: reconnect, keeping this host's data.
    SplitBrainReconnect,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// The status.
    Status {
        /// It.
        status: Box<Status>,
    },
    /// Done.
    Ok {
        /// What was done.
        message: String,
    },
    /// Not done, on purpose.
    Refused {
        /// Why.
        reason: String,
        /// What to do instead.
        hint: String,
    },
    /// The request could not be handled.
    Error {
        /// Why.
        message: String,
    },
}

impl From<iscsi_ha_core::operator::Refusal> for Response {
    fn from(r: iscsi_ha_core::operator::Refusal) -> Self {
        Response::Refused {
            reason: r.reason,
            hint: r.hint,
        }
    }
}

impl From<iscsi_ha_core::engine::OperatorError> for Response {
    fn from(e: iscsi_ha_core::engine::OperatorError) -> Self {
        match e {
            iscsi_ha_core::engine::OperatorError::Refused(r) => r.into(),
            other => Response::Error {
                message: other.to_string(),
            },
        }
    }
}
