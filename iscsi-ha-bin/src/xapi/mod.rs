//! XenServer / XCP-ng's XAPI, asked through its `xe` command line: the PBD re-plug a new master
//! runs once it serves, and the configuration fingerprints kept in the pool database. Every `xe` call runs beside the daemon's loop ([`crate::role::ChildRun`]),
//! killed at its timeout; every reply is parsed strictly.

mod fingerprint;
mod records;
mod replug;
mod trigger;
mod xe;

pub use fingerprint::{
    host_uuid, key as fingerprint_key, parse_pool_uuid, parse_published, read_published,
    PoolDbError, PublishRun, PublishSpec, Published, KEY_PREFIX,
};
pub use records::{parse_map, parse_records, XeParseError, XeRecord};
pub use replug::{points_at, PbdPlugged, Points, ReplugReport, ReplugRun, ReplugSpec};
pub use trigger::{ReplugEvent, Replugger, RETRY_AFTER};
pub use xe::{Xe, XeCall, XeError};
