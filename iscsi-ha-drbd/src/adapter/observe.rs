//! What the daemon observes of a resource on each pass, from one GET_STATUS dump: its status
//! and its split-brain evidence (the port's `status` and `split_brain` each make a dump of
//! their own); and the adapter's one subscription to DRBD's events, which a poll loop can wait
//! on.

use std::os::fd::{AsFd, BorrowedFd};

use iscsi_ha_core::ports::{Cause, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::{SplitBrain, VolumeStatus};

use super::{volume_error, DrbdVolumes};
use crate::client::{resources_from_status_messages, DrbdError};
use crate::events::DrbdEvents;
use crate::family::FamilyError;
use crate::split_brain::{assess, facts_from_messages, is_connected, VolumeFacts};
use crate::wire::DrbdMessage;

/// A resource as one look saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// As [`ReplicatedVolume::status`](iscsi_ha_core::ports::ReplicatedVolume::status).
    pub status: Result<VolumeStatus, VolumeError>,
    /// As [`ReplicatedVolume::split_brain`](iscsi_ha_core::ports::ReplicatedVolume::split_brain).
    pub split_brain: Result<Option<SplitBrain>, VolumeError>,
}

/// Where one look at a resource found its status.
#[derive(Debug)]
pub(super) enum Looked {
    /// An 8.4 GET_STATUS dump: its messages also carry the split-brain evidence.
    Dump(Vec<DrbdMessage>),
    /// DRBD 9's dumps or /proc/drbd.
    Elsewhere,
    /// Nowhere: the replication layer could not be asked.
    Failed(VolumeError),
}

impl DrbdVolumes {
    /// The status and split-brain evidence of `resource` from one GET_STATUS dump (8.4; on
    /// other kernels, what `status` and `split_brain` give, which need no such dump).
    pub fn observe(&mut self, resource: &ResourceName) -> Observed {
        self.pump_events();
        let (status, looked) = self.look(resource);
        let split_brain = match looked {
            Looked::Dump(messages) => {
                facts_in(resource, &messages).map(|facts| self.assess_split_brain(resource, &facts))
            }
            // DRBD 9's dumps and /proc/drbd carry no split-brain evidence we read.
            Looked::Elsewhere => Ok(None),
            Looked::Failed(e) => Err(e),
        };
        Observed {
            status,
            split_brain,
        }
    }

    /// The status of `resource` from one look: an 8.4 GET_STATUS dump (whose messages are
    /// handed back for the split-brain evidence), DRBD 9's own dumps, or /proc/drbd for an 8.3
    /// module that has no generic netlink family.
    pub(super) fn look(
        &mut self,
        resource: &ResourceName,
    ) -> (Result<VolumeStatus, VolumeError>, Looked) {
        let (resources, messages) = match self.status_messages(resource) {
            Ok(Some(messages)) => (
                resources_from_status_messages(&messages, Some(resource.as_str())),
                Some(messages),
            ),
            Ok(None) => (
                self.with_netlink(|nl| nl.status(Some(resource.as_str()))),
                None,
            ),
            Err(e) => (Err(e), None),
        };
        let status = match resources {
            Ok(list) => list
                .into_iter()
                .find(|r| r.name == resource.as_str())
                .map(|r| r.to_core(resource.clone()))
                .ok_or_else(|| VolumeError::NoSuchResource(resource.to_string())),
            Err(DrbdError::Family(FamilyError::ModuleNotLoaded)) if self.proc_path.exists() => self
                .proc_status(resource)
                .map(|r| r.to_core(resource.clone())),
            Err(e) => {
                let e = volume_error(e);
                return (Err(e.clone()), Looked::Failed(e));
            }
        };
        let looked = messages.map_or(Looked::Elsewhere, Looked::Dump);
        (status, looked)
    }

    /// Whether `facts` (one resource's volumes) show a split brain: only while not connected,
    /// on the kernel's evidence (seen by this process or kept in the state directory).
    pub(super) fn assess_split_brain(
        &mut self,
        resource: &ResourceName,
        facts: &[VolumeFacts],
    ) -> Option<SplitBrain> {
        let minors: Vec<u32> = facts.iter().map(|f| f.volume.minor).collect();
        if facts.iter().any(|f| is_connected(f.volume.cstate)) {
            self.split_brains.forget(resource.as_str(), &minors);
            if let Some(dir) = &self.net_config_dir {
                let _ = std::fs::remove_file(super::split_brain_path(dir, resource.as_str()));
            }
            return None;
        }
        self.sync_kept_split_brain(resource.as_str(), &minors);
        let seen = self.split_brains.for_resource(resource.as_str(), &minors);
        assess(resource.as_str(), facts, &seen)
    }

    /// How many GET_STATUS dumps this adapter has asked for (attempts, answered or not).
    pub fn status_requests(&self) -> u64 {
        self.status_requests
    }

    /// Subscribes to DRBD's events unless subscribed: the same subscription that feeds the
    /// split-brain log, so a poll loop waits on it instead of a second one. Fails while the
    /// module is not loaded; call again later (a reloaded module needs a new subscription).
    pub fn subscribe_events(&mut self) -> Result<(), DrbdError> {
        if self.events.is_none() {
            self.events = Some(DrbdEvents::subscribe()?);
        }
        Ok(())
    }

    /// The subscription's descriptor, readable when events are queued, while subscribed.
    pub fn events_fd(&self) -> Option<BorrowedFd<'_>> {
        self.events.as_ref().map(AsFd::as_fd)
    }

    /// Reads the queued events into the split-brain log; `true` when there were any (or the
    /// subscription failed or saw the module unloaded, and is dropped to be renewed).
    pub fn drain_events(&mut self) -> bool {
        if self.events.is_none() {
            return false;
        }
        self.pump_events()
    }
}

/// The volumes of `resource` with their UUIDs in a GET_STATUS dump; none is an error.
pub(super) fn facts_in(
    resource: &ResourceName,
    messages: &[DrbdMessage],
) -> Result<Vec<VolumeFacts>, VolumeError> {
    let facts = facts_from_messages(resource.as_str(), messages)
        .map_err(|e| VolumeError::Malformed(Cause::of(e)))?;
    if facts.is_empty() {
        return Err(VolumeError::NoSuchResource(resource.to_string()));
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::ports::ReplicatedVolume;

    #[test]
    fn one_observation_asks_for_one_status_dump_where_status_and_split_brain_ask_two() {
        // Whether or not this kernel has DRBD, every look starts with a GET_STATUS request.
        let dir = tempfile::tempdir().unwrap();
        let mut volumes =
            DrbdVolumes::with_paths(dir.path().join("no-proc-drbd"), dir.path().join("by-res"));
        let r0 = ResourceName::new("r0".to_string()).unwrap();
        let seen = volumes.observe(&r0);
        assert_eq!(volumes.status_requests(), 1);
        let status = volumes.status(&r0);
        let split_brain = volumes.split_brain(&r0);
        assert_eq!(volumes.status_requests(), 3);
        assert_eq!(seen.status, status, "the same answer as the port's");
        assert_eq!(seen.split_brain, split_brain);
    }
}
