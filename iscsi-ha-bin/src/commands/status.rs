//! `iscsi-ha status [--json] [--watch]` (and `iscsi-cfg status`): what the daemon reports.

use super::{default_socket, EXIT_NOT_RUNNING};
use crate::control::{request, ClientError, Request, Response};
use clap::Args;
use iscsi_ha_core::reconcile::{Delivery, Outcome};
use iscsi_ha_core::status::Status;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON for tools instead of text.
    #[arg(long)]
    pub json: bool,
    /// Refresh every 2 seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// The daemon's control socket.
    #[arg(long, default_value_os_t = default_socket())]
    pub socket: PathBuf,
}

/// Asks the daemon for its status once.
pub fn fetch(socket: &std::path::Path) -> Result<Status, ClientError> {
    match request(socket, &Request::Status, Duration::from_secs(10))? {
        Response::Status { status } => Ok(*status),
        other => Err(ClientError::Exchange {
            path: socket.display().to_string(),
            message: format!("unexpected answer: {other:?}"),
        }),
    }
}

/// Prints the status; exits 3 when the daemon is not running.
pub fn run(args: &StatusArgs) -> ExitCode {
    loop {
        let code = match fetch(&args.socket) {
            Ok(status) => {
                if args.watch && !args.json {
                    print!("\x1b[H\x1b[2J");
                }
                if args.json {
                    match serde_json::to_string_pretty(&status) {
                        Ok(s) => println!("{s}"),
                        Err(e) => eprintln!("cannot print status: {e}"),
                    }
                } else {
                    print!("{}", render(&status, SystemTime::now()));
                }
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
        };
        if !args.watch {
            return code;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The status as text for people, in the spirit of the original's status box.
pub fn render(s: &Status, now: SystemTime) -> String {
    let mut o = String::new();
    let age = now
        .duration_since(s.updated_at.to_system_time())
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "iSCSI-HA on {} — updated {} ({:.1} s ago)",
        s.host,
        s.updated_at,
        age.as_secs_f32()
    );
    let role = match &s.role_reason {
        Some(r) => format!("{} ({r})", s.host_role.to_uppercase()),
        None => s.host_role.to_uppercase(),
    };
    let _ = writeln!(o, "HOST ROLE:      {role}");
    if !s.fingerprint.is_empty() {
        // Compared by eye (or by `iscsi-ha doctor`) with the peer's: equal when what must
        // match on both hosts does.
        let _ = writeln!(o, "CONFIG:         fingerprint {}", s.fingerprint);
    }
    let _ = writeln!(
        o,
        "MANUAL MODE:    {}",
        match s.manual_mode {
            iscsi_ha_core::observation::ManualMode::Off => "off".to_string(),
            m => format!(
                "on ({})",
                serde_json::to_value(m)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        }
    );
    let _ = writeln!(
        o,
        "INTENT:         {}",
        match &s.intent {
            iscsi_ha_core::plan::Intent::Serve => "serve (primary)".to_string(),
            iscsi_ha_core::plan::Intent::Release => "release (secondary)".to_string(),
            iscsi_ha_core::plan::Intent::Hold(r) => format!("hold: {r}"),
        }
    );
    for r in &s.resources {
        match &r.error {
            Some(e) => {
                let _ = writeln!(o, "DRBD {:<10} cannot read: {e}", r.name);
            }
            None => {
                let show = |v: Option<String>| v.unwrap_or_else(|| "?".into());
                let _ = write!(
                    o,
                    "DRBD {:<10} {}/{}  {}  {}/{}",
                    r.name,
                    show(r.role.map(|x| x.to_string())),
                    show(r.peer_role.map(|x| x.to_string())),
                    show(r.connection.clone()),
                    show(r.disk.map(|x| x.to_string())),
                    show(r.peer_disk.map(|x| x.to_string())),
                );
                if let Some(sync) = r.sync {
                    let _ = write!(
                        o,
                        "  sync {:.1}% ({} KiB left)",
                        sync.percent_done, sync.out_of_sync_kib
                    );
                }
                o.push('\n');
                if let Some(sb) = &r.split_brain {
                    let _ = writeln!(
                        o,
                        "  SPLIT BRAIN ({}): {} (confidence {}: {})",
                        sb.detail.evidence, sb.recovery, sb.confidence, sb.why
                    );
                }
            }
        }
    }
    let t = &s.target;
    let luns: Vec<String> = t
        .luns
        .iter()
        .map(|l| format!("{}:{}", l.lun, l.path.as_deref().unwrap_or("-")))
        .collect();
    let _ = writeln!(
        o,
        "ISCSI TARGET:   {} {}  LUNs [{}]  sessions {}{}",
        if t.running { "running" } else { "stopped" },
        t.iqn,
        luns.join(", "),
        t.sessions,
        t.error
            .as_ref()
            .map(|e| format!("  ({e})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "VIRTUAL IP:     {} on {}: {}",
        s.vip.address,
        s.vip.interface,
        match (s.vip.here, &s.vip.error) {
            (Some(true), _) => "here".to_string(),
            (Some(false), _) => "not here".to_string(),
            (None, e) => format!("unknown ({})", e.as_deref().unwrap_or("")),
        }
    );
    if let Some(r) = &s.pbd_replug {
        let _ = writeln!(o, "PBD RE-PLUG:    {r}");
    }
    for h in &s.holds {
        let _ = writeln!(o, "HOLD:           {h}");
    }
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING:        {w}");
    }
    for r in &s.retrying {
        let _ = writeln!(
            o,
            "RETRYING:       {} failed; tried again in {:.1} s",
            r.component,
            r.retry_in_ms as f64 / 1000.0
        );
    }
    for e in &s.exhausted {
        let _ = writeln!(
            o,
            "GAVE UP:        {e} (restart budget used up; iscsi-cfg reset when fixed)"
        );
    }
    if !s.last_actions.is_empty() {
        let _ = writeln!(o, "LAST ACTIONS:");
        for a in s.last_actions.iter().rev().take(8) {
            let outcome = match &a.outcome {
                Outcome::Done => "done".to_string(),
                Outcome::Failed { error, .. } => format!("FAILED: {error}"),
                Outcome::Deferred { retry_in_ms } => format!("deferred {retry_in_ms} ms"),
                Outcome::BudgetExhausted { .. } => "budget exhausted".to_string(),
            };
            let _ = writeln!(o, "  {}  {}: {outcome}", a.at, a.step);
        }
    }
    if !s.alerts.is_empty() {
        let _ = writeln!(o, "ALERTS:");
        for a in s.alerts.iter().rev().take(8) {
            let how = match &a.delivery {
                Delivery::Sent => String::new(),
                Delivery::Logged => " (logged only: mail is off)".into(),
                Delivery::Muted => " (muted: manual mode)".into(),
                Delivery::Failed(e) => format!(" (not delivered: {e})"),
            };
            let _ = writeln!(
                o,
                "  {}  {}: {}{how}",
                a.at, a.alert.severity, a.alert.message
            );
        }
    }
    o
}
