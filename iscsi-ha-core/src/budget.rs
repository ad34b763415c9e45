//! Restart budgets and retry delays, per component (the original's MONITOR_MAX_STARTS and
//! MONITOR_DELAY): a component that keeps failing raises one alert and is left alone until its
//! window passes or an operator intervenes.
//!
//! Deliberate choices:
//! - the retry delay doubles with each consecutive failure of a component (`retry_delay`, 2×,
//!   4×, … up to [`MAX_RETRY_DELAY`]) and a success resets it, so a component that cannot work
//!   is not hammered (nor logged) every second, and the budget's `max_starts` are spread over
//!   more than a few seconds;
//! - what counts against the budget is a start that failed, and a start of a component that had
//!   already come up under the same intent (a restart after it died); the first start that
//!   works under a new intent is the role change itself and is not counted, so planned
//!   switches are never refused;
//! - a new intent (the role moved) forgets the retry delays, so the new role acts at once, but
//!   keeps the starts counted: a role that flaps cannot restart a failing component beyond its
//!   budget; only an operator's reset forgets the starts.

use crate::plan::Component;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The longest wait between two attempts on a failing component.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Starts allowed within `window`.
    pub max_starts: u32,
    /// The window starts are counted in.
    pub window: Duration,
    /// Wait after a failure before the component is tried again.
    pub retry_delay: Duration,
}

/// Whether a step on a component may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Go,
    /// The component failed recently; try again at this instant.
    WaitUntil(Instant),
    /// The component used up its starts; left alone until this instant.
    Exhausted {
        /// When the oldest counted start leaves the window.
        until: Instant,
        /// `true` the first time this exhaustion is seen (alert once).
        newly: bool,
    },
}

/// Per-component start history and retry delays.
#[derive(Debug, Clone)]
pub struct Budgets {
    settings: BudgetSettings,
    starts: HashMap<Component, VecDeque<Instant>>,
    retry_after: HashMap<Component, Instant>,
    failures: HashMap<Component, u32>,
    up_in_intent: HashSet<Component>,
    exhausted_seen: HashMap<Component, Instant>,
}

impl Budgets {
    /// Empty budgets with these limits.
    pub fn new(settings: BudgetSettings) -> Self {
        Self {
            settings,
            starts: HashMap::new(),
            retry_after: HashMap::new(),
            failures: HashMap::new(),
            up_in_intent: HashSet::new(),
            exhausted_seen: HashMap::new(),
        }
    }

    /// Whether a step on `component` may run at `now`; `is_start` steps are budgeted.
    pub fn gate(&mut self, component: &Component, is_start: bool, now: Instant) -> Gate {
        if is_start {
            let window = self.settings.window;
            let starts = self.starts.entry(component.clone()).or_default();
            while starts
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                starts.pop_front();
            }
            let used = u32::try_from(starts.len()).unwrap_or(u32::MAX);
            if used >= self.settings.max_starts {
                let until = starts.front().map_or(now, |t| *t + window);
                let newly = self.exhausted_seen.get(component) != Some(&until);
                self.exhausted_seen.insert(component.clone(), until);
                return Gate::Exhausted { until, newly };
            }
        }
        match self.retry_after.get(component) {
            Some(at) if *at > now => Gate::WaitUntil(*at),
            _ => Gate::Go,
        }
    }

    /// Counts a start of `component` at `now`.
    pub fn record_start(&mut self, component: &Component, now: Instant) {
        self.starts
            .entry(component.clone())
            .or_default()
            .push_back(now);
    }

    /// A step on `component` failed at `now`: hold it back for the retry delay, doubled for
    /// each consecutive failure. Returns the delay.
    pub fn record_failure(&mut self, component: &Component, now: Instant) -> Duration {
        let n = self.failures.entry(component.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let delay = self
            .settings
            .retry_delay
            .saturating_mul(1u32 << (*n - 1).min(16))
            .min(MAX_RETRY_DELAY.max(self.settings.retry_delay));
        self.retry_after.insert(component.clone(), now + delay);
        delay
    }

    /// A step on `component` succeeded: no delay before the next. The first start that works
    /// under an intent is not counted against the budget (it is the role change itself).
    pub fn record_success(&mut self, component: &Component, was_start: bool) {
        self.retry_after.remove(component);
        self.failures.remove(component);
        if was_start && self.up_in_intent.insert(component.clone()) {
            if let Some(starts) = self.starts.get_mut(component) {
                starts.pop_back();
            }
        }
    }

    /// A new intent: retry delays are forgotten so it acts at once; starts stay counted.
    pub fn forget_delays(&mut self) {
        self.retry_after.clear();
        self.failures.clear();
        self.up_in_intent.clear();
    }

    /// Forgets every start and delay (an operator's reset).
    pub fn reset(&mut self) {
        self.starts.clear();
        self.retry_after.clear();
        self.failures.clear();
        self.up_in_intent.clear();
        self.exhausted_seen.clear();
    }

    /// Components held back by a retry delay at `now`, with the time left.
    pub fn waiting(&self, now: Instant) -> Vec<(Component, Duration)> {
        let mut out: Vec<(Component, Duration)> = self
            .retry_after
            .iter()
            .filter(|(_, at)| **at > now)
            .map(|(c, at)| (c.clone(), at.saturating_duration_since(now)))
            .collect();
        out.sort();
        out
    }

    /// Components whose budget is used up at `now`.
    pub fn exhausted(&self, now: Instant) -> Vec<Component> {
        let mut out: Vec<Component> = self
            .starts
            .iter()
            .filter(|(_, starts)| {
                let live = starts
                    .iter()
                    .filter(|t| now.saturating_duration_since(**t) < self.settings.window)
                    .count();
                u32::try_from(live).unwrap_or(u32::MAX) >= self.settings.max_starts
            })
            .map(|(c, _)| c.clone())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BudgetSettings {
        BudgetSettings {
            max_starts: 3,
            window: Duration::from_secs(60),
            retry_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn starts_beyond_the_budget_are_refused_until_the_window_passes() {
        let t0 = Instant::now();
        let mut b = Budgets::new(settings());
        let c = Component::Target;
        for i in 0..3 {
            assert_eq!(b.gate(&c, true, t0 + Duration::from_secs(i)), Gate::Go);
            b.record_start(&c, t0 + Duration::from_secs(i));
        }
        let until = t0 + Duration::from_secs(60);
        assert_eq!(
            b.gate(&c, true, t0 + Duration::from_secs(5)),
            Gate::Exhausted { until, newly: true }
        );
        assert_eq!(
            b.gate(&c, true, t0 + Duration::from_secs(6)),
            Gate::Exhausted {
                until,
                newly: false
            }
        );
        assert_eq!(
            b.exhausted(t0 + Duration::from_secs(6)),
            vec![Component::Target]
        );
        assert_eq!(b.gate(&c, true, until), Gate::Go);
        assert_eq!(
            b.gate(&c, false, t0 + Duration::from_secs(6)),
            Gate::Go,
            "stops are never budgeted"
        );
    }

    #[test]
    fn a_failure_delays_the_next_attempt() {
        let t0 = Instant::now();
        let mut b = Budgets::new(settings());
        let c = Component::Vip;
        b.record_failure(&c, t0);
        assert_eq!(
            b.gate(&c, false, t0 + Duration::from_secs(1)),
            Gate::WaitUntil(t0 + Duration::from_secs(2))
        );
        assert_eq!(b.gate(&c, false, t0 + Duration::from_secs(2)), Gate::Go);
        b.record_failure(&c, t0);
        b.record_success(&c, false);
        assert_eq!(b.gate(&c, false, t0), Gate::Go);
    }

    #[test]
    fn consecutive_failures_double_the_delay_up_to_a_minute_and_a_success_resets_it() {
        let t0 = Instant::now();
        let mut b = Budgets::new(settings());
        let c = Component::Target;
        let delays: Vec<u64> = (0..8).map(|_| b.record_failure(&c, t0).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
        b.record_success(&c, false);
        assert_eq!(b.record_failure(&c, t0), Duration::from_secs(2));
    }

    #[test]
    fn a_new_intent_forgets_delays_but_not_starts() {
        let t0 = Instant::now();
        let mut b = Budgets::new(settings());
        let c = Component::Target;
        for _ in 0..3 {
            b.record_start(&c, t0);
        }
        b.record_failure(&c, t0);
        b.forget_delays();
        assert!(matches!(b.gate(&c, false, t0), Gate::Go));
        assert!(matches!(b.gate(&c, true, t0), Gate::Exhausted { .. }));
    }

    #[test]
    fn reset_forgets_everything() {
        let t0 = Instant::now();
        let mut b = Budgets::new(settings());
        for _ in 0..3 {
            b.record_start(&Component::Target, t0);
        }
        b.record_failure(&Component::Target, t0);
        b.reset();
        assert_eq!(b.gate(&Component::Target, true, t0), Gate::Go);
    }
}
