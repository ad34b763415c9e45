//! Role sources: where this host's pool role comes from. Each implements the core's
//! [`RoleSource`] port; file-based sources also give the daemon a descriptor that becomes readable
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

pub use iscsi_ha_core::engine::{FixedRole, RoleSource};

use crate::xapi::Xe;
use iscsi_ha_core::config::schema::{RoleSection, RoleSourceKind, StaticRole, XapiSection};
use iscsi_ha_core::config::DEFAULT_POOL_CONF;
use iscsi_ha_core::role::Role;
use std::path::PathBuf;
use std::time::Duration;

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
