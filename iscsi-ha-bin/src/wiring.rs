//! Builds the real adapters from the configuration: DRBD over generic netlink, the target
//! (tgtd over its socket, or LIO through configfs), the VIP over rtnetlink and raw sockets, and
//! the event sources that wake the daemon.

use iscsi_ha_core::engine::{ClaimWatch, EventSource, Host, Volumes};
use crate::role;
use anyhow::Context;
use iscsi_ha_core::config::schema::TargetBackend;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::ports::{Alerts, IscsiTarget, ReplicatedVolume, TargetError, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::target::{TargetSpec, TargetStatus};
use iscsi_ha_core::vip::{Vip, VipClaim};
use iscsi_ha_core::volume::{SplitBrain, VolumeStatus};
use iscsi_ha_drbd::DrbdVolumes;
use iscsi_ha_lio::LioTarget;
use iscsi_ha_net::{AddressEvents, FloatingIpConfig, NetFloatingIp, VipClaimWatch};
use iscsi_ha_tgt::{ManagedDaemon, TgtConfig, TgtTarget};
use std::cell::RefCell;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The tgt adapter's settings from `[target.tgt]` (or its old name `[target.daemon]`).
pub fn tgt_config(config: &Config) -> TgtConfig {
    let d = &config.file.target.tgt_daemon();
    if d.managed {
        let mut extra = Vec::new();
        if let Some(portal) = &d.portal {
            extra.push("--iscsi".to_string());
            extra.push(format!("portal={portal}"));
        }
        let mut managed = ManagedDaemon::new(extra);
        managed.binary = PathBuf::from(&d.program);
        let mut config = TgtConfig::managed(u32::from(d.control_port), managed);
        config.keep_daemon_running = d.keep_running;
        config
    } else {
        TgtConfig::adopt(u32::from(d.control_port))
    }
}

/// The floating-IP adapter's settings from `[vip]`.
pub fn net_config(config: &Config) -> FloatingIpConfig {
    let v = &config.file.vip;
    FloatingIpConfig {
        announce_count: v.announce_count,
        announce_interval: v.announce_interval.get(),
        refresh_delay: v.refresh_after.map(|d| d.get()),
        probe_timeout: v.probe_timeout.get(),
        icmp_check: v.icmp_check,
        ..FloatingIpConfig::default()
    }
}

/// Builds the host's ports and event sources; alerts go to `alerts`; DRBD network
/// configurations (needed to reconnect after a split brain) are kept under `state_dir`.
pub fn build_host(
    config: &Config,
    alerts: Box<dyn Alerts>,
    state_dir: &std::path::Path,
) -> anyhow::Result<Host> {
    let role = role::from_config(&config.file.role, &config.file.xapi)
        .context("cannot watch the role source")?;
    let mut events: Vec<Box<dyn EventSource>> = Vec::new();
    let target: Box<dyn IscsiTarget> = match config.file.target.backend {
        TargetBackend::Tgt => {
            let (target, exit) = tgt_target(config);
            events.push(Box::new(exit));
            Box::new(target)
        }
        TargetBackend::Lio => Box::new(lio_target(config)?),
    };
    let vip =
        NetFloatingIp::new(net_config(config)).context("cannot open rtnetlink for the VIP")?;
    let volumes = Rc::new(RefCell::new(
        DrbdVolumes::new().keep_net_config_in(state_dir.join("drbd")),
    ));
    events.push(Box::new(DrbdWatch {
        volumes: volumes.clone(),
        fd: None,
        warned: false,
    }));
    match AddressEvents::subscribe() {
        Ok(sub) => events.push(Box::new(AddressWatch {
            events: sub,
            vip: config.vip.address(),
        })),
        Err(e) => tracing::warn!("no address events ({e}); VIP removals are seen at the next scan"),
    }
    Ok(Host {
        role,
        volumes: Box::new(SharedVolumes(volumes)),
        target,
        vip: Box::new(vip),
        alerts,
        events,
        claims: Some(Box::new(ClaimListener::new(config.vip.clone()))),
    })
}

/// The tgt adapter and the watch on tgtd's exit; a managed tgtd that is kept running is
/// started (or adopted) now, with no target, so a takeover need not wait for it.
fn tgt_target(config: &Config) -> (SharedTarget, TgtdExit) {
    let target = Rc::new(RefCell::new(TgtTarget::new(tgt_config(config))));
    let daemon = config.file.target.tgt_daemon();
    if daemon.managed && daemon.keep_running {
        if let Err(e) = target.borrow_mut().ensure_daemon() {
            tracing::warn!("cannot start tgtd ahead of need ({e}); it is started when serving");
        }
    }
    let exit = TgtdExit {
        target: target.clone(),
        watched: None,
        keep_running: daemon.managed && daemon.keep_running,
        last_restart: None,
        failures: 0,
    };
    (SharedTarget(target), exit)
}

/// The LIO adapter. Nothing runs for it: the kernel serves what configfs holds, so there is
/// no process to start or watch, and a stopped daemon leaves the target as it is. Without the
/// kernel's target modules the daemon still starts (this host may never serve) and says
/// what to load; serving fails with the same advice until they are loaded.
fn lio_target(config: &Config) -> anyhow::Result<LioTarget> {
    let settings = crate::backend::lio_config(config).map_err(|problems| {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        anyhow::anyhow!("[target.lio]: {}", text.join("; "))
    })?;
    let target = LioTarget::new(settings);
    if let Err(e) = target.available() {
        tracing::warn!("{e}");
    }
    Ok(target)
}

/// The tgt adapter, shared with the watch on tgtd's exit. Dropping it (however the daemon
/// ends: SIGTERM, an error, the end of `run`) detaches a managed tgtd instead of killing it:
/// the daemon's exit leaves the storage as it is, and the next daemon adopts that tgtd.
struct SharedTarget(Rc<RefCell<TgtTarget>>);

impl Drop for SharedTarget {
    fn drop(&mut self) {
        self.0.borrow_mut().detach();
    }
}

impl IscsiTarget for SharedTarget {
    fn status(&mut self) -> Result<TargetStatus, TargetError> {
        self.0.borrow_mut().status()
    }
    fn serve(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.0.borrow_mut().serve(spec)
    }
    fn stop(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.0.borrow_mut().stop(spec)
    }
}

/// The DRBD adapter, shared with the watch on its event subscription.
struct SharedVolumes(Rc<RefCell<DrbdVolumes>>);

impl Volumes for SharedVolumes {
    fn port(&mut self) -> &mut dyn ReplicatedVolume {
        self
    }
    fn observe(
        &mut self,
        resource: &ResourceName,
    ) -> (
        Result<VolumeStatus, VolumeError>,
        Result<Option<SplitBrain>, VolumeError>,
    ) {
        let seen = self.0.borrow_mut().observe(resource);
        (seen.status, seen.split_brain)
    }
}

impl ReplicatedVolume for SharedVolumes {
    fn status(&mut self, resource: &ResourceName) -> Result<VolumeStatus, VolumeError> {
        self.0.borrow_mut().status(resource)
    }
    fn promote(&mut self, resource: &ResourceName, force: bool) -> Result<(), VolumeError> {
        self.0.borrow_mut().promote(resource, force)
    }
    fn demote(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.0.borrow_mut().demote(resource)
    }
    fn resume_io(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.0.borrow_mut().resume_io(resource)
    }
    fn split_brain(&mut self, resource: &ResourceName) -> Result<Option<SplitBrain>, VolumeError> {
        self.0.borrow_mut().split_brain(resource)
    }
    fn connect(
        &mut self,
        resource: &ResourceName,
        discard_local_data: bool,
    ) -> Result<(), VolumeError> {
        self.0.borrow_mut().connect(resource, discard_local_data)
    }
}

/// DRBD's `events` multicast group: the adapter's own subscription (whose events feed its
/// split-brain log), renewed while the module is not loaded and after it is reloaded.
struct DrbdWatch {
    volumes: Rc<RefCell<DrbdVolumes>>,
    /// A duplicate of the adapter's subscription descriptor, taken afresh before each wait
    /// (the subscription may have been renewed since).
    fd: Option<OwnedFd>,
    warned: bool,
}

impl std::fmt::Debug for DrbdWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrbdWatch")
            .field("subscribed", &self.fd.is_some())
            .finish()
    }
}

impl EventSource for DrbdWatch {
    fn name(&self) -> &str {
        "drbd events"
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }
    fn refresh(&mut self) {
        let mut volumes = self.volumes.borrow_mut();
        let was_subscribed = volumes.events_fd().is_some();
        match volumes.subscribe_events() {
            Ok(()) if !was_subscribed => {
                tracing::info!("subscribed to DRBD events");
                self.warned = false;
            }
            Ok(()) => {}
            Err(e) if !self.warned => {
                tracing::warn!("no DRBD events yet ({e}); relying on the scan timer");
                self.warned = true;
            }
            Err(_) => {}
        }
        self.fd = volumes
            .events_fd()
            .and_then(|fd| fd.try_clone_to_owned().ok());
    }
    fn drain(&mut self) -> Result<bool, String> {
        // A failed read or an unloaded module drops the subscription; the next refresh renews
        // it (a reloaded module has a new family).
        Ok(self.volumes.borrow_mut().drain_events())
    }
}

/// Address changes; only those of the VIP matter.
#[derive(Debug)]
struct AddressWatch {
    events: AddressEvents,
    vip: IpAddr,
}

impl EventSource for AddressWatch {
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

/// A tgtd that dies again this soon after being started again is started only at the first
/// wake-up past this spacing (a serve, the scan), not in a loop; the spacing doubles with each
/// start that fails, up to [`MAX_RESTART_SPACING`].
const RESTART_SPACING: Duration = Duration::from_secs(5);
const MAX_RESTART_SPACING: Duration = Duration::from_secs(300);

/// The managed tgtd (our child or the one adopted on our control port): its exit descriptor
/// (a pidfd; before Linux 5.3 a timer that makes us look every 500 ms) becomes readable when it
/// exits. With `keep_running`, a tgtd that exits is started again at once.
struct TgtdExit {
    target: Rc<RefCell<TgtTarget>>,
    watched: Option<(u32, OwnedFd)>,
    keep_running: bool,
    last_restart: Option<Instant>,
    failures: u32,
}

impl TgtdExit {
    /// Starts tgtd again (or finds it answering), unless the last attempt was too recent.
    fn restart(&mut self) {
        let spacing = RESTART_SPACING
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_RESTART_SPACING);
        if self.last_restart.is_some_and(|at| at.elapsed() < spacing) {
            return;
        }
        self.last_restart = Some(Instant::now());
        let mut target = self.target.borrow_mut();
        match target.ensure_daemon() {
            Ok(()) => {
                self.failures = 0;
                if let Some((pid, _)) = target.exit_watch() {
                    tracing::info!(pid, "tgtd running again (keep_running)");
                }
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                tracing::error!(
                    "cannot start tgtd again ({e}); next attempt in {} s at the earliest",
                    spacing.saturating_mul(2).min(MAX_RESTART_SPACING).as_secs()
                );
            }
        }
    }
}

impl std::fmt::Debug for TgtdExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TgtdExit")
            .field("pid", &self.watched.as_ref().map(|w| w.0))
            .finish()
    }
}

impl EventSource for TgtdExit {
    fn name(&self) -> &str {
        "tgtd exit"
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.watched.as_ref().map(|(_, fd)| fd.as_fd())
    }
    fn refresh(&mut self) {
        if self.keep_running && self.target.borrow().exit_watch().is_none() {
            // A start that failed, or one held back by the spacing.
            self.restart();
        }
        let target = self.target.borrow();
        let current = target
            .exit_watch()
            .and_then(|(pid, fd)| Some((pid, fd.try_clone_to_owned().ok()?)));
        match (&self.watched, current) {
            (Some((old, _)), Some((pid, fd))) if *old != pid => self.watched = Some((pid, fd)),
            (None, Some(now)) => self.watched = Some(now),
            (_, None) => self.watched = None,
            _ => {}
        }
    }
    fn drain(&mut self) -> Result<bool, String> {
        let exited = self
            .target
            .borrow_mut()
            .forget_exited()
            .map_err(|e| e.to_string())?;
        if exited {
            self.watched = None;
            if self.keep_running {
                self.restart();
            }
        }
        Ok(exited)
    }
}

/// The net adapter's claim watch, reopened when its interface comes and goes.
#[derive(Debug)]
struct ClaimListener {
    vip: Vip,
    watch: Option<VipClaimWatch>,
    warned: bool,
}

impl ClaimListener {
    fn new(vip: Vip) -> Self {
        let mut listener = Self {
            vip,
            watch: None,
            warned: false,
        };
        listener.refresh();
        listener
    }
}

impl ClaimWatch for ClaimListener {
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

    fn drain(&mut self) -> Vec<VipClaim> {
        let Some(watch) = self.watch.as_mut() else {
            return Vec::new();
        };
        match watch.drain() {
            Ok(claims) => claims
                .into_iter()
                .map(|c| VipClaim {
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
