//! The role an external cluster manager gives this host.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which role this host has in the pool, as decided outside iscsi-ha.
///
/// iscsi-ha never decides roles; it only follows them. `Unknown` is a hold: nothing changes
/// while it lasts (a missing or `broken` pool.conf, a role source that timed out, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "reason")]
pub enum Role {
    /// The pool master: this host serves the storage.
    Master,
    /// A pool member: this host must not serve.
    Slave,
    /// The role cannot be known now; the reason says why.
    Unknown(String),
}

impl Role {
    /// The role's short name as shown to operators: `master`, `slave` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
            Role::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Unknown(reason) => write!(f, "unknown ({reason})"),
            other => f.write_str(other.name()),
        }
    }
}
