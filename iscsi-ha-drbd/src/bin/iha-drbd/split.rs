//! `split-brain`, `connect`, `net-config`: split-brain detection and recovery through the
//! port, as the daemon and the operator CLI use them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use iscsi_ha_core::ports::ReplicatedVolume;
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_drbd::DrbdVolumes;

use crate::role::report;

#[derive(Debug, Args)]
pub struct SplitBrainArgs {
    /// The resource.
    resource: String,
    /// Keep watching (subscribed to DRBD's events) for up to this long, until a split
    /// brain is recognised.
    #[arg(long, default_value_t = 0)]
    watch_ms: u64,
    /// Where the adapter keeps network configurations.
    #[arg(long)]
    net_config_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The resource.
    resource: String,
    /// Throw this side's changes away: the peer's data wins (split-brain victim).
    #[arg(long)]
    discard_my_data: bool,
    /// Where the adapter keeps network configurations.
    #[arg(long)]
    net_config_dir: Option<PathBuf>,
}

fn adapter(dir: Option<PathBuf>) -> DrbdVolumes {
    match dir {
        Some(d) => DrbdVolumes::new().keep_net_config_in(d),
        None => DrbdVolumes::new(),
    }
}

/// Prints `{"resource": .., "split_brain": null | {..}}`; with `--watch-ms`, subscribes
/// first (the status read does) and polls until one is recognised or the time is up.
pub fn split_brain(a: SplitBrainArgs) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    let mut volumes = adapter(a.net_config_dir);
    volumes.status(&name).map_err(report)?;
    if a.watch_ms > 0 {
        eprintln!("subscribed; watching {name}");
    }
    let deadline = Instant::now() + Duration::from_millis(a.watch_ms);
    let found = loop {
        let found = volumes.split_brain(&name).map_err(report)?;
        if found.is_some() || Instant::now() >= deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "{}",
        serde_json::json!({ "resource": name.as_str(), "split_brain": found })
    );
    Ok(())
}

/// Connects again; `--discard-my-data` on the split-brain victim.
pub fn connect(a: ConnectArgs) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    adapter(a.net_config_dir)
        .connect(&name, a.discard_my_data)
        .map_err(report)
}

/// Prints the running network configuration the adapter keeps (and stores it in the
/// directory, if given).
pub fn net_config(a: SplitBrainArgs) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    let mut volumes = adapter(a.net_config_dir);
    volumes.status(&name).map_err(report)?;
    let config = volumes.net_config(&name);
    println!(
        "{}",
        serde_json::json!({
            "resource": name.as_str(),
            "my_addr": config.map(|c| iscsi_ha_drbd::netconf::sockaddr_text(&c.my_addr)),
            "peer_addr": config.map(iscsi_ha_drbd::netconf::NetConfig::peer_text),
            "net_conf_bytes": config.map(|c| c.net_conf.len()),
            "secret_withheld": config.map(iscsi_ha_drbd::netconf::NetConfig::secret_withheld),
        })
    );
    Ok(())
}
