//! Builds the real adapters from the configuration: DRBD over generic netlink, the target
//! (tgtd over its socket, or LIO through configfs), the VIP over rtnetlink and raw sockets, and
//! the event sources that wake the daemon.

use crate::role;
use anyhow::Context;
use iscsi_ha_core::config::schema::TargetBackend;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::engine::{EventSource, Host};
use iscsi_ha_core::ports::{Alerts, IscsiTarget};
use iscsi_ha_drbd::DrbdVolumes;
use iscsi_ha_lio::LioTarget;
use iscsi_ha_net::{FloatingIpConfig, NetFloatingIp, ReopeningClaimWatch, VipAddressEvents};
use iscsi_ha_tgt::{ManagedDaemon, TgtConfig, TgtTarget};
use std::path::PathBuf;

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
/// configurations (needed to reconnect after a split brain) are kept under `state_dir`. The
/// DRBD and tgt adapters offer their own event descriptors (DRBD's events, tgtd's exit).
pub fn build_host(
    config: &Config,
    alerts: Box<dyn Alerts>,
    state_dir: &std::path::Path,
) -> anyhow::Result<Host> {
    let role = role::from_config(&config.file.role, &config.file.xapi)
        .context("cannot watch the role source")?;
    let target: Box<dyn IscsiTarget> = match config.file.target.backend {
        TargetBackend::Tgt => Box::new(tgt_target(config)),
        TargetBackend::Lio => Box::new(lio_target(config)?),
    };
    let vip =
        NetFloatingIp::new(net_config(config)).context("cannot open rtnetlink for the VIP")?;
    let volumes = DrbdVolumes::new().keep_net_config_in(state_dir.join("drbd"));
    let mut events: Vec<Box<dyn EventSource>> = Vec::new();
    match VipAddressEvents::subscribe(config.vip.address()) {
        Ok(sub) => events.push(Box::new(sub)),
        Err(e) => tracing::warn!("no address events ({e}); VIP removals are seen at the next scan"),
    }
    Ok(Host {
        role,
        volumes: Box::new(volumes),
        target,
        vip: Box::new(vip),
        alerts,
        events,
        claims: Some(Box::new(ReopeningClaimWatch::new(config.vip.clone()))),
    })
}

/// The tgt adapter. It leaves a managed tgtd running when dropped (however the daemon ends:
/// SIGTERM, an error, the end of `run`): the daemon's exit leaves the storage as it is, and
/// the next daemon adopts that tgtd. A managed tgtd that is kept running is started (or
/// adopted) now, with no target, so a takeover need not wait for it.
fn tgt_target(config: &Config) -> TgtTarget {
    let mut settings = tgt_config(config);
    settings.leave_running_on_drop = true;
    let mut target = TgtTarget::new(settings);
    let daemon = config.file.target.tgt_daemon();
    if daemon.managed && daemon.keep_running {
        if let Err(e) = target.ensure_daemon() {
            tracing::warn!("cannot start tgtd ahead of need ({e}); it is started when serving");
        }
    }
    target
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
