//! The `xapi` role source: XenServer / XCP-ng's `/etc/xensource/pool.conf`, which holds
//! `master` on the pool master and `slave:<master address>` on the others (and `broken` when
//! XAPI gave up), optionally cross-checked against XAPI itself.

use super::kept::KeptAnswer;
use super::xapi::{XapiRun, XapiVerdict};
use super::{FileWatch, RoleSource, XapiCheck};
use crate::small_file::{self, WORD_FILE_CAP};
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

/// pool.conf, watched with inotify; with a cross-check, XAPI's verdict on it, asked off the
/// daemon's loop and kept (with the role it confirmed) while the next is awaited.
#[derive(Debug)]
pub struct PoolConfRole {
    path: PathBuf,
    watch: FileWatch,
    check: Option<XapiCheck>,
    run: Option<XapiRun>,
    /// The pool.conf the kept answer is about.
    checked: Option<PoolConf>,
    kept: KeptAnswer,
}

impl PoolConfRole {
    /// Watches `path`; `check` cross-checks each answer against XAPI.
    pub fn new(path: PathBuf, check: Option<XapiCheck>) -> std::io::Result<Self> {
        let watch = FileWatch::new(&path)?;
        let timeout = check.as_ref().map_or(Duration::ZERO, XapiCheck::timeout);
        Ok(Self {
            path,
            watch,
            check,
            run: None,
            checked: None,
            kept: KeptAnswer::new("XAPI's cross-check (xe)".into(), timeout),
        })
    }

    /// pool.conf read now: what it says, or the unknown role it makes.
    fn read(&self) -> Result<PoolConf, Role> {
        let text = small_file::read(&self.path, WORD_FILE_CAP)
            .map_err(|e| Role::Unknown(e.to_string()))?;
        let conf = parse_pool_conf(&text)
            .map_err(|why| Role::Unknown(format!("{} {why}", self.path.display())))?;
        if conf == PoolConf::Broken {
            return Err(Role::Unknown(format!(
                "{} says broken",
                self.path.display()
            )));
        }
        Ok(conf)
    }

    /// Starts a cross-check of `conf` unless one is running.
    fn ask(&mut self, conf: &PoolConf) {
        let Some(check) = &self.check else {
            return;
        };
        if self.run.is_some() {
            return;
        }
        let now = Instant::now();
        match check.start(conf) {
            Ok(run) => {
                self.kept.asked(now);
                self.run = Some(run);
            }
            Err(why) => {
                self.checked = Some(conf.clone());
                self.kept.answered(Role::Unknown(why), now);
            }
        }
    }
}

fn role_of(conf: &PoolConf) -> Role {
    match conf {
        PoolConf::Master => Role::Master,
        PoolConf::Slave(_) => Role::Slave,
        PoolConf::Broken => Role::Unknown("pool.conf says broken".into()),
    }
}

impl PoolRole for PoolConfRole {
    /// Reads pool.conf and, with a cross-check, waits for XAPI (bounded): for one-shot callers.
    fn role(&mut self) -> Result<Role, RoleError> {
        let conf = match self.read() {
            Ok(c) => c,
            Err(unknown) => return Ok(unknown),
        };
        if let Some(check) = &self.check {
            if let Err(disagreement) = check.confirm(&conf) {
                return Ok(Role::Unknown(disagreement));
            }
        }
        Ok(role_of(&conf))
    }
}

impl RoleSource for PoolConfRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.run {
            // While `xe` runs its output is what may change the role; a change of pool.conf
            // meanwhile is read when it ends (one cross-check at a time).
            Some(run) => run.fd(),
            None => Some(self.watch.as_fd()),
        }
    }

    fn drain_changes(&mut self) -> bool {
        // Consumed even while `xe` runs: it is read again when the check ends.
        self.watch.drain();
        let (Some(run), Some(check)) = (self.run.as_mut(), self.check.as_ref()) else {
            return true;
        };
        let Some(verdict) = run.advance(check) else {
            return false;
        };
        let conf = run.conf().clone();
        self.run = None;
        let now = Instant::now();
        match verdict {
            XapiVerdict::Agrees => self.kept.answered(role_of(&conf), now),
            XapiVerdict::Disagrees(why) => self.kept.answered(Role::Unknown(why), now),
            XapiVerdict::NoAnswer(why) => {
                self.kept.unanswered(why);
                return true;
            }
        }
        self.checked = Some(conf);
        true
    }

    fn refresh(&mut self) {
        self.drain_changes();
        if let Ok(conf) = self.read() {
            self.ask(&conf);
        }
    }

    fn current(&mut self) -> Role {
        let conf = match self.read() {
            Ok(c) => c,
            Err(unknown) => return unknown,
        };
        if self.check.is_none() {
            return role_of(&conf);
        }
        if self.checked.as_ref() != Some(&conf) {
            // pool.conf changed: ask XAPI about it; the last confirmed role stands meanwhile.
            self.ask(&conf);
        }
        self.kept.role(Instant::now())
    }

    fn due(&self) -> Option<Instant> {
        self.run.as_ref().map(XapiRun::due)
    }

    fn starting(&self) -> bool {
        self.run.is_some() && self.kept.is_first_pending()
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
