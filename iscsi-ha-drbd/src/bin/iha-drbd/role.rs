//! `port-status`, `primary`, `secondary`, `resume-io`, `disconnect`: through the port, so the output shows
//! the typed errors the daemon would see.

use clap::Args;
use iscsi_ha_core::ports::{ReplicatedVolume, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_drbd::{DrbdNetlink, DrbdVolumes};

#[derive(Debug, Args)]
pub struct ResourceArg {
    /// The resource.
    resource: String,
}

#[derive(Debug, Args)]
pub struct PrimaryArgs {
    /// The resource.
    resource: String,
    /// Assume the local disk is up to date (operator-only).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// The resource.
    resource: String,
    /// Do not wait for the peer.
    #[arg(long)]
    force: bool,
}

/// Prints a typed error so callers can match its kind, then fails.
pub(crate) fn report(e: VolumeError) -> anyhow::Error {
    let kind = format!("{e:?}");
    let kind = kind.split('(').next().unwrap_or_default().to_string();
    eprintln!("error-kind: {kind}");
    anyhow::anyhow!(e)
}

pub fn port_status(a: ResourceArg) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    let status = DrbdVolumes::new().status(&name).map_err(report)?;
    println!("{}", serde_json::to_string(&status)?);
    Ok(())
}

pub fn primary(a: PrimaryArgs) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    DrbdVolumes::new().promote(&name, a.force).map_err(report)
}

pub fn secondary(a: ResourceArg) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    DrbdVolumes::new().demote(&name).map_err(report)
}

pub fn resume_io(a: ResourceArg) -> anyhow::Result<()> {
    let name = ResourceName::new(a.resource)?;
    DrbdVolumes::new().resume_io(&name).map_err(report)
}

pub fn disconnect(a: DisconnectArgs) -> anyhow::Result<()> {
    let mut nl = DrbdNetlink::connect()?;
    nl.disconnect(&a.resource, a.force)?;
    Ok(())
}
