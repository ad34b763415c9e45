//! Cross-checking pool.conf against XAPI with `xe` (bounded by a timeout). A disagreement, or
//! an `xe` that does not answer, makes the role unknown rather than guessed.

use super::child::RunError;
use super::pool_conf::PoolConf;
use crate::small_file;
use crate::xapi::{Xe, XeCall, XeError};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

/// XAPI's inventory is a few dozen `KEY='value'` lines.
const INVENTORY_CAP: u64 = 64 * 1024;

/// Asks XAPI who the pool master is.
#[derive(Debug, Clone)]
pub struct XapiCheck {
    xe: Xe,
    inventory: String,
}

impl XapiCheck {
    /// A check through `xe` (`[xapi] xe`, each call bounded by its timeout), naming this host
    /// by the `INSTALLATION_UUID` of `inventory` (`[xapi] inventory`).
    pub fn new(xe: Xe, inventory: &str) -> Self {
        Self {
            xe,
            inventory: inventory.into(),
        }
    }

    /// How long `xe` gets to answer.
    pub fn timeout(&self) -> Duration {
        self.xe.timeout()
    }

    /// The same check with another `xe` program and inventory file (for tests).
    pub fn with_paths(timeout: Duration, xe: &str, inventory: &str) -> Self {
        Self::new(Xe::new(xe, timeout), inventory)
    }

    /// `Ok` when XAPI agrees with pool.conf, else why not. Waits for `xe` (bounded by the
    /// timeout, for each of at most two calls): for one-shot callers.
    pub fn confirm(&self, conf: &PoolConf) -> Result<(), String> {
        let mut run = self.start(conf)?;
        loop {
            match run.advance(self) {
                Some(XapiVerdict::Agrees) => return Ok(()),
                Some(XapiVerdict::Disagrees(why) | XapiVerdict::NoAnswer(why)) => return Err(why),
                None => run.run.block_until_due(),
            }
        }
    }

    /// Starts the cross-check of `conf` without waiting: poll [`XapiRun::fd`], then call
    /// [`XapiRun::advance`].
    pub fn start(&self, conf: &PoolConf) -> Result<XapiRun, String> {
        if *conf == PoolConf::Broken {
            return Err("pool.conf says broken".into());
        }
        Ok(XapiRun {
            conf: conf.clone(),
            asked_master: true,
            run: self.spawn(&["pool-list", "params=master", "--minimal"])?,
        })
    }

    fn spawn(&self, args: &[&str]) -> Result<XeCall, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.xe
            .start(&args)
            .map_err(|e| format!("XAPI cross-check failed: {e}"))
    }

    /// The value `xe` printed, or why there is none.
    fn value(&self, command: &str, result: Result<String, XeError>) -> Result<String, XapiVerdict> {
        let out = result.map_err(|e| {
            let why = format!("XAPI cross-check failed: {e}");
            if matches!(
                e,
                XeError::Run {
                    run: RunError::Timeout { .. },
                    ..
                }
            ) {
                XapiVerdict::NoAnswer(why)
            } else {
                XapiVerdict::Disagrees(why)
            }
        })?;
        let value = out.trim().to_string();
        if value.is_empty() {
            return Err(XapiVerdict::Disagrees(format!(
                "XAPI cross-check: {command} printed nothing"
            )));
        }
        Ok(value)
    }

    fn own_uuid(&self) -> Result<String, String> {
        installation_uuid(Path::new(&self.inventory))
    }
}

/// This host's UUID as XAPI knows it: `INSTALLATION_UUID` in XenServer's inventory (a bounded
/// read of a regular file, quotes removed); the error names the file.
pub fn installation_uuid(inventory: &Path) -> Result<String, String> {
    let text = small_file::read(inventory, INVENTORY_CAP).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("INSTALLATION_UUID="))
        .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
        .ok_or_else(|| format!("{} has no INSTALLATION_UUID", inventory.display()))
}

/// How a cross-check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XapiVerdict {
    /// XAPI agrees with pool.conf.
    Agrees,
    /// XAPI disagrees, or answered something unusable: the role is unknown.
    Disagrees(String),
    /// `xe` did not answer within its timeout: the last verdict stands for a while.
    NoAnswer(String),
}

/// A cross-check under way: one `xe` call at a time (the master's UUID, then, for a slave,
/// the master's address).
#[derive(Debug)]
pub struct XapiRun {
    conf: PoolConf,
    /// Whether the call under way is the first (the master's UUID).
    asked_master: bool,
    run: XeCall,
}

impl XapiRun {
    /// What is checked.
    pub fn conf(&self) -> &PoolConf {
        &self.conf
    }

    /// The running `xe`'s output, while it has one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.run.fd()
    }

    /// When [`XapiRun::advance`] must be called even if nothing is readable.
    pub fn due(&self) -> Instant {
        self.run.due()
    }

    /// Reads without blocking; the verdict once there is one.
    pub fn advance(&mut self, check: &XapiCheck) -> Option<XapiVerdict> {
        let result = self.run.advance()?;
        let value = match check.value(self.run.command(), result) {
            Ok(v) => v,
            Err(verdict) => return Some(verdict),
        };
        let verdict = match &self.conf {
            PoolConf::Master => match check.own_uuid() {
                Ok(me) if me == value => XapiVerdict::Agrees,
                Ok(me) => XapiVerdict::Disagrees(format!(
                    "pool.conf says master but XAPI's pool master is {value}, not this host ({me})"
                )),
                Err(e) => XapiVerdict::Disagrees(e),
            },
            PoolConf::Slave(_) if self.asked_master => {
                let uuid = format!("uuid={value}");
                match check.spawn(&["host-param-get", uuid.as_str(), "param-name=address"]) {
                    Ok(run) => {
                        self.run = run;
                        self.asked_master = false;
                        return None;
                    }
                    Err(e) => XapiVerdict::Disagrees(e),
                }
            }
            PoolConf::Slave(address) if value == *address => XapiVerdict::Agrees,
            PoolConf::Slave(address) => XapiVerdict::Disagrees(format!(
                "pool.conf names master {address} but XAPI's pool master is at {value}"
            )),
            PoolConf::Broken => XapiVerdict::Disagrees("pool.conf says broken".into()),
        };
        Some(verdict)
    }
}
