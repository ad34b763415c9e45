//! The ports: what the core asks of the world, as small object-safe traits.
//!
//! Each port has its own error type; every error says through [`RetryHint`] whether trying
//! again later can help (the peer may demote, a starting daemon may come up) or not (a
//! malformed reply, a missing interface, no permission). The adapter's words travel in a
//! [`Cause`], which keeps the adapter's own error (and so its whole source chain) when there
//! is one. The error enums are `#[non_exhaustive]`: an adapter for another backend may need a
//! kind we add later, and integrators' matches keep compiling.

use crate::alert::Alert;
use crate::resource::ResourceName;
use crate::role::Role;
use crate::target::{TargetSpec, TargetStatus};
use crate::vip::{Vip, VipProbe, VipRefresh};
use crate::volume::{SplitBrain, VolumeStatus};

/// What an adapter said about a failure: its words, and its own error when it has one.
///
/// Made from a message (`"text".into()`, `format!(..).into()`) or from the adapter's error
/// ([`Cause::of`]), which is kept: [`std::error::Error::source`] continues with that error's
/// own sources (the text is already the message, so the chain does not repeat it), and
/// [`Cause::adapter_error`] gives the error itself, to downcast to the adapter's type.
/// Two causes are equal when their texts are.
#[derive(Debug, Clone)]
pub struct Cause {
    text: String,
    error: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A cause that is the adapter's error `e`, kept whole.
    pub fn of(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            text: e.to_string(),
            error: Some(std::sync::Arc::new(e)),
        }
    }

    /// The adapter's words.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The adapter's own error, when the cause was made from one (downcast it to the
    /// adapter's own error type: `cause.adapter_error()?.downcast_ref::<AdapterError>()`).
    pub fn adapter_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.error.as_deref()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_deref().and_then(std::error::Error::source)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Cause {}

impl From<String> for Cause {
    fn from(text: String) -> Self {
        Self { text, error: None }
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}

/// Whether a failed request may succeed if repeated later without anyone changing the setup.
pub trait RetryHint {
    /// `true` when a later retry can help.
    fn retry_can_help(&self) -> bool;
}

/// The source of this host's pool role (XAPI's pool.conf, a role file, a command, a constant).
pub trait PoolRole {
    /// The role now. A role source that cannot tell returns an error; the daemon treats it as
    /// [`Role::Unknown`].
    fn role(&mut self) -> Result<Role, RoleError>;
}

/// Why the role source could not tell the role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    /// The source could not be read (missing file, command failed to start).
    #[error("role source unreadable: {0}")]
    Unreadable(#[source] Cause),
    /// The source did not answer in time.
    #[error("role source timed out after {0} ms")]
    Timeout(u64),
    /// The source answered something that is not a role.
    #[error("role source said {0:?}, which is not a role")]
    Malformed(String),
}

impl RetryHint for RoleError {
    fn retry_can_help(&self) -> bool {
        !matches!(self, RoleError::Malformed(_))
    }
}

/// A replicated block device (a DRBD resource).
pub trait ReplicatedVolume {
    /// The resource's state now.
    fn status(&mut self, resource: &ResourceName) -> Result<VolumeStatus, VolumeError>;
    /// Makes this host Primary. `force` is the operator's path for a peer that cannot be
    /// reached and a disk that is not known to be current; the planner never sets it.
    fn promote(&mut self, resource: &ResourceName, force: bool) -> Result<(), VolumeError>;
    /// Makes this host Secondary.
    fn demote(&mut self, resource: &ResourceName) -> Result<(), VolumeError>;
    /// Lets I/O frozen by the replication layer's fencing go on (DRBD's `resume-io`): the
    /// writes held since the peer was lost complete on this host's disk only. Only for a host
    /// that no longer serves (its VIP gone), so none of them can be acknowledged to an
    /// initiator; it is how a yielding host gets its device free to demote.
    fn resume_io(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        let _ = resource;
        Err(VolumeError::Unsupported(
            "resuming frozen I/O is not supported by this adapter".into(),
        ))
    }
    /// Whether the resource is in split brain, with what each side is known to hold. Adapters
    /// that cannot tell answer `None`.
    fn split_brain(&mut self, resource: &ResourceName) -> Result<Option<SplitBrain>, VolumeError> {
        let _ = resource;
        Ok(None)
    }
    /// Connects to the peer again; `discard_local_data` throws this side's changes away so the
    /// peer's data wins (split-brain recovery on the victim). An operator-only path.
    fn connect(
        &mut self,
        resource: &ResourceName,
        discard_local_data: bool,
    ) -> Result<(), VolumeError> {
        let _ = (resource, discard_local_data);
        Err(VolumeError::Unsupported(
            "reconnecting is not supported by this adapter".into(),
        ))
    }
}

/// Why a replicated-volume request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// Promotion refused because the peer is Primary (no dual-primary).
    #[error("the peer is Primary")]
    PeerPrimary,
    /// Demotion refused because the device is open (the target still exports it).
    #[error("the device is in use")]
    DeviceInUse,
    /// Promotion refused because neither side has an up-to-date disk.
    #[error("no up-to-date disk")]
    NoUpToDateDisk,
    /// The resource is not configured in the kernel.
    #[error("resource {0} does not exist")]
    NoSuchResource(String),
    /// The replication layer cannot be reached (module not loaded, netlink failure).
    #[error("replication unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Another refusal, with the replication layer's own words.
    #[error("refused: {0}")]
    Refused(#[source] Cause),
    /// The reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(#[source] Cause),
    /// Not allowed (not root, no CAP_NET_ADMIN).
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] Cause),
    /// The adapter does not support this kernel's dialect yet.
    #[error("unsupported: {0}")]
    Unsupported(#[source] Cause),
}

impl RetryHint for VolumeError {
    fn retry_can_help(&self) -> bool {
        matches!(
            self,
            VolumeError::PeerPrimary
                | VolumeError::DeviceInUse
                | VolumeError::NoUpToDateDisk
                | VolumeError::Unavailable(_)
                | VolumeError::Refused(_)
        )
    }
}

/// An iSCSI target daemon.
pub trait IscsiTarget {
    /// What the daemon exports now.
    fn status(&mut self) -> Result<TargetStatus, TargetError>;
    /// Converges the daemon on `spec`: creates what is missing, changes what differs, leaves
    /// what matches (a logged-in initiator is not disturbed), and makes the target accept logins.
    fn serve(&mut self, spec: &TargetSpec) -> Result<(), TargetError>;
    /// Stops exporting `spec`: refuses new logins, drops sessions, removes the target (and stops
    /// a daemon this adapter manages).
    fn stop(&mut self, spec: &TargetSpec) -> Result<(), TargetError>;
    /// What tells the loop the target changed on its own (a managed daemon exiting), if
    /// anything: an in-kernel target has nothing to watch.
    fn events(&mut self) -> Option<&mut dyn crate::engine::EventSource> {
        None
    }
}

/// Why a target request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The daemon is not running (or not yet listening).
    #[error("target daemon not running: {0}")]
    NotRunning(#[source] Cause),
    /// The daemon is busy (target still active, timed out).
    #[error("target daemon busy: {0}")]
    Busy(#[source] Cause),
    /// The daemon refused the request.
    #[error("target daemon refused: {0}")]
    Refused(#[source] Cause),
    /// The request was refused before it reached the daemon, because it would harm it.
    #[error("invalid request: {0}")]
    Invalid(#[source] Cause),
    /// The daemon's reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(#[source] Cause),
    /// Not allowed to talk to the daemon.
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] Cause),
    /// Socket or process I/O failed.
    #[error("i/o: {0}")]
    Io(#[source] Cause),
}

impl RetryHint for TargetError {
    fn retry_can_help(&self) -> bool {
        matches!(
            self,
            TargetError::NotRunning(_) | TargetError::Busy(_) | TargetError::Io(_)
        )
    }
}

/// The floating IP address.
pub trait FloatingIp {
    /// Whether the VIP is assigned here (`false` when its interface does not exist).
    fn is_assigned(&mut self, vip: &Vip) -> Result<bool, FloatingIpError>;
    /// Asks the network whether another host answers for the VIP (RFC 5227 ARP probe for IPv4).
    fn probe(&mut self, vip: &Vip) -> Result<VipProbe, FloatingIpError>;
    /// Assigns the VIP here and announces it (gratuitous ARP / unsolicited neighbour
    /// advertisement). Assigning an address that is already here succeeds.
    fn assign(&mut self, vip: &Vip) -> Result<(), FloatingIpError>;
    /// Announces the VIP again without changing addresses.
    fn announce(&mut self, vip: &Vip) -> Result<(), FloatingIpError>;
    /// The periodic refresh: sends ONE announcement, and only if the VIP is on its interface
    /// at the moment of sending; otherwise sends nothing and answers
    /// [`VipRefresh::NotHere`]. Never assigns, and never starts a burst.
    fn refresh(&mut self, vip: &Vip) -> Result<VipRefresh, FloatingIpError>;
    /// Removes the VIP. Removing an address that is not here succeeds, and so does removing
    /// it from an interface that no longer exists (the address cannot be there).
    fn release(&mut self, vip: &Vip) -> Result<(), FloatingIpError>;
}

/// Why a floating-IP request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FloatingIpError {
    /// No interface of that name.
    #[error("no interface named {0}")]
    NoSuchInterface(String),
    /// The interface is down.
    #[error("interface {0} is down")]
    InterfaceDown(String),
    /// Not root, or missing CAP_NET_ADMIN / CAP_NET_RAW.
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] Cause),
    /// Another host answers for the address.
    #[error("{address} is live on another host{}", owner.as_deref().map(|o| format!(" ({o})")).unwrap_or_default())]
    AddressConflict {
        /// The address.
        address: String,
        /// The other host's link-layer address, when known.
        owner: Option<String>,
    },
    /// Socket I/O failed.
    #[error("i/o: {0}")]
    Io(#[source] Cause),
    /// The kernel's reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(#[source] Cause),
}

impl RetryHint for FloatingIpError {
    fn retry_can_help(&self) -> bool {
        matches!(
            self,
            FloatingIpError::InterfaceDown(_)
                | FloatingIpError::AddressConflict { .. }
                | FloatingIpError::Io(_)
        )
    }
}

/// Where alerts go (mail, log). The core decides what to alert and screens duplicates.
pub trait Alerts {
    /// Delivers (or queues) one alert. Must not block for long.
    fn deliver(&mut self, alert: &Alert) -> Result<(), AlertError>;

    /// Whether a delivered alert leaves the host (mail); when not, it is only logged and its
    /// record says `logged` rather than `sent`.
    fn sends(&self) -> bool {
        true
    }
}

/// Why an alert could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The transport failed (mail server down); a later delivery may work.
    #[error("alert delivery failed: {0}")]
    Delivery(#[source] Cause),
    /// The queue is full; the alert was dropped.
    #[error("alert queue full, alert dropped")]
    QueueFull,
}

impl RetryHint for AlertError {
    fn retry_can_help(&self) -> bool {
        matches!(self, AlertError::Delivery(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("adapter failed")]
    struct AdapterError(#[source] std::io::Error);

    #[test]
    fn a_cause_keeps_the_adapters_error_without_repeating_its_text() {
        let e = TargetError::Io(Cause::of(AdapterError(std::io::Error::other(
            "socket gone",
        ))));
        assert_eq!(e.to_string(), "i/o: adapter failed");
        let cause = e.source().expect("the cause");
        assert_eq!(cause.to_string(), "adapter failed");
        assert_eq!(
            cause.source().map(ToString::to_string).as_deref(),
            Some("socket gone")
        );
        let TargetError::Io(c) = &e else {
            unreachable!()
        };
        assert!(c
            .adapter_error()
            .is_some_and(|a| a.downcast_ref::<AdapterError>().is_some()));
        // Equality is by text: fakes and tests compare errors made from words.
        assert_eq!(e, TargetError::Io("adapter failed".into()));
        assert!(Cause::from("words").adapter_error().is_none());
    }
}
