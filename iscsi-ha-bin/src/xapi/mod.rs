//! XenServer / XCP-ng's XAPI, asked through its `xe` command line: the PBD re-plug a new master
//! runs once it serves. Every `xe` call runs beside the daemon's loop ([`crate::role::ChildRun`]),
//! killed at its timeout; every reply is parsed strictly.

mod records;
mod replug;
mod trigger;
mod xe;

pub use records::{parse_map, parse_records, XeParseError, XeRecord};
pub use replug::{points_at, PbdPlugged, Points, ReplugReport, ReplugRun, ReplugSpec};
pub use trigger::{ReplugEvent, Replugger, RETRY_AFTER};
pub use xe::{Xe, XeCall, XeError};
