//! Parsers for tgtd's `show` replies into typed values.
//!
//! tgtd's text is indented by four spaces per level (`_TAB1` ...). Every parser is total: a
//! line it does not recognise is kept in an `unknown` list, never a panic.

mod lists;
mod system;
mod targets;

pub use lists::{parse_accounts, parse_connections, parse_params, parse_portals, ConnectionInfo};
pub use system::{parse_system, SystemInfo};
pub use targets::{
    is_address_entry, parse_targets, LunInfo, NexusConnection, NexusInfo, TargetInfo, ALL,
};

/// A line split into its indentation level (leading spaces / 4) and the rest.
struct Line<'a> {
    level: usize,
    text: &'a str,
}

impl<'a> Line<'a> {
    fn new(raw: &'a str) -> Self {
        let text = raw.trim_start_matches(' ');
        let spaces = raw.len() - text.len();
        Self {
            level: spaces / 4,
            text,
        }
    }
}

/// `Key: value` split at the first `:`; the value loses one leading space and nothing else
/// (a SCSI ID may hold runs of spaces, an empty value keeps its meaning).
fn split_key(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.split_once(':')?;
    Some((key, value.strip_prefix(' ').unwrap_or(value)))
}
