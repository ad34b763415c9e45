//! The `xapi` role source: XenServer / XCP-ng's `/etc/xensource/pool.conf`, which holds
//! `master` on the pool master and `slave:<master address>` on the others (and `broken` when
//! XAPI gave up), optionally cross-checked against XAPI itself.

use super::{FileWatch, RoleSource, XapiCheck};
use crate::small_file::{self, WORD_FILE_CAP};
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

/// What pool.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolConf {
    /// This host is the pool master.
    Master,
    /// This host is a member; the master's address.
    Slave(String),
    /// XAPI marked the pool configuration broken.
    Broken,
}

/// Parses pool.conf's text.
pub fn parse_pool_conf(text: &str) -> Result<PoolConf, String> {
    let t = text.trim();
    if t == "master" {
        Ok(PoolConf::Master)
    } else if let Some(addr) = t.strip_prefix("slave:") {
        let addr = addr.trim();
        if addr.is_empty() {
            Err("says slave but names no master".into())
        } else {
            Ok(PoolConf::Slave(addr.to_string()))
        }
    } else if t == "broken" {
        Ok(PoolConf::Broken)
    } else {
        Err(format!(
            "holds {t:?}, not master, slave:<address> or broken"
        ))
    }
}

/// pool.conf, watched with inotify.
#[derive(Debug)]
pub struct PoolConfRole {
    path: PathBuf,
    watch: FileWatch,
    check: Option<XapiCheck>,
}

impl PoolConfRole {
    /// Watches `path`; `check` cross-checks each answer against XAPI.
    pub fn new(path: PathBuf, check: Option<XapiCheck>) -> std::io::Result<Self> {
        let watch = FileWatch::new(&path)?;
        Ok(Self { path, watch, check })
    }
}

impl PoolRole for PoolConfRole {
    fn role(&mut self) -> Result<Role, RoleError> {
        let shown = self.path.display();
        let text = match small_file::read(&self.path, WORD_FILE_CAP) {
            Ok(t) => t,
            Err(e) => return Ok(Role::Unknown(e.to_string())),
        };
        let conf = match parse_pool_conf(&text) {
            Ok(c) => c,
            Err(why) => return Ok(Role::Unknown(format!("{shown} {why}"))),
        };
        let role = match &conf {
            PoolConf::Master => Role::Master,
            PoolConf::Slave(_) => Role::Slave,
            PoolConf::Broken => return Ok(Role::Unknown(format!("{shown} says broken"))),
        };
        if let Some(check) = &self.check {
            if let Err(disagreement) = check.confirm(&conf) {
                return Ok(Role::Unknown(disagreement));
            }
        }
        Ok(role)
    }
}

impl RoleSource for PoolConfRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.watch.as_fd())
    }
    fn drain_changes(&mut self) {
        self.watch.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_xapi_writes() {
        assert_eq!(parse_pool_conf("master\n"), Ok(PoolConf::Master));
        assert_eq!(
            parse_pool_conf("slave:10.0.0.1"),
            Ok(PoolConf::Slave("10.0.0.1".into()))
        );
        assert_eq!(parse_pool_conf("broken"), Ok(PoolConf::Broken));
        assert!(parse_pool_conf("slave:").is_err());
        assert!(parse_pool_conf("").is_err());
        assert!(parse_pool_conf("Master of puppets").is_err());
    }
}
