//! Role sources: where this host's pool role comes from. Each implements the core's
//! [`PoolRole`] port; file-based sources also give the daemon a descriptor that becomes readable
//! when the role may have changed, so a change is seen at once instead of at the next scan.

mod child;
mod command;
mod file;
mod kept;
mod pool_conf;
mod watch;
mod xapi;

pub use child::{run_with_timeout, ChildRun, CommandOutput, RunError};
pub use command::CommandRole;
pub use file::FileRole;
pub use kept::KEPT_FOR_TIMEOUTS;
pub use pool_conf::{parse_pool_conf, PoolConfRole};
pub use watch::FileWatch;
pub use xapi::{installation_uuid, XapiCheck};

use crate::xapi::Xe;
use iscsi_ha_core::config::schema::{RoleSection, RoleSourceKind, StaticRole, XapiSection};
use iscsi_ha_core::config::DEFAULT_POOL_CONF;
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A role source the daemon can poll without blocking. [`PoolRole::role`] asks and waits
/// (bounded; for one-shot commands); the daemon uses [`RoleSource::refresh`] to ask,
/// [`RoleSource::current`] to read, and polls [`RoleSource::change_fd`] for the answer, so a
/// slow source (a command, XAPI's `xe`) never holds its loop.
pub trait RoleSource: PoolRole + std::fmt::Debug {
    /// A descriptor that becomes readable when the role may have changed (a file changed, a
    /// running program wrote or ended), if the source has one now.
    fn change_fd(&self) -> Option<BorrowedFd<'_>>;
    /// Consumes what is pending on `change_fd` (or is [`RoleSource::due`]), without blocking;
    /// `true` when the role may have changed.
    fn drain_changes(&mut self) -> bool;
    /// Asks again without waiting: a slow source starts its program unless one is running.
    fn refresh(&mut self) {}
    /// The role to act on now, without blocking: a fast source reads it, a slow one gives its
    /// last answer (unknown once it has gone unanswered for [`KEPT_FOR_TIMEOUTS`] timeouts).
    fn current(&mut self) -> Role {
        self.role().unwrap_or_else(|e| Role::Unknown(e.to_string()))
    }
    /// When [`RoleSource::drain_changes`] must be called even if nothing is readable (a
    /// running program's timeout).
    fn due(&self) -> Option<Instant> {
        None
    }
    /// Whether the source's first answer is still awaited (the daemon acts on none before).
    fn starting(&self) -> bool {
        false
    }
}

/// A role fixed in the configuration.
#[derive(Debug, Clone)]
pub struct FixedRole(pub Role);

impl PoolRole for FixedRole {
    fn role(&mut self) -> Result<Role, RoleError> {
        Ok(self.0.clone())
    }
}

impl RoleSource for FixedRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn drain_changes(&mut self) -> bool {
        false
    }
}

/// Default time a command or `xe` gets to answer (the original's XE_TIMEOUT).
pub const DEFAULT_ROLE_TIMEOUT: Duration = Duration::from_secs(13);

/// Builds the role source the configuration asks for; pool.conf's cross-check calls `[xapi] xe`
/// and names this host by `[xapi] inventory`.
pub fn from_config(
    section: &RoleSection,
    xapi: &XapiSection,
) -> std::io::Result<Box<dyn RoleSource>> {
    let timeout = section.timeout.map_or(DEFAULT_ROLE_TIMEOUT, |t| t.get());
    Ok(match section.source {
        RoleSourceKind::Xapi => {
            let path = PathBuf::from(section.pool_conf.as_deref().unwrap_or(DEFAULT_POOL_CONF));
            let check = section
                .xapi_check
                .unwrap_or(false)
                .then(|| XapiCheck::new(Xe::new(&xapi.xe, timeout), &xapi.inventory));
            Box::new(PoolConfRole::new(path, check)?)
        }
        RoleSourceKind::File => Box::new(FileRole::new(PathBuf::from(
            section.path.as_deref().unwrap_or_default(),
        ))?),
        RoleSourceKind::Command => Box::new(CommandRole::new(
            section.command.clone().unwrap_or_default(),
            timeout,
        )),
        RoleSourceKind::Static => Box::new(FixedRole(match section.role {
            Some(StaticRole::Master) => Role::Master,
            Some(StaticRole::Slave) | None => Role::Slave,
        })),
    })
}

/// Reads `master` or `slave` (any case, surrounding whitespace ignored) as a role.
pub fn parse_role_word(text: &str) -> Option<Role> {
    match text.trim().to_ascii_lowercase().as_str() {
        "master" => Some(Role::Master),
        "slave" => Some(Role::Slave),
        _ => None,
    }
}
