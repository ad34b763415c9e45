//! Cross-checking pool.conf against XAPI with `xe` (bounded by a timeout). A disagreement, or
//! an `xe` that does not answer, makes the role unknown rather than guessed.

use super::command::run_with_timeout;
use super::pool_conf::PoolConf;
use crate::small_file;
use std::path::Path;
use std::time::Duration;

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

    /// The same check with another `xe` program and inventory file (for tests).
    pub fn with_paths(timeout: Duration, xe: &str, inventory: &str) -> Self {
        Self {
            timeout,
            xe: xe.into(),
            inventory: inventory.into(),
        }
    }

    /// `Ok` when XAPI agrees with pool.conf, else why not.
    pub fn confirm(&self, conf: &PoolConf) -> Result<(), String> {
        let master_uuid = self.xe(&["pool-list", "params=master", "--minimal"])?;
        match conf {
            PoolConf::Master => {
                let me = self.own_uuid()?;
                if master_uuid == me {
                    Ok(())
                } else {
                    Err(format!("pool.conf says master but XAPI's pool master is {master_uuid}, not this host ({me})"))
                }
            }
            PoolConf::Slave(address) => {
                let arg = format!("uuid={master_uuid}");
                let master_address = self.xe(&["host-param-get", &arg, "param-name=address"])?;
                if &master_address == address {
                    Ok(())
                } else {
                    Err(format!("pool.conf names master {address} but XAPI's pool master is at {master_address}"))
                }
            }
            PoolConf::Broken => Err("pool.conf says broken".into()),
        }
    }

    fn xe(&self, args: &[&str]) -> Result<String, String> {
        let out = run_with_timeout(&self.xe, args, self.timeout).map_err(|e| {
            format!(
                "XAPI cross-check failed: {} {}: {e}",
                self.xe,
                args.join(" ")
            )
        })?;
        if !out.success {
            return Err(format!(
                "XAPI cross-check failed: {} {} exited {}",
                self.xe,
                args.join(" "),
                out.code.unwrap_or(-1)
            ));
        }
        let value = out.stdout.trim().to_string();
        if value.is_empty() {
            return Err(format!(
                "XAPI cross-check: {} {} printed nothing",
                self.xe,
                args.join(" ")
            ));
        }
        Ok(value)
    }

    fn own_uuid(&self) -> Result<String, String> {
        let text = small_file::read(Path::new(&self.inventory), INVENTORY_CAP)
            .map_err(|e| e.to_string())?;
        text.lines()
            .find_map(|l| l.strip_prefix("INSTALLATION_UUID="))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
            .ok_or_else(|| format!("{} has no INSTALLATION_UUID", self.inventory))
    }
}
