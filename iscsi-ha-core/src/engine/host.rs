//! What the engine drives on one host: the ports, and the descriptors that tell it something
//! changed. The core only hands descriptors over; the binary polls them.

use crate::ports::{
    Alerts, FloatingIp, IscsiTarget, PoolRole, ReplicatedVolume, RoleError, VolumeError,
};
use crate::resource::ResourceName;
use crate::role::Role;
use crate::vip::VipClaim;
use crate::volume::{SplitBrain, VolumeStatus};
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// A descriptor that becomes readable when the world may have changed (a DRBD state change,
/// an address removed, the managed target daemon exiting). Each adapter offers its own.
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

/// One look at a resource: its status, and whether it is in split brain, each or why it could
/// not be told.
pub type VolumeLook = (
    Result<VolumeStatus, VolumeError>,
    Result<Option<SplitBrain>, VolumeError>,
);

/// The replicated volumes as the engine uses them: the port, a look at a resource that gives
/// its status and split-brain evidence together (one kernel request where the adapter can),
/// and the adapter's own event descriptor when it has one.
pub trait Volumes {
    /// The port, for the reconciler and the operator's requests.
    fn port(&mut self) -> &mut dyn ReplicatedVolume;
    /// The resource's status and whether it is in split brain.
    fn observe(&mut self, resource: &ResourceName) -> VolumeLook {
        let port = self.port();
        (port.status(resource), port.split_brain(resource))
    }
    /// What tells the loop that a resource changed (DRBD's event subscription), if anything.
    fn events(&mut self) -> Option<&mut dyn EventSource> {
        None
    }
}

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
    /// last answer (unknown once it has gone unanswered for a few timeouts).
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

/// A role fixed in the configuration: it never changes, so it has nothing to poll.
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

/// The ports and event sources of one host, built by the wiring and owned by the daemon; the
/// engine borrows them for each wake-up.
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
    /// What wakes the daemon besides its own timers and the ports' own sources (address
    /// events).
    pub events: Vec<Box<dyn EventSource>>,
    /// Other hosts' claims on the VIP, when the watch could be set up.
    pub claims: Option<Box<dyn ClaimWatch>>,
}

/// The descriptors of a [`Host`] to poll, lent for one wait.
#[derive(Debug)]
pub struct Descriptors<'a> {
    /// The role source's, when it has one now.
    pub role: Option<BorrowedFd<'a>>,
    /// The claim watch's, when it is open.
    pub claims: Option<BorrowedFd<'a>>,
    /// Each event source's, by the index [`Host::event_sources`] gives it.
    pub events: Vec<Option<BorrowedFd<'a>>>,
}

impl Host {
    /// Refreshes the claim watch and the event sources (reopen, resubscribe, follow a
    /// restarted child), then lends every descriptor to poll.
    pub fn descriptors(&mut self) -> Descriptors<'_> {
        if let Some(claims) = self.claims.as_mut() {
            claims.refresh();
        }
        for source in self.event_sources() {
            source.refresh();
        }
        let Host {
            role,
            volumes,
            target,
            events,
            claims,
            ..
        } = self;
        let mut fds = Vec::new();
        let own: [Option<&mut dyn EventSource>; 2] = [volumes.events(), target.events()];
        for source in own.into_iter().flatten() {
            let source: &dyn EventSource = source;
            fds.push(source.fd());
        }
        for source in events.iter() {
            fds.push(source.fd());
        }
        Descriptors {
            role: role.change_fd(),
            claims: claims.as_ref().and_then(|c| c.fd()),
            events: fds,
        }
    }

    /// Every event source to poll: the volumes' and the target's own, then the others, in a
    /// stable order (index `i` names the same source until the host is rebuilt).
    pub fn event_sources(&mut self) -> Vec<&mut dyn EventSource> {
        let mut all: Vec<&mut dyn EventSource> = Vec::new();
        if let Some(s) = self.volumes.events() {
            all.push(s);
        }
        if let Some(s) = self.target.events() {
            all.push(s);
        }
        for s in self.events.iter_mut() {
            all.push(s.as_mut());
        }
        all
    }
}
