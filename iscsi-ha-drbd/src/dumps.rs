//! Status from the events2-era dumps: GET_RESOURCES, GET_DEVICES, GET_CONNECTIONS and
//! GET_PEER_DEVICES (30-33). They are how DRBD 9 reports status (it has no GET_STATUS), and
//! 8.4 kernels with the events2 backport offer them too, which is how this path is proven
//! against a real module in the lab. Each dialect decodes the numbers with its own tables.
//!
//! DRBD 9 may have several peers per resource; this adapter serves two-node clusters and
//! reads the first connection of each resource (and its peer devices).

use crate::state::{ConnState, Dialect, DrbdDiskState, DrbdRole};
use crate::status::{DrbdResource, DrbdVolume, ResyncPause, ResyncProgress, Suspension};
use crate::wire::{DrbdCommand, DrbdMessage};

/// The four dump commands, in the order they are asked.
pub const DUMP_COMMANDS: [DrbdCommand; 4] = [
    DrbdCommand::GetResources,
    DrbdCommand::GetDevices,
    DrbdCommand::GetConnections,
    DrbdCommand::GetPeerDevices,
];

fn resource_of(m: &DrbdMessage) -> Option<&str> {
    m.attrs.cfg_context.as_ref()?.resource_name.as_deref()
}

fn volume_of(m: &DrbdMessage) -> u32 {
    m.attrs
        .cfg_context
        .as_ref()
        .and_then(|c| c.volume)
        .unwrap_or(0)
}

/// Builds resources from the replies of the four dumps (any order; other messages ignored).
pub fn resources_from_dumps(dialect: Dialect, messages: &[DrbdMessage]) -> Vec<DrbdResource> {
    let disk = |v: u32| dialect.disk_state(v);
    let conn = |v: u32| dialect.connection_state(v);
    let repl = |v: u32| dialect.replication_state(v);
    let of = |cmd: DrbdCommand| messages.iter().filter(move |m| m.cmd == cmd);

    let mut out = Vec::new();
    for r in of(DrbdCommand::GetResources) {
        let Some(name) = resource_of(r) else { continue };
        if out.iter().any(|x: &DrbdResource| x.name == name) {
            continue;
        }
        let info = r.attrs.resource_info.clone().unwrap_or_default();
        let role = info.res_role.map_or(DrbdRole::Unknown, DrbdRole::from_wire);
        let suspended = Suspension {
            user: info.res_susp.unwrap_or(false),
            no_data: info.res_susp_nod.unwrap_or(false),
            fencing: info.res_susp_fen.unwrap_or(false),
        };
        let connection = of(DrbdCommand::GetConnections)
            .find(|c| resource_of(c) == Some(name))
            .and_then(|c| c.attrs.connection_info.clone());
        let conn_state = connection
            .as_ref()
            .and_then(|c| c.conn_connection_state)
            .map_or(ConnState::StandAlone, conn);
        let peer_role = connection
            .as_ref()
            .and_then(|c| c.conn_role)
            .map_or(DrbdRole::Unknown, DrbdRole::from_wire);
        let mut volumes = Vec::new();
        for d in of(DrbdCommand::GetDevices).filter(|d| resource_of(d) == Some(name)) {
            let volume = volume_of(d);
            let local_disk = d
                .attrs
                .device_info
                .as_ref()
                .and_then(|i| i.dev_disk_state)
                .map_or(DrbdDiskState::Diskless, disk);
            let peer = of(DrbdCommand::GetPeerDevices)
                .find(|p| resource_of(p) == Some(name) && volume_of(p) == volume);
            let pinfo = peer.and_then(|p| p.attrs.peer_device_info.clone());
            let pstats = peer.and_then(|p| p.attrs.peer_device_statistics.clone());
            let cstate = match pinfo.as_ref().and_then(|i| i.peer_repl_state).map(repl) {
                Some(r) if conn_state.to_core().is_connected() => r,
                _ => conn_state,
            };
            let oos_sectors = pstats.as_ref().and_then(|s| s.peer_dev_out_of_sync);
            let resync = pstats
                .as_ref()
                .and_then(|s| s.peer_dev_rs_total.map(|t| (t, s)))
                .filter(|(t, _)| cstate.is_resyncing() && *t != 0 && *t != u64::MAX)
                .map(|(total, s)| {
                    let left = s
                        .peer_dev_out_of_sync
                        .unwrap_or(0)
                        .saturating_sub(s.peer_dev_resync_failed.unwrap_or(0));
                    ResyncProgress::from_kib(total / 2, left / 2)
                });
            volumes.push(DrbdVolume {
                minor: d.header.minor,
                volume,
                role,
                peer_role,
                cstate,
                disk: local_disk,
                peer_disk: pinfo
                    .as_ref()
                    .and_then(|i| i.peer_disk_state)
                    .map_or(DrbdDiskState::DUnknown, disk),
                suspended,
                resync_paused: ResyncPause {
                    dependency: pinfo
                        .as_ref()
                        .and_then(|i| i.peer_resync_susp_dependency)
                        .unwrap_or(false),
                    peer: pinfo
                        .as_ref()
                        .and_then(|i| i.peer_resync_susp_peer)
                        .unwrap_or(false),
                    user: pinfo
                        .as_ref()
                        .and_then(|i| i.peer_resync_susp_user)
                        .unwrap_or(false),
                },
                out_of_sync_kib: if local_disk == DrbdDiskState::Diskless {
                    None
                } else {
                    oos_sectors.map(|s| s / 2)
                },
                resync,
                capacity_kib: d
                    .attrs
                    .device_statistics
                    .as_ref()
                    .and_then(|s| s.dev_size)
                    .map(|s| s / 2),
            });
        }
        volumes.sort_by_key(|v| v.minor);
        out.push(DrbdResource {
            name: name.to_string(),
            volumes,
        });
    }
    out
}
