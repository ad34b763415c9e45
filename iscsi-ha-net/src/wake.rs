//! The net adapter's descriptors as the engine's event ports: address changes that concern
//! the VIP, and other hosts' claims on it, each reopened when what it needs comes back.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use iscsi_ha_core::engine::{ClaimWatch, EventSource};
use iscsi_ha_core::vip::{Vip, VipClaim as CoreClaim};

use crate::{AddressEvents, VipClaimWatch};

/// Address changes, of which only those that may concern the VIP wake the loop.
#[derive(Debug)]
pub struct VipAddressEvents {
    events: AddressEvents,
    vip: IpAddr,
}

impl VipAddressEvents {
    /// Subscribes to rtnetlink's address groups, filtering for `vip`.
    pub fn subscribe(vip: IpAddr) -> Result<Self, iscsi_ha_core::ports::FloatingIpError> {
        Ok(Self {
            events: AddressEvents::subscribe()?,
            vip,
        })
    }
}

impl EventSource for VipAddressEvents {
    fn name(&self) -> &str {
        "address events"
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.events.as_fd())
    }
    fn drain(&mut self) -> Result<bool, String> {
        let list = self.events.drain().map_err(|e| e.to_string())?;
        Ok(list.iter().any(|e| e.may_concern(self.vip)))
    }
}

/// The VIP's claim watch, reopened at each wake-up while it cannot be opened (the interface
/// may be missing) and after a read fails.
#[derive(Debug)]
pub struct ReopeningClaimWatch {
    vip: Vip,
    watch: Option<VipClaimWatch>,
    warned: bool,
}

impl ReopeningClaimWatch {
    /// A watch for claims on `vip`, opened now if it can be.
    pub fn new(vip: Vip) -> Self {
        let mut listener = Self {
            vip,
            watch: None,
            warned: false,
        };
        listener.refresh();
        listener
    }
}

impl ClaimWatch for ReopeningClaimWatch {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.watch.as_ref().map(AsFd::as_fd)
    }

    fn refresh(&mut self) {
        if self.watch.is_some() {
            return;
        }
        match VipClaimWatch::open(&self.vip) {
            Ok(w) => {
                self.watch = Some(w);
                self.warned = false;
            }
            Err(e) if !self.warned => {
                tracing::warn!(
                    "cannot watch for other hosts claiming the VIP ({e}); retrying at each wake-up"
                );
                self.warned = true;
            }
            Err(_) => {}
        }
    }

    fn drain(&mut self) -> Vec<CoreClaim> {
        let Some(watch) = self.watch.as_mut() else {
            return Vec::new();
        };
        match watch.drain() {
            Ok(claims) => claims
                .into_iter()
                .map(|c| CoreClaim {
                    owner: Some(c.claimant.to_string()),
                    how: c.kind.to_string(),
                })
                .collect(),
            Err(e) => {
                tracing::warn!("VIP claim watch: {e}; reopening");
                self.watch = None;
                Vec::new()
            }
        }
    }
}
