//! `iscsi-ha doctor`: checks a host before it is trusted with failover. Each check yields
//! [`Finding`]s (data, so tests assert on them); a check that cannot run is a finding too,
//! never a panic or a hang (every file is read through `small_file`, capped, regular files
//! only).
//!
//! - [`drbd`]: the module and its version (`/proc/drbd`), each resource in the kernel
//!   (protocol, fencing, after-split-brain policies over netlink) and its fence-peer handler
//!   in drbd.conf ([`drbd_conf`]).
//! - [`storage`]: multipath ([`multipath`]) and LVM ([`lvm`]) leaving DRBD's devices and
//!   backing disks alone, live holders included.
//! - [`host`]: tgtd not started at boot by its own unit, the VIP's interface and subnet and
//!   the role source (through `host_check` and the role module's reader), the fingerprint.
//! - [`peer`]: the other host's fingerprint from the pool database (XAPI role source only).

pub mod drbd;
pub mod drbd_conf;
pub mod fence;
pub mod host;
mod lexer;
pub mod lvm;
pub mod multipath;
pub mod peer;
pub mod storage;

use iscsi_ha_core::config::Config;
use serde::Serialize;
use std::fmt::Write as _;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// As the design needs it.
    Ok,
    /// Worth fixing; failover works.
    Warn,
    /// Failover or the one-server rules would not hold, or the check could not run.
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How it came out.
    pub level: Level,
    /// Which check (`drbd.r0.protocol`, `lvm.filter`, `tgt.boot`): stable, for tools.
    pub check: String,
    /// What was found.
    pub what: String,
    /// What to do (empty for `ok`).
    pub todo: String,
}

impl Finding {
    /// A passed check.
    pub fn ok(check: impl Into<String>, what: impl Into<String>) -> Self {
        Self::new(Level::Ok, check, what, "")
    }

    /// A warning.
    pub fn warn(
        check: impl Into<String>,
        what: impl Into<String>,
        todo: impl Into<String>,
    ) -> Self {
        Self::new(Level::Warn, check, what, todo)
    }

    /// An error.
    pub fn error(
        check: impl Into<String>,
        what: impl Into<String>,
        todo: impl Into<String>,
    ) -> Self {
        Self::new(Level::Error, check, what, todo)
    }

    fn new(
        level: Level,
        check: impl Into<String>,
        what: impl Into<String>,
        todo: impl Into<String>,
    ) -> Self {
        Finding {
            level,
            check: check.into(),
            what: what.into(),
            todo: todo.into(),
        }
    }
}

/// Everything doctor found, with the fingerprint it compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The configuration's fingerprint.
    pub fingerprint: String,
    /// Every finding, in check order.
    pub findings: Vec<Finding>,
    /// How many of each.
    pub summary: Summary,
}

/// Counts per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `ok` findings.
    pub ok: usize,
    /// `warn` findings.
    pub warn: usize,
    /// `error` findings.
    pub error: usize,
}

impl Report {
    /// Builds the report and its summary.
    pub fn new(fingerprint: String, findings: Vec<Finding>) -> Self {
        let mut summary = Summary::default();
        for f in &findings {
            match f.level {
                Level::Ok => summary.ok += 1,
                Level::Warn => summary.warn += 1,
                Level::Error => summary.error += 1,
            }
        }
        Report {
            fingerprint,
            findings,
            summary,
        }
    }

    /// 0 when every check is ok, 1 with warnings only, 2 with any error.
    pub fn exit_code(&self) -> u8 {
        if self.summary.error > 0 {
            2
        } else if self.summary.warn > 0 {
            1
        } else {
            0
        }
    }

    /// One line per finding (`ok|warn|error <check>: <what> — <what to do>`), then a summary.
    pub fn render(&self) -> String {
        let mut o = String::new();
        for f in &self.findings {
            let _ = write!(o, "{} {}: {}", f.level.word(), f.check, f.what);
            if !f.todo.is_empty() {
                let _ = write!(o, " — {}", f.todo);
            }
            o.push('\n');
        }
        let verdict = match self.exit_code() {
            0 => "this host is ready for failover",
            1 => "failover works; fix the warnings",
            _ => "do not trust this host with failover until the errors are fixed",
        };
        let _ = writeln!(
            o,
            "{} ok, {} warning(s), {} error(s): {verdict}",
            self.summary.ok, self.summary.warn, self.summary.error
        );
        o
    }
}

/// Runs every check against this host.
pub fn run(config: &Config) -> Report {
    let mut findings = Vec::new();
    let drbd = drbd::check(config);
    findings.extend(drbd.findings);
    findings.extend(storage::check(config, &drbd.devices));
    findings.extend(host::check(config));
    findings.push(fence::check(config));
    findings.extend(peer::check(config));
    Report::new(iscsi_ha_core::config::fingerprint(config), findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_and_lines_follow_the_worst_finding() {
        let ok = Report::new("f".into(), vec![Finding::ok("a", "fine")]);
        assert_eq!(ok.exit_code(), 0);
        assert_eq!(
            ok.render(),
            "ok a: fine\n1 ok, 0 warning(s), 0 error(s): this host is ready for failover\n"
        );
        let warn = Report::new(
            "f".into(),
            vec![Finding::ok("a", "fine"), Finding::warn("b", "meh", "do x")],
        );
        assert_eq!(warn.exit_code(), 1);
        assert!(warn.render().contains("warn b: meh — do x\n"));
        let err = Report::new(
            "f".into(),
            vec![
                Finding::warn("b", "meh", "do x"),
                Finding::error("c", "bad", "do y"),
            ],
        );
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.summary,
            Summary {
                ok: 0,
                warn: 1,
                error: 1
            }
        );
    }
}
