//! When the daemon re-plugs: once per period of serving, `replug_delay` after it began (a
//! takeover, or a start on a host that already serves), again after [`RETRY_AFTER`] when an
//! attempt fails, and never while this host does not serve: losing the role (or the VIP, or
//! the target) cancels a waiting or running re-plug and kills its `xe`.

use super::replug::{ReplugReport, ReplugRun, ReplugSpec};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// After a failed attempt, the next comes this long after it; after the last, the failure is
/// final (alerted).
pub const RETRY_AFTER: [Duration; 2] = [Duration::from_secs(30), Duration::from_secs(60)];

/// What the daemon logs or alerts.
#[derive(Debug)]
pub enum ReplugEvent {
    /// An attempt began (1-based).
    Started {
        /// Which attempt.
        attempt: usize,
    },
    /// An attempt ended.
    Finished {
        /// Which attempt.
        attempt: usize,
        /// What it found and did.
        report: ReplugReport,
        /// When it failed and another attempt follows, after how long; `None` when this was
        /// the last word (it worked, or it was the last attempt).
        retry_in: Option<Duration>,
    },
    /// A waiting or running re-plug was dropped (its `xe` killed).
    Cancelled {
        /// Why.
        why: &'static str,
    },
}

#[derive(Debug)]
enum State {
    /// Not serving (or re-plug off): waits for this host to serve.
    Idle,
    /// Serving; the next attempt starts at this instant.
    Waiting(Instant),
    /// An attempt is under way.
    Running(Box<ReplugRun>),
    /// Serving, and the re-plug of this period of serving is over.
    Done,
}

/// The daemon's re-plug state: which attempt, and the last result for status.
#[derive(Debug)]
pub struct Replugger {
    state: State,
    attempt: usize,
    last: Option<String>,
}

impl Default for Replugger {
    fn default() -> Self {
        Self::new()
    }
}

impl Replugger {
    /// Waiting for this host to serve.
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            attempt: 0,
            last: None,
        }
    }

    /// Follows what the last pass saw: whether this host serves (intent serve, target
    /// exported, VIP here) and whether re-plug is on. Never blocks.
    pub fn observe(
        &mut self,
        serving: bool,
        enabled: bool,
        delay: Duration,
        now: Instant,
    ) -> Option<ReplugEvent> {
        if !(serving && enabled) {
            let was = std::mem::replace(&mut self.state, State::Idle);
            self.attempt = 0;
            if matches!(was, State::Waiting(_) | State::Running(_)) {
                let why = if enabled {
                    "this host stopped serving"
                } else {
                    "replug_pbds was turned off"
                };
                self.last = Some(format!("cancelled: {why}"));
                return Some(ReplugEvent::Cancelled { why });
            }
            return None;
        }
        if matches!(self.state, State::Idle) {
            self.state = State::Waiting(now + delay);
            self.last = Some("pending: this host serves; waiting for replug_delay".into());
        }
        None
    }

    /// The running `xe`'s output, while there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.state {
            State::Running(run) => run.fd(),
            _ => None,
        }
    }

    /// When [`Replugger::advance`] must be called even if nothing is readable.
    pub fn due(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting(at) => Some(*at),
            State::Running(run) => Some(run.due()),
            State::Idle | State::Done => None,
        }
    }

    /// Starts an attempt that is due (with `spec()`), or reads the running one, without
    /// blocking.
    pub fn advance(
        &mut self,
        now: Instant,
        spec: impl FnOnce() -> ReplugSpec,
    ) -> Option<ReplugEvent> {
        match &mut self.state {
            State::Waiting(at) if *at <= now => {
                self.attempt += 1;
                self.state = State::Running(Box::new(ReplugRun::start(spec())));
                self.last = Some(format!("running (attempt {})", self.attempt));
                Some(ReplugEvent::Started {
                    attempt: self.attempt,
                })
            }
            State::Running(run) => {
                let report = run.advance()?;
                let retry_in = (!report.succeeded())
                    .then(|| RETRY_AFTER.get(self.attempt - 1).copied())
                    .flatten();
                self.last = Some(match retry_in {
                    _ if report.succeeded() => report.summary(),
                    Some(after) => format!(
                        "attempt {} {}; next in {} s",
                        self.attempt,
                        report.summary(),
                        after.as_secs()
                    ),
                    None => format!(
                        "gave up after {} attempts: {}",
                        self.attempt,
                        report.summary()
                    ),
                });
                self.state = match retry_in {
                    Some(after) => State::Waiting(now + after),
                    None => State::Done,
                };
                Some(ReplugEvent::Finished {
                    attempt: self.attempt,
                    report,
                    retry_in,
                })
            }
            _ => None,
        }
    }

    /// The last result (or what is under way), for status.
    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }
}
