//! `/proc/drbd`: the 8.3 and 8.4 text formats (version line, per-minor state line, counters,
//! resync/verify progress) and DRBD 9's version-only output. Read-only: the fallback when
//! there is no generic netlink family (8.3 kernels) and a cross-check of the netlink status.

use std::path::Path;

use serde::Serialize;

use crate::state::{ConnState, DrbdDiskState, DrbdRole};

/// The usual location.
pub const PROC_DRBD: &str = "/proc/drbd";

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcDrbd {
    /// The version line.
    pub version: ProcVersion,
    /// The build line (`srcversion: ...`, `GIT-hash: ...`, `built-in`), if present.
    pub build: Option<String>,
    /// DRBD 9's `Transports (api:N): ...` line, if present.
    pub transports: Option<String>,
    /// The minors, in file order.
    pub minors: Vec<ProcMinor>,
}

/// `version: 8.4.11 (api:1/proto:86-101)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcVersion {
    /// The release (`8.4.11`, `9.0.22-2`).
    pub release: String,
    /// The userspace API version (1 for 8.4, 88 for 8.3, 2 for DRBD 9).
    pub api: u32,
    /// Lowest protocol version spoken.
    pub proto_min: u32,
    /// Highest protocol version spoken.
    pub proto_max: u32,
    /// DRBD 9 with `(compat 8.4)`: legacy devices are shown 8.4-style.
    pub compat_84: bool,
}

impl ProcVersion {
    /// The release's major number.
    pub fn major(&self) -> Option<u32> {
        self.release.split('.').next()?.parse().ok()
    }

    /// Whether this is a DRBD 9 module.
    pub fn is_drbd9(&self) -> bool {
        self.major() == Some(9)
    }
}

/// One minor's lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcMinor {
    /// The minor number.
    pub minor: u32,
    /// `cs:` (`Unconfigured` for a minor without configuration).
    pub cstate: ConnState,
    /// `ro:` local / peer roles (absent for unconfigured minors).
    pub roles: Option<(DrbdRole, DrbdRole)>,
    /// `ds:` local / peer disks.
    pub disks: Option<(DrbdDiskState, DrbdDiskState)>,
    /// The replication protocol letter (`A`, `B`, `C`), if shown.
    pub protocol: Option<char>,
    /// The six flag characters after the protocol (`r-----`).
    pub flags: String,
    /// The counters line.
    pub counters: Option<ProcCounters>,
    /// Resync or verify progress.
    pub sync: Option<ProcSync>,
}

impl ProcMinor {
    /// I/O suspended (first flag `s` instead of `r`).
    pub fn io_suspended(&self) -> bool {
        self.flags.starts_with('s')
    }
}

/// The counters line (`ns:` ... `oos:`); sizes in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ProcCounters {
    /// Network send, KiB.
    pub ns: u64,
    /// Network receive, KiB.
    pub nr: u64,
    /// Disk write, KiB.
    pub dw: u64,
    /// Disk read, KiB.
    pub dr: u64,
    /// Activity-log updates.
    pub al: u64,
    /// Bitmap updates.
    pub bm: u64,
    /// Local count (open requests to the local disk).
    pub lo: i64,
    /// Pending (requests to the peer awaiting answer).
    pub pe: i64,
    /// Unacknowledged (requests from the peer not yet answered).
    pub ua: i64,
    /// Application requests pending.
    pub ap: i64,
    /// Epochs.
    pub ep: i64,
    /// Write ordering: `n` none, `d` drain, `f` flush, `b` barrier.
    pub wo: Option<char>,
    /// Out of sync, KiB.
    pub oos: Option<u64>,
}

/// Resync or verify progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcSync {
    /// `true` for online verify (`verified:`), `false` for resync (`sync'ed:`).
    pub verify: bool,
    /// Percentage done.
    pub percent_done: f32,
    /// Left to do, KiB.
    pub left_kib: u64,
    /// Total of this run, KiB.
    pub total_kib: u64,
    /// Estimated time to finish, seconds.
    pub finish_secs: Option<u64>,
    /// Current speed, KiB/s.
    pub speed_kib_s: Option<u64>,
}

/// Why the text is not a /proc/drbd we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// No `version:` line.
    #[error("no version line")]
    NoVersion,
    /// A line could not be parsed.
    #[error("line {line}: {reason}: {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: &'static str,
        /// The line.
        text: String,
    },
}

/// Reads and parses a file (normally [`PROC_DRBD`]).
pub fn read(path: &Path) -> Result<ProcDrbd, ProcError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProcError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(&text)
}

fn bad(line: usize, reason: &'static str, text: &str) -> ProcError {
    ProcError::BadLine {
        line,
        reason,
        text: text.to_string(),
    }
}

/// Parses the text of /proc/drbd.
pub fn parse(text: &str) -> Result<ProcDrbd, ProcError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or(ProcError::NoVersion)?;
    let version = parse_version(first).ok_or(ProcError::NoVersion)?;
    let mut out = ProcDrbd {
        version,
        build: None,
        transports: None,
        minors: Vec::new(),
    };
    for (n, line) in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Transports") {
            out.transports = Some(rest.trim().to_string());
        } else if trimmed.starts_with("srcversion:")
            || trimmed.starts_with("GIT-hash:")
            || trimmed == "built-in"
        {
            out.build = Some(trimmed.to_string());
        } else if let Some(minor) = parse_minor_line(trimmed) {
            out.minors.push(minor.map_err(|r| bad(n, r, line))?);
        } else if trimmed.starts_with("ns:") {
            let m = out
                .minors
                .last_mut()
                .ok_or_else(|| bad(n, "counters before any minor", line))?;
            m.counters = Some(parse_counters(trimmed).map_err(|r| bad(n, r, line))?);
        } else if trimmed.starts_with('[') {
            let m = out
                .minors
                .last_mut()
                .ok_or_else(|| bad(n, "progress before any minor", line))?;
            let mut sync = parse_progress(trimmed).map_err(|r| bad(n, r, line))?;
            // 8.3's M branch keeps "finish:" on the same line.
            if let Some(idx) = trimmed.find("finish:") {
                parse_finish(&trimmed[idx..], &mut sync);
            }
            m.sync = Some(sync);
        } else if trimmed.starts_with("finish:") {
            if let Some(sync) = out.minors.last_mut().and_then(|m| m.sync.as_mut()) {
                parse_finish(trimmed, sync);
            }
        }
        // Other indented detail lines (act_log:, resync:, "blocked on activity log", ...)
        // carry nothing this adapter uses.
    }
    Ok(out)
}

fn parse_version(line: &str) -> Option<ProcVersion> {
    let rest = line.trim().strip_prefix("version:")?.trim();
    let (release, rest) = rest.split_once(' ')?;
    let inner = rest.trim().strip_prefix("(api:")?;
    let (api, rest) = inner.split_once("/proto:")?;
    let (proto, tail) = rest.split_once(')')?;
    let (pmin, pmax) = proto.split_once('-')?;
    Some(ProcVersion {
        release: release.to_string(),
        api: api.parse().ok()?,
        proto_min: pmin.parse().ok()?,
        proto_max: pmax.parse().ok()?,
        compat_84: tail.contains("compat 8.4"),
    })
}

/// `Some(..)` when the line is a minor line (`N: cs:...`).
fn parse_minor_line(line: &str) -> Option<Result<ProcMinor, &'static str>> {
    let (num, rest) = line.split_once(':')?;
    let minor: u32 = num.trim().parse().ok()?;
    let rest = rest.trim_start();
    if !rest.starts_with("cs:") {
        return None;
    }
    Some(parse_minor_fields(minor, rest))
}

fn split_pair<T: std::str::FromStr>(s: &str) -> Result<(T, T), &'static str> {
    let (a, b) = s.split_once('/').ok_or("expected a/b pair")?;
    Ok((
        a.parse().map_err(|_| "unknown state name")?,
        b.parse().map_err(|_| "unknown state name")?,
    ))
}

fn parse_minor_fields(minor: u32, rest: &str) -> Result<ProcMinor, &'static str> {
    let mut words = rest.split_whitespace();
    let cs = words
        .next()
        .and_then(|w| w.strip_prefix("cs:"))
        .ok_or("no cs:")?;
    let cstate: ConnState = cs.parse().map_err(|_| "unknown connection state")?;
    let mut out = ProcMinor {
        minor,
        cstate,
        roles: None,
        disks: None,
        protocol: None,
        flags: String::new(),
        counters: None,
        sync: None,
    };
    if cstate == ConnState::Unconfigured {
        return Ok(out);
    }
    let ro = words
        .next()
        .and_then(|w| w.strip_prefix("ro:"))
        .ok_or("no ro:")?;
    out.roles = Some(split_pair(ro)?);
    let ds = words
        .next()
        .and_then(|w| w.strip_prefix("ds:"))
        .ok_or("no ds:")?;
    out.disks = Some(split_pair(ds)?);
    // Then the protocol letter (or a space, which split_whitespace drops) and the flags.
    let remaining: Vec<&str> = words.collect();
    match remaining.as_slice() {
        [proto, flags] if proto.len() == 1 => {
            out.protocol = proto.chars().next();
            out.flags = (*flags).to_string();
        }
        [flags] => out.flags = (*flags).to_string(),
        [] => {}
        _ => return Err("unexpected words after ds:"),
    }
    Ok(out)
}

fn parse_counters(line: &str) -> Result<ProcCounters, &'static str> {
    let mut c = ProcCounters::default();
    for word in line.split_whitespace() {
        let (key, value) = word.split_once(':').ok_or("counter without ':'")?;
        let u = || value.parse::<u64>().map_err(|_| "bad counter");
        let i = || value.parse::<i64>().map_err(|_| "bad counter");
        match key {
            "ns" => c.ns = u()?,
            "nr" => c.nr = u()?,
            "dw" => c.dw = u()?,
            "dr" => c.dr = u()?,
            "al" => c.al = u()?,
            "bm" => c.bm = u()?,
            "lo" => c.lo = i()?,
            "pe" => c.pe = i()?,
            "ua" => c.ua = i()?,
            "ap" => c.ap = i()?,
            "ep" => c.ep = i()?,
            "wo" => c.wo = value.chars().next(),
            "oos" => c.oos = Some(u()?),
            _ => {} // counters added by later releases
        }
    }
    Ok(c)
}

fn number(s: &str) -> Option<u64> {
    s.chars()
        .filter(|c| *c != ',')
        .collect::<String>()
        .parse()
        .ok()
}

fn parse_progress(line: &str) -> Result<ProcSync, &'static str> {
    let (_, rest) = line.split_once(']').ok_or("no progress bar")?;
    let rest = rest.trim_start();
    let (verify, rest) = if let Some(r) = rest.strip_prefix("sync'ed:") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix("verified:") {
        (true, r)
    } else {
        return Err("neither sync'ed: nor verified:");
    };
    let rest = rest.trim_start();
    let (pct, rest) = rest.split_once('%').ok_or("no percentage")?;
    let percent_done: f32 = pct.trim().parse().map_err(|_| "bad percentage")?;
    let open = rest.find('(').ok_or("no (left/total)")?;
    let close = rest.find(')').ok_or("no (left/total)")?;
    let inner = rest.get(open + 1..close).ok_or("no (left/total)")?;
    let unit = rest.get(close + 1..close + 2).ok_or("no unit")?;
    let (left, total) = inner.split_once('/').ok_or("no left/total")?;
    let scale = match unit {
        "K" => 1,
        "M" => 1024,
        _ => return Err("unknown unit"),
    };
    let left = number(left).ok_or("bad left")?;
    let total = number(total).ok_or("bad total")?;
    Ok(ProcSync {
        verify,
        percent_done,
        left_kib: left.saturating_mul(scale),
        total_kib: total.saturating_mul(scale),
        finish_secs: None,
        speed_kib_s: None,
    })
}

/// Reads `finish: H:MM:SS speed: N (avg) K/sec ...`; unreadable parts stay `None`.
fn parse_finish(text: &str, sync: &mut ProcSync) {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "finish:" => {
                sync.finish_secs = words.next().and_then(|t| {
                    let parts: Vec<u64> = t
                        .split(':')
                        .map(|p| p.parse().ok())
                        .collect::<Option<_>>()?;
                    match parts.as_slice() {
                        [h, m, s] => Some(
                            h.saturating_mul(3600)
                                .saturating_add(m.saturating_mul(60))
                                .saturating_add(*s),
                        ),
                        _ => None,
                    }
                });
            }
            "speed:" => sync.speed_kib_s = words.next().and_then(number),
            _ => {}
        }
    }
}
