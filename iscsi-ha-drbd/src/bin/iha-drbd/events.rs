//! `events`: one line per event, prefixed with wall-clock and monotonic timestamps.

use std::time::{Duration, Instant};

use clap::Args;
use iscsi_ha_drbd::events::DrbdEvent;
use iscsi_ha_drbd::DrbdEvents;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this long without reaching the count.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Print each event as JSON.
    #[arg(long)]
    json: bool,
}

/// A short text form of an event.
pub fn describe(e: &DrbdEvent) -> String {
    match e {
        DrbdEvent::State(s) => {
            let res = s.resource.as_deref().unwrap_or("?");
            match (s.prev, s.new) {
                (Some(p), Some(n)) => format!(
                    "state {res} minor:{} {}/{} {} {}/{} -> {}/{} {} {}/{}",
                    s.minor,
                    p.role(),
                    p.peer(),
                    p.conn(),
                    p.disk(),
                    p.pdsk(),
                    n.role(),
                    n.peer(),
                    n.conn(),
                    n.disk(),
                    n.pdsk()
                ),
                _ => format!("state {res} minor:{} {:?}", s.minor, s.reason),
            }
        }
        DrbdEvent::Notification(n) => format!(
            "{:?} {:?} {} role:{:?} peer:{:?} conn:{:?} repl:{:?} disk:{:?} pdisk:{:?}",
            n.kind,
            n.cmd,
            n.resource.as_deref().unwrap_or("?"),
            n.role,
            n.peer_role,
            n.connection,
            n.replication,
            n.disk,
            n.peer_disk
        ),
        DrbdEvent::Overrun => "overrun: events lost".to_string(),
        DrbdEvent::ModuleUnloaded => "module-unloaded".to_string(),
        DrbdEvent::Malformed { reason } => format!("malformed: {reason}"),
    }
}

pub fn run(args: EventsArgs) -> anyhow::Result<()> {
    let mut events = DrbdEvents::subscribe()?;
    // Tells a waiting test the subscription is live before it triggers anything.
    println!("subscribed");
    let deadline = args
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut seen = 0usize;
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if left.is_zero() {
            return Ok(());
        }
        for e in events.wait(left)? {
            let (real, mono) = crate::timestamps();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"realtime": real, "monotonic": mono, "event": e})
                );
            } else {
                println!("{real:.6} {mono:.6} {}", describe(&e));
            }
            seen += 1;
            if args.count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
        }
    }
}
