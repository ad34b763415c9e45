//! What the daemon drives: the ports, and the descriptors that tell it something changed.

use crate::role::RoleSource;
use iscsi_ha_core::ports::{Alerts, FloatingIp, IscsiTarget, ReplicatedVolume, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::vip::VipClaim;
use iscsi_ha_core::volume::{SplitBrain, VolumeStatus};
use std::os::fd::BorrowedFd;

/// A descriptor that becomes readable when the world may have changed (a DRBD state change,
/// an address removed, the managed target daemon exiting).
pub trait EventSource: std::fmt::Debug {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// The descriptor to poll, when there is one now (a subscription may wait for a module to
    /// load, a child watch for a child to exist).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Called before each wait: (re)subscribe, follow a restarted child.
    fn refresh(&mut self) {}
    /// Consumes what is pending. `Ok(true)` when it may concern us (reconcile now),
    /// `Ok(false)` when it does not; an error is logged and treated as "may concern us".
    fn drain(&mut self) -> Result<bool, String>;
}

/// Another host claiming the VIP (RFC 5227 section 2.4 ongoing conflict detection): a
/// descriptor that becomes readable when a claim may have arrived, and the claims themselves.
pub trait ClaimWatch: std::fmt::Debug {
    /// The descriptor to poll, when the watch is open (the interface may be missing).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Called before each wait: reopen a watch whose interface went away.
    fn refresh(&mut self) {}
    /// The claims pending now, without blocking; errors are the watch's to log.
    fn drain(&mut self) -> Vec<VipClaim>;
}

/// The replicated volumes as the daemon uses them: the port, and a look at a resource that
/// gives its status and split-brain evidence together (one kernel request where the adapter
/// can, instead of one for each).
pub trait Volumes {
    /// The port, for the reconciler and the operator's requests.
    fn port(&mut self) -> &mut dyn ReplicatedVolume;
    /// The resource's status and whether it is in split brain.
    #[allow(clippy::type_complexity)]
    fn observe(
        &mut self,
        resource: &ResourceName,
    ) -> (
        Result<VolumeStatus, VolumeError>,
        Result<Option<SplitBrain>, VolumeError>,
    ) {
        let port = self.port();
        (port.status(resource), port.split_brain(resource))
    }
}

/// The ports and event sources of one host, built by the wiring.
#[allow(missing_debug_implementations)]
pub struct Host {
    /// The role source.
    pub role: Box<dyn RoleSource>,
    /// The replicated volumes.
    pub volumes: Box<dyn Volumes>,
    /// The iSCSI target.
    pub target: Box<dyn IscsiTarget>,
    /// The floating address.
    pub vip: Box<dyn FloatingIp>,
    /// Where alerts go.
    pub alerts: Box<dyn Alerts>,
    /// What wakes the daemon besides its own timers.
    pub events: Vec<Box<dyn EventSource>>,
    /// Other hosts' claims on the VIP, when the watch could be set up.
    pub claims: Option<Box<dyn ClaimWatch>>,
}
