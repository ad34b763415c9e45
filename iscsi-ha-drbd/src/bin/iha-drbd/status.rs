//! `family`, `status`, `proc`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use iscsi_ha_drbd::adapter::proc_agrees;
use iscsi_ha_drbd::procfs;
use iscsi_ha_drbd::status::DrbdResource;
use iscsi_ha_drbd::DrbdNetlink;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this resource.
    resource: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Read the events2-era dumps (GET_RESOURCES..GET_PEER_DEVICES, DRBD 9's way) even on 8.4.
    #[arg(long)]
    via_dumps: bool,
}

#[derive(Debug, Args)]
pub struct ProcArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The file to read.
    #[arg(long, default_value = procfs::PROC_DRBD)]
    path: PathBuf,
}

pub fn family() -> anyhow::Result<()> {
    let nl = DrbdNetlink::connect().context("resolving the drbd family")?;
    let f = nl.family();
    println!(
        "id {} version {} dialect {:?} hdrsize {} events-group {:?} ops {:?}",
        f.id,
        f.version,
        nl.dialect(),
        f.hdrsize,
        f.events_group,
        f.ops
    );
    Ok(())
}

/// One line per volume, in a fixed order the lab tests compare with the witnesses.
pub fn format_resources(resources: &[DrbdResource]) -> String {
    let mut out = String::new();
    for r in resources {
        if r.volumes.is_empty() {
            out.push_str(&format!("{} no-volumes\n", r.name));
        }
        for v in &r.volumes {
            out.push_str(&format!(
                "{} volume:{} minor:{} role:{} peer:{} cs:{} ds:{}/{} susp:{} oos:{} size:{}",
                r.name,
                v.volume,
                v.minor,
                v.role,
                v.peer_role,
                v.cstate,
                v.disk,
                v.peer_disk,
                if v.suspended.any() { "yes" } else { "no" },
                v.out_of_sync_kib
                    .map_or("-".to_string(), |k| format!("{k}K")),
                v.capacity_kib.map_or("-".to_string(), |k| format!("{k}K")),
            ));
            if let Some(p) = v.resync {
                out.push_str(&format!(
                    " sync:{:.1}% left:{}K total:{}K",
                    p.percent_done, p.left_kib, p.total_kib
                ));
            }
            out.push('\n');
        }
    }
    out
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut nl = DrbdNetlink::connect().context("resolving the drbd family")?;
    let resources = if args.via_dumps {
        nl.status_via_dumps(args.resource.as_deref())?
    } else {
        nl.status(args.resource.as_deref())?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&resources)?);
    } else {
        print!("{}", format_resources(&resources));
    }
    Ok(())
}

pub fn proc(args: ProcArgs) -> anyhow::Result<()> {
    let p = procfs::read(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        println!("version {} api {}", p.version.release, p.version.api);
        for m in &p.minors {
            println!(
                "minor:{} cs:{} ro:{:?} ds:{:?} flags:{} oos:{:?}",
                m.minor,
                m.cstate,
                m.roles,
                m.disks,
                m.flags,
                m.counters.and_then(|c| c.oos)
            );
        }
    }
    Ok(())
}

pub fn cross_check() -> anyhow::Result<()> {
    let mut nl = DrbdNetlink::connect().context("resolving the drbd family")?;
    let resources = nl.status(None)?;
    let proc = procfs::read(std::path::Path::new(procfs::PROC_DRBD))?;
    let mut bad = 0;
    let mut checked = 0;
    for r in &resources {
        for v in &r.volumes {
            checked += 1;
            match proc.minors.iter().find(|m| m.minor == v.minor) {
                Some(m) if proc_agrees(v, m) => {}
                Some(m) => {
                    bad += 1;
                    println!(
                        "mismatch {} minor {}: netlink {v:?} /proc {m:?}",
                        r.name, v.minor
                    );
                }
                None => {
                    bad += 1;
                    println!("mismatch {} minor {}: not in /proc/drbd", r.name, v.minor);
                }
            }
        }
    }
    if bad > 0 {
        anyhow::bail!("{bad} of {checked} volumes disagree");
    }
    println!("{checked} volumes agree");
    Ok(())
}
