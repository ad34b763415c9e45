//! The adapter as the engine's [`Volumes`]: one look per resource per pass, and its own event
//! subscription as what wakes the loop, renewed while the module is not loaded and after it
//! is reloaded (a reloaded module has a new family). One object, so the subscription the loop
//! waits on is the one that feeds the split-brain log.

use std::os::fd::BorrowedFd;

use iscsi_ha_core::engine::{EventSource, VolumeLook, Volumes};
use iscsi_ha_core::ports::ReplicatedVolume;
use iscsi_ha_core::resource::ResourceName;

use super::DrbdVolumes;

impl Volumes for DrbdVolumes {
    fn port(&mut self) -> &mut dyn ReplicatedVolume {
        self
    }

    fn observe(&mut self, resource: &ResourceName) -> VolumeLook {
        let seen = DrbdVolumes::observe(self, resource);
        (seen.status, seen.split_brain)
    }

    fn events(&mut self) -> Option<&mut dyn EventSource> {
        Some(self)
    }
}

impl EventSource for DrbdVolumes {
    fn name(&self) -> &str {
        "drbd events"
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.events_fd()
    }

    fn refresh(&mut self) {
        let was_subscribed = self.events_fd().is_some();
        match self.subscribe_events() {
            Ok(()) if !was_subscribed => {
                tracing::info!("subscribed to DRBD events");
                self.events_warned = false;
            }
            Ok(()) => {}
            Err(e) if !self.events_warned => {
                tracing::warn!("no DRBD events yet ({e}); relying on the scan timer");
                self.events_warned = true;
            }
            Err(_) => {}
        }
    }

    fn drain(&mut self) -> Result<bool, String> {
        // A failed read or an unloaded module drops the subscription; the next refresh renews
        // it.
        Ok(self.drain_events())
    }
}
