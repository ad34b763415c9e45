//! [`LioTarget`]: the core's [`IscsiTarget`] port over LIO's configfs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use iscsi_ha_core::ports::{IscsiTarget, TargetError};
use iscsi_ha_core::target::{TargetSpec, TargetStatus};

use crate::converge;
use crate::error::LioError;
use crate::fs::Configfs;
use crate::observe;

/// Where LIO is and where the target listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LioConfig {
    /// The target core's configfs root (`/sys/kernel/config/target`).
    pub root: PathBuf,
    /// The one portal the TPG listens on: the VIP, or `0.0.0.0:3260` for every address. The
    /// core's `TargetSpec` carries no portal (tgtd listens everywhere), so it is ours.
    pub portal: SocketAddr,
}

impl Default for LioConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/sys/kernel/config/target"),
            portal: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3260)),
        }
    }
}

/// The LIO adapter. Keeps no state between calls: the kernel's tree is the only truth, so a
/// restarted daemon adopts what is there and LIO keeps serving while no daemon runs.
#[derive(Debug)]
pub struct LioTarget {
    config: LioConfig,
    cfs: Configfs,
}

impl LioTarget {
    /// An adapter for `config`; touches nothing until asked.
    pub fn new(config: LioConfig) -> Self {
        let cfs = Configfs::new(config.root.clone());
        Self { config, cfs }
    }

    /// The configuration.
    pub fn config(&self) -> &LioConfig {
        &self.config
    }

    /// The tree this adapter works on (for [`Configfs::fail_after`] in the lab).
    pub fn configfs(&self) -> &Configfs {
        &self.cfs
    }

    /// Whether the kernel's target is there to be driven; the error names the modules to load.
    pub fn available(&self) -> Result<(), LioError> {
        converge::require_core(&self.cfs)
    }
}

impl IscsiTarget for LioTarget {
    fn status(&mut self) -> Result<TargetStatus, TargetError> {
        Ok(observe::status(&self.cfs)?)
    }

    fn serve(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        Ok(converge::serve(&self.cfs, spec, self.config.portal)?)
    }

    fn stop(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        Ok(converge::teardown(&self.cfs, &spec.iqn)?)
    }
}
