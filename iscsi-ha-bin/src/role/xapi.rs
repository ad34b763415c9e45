//! Cross-checking pool.conf against XAPI with `xe` (bounded by a timeout). A disagreement, or
//! an `xe` that does not answer, makes the role unknown rather than guessed.

use super::child::{ChildRun, CommandOutput, RunError};
use super::pool_conf::PoolConf;
use crate::small_file;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

/// Where XenServer records this host's UUID.
pub const INVENTORY: &str = "/etc/xensource-inventory";

/// XAPI's inventory is a few dozen `KEY='value'` lines.
const INVENTORY_CAP: u64 = 64 * 1024;

/// Asks XAPI who the pool master is.
#[derive(Debug, Clone)]
pub struct XapiCheck {
    timeout: Duration,
    xe: String,
    inventory: String,
}

impl XapiCheck {
    /// A check with this `xe` timeout.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            xe: "xe".into(),
            inventory: INVENTORY.into(),
        }
    }

    /// How long `xe` gets to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same check with another `xe` program and inventory file (for tests).
    pub fn with_paths(timeout: Duration, xe: &str, inventory: &str) -> Self {
        Self {
            timeout,
            xe: xe.into(),
            inventory: inventory.into(),
        }
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
        let args = ["pool-list", "params=master", "--minimal"];
        Ok(XapiRun {
            conf: conf.clone(),
            args: args.join(" "),
            run: self.spawn(&args)?,
        })
    }

    fn spawn(&self, args: &[&str]) -> Result<ChildRun, String> {
        ChildRun::spawn(&self.xe, args, self.timeout).map_err(|e| {
            format!(
                "XAPI cross-check failed: {} {}: {e}",
                self.xe,
                args.join(" ")
            )
        })
    }

    /// The value `xe` printed, or why there is none.
    fn value(
        &self,
        args: &str,
        result: Result<CommandOutput, RunError>,
    ) -> Result<String, XapiVerdict> {
        let out = result.map_err(|e| {
            let why = format!("XAPI cross-check failed: {} {args}: {e}", self.xe);
            if matches!(e, RunError::Timeout { .. }) {
                XapiVerdict::NoAnswer(why)
            } else {
                XapiVerdict::Disagrees(why)
            }
        })?;
        if !out.success {
            return Err(XapiVerdict::Disagrees(format!(
                "XAPI cross-check failed: {} {args} exited {}",
                self.xe,
                out.code.unwrap_or(-1)
            )));
        }
        let value = out.stdout.trim().to_string();
        if value.is_empty() {
            return Err(XapiVerdict::Disagrees(format!(
                "XAPI cross-check: {} {args} printed nothing",
                self.xe
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
    args: String,
    run: ChildRun,
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
        let value = match check.value(&self.args, result) {
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
            PoolConf::Slave(_) if self.args.starts_with("pool-list") => {
                let uuid = format!("uuid={value}");
                let args = ["host-param-get", uuid.as_str(), "param-name=address"];
                match check.spawn(&args) {
                    Ok(run) => {
                        self.run = run;
                        self.args = args.join(" ");
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
