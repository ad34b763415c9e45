//! Recognising a DRBD split brain from the kernel's own verdict, never from state that only
//! looks like one.
//!
//! DRBD 8.4 decides split brain in its connection handshake (`drbd_sync_handshake` and
//! `drbd_uuid_compare`, drbd_receiver.c): it compares this side's data-generation UUIDs with
//! the peer's, received in that handshake (`receive_uuids`, kept in `device->p_uuid`). When
//! both sides changed the data since they last agreed and no after-sb policy resolves it, it
//! calls its user-mode helper `split-brain` (broadcast on the `events` group as a DRBD_EVENT
//! with `sib_reason` HELPER_PRE and, with the events2 backport, as a DRBD_HELPER
//! notification) and drops the connection to StandAlone.
//!
//! That helper call is the only evidence used: a split brain is reported when the call was
//! seen (live, by [`SplitBrainLog::note`], or kept in the state directory by an earlier
//! process, see [`crate::adapter::DrbdVolumes::keep_net_config_in`]) and no volume of the
//! resource has been connected since. Once one is connected again, the split brain is over.
//!
//! # Why DRBD's UUID comparison is not redone here
//!
//! It needs both sides' UUIDs, and only this side's reach user space: GET_STATUS's `T_uuids`
//! is `device->ldev->md.uuid` (`nla_put_status_info`, drbd_nl.c), the events2 statistics'
//! `peer_dev_bitmap_uuid` is this side's bitmap UUID too (`peer_device_to_statistics`), and
//! the peer's UUIDs in `device->p_uuid` exist only while connected (freed by
//! `drbd_disconnected`, drbd_receiver.c) and are never put in a netlink message.
//!
//! Local state alone does not tell either. StandAlone with the peer unknown, a bitmap UUID
//! set and blocks out of sync is exactly what `drbdadm disconnect` on the serving Primary
//! followed by writes looks like; reporting that (an earlier version did, as a "probable"
//! split brain) froze the only good host. The price: a split brain whose helper call no
//! process of ours saw (no state directory, or the adapter not running then) is not
//! reported; the resource still shows StandAlone in its status, and DRBD itself will refuse
//! to resync it until someone chooses a victim.

use iscsi_ha_core::volume::{SplitBrain, SplitBrainSide};
use serde::{Deserialize, Serialize};

use crate::events::{DrbdEvent, StateEvent};
use crate::state::{ConnState, DrbdRole};
use crate::status::{DrbdVolume, StatusError, StatusReply};
use crate::wire::{DrbdMessage, SibReason, MINOR_NONE};

/// The helper DRBD calls on an unresolved split brain.
pub const SPLIT_BRAIN_HELPER: &str = "split-brain";

/// The four data-generation UUIDs of a volume (`T_uuids`: current, bitmap, two history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataUuids {
    /// The current UUID: the generation of the data this side holds.
    pub current: u64,
    /// The bitmap UUID: non-zero while this side tracks changes the peer lacks.
    pub bitmap: u64,
    /// The history UUIDs.
    pub history: [u64; 2],
}

impl DataUuids {
    /// Reads the 32-byte `uuids` field (four host-order u64); `None` when it is shorter.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u64> {
            let b: [u8; 8] = bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?;
            Some(u64::from_ne_bytes(b))
        };
        Some(DataUuids {
            current: word(0)?,
            bitmap: word(1)?,
            history: [word(2)?, word(3)?],
        })
    }
}

/// A volume as the split-brain rules need it: its status and its UUIDs.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeFacts {
    /// The status.
    pub volume: DrbdVolume,
    /// The data-generation UUIDs, when the reply carried them (a local disk is attached).
    pub uuids: Option<DataUuids>,
}

/// The volumes of `resource` in a GET_STATUS dump.
pub fn facts_from_messages(
    resource: &str,
    messages: &[DrbdMessage],
) -> Result<Vec<VolumeFacts>, StatusError> {
    let mut out = Vec::new();
    for msg in messages {
        if msg.header.minor == MINOR_NONE {
            continue;
        }
        let reply = StatusReply::from_message(msg)?;
        if reply.resource != resource {
            continue;
        }
        if let Some(volume) = reply.volume {
            let uuids = msg
                .attrs
                .state_info
                .as_ref()
                .and_then(|i| i.uuids.as_deref())
                .and_then(DataUuids::from_bytes);
            out.push(VolumeFacts { volume, uuids });
        }
    }
    out.sort_by_key(|f| f.volume.minor);
    Ok(out)
}

/// A split-brain helper call as seen on the events group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenSplitBrain {
    /// The resource, when the event named it.
    pub resource: Option<String>,
    /// The minor.
    pub minor: u32,
    /// The kernel's sequence number of the event.
    pub seq: u32,
    /// The volume's state when the helper was called (8.4 DRBD_EVENT; not kept on disk).
    #[serde(skip)]
    pub state: Option<DrbdVolume>,
    /// Seen by an earlier process and read back from where it was kept.
    #[serde(skip)]
    pub recorded_earlier: bool,
}

/// The split-brain helper calls seen, until the resource connects again.
#[derive(Debug, Clone, Default)]
pub struct SplitBrainLog {
    seen: Vec<SeenSplitBrain>,
}

impl SplitBrainLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one event into account, in the order the kernel sent them: a split-brain helper
    /// call is recorded, a connection coming up clears its minor's record.
    pub fn note(&mut self, event: &DrbdEvent) {
        match event {
            DrbdEvent::State(e) => self.note_state(e),
            DrbdEvent::Notification(n) => {
                if n.helper.as_deref() == Some(SPLIT_BRAIN_HELPER)
                    && n.kind == Some(crate::events::NotifyKind::Call)
                {
                    self.record(SeenSplitBrain {
                        resource: n.resource.clone(),
                        minor: n.minor,
                        seq: n.seq,
                        state: None,
                        recorded_earlier: false,
                    });
                }
                let up = n.connection.or(n.replication).is_some_and(is_connected);
                if up {
                    // Connection notifications address the resource (minor ~0).
                    self.seen.retain(|s| {
                        !(s.resource.is_some() && s.resource == n.resource
                            || n.minor != MINOR_NONE && s.minor == n.minor)
                    });
                }
            }
            DrbdEvent::Overrun | DrbdEvent::ModuleUnloaded | DrbdEvent::Malformed { .. } => {}
        }
    }

    fn note_state(&mut self, e: &StateEvent) {
        match e.reason {
            SibReason::HelperPre if e.helper.as_deref() == Some(SPLIT_BRAIN_HELPER) => {
                self.record(SeenSplitBrain {
                    resource: e.resource.clone(),
                    minor: e.minor,
                    seq: e.seq,
                    state: e.volume.clone(),
                    recorded_earlier: false,
                });
            }
            SibReason::StateChange | SibReason::GetStatusReply => {
                let conn = e
                    .new
                    .map(|w| w.conn())
                    .or_else(|| e.volume.as_ref().map(|v| v.cstate));
                if conn.is_some_and(is_connected) {
                    self.seen.retain(|s| s.minor != e.minor);
                }
            }
            _ => {}
        }
    }

    /// Records a call seen elsewhere (e.g. read back from disk), replacing one for the same
    /// minor.
    pub fn record(&mut self, seen: SeenSplitBrain) {
        self.seen
            .retain(|s| !(s.minor == seen.minor && s.resource == seen.resource));
        self.seen.push(seen);
    }

    /// The recorded calls for a resource, matched by name or by one of its minors.
    pub fn for_resource(&self, resource: &str, minors: &[u32]) -> Vec<&SeenSplitBrain> {
        self.seen
            .iter()
            .filter(|s| match &s.resource {
                Some(r) => r == resource,
                None => minors.contains(&s.minor),
            })
            .collect()
    }

    /// Forgets a resource (it connected again).
    pub fn forget(&mut self, resource: &str, minors: &[u32]) {
        self.seen.retain(|s| match &s.resource {
            Some(r) => r != resource,
            None => !minors.contains(&s.minor),
        });
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Whether a connection state means the peers talk (handshake done).
pub fn is_connected(c: ConnState) -> bool {
    matches!(
        c.to_core(),
        iscsi_ha_core::volume::Connection::Connected
            | iscsi_ha_core::volume::Connection::SyncSource
            | iscsi_ha_core::volume::Connection::SyncTarget
            | iscsi_ha_core::volume::Connection::OtherConnected
    )
}

fn uuid_hex(u: u64) -> String {
    // drbdsetup show-gi prints UUIDs as 16 upper-case hex digits.
    format!("{u:016X}")
}

fn local_side(volumes: &[&VolumeFacts]) -> SplitBrainSide {
    let first = volumes.first().map(|f| &f.volume);
    let oos: Option<u64> = volumes
        .iter()
        .map(|f| f.volume.out_of_sync_kib)
        .try_fold(0u64, |acc, v| v.map(|v| acc.saturating_add(v)));
    SplitBrainSide {
        role: first.map_or(iscsi_ha_core::volume::VolumeRole::Unknown, |v| {
            v.role.to_core()
        }),
        disk: first.map_or(iscsi_ha_core::volume::DiskState::Unknown, |v| {
            v.disk.to_core()
        }),
        out_of_sync_kib: oos,
        current_uuid: volumes
            .first()
            .and_then(|f| f.uuids)
            .map(|u| uuid_hex(u.current)),
    }
}

/// What the peer was known as when the helper was called, if the state word knew it.
fn peer_side(seen: &[&SeenSplitBrain]) -> Option<SplitBrainSide> {
    let state = seen.iter().find_map(|s| s.state.as_ref())?;
    if state.peer_role == DrbdRole::Unknown {
        return None;
    }
    Some(SplitBrainSide {
        role: state.peer_role.to_core(),
        disk: state.peer_disk.to_core(),
        out_of_sync_kib: None,
        current_uuid: None,
    })
}

/// Decides whether `resource` (its volumes as read now, and the split-brain helper calls
/// seen for it) is in split brain. Pure. Only a seen helper call counts: without one the
/// answer is `None` whatever the state, UUIDs and out-of-sync counts say (module doc).
pub fn assess(
    resource: &str,
    volumes: &[VolumeFacts],
    seen: &[&SeenSplitBrain],
) -> Option<SplitBrain> {
    if seen.is_empty()
        || volumes.is_empty()
        || volumes.iter().any(|f| is_connected(f.volume.cstate))
    {
        return None;
    }
    let minors: Vec<String> = seen.iter().map(|s| s.minor.to_string()).collect();
    let seqs: Vec<String> = seen.iter().map(|s| s.seq.to_string()).collect();
    let conn = volumes
        .first()
        .map(|f| f.volume.cstate.name())
        .unwrap_or_default();
    let standalone: Vec<&VolumeFacts> = volumes
        .iter()
        .filter(|f| f.volume.cstate == ConnState::StandAlone)
        .collect();
    // The side whose handshake the other cut short waits in WFConnection instead.
    let affected: Vec<&VolumeFacts> = if standalone.is_empty() {
        volumes.iter().collect()
    } else {
        standalone
    };
    let earlier = if seen.iter().all(|s| s.recorded_earlier) {
        " (recorded before this process started)"
    } else {
        ""
    };
    Some(SplitBrain {
        evidence: format!(
            "DRBD called its split-brain handler for {resource} (minor {}, event {}){earlier} \
             and the connection has not come up since (now {conn})",
            minors.join(", "),
            seqs.join(", ")
        ),
        local: local_side(&affected),
        peer: peer_side(seen),
    })
}
