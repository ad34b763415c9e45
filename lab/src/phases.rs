//! The daemon's phase stamps (the format is documented in `iscsi-ha-bin`'s `daemon::phase`),
//! read back from a daemon log on standard error, and the breakdown of one switch built from
//! them: where the time went between the role arriving and serving, on the guest's own
//! monotonic clock, without the lab's command channel.

use std::collections::BTreeMap;
use std::time::Duration;

/// Where a stamp sits in its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// A point (`role seen`, `serving`, `released`).
    At,
    /// A step's start.
    Start,
    /// A step's end.
    End,
}

/// One phase stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseStamp {
    /// `role seen`, a step's name (`promote r0`, `assign VIP`, ...), `serving`, `released`.
    pub phase: String,
    /// Point, start or end.
    pub edge: Edge,
    /// CLOCK_MONOTONIC of the guest, µs.
    pub mono_us: u64,
    /// Unix time, µs.
    pub wall_us: u64,
    /// On a step's end: whether it worked.
    pub ok: Option<bool>,
    /// On `role seen`: the role.
    pub role: Option<String>,
}

/// The stamp on one log line, if the line is one (`... phase phase="..." edge=...`). Lines that
/// are not stamps, or stamps missing a field, give `None`.
pub fn parse_line(line: &str) -> Option<PhaseStamp> {
    let at = line.find(" phase phase=\"")?;
    let fields = fields(&line[at + " phase ".len()..]);
    let edge = match fields.get("edge")?.as_str() {
        "at" => Edge::At,
        "start" => Edge::Start,
        "end" => Edge::End,
        _ => return None,
    };
    Some(PhaseStamp {
        phase: fields.get("phase")?.clone(),
        edge,
        mono_us: fields.get("mono_us")?.parse().ok()?,
        wall_us: fields.get("wall_us")?.parse().ok()?,
        ok: fields.get("ok").and_then(|v| v.parse().ok()),
        role: fields.get("role").cloned(),
    })
}

/// Every stamp in a log, in order.
pub fn parse_log(log: &str) -> Vec<PhaseStamp> {
    log.lines().filter_map(parse_line).collect()
}

/// `key=value` and `key="quoted value"` pairs, as tracing's formatter writes them.
fn fields(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        rest = next.trim_start();
    }
    out
}

/// Where one host's time went in one switch: from its last `role seen` with `role` to the
/// point `until` (`serving` or `released`) that followed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// From `role seen` to `until`.
    pub total: Duration,
    /// Each step's duration, in the order run (a step run twice appears twice).
    pub steps: Vec<(String, Duration)>,
}

impl Breakdown {
    /// The time not spent in a step: waiting for an event (the peer's demotion), observing,
    /// planning.
    pub fn between_steps(&self) -> Duration {
        let in_steps: Duration = self.steps.iter().map(|(_, d)| *d).sum();
        self.total.saturating_sub(in_steps)
    }
}

/// A switch being read: its `role seen` stamp, the steps so far, the steps started.
type Open<'a> = (u64, Vec<(String, Duration)>, BTreeMap<&'a str, u64>);

/// The breakdown of every switch to `role` in `stamps`: from each `role seen` with that role
/// to the first `until` after it (a switch that never got there, or was overtaken by the next
/// role, is left out).
pub fn breakdowns(stamps: &[PhaseStamp], role: &str, until: &str) -> Vec<Breakdown> {
    let mut out = Vec::new();
    let mut current: Option<Open<'_>> = None;
    for s in stamps {
        if s.phase == "role seen" {
            current =
                (s.role.as_deref() == Some(role)).then(|| (s.mono_us, Vec::new(), BTreeMap::new()));
            continue;
        }
        let Some((t0, steps, open)) = current.as_mut() else {
            continue;
        };
        match s.edge {
            Edge::Start => {
                open.insert(&s.phase, s.mono_us);
            }
            Edge::End => {
                if let Some(start) = open.remove(s.phase.as_str()) {
                    steps.push((
                        s.phase.clone(),
                        Duration::from_micros(s.mono_us.saturating_sub(start)),
                    ));
                }
            }
            Edge::At if s.phase == until => {
                out.push(Breakdown {
                    total: Duration::from_micros(s.mono_us.saturating_sub(*t0)),
                    steps: std::mem::take(steps),
                });
                current = None;
            }
            Edge::At => {}
        }
    }
    out
}

/// The durations of each phase over several breakdowns, phases in the order first seen; a
/// step run twice in one switch counts once, with the two durations added.
pub fn by_phase(breakdowns: &[Breakdown]) -> Vec<(String, Vec<Duration>)> {
    let mut out: Vec<(String, Vec<Duration>)> = Vec::new();
    for b in breakdowns {
        let mut summed: Vec<(String, Duration)> = Vec::new();
        for (name, d) in &b.steps {
            match summed.iter_mut().find(|(n, _)| n == name) {
                Some((_, total)) => *total += *d,
                None => summed.push((name.clone(), *d)),
            }
        }
        for (name, d) in summed {
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, all)) => all.push(d),
                None => out.push((name, vec![d])),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"2026-12-02T16:00:00.000001Z  INFO pass: probe VIP
2026-12-02T16:00:00.000001Z  INFO phase phase="role seen" edge="at" mono_us=1000 wall_us=5000 role="master"
2026-12-02T16:00:00.000002Z  INFO phase phase="probe VIP" edge="start" mono_us=1100 wall_us=5100
2026-12-02T16:00:00.000003Z  INFO phase phase="probe VIP" edge="end" mono_us=1200 wall_us=5200 ok=true
2026-12-02T16:00:00.000004Z  INFO phase phase="promote r0" edge="start" mono_us=1300 wall_us=5300
2026-12-02T16:00:00.000005Z  INFO phase phase="promote r0" edge="end" mono_us=2300 wall_us=6300 ok=true
2026-12-02T16:00:00.000006Z  INFO phase phase="serving" edge="at" mono_us=3000 wall_us=7000
"#;

    #[test]
    fn stamps_are_read_back_with_every_field() {
        let stamps = parse_log(LOG);
        assert_eq!(stamps.len(), 6, "the plain line is not a stamp");
        assert_eq!(stamps[0].role.as_deref(), Some("master"));
        assert_eq!(stamps[0].edge, Edge::At);
        assert_eq!(stamps[2].ok, Some(true));
        assert_eq!(stamps[3].phase, "promote r0");
        assert_eq!(stamps[3].wall_us, 5300);
    }

    #[test]
    fn a_breakdown_runs_from_the_role_to_serving() {
        let all = breakdowns(&parse_log(LOG), "master", "serving");
        assert_eq!(all.len(), 1);
        let b = &all[0];
        assert_eq!(b.total, Duration::from_micros(2000));
        assert_eq!(
            b.steps,
            vec![
                ("probe VIP".to_string(), Duration::from_micros(100)),
                ("promote r0".to_string(), Duration::from_micros(1000)),
            ]
        );
        assert_eq!(b.between_steps(), Duration::from_micros(900));
        assert!(breakdowns(&parse_log(LOG), "slave", "released").is_empty());
        let twice = format!("{LOG}{LOG}");
        let both = breakdowns(&parse_log(&twice), "master", "serving");
        assert_eq!(both.len(), 2);
        let phases = by_phase(&both);
        assert_eq!(phases[0].0, "probe VIP");
        assert_eq!(phases[1].1, vec![Duration::from_micros(1000); 2]);
    }

    #[test]
    fn garbage_and_truncated_lines_are_not_stamps() {
        assert!(parse_line("phase phase=\"x\"").is_none());
        assert!(parse_line(" phase phase=\"x\" edge=\"sideways\" mono_us=1 wall_us=2").is_none());
        assert!(parse_line(" phase phase=\"x\" edge=\"at\" mono_us=abc wall_us=2").is_none());
        assert!(parse_line(" phase phase=\"x\" edge=\"at\" mono_us=1").is_none());
        assert!(parse_line(" phase phase=\"unterminated").is_none());
    }
}
