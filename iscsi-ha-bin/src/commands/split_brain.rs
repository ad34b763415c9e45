//! `iscsi-cfg split-brain`: what each side of a DRBD split brain knows, which one to keep, and
//! the commands that recover.

use super::{status::fetch, EXIT_NOT_RUNNING};
use crate::control::ClientError;
use iscsi_ha_core::standing::Keep;
use iscsi_ha_core::status::{ResourceView, SplitBrainView};
use iscsi_ha_core::volume::{Connection, SplitBrainSide};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Prints every split-brained resource; exits 0 whether or not there is one.
pub fn show(socket: &Path) -> ExitCode {
    match fetch(socket) {
        Ok(status) => {
            let text = render(&status.host, &status.resources);
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn side(o: &mut String, label: &str, s: &SplitBrainSide) {
    let _ = writeln!(
        o,
        "  {label:<10} role {}, disk {}, out of sync {}, data generation {}",
        s.role,
        s.disk,
        s.out_of_sync_kib
            .map_or("unknown".into(), |k| format!("{k} KiB")),
        s.current_uuid.as_deref().unwrap_or("unknown")
    );
}

/// The split brains among `resources`, as text.
pub fn render(host: &str, resources: &[ResourceView]) -> String {
    let mut o = String::new();
    let split: Vec<(&ResourceView, &SplitBrainView)> = resources
        .iter()
        .filter_map(|r| r.split_brain.as_ref().map(|s| (r, s)))
        .collect();
    if split.is_empty() {
        let _ = writeln!(o, "no split brain on {host}");
        for r in resources
            .iter()
            .filter(|r| r.connection_state == Some(Connection::StandAlone))
        {
            let _ = writeln!(
                o,
                "  {} is StandAlone: if DRBD met a split brain before this daemon ran (e.g. while this host booted), no split-brain call was seen here; the other host's `iscsi-cfg split-brain` says which data to keep, and `iscsi-cfg split-brain resolve --discard-local-data --yes` here reconnects discarding this host's changes",
                r.name
            );
        }
        return o;
    }
    for (r, sb) in split {
        let _ = writeln!(o, "SPLIT BRAIN on {}: {}", r.name, sb.detail.evidence);
        side(&mut o, &format!("{host}:"), &sb.detail.local);
        match &sb.detail.peer {
            Some(p) => side(&mut o, "peer:", p),
            None => {
                let _ = writeln!(
                    o,
                    "  peer:      not known from here (run iscsi-cfg split-brain on it)"
                );
            }
        }
        let when = |t: Option<iscsi_ha_core::time::Timestamp>| {
            t.map_or("not seen".to_string(), |t| t.to_string())
        };
        let _ = writeln!(
            o,
            "  last Primary: {host} {}, peer {}",
            when(sb.local_last_primary),
            when(sb.peer_last_primary)
        );
        let keep = match sb.keep {
            Keep::ThisHost => "THIS host's data",
            Keep::OtherHost => "the OTHER host's data",
            Keep::Undecided => "undecided from here: compare what both hosts say",
        };
        let _ = writeln!(
            o,
            "  keep: {keep} (confidence {}; {})",
            sb.confidence,
            if sb.serving_here {
                "this host serves now"
            } else {
                "this host does not serve"
            }
        );
        let _ = writeln!(o, "  why: {}", sb.why);
        let _ = writeln!(o, "  recovery: {}", sb.recovery);
    }
    o
}
