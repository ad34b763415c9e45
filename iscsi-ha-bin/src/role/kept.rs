//! The last answer of a slow role source (a command, XAPI's `xe`), kept as the role while the
//! next one is awaited, until no answer has come for too long.

use iscsi_ha_core::role::Role;
use std::time::{Duration, Instant};

/// How many timeouts without an answer the last answer outlives.
pub const KEPT_FOR_TIMEOUTS: u32 = 3;

/// A slow source's last answer and how long the source has gone without answering.
#[derive(Debug)]
pub struct KeptAnswer {
    what: String,
    bound: Duration,
    answer: Option<(Role, Instant)>,
    /// When the oldest question not followed by an answer was asked.
    unanswered_since: Option<Instant>,
    /// Why the last question got no answer (a timeout).
    last_failure: Option<String>,
}

impl KeptAnswer {
    /// Nothing known yet about `what` (e.g. "the role command /usr/bin/x"); an answer is kept
    /// while the source has not answered for at most [`KEPT_FOR_TIMEOUTS`] × `timeout`.
    pub fn new(what: String, timeout: Duration) -> Self {
        Self {
            what,
            bound: timeout.saturating_mul(KEPT_FOR_TIMEOUTS),
            answer: None,
            unanswered_since: None,
            last_failure: None,
        }
    }

    /// A question was asked now.
    pub fn asked(&mut self, now: Instant) {
        self.unanswered_since.get_or_insert(now);
    }

    /// The source answered (a role, or a definite "unknown" such as a malformed answer).
    pub fn answered(&mut self, role: Role, now: Instant) {
        self.answer = Some((role, now));
        self.unanswered_since = None;
        self.last_failure = None;
    }

    /// The question got no answer (the program timed out): the last answer stands for now.
    pub fn unanswered(&mut self, why: String) {
        self.last_failure = Some(why);
    }

    /// Whether the first question is still in flight (no answer, no failure yet).
    pub fn is_first_pending(&self) -> bool {
        self.answer.is_none() && self.last_failure.is_none()
    }

    /// The role to act on at `now`.
    pub fn role(&self, now: Instant) -> Role {
        let failure = self
            .last_failure
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        match (&self.answer, self.unanswered_since) {
            (Some((role, at)), Some(since))
                if now.saturating_duration_since(since) > self.bound =>
            {
                Role::Unknown(format!(
                    "{} has not answered for {} s{failure}; its last answer, {}, is {} s old",
                    self.what,
                    now.saturating_duration_since(since).as_secs(),
                    role,
                    now.saturating_duration_since(*at).as_secs()
                ))
            }
            (Some((role, _)), _) => role.clone(),
            (None, _) => Role::Unknown(format!(
                "waiting for the first answer of {}{failure}",
                self.what
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_answer_stands_until_the_source_has_been_silent_for_three_timeouts() {
        let t = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut kept = KeptAnswer::new("the role command x".into(), t);
        assert!(matches!(kept.role(t0), Role::Unknown(r) if r.contains("waiting for the first")));
        kept.asked(t0);
        kept.answered(Role::Master, t0);
        // Long after, with no question pending, the answer is still the role (the scan asks).
        assert_eq!(kept.role(t0 + Duration::from_secs(600)), Role::Master);
        let asked = t0 + Duration::from_secs(600);
        kept.asked(asked);
        kept.unanswered("x did not answer within 2s".into());
        kept.asked(asked + t);
        assert_eq!(kept.role(asked + Duration::from_secs(6)), Role::Master);
        let Role::Unknown(why) = kept.role(asked + Duration::from_secs(7)) else {
            panic!("stale answer kept");
        };
        assert!(why.contains("has not answered for 7 s"), "{why}");
        assert!(why.contains("did not answer within 2s"), "{why}");
        assert!(
            why.contains("its last answer, master, is 607 s old"),
            "{why}"
        );
        kept.answered(Role::Slave, asked + Duration::from_secs(8));
        assert_eq!(kept.role(asked + Duration::from_secs(8)), Role::Slave);
    }
}
