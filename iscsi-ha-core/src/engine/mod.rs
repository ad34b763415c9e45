//! The engine: observe → plan → act, repeated while steps succeed, for one wake-up of the
//! daemon, then the periodic VIP refresh; and the operator's verbs that act on the volumes
//! (a forced promotion, split-brain recovery). It owns what must outlive a wake-up (the
//! reconciler's budgets and records, the serving history, a claim not yet weighed, the last
//! observation and status) and drives the [`Host`]'s ports; its surroundings (the clock, the
//! service manager's watchdog, the log, the state file) are reached through [`Hooks`]. The
//! binary keeps what is I/O: the poll syscall over the descriptors the ports offer
//! ([`Host::descriptors`]), files and sockets, and the control protocol.
//!
//! An embedder builds a [`Host`] from its adapters, polls [`Host::descriptors`] (and its own
//! timers: [`Engine::wake_at`], [`Engine::refresh_due`]), drains what woke it
//! ([`Host::event_sources`], [`Engine::take_claims`], [`RoleSource::drain_changes`]) and calls
//! [`Engine::wake`]; [`Engine::status`] is what to publish.

mod alive;
mod host;
mod notice;
mod operator;
mod stale_check;
mod vip_refresh;

#[cfg(test)]
mod tests;

pub use host::{
    ClaimWatch, Descriptors, EventSource, FixedRole, Host, RoleSource, VolumeLook, Volumes,
};
pub use notice::Notice;
pub use operator::OperatorError;
pub use stale_check::stale_check_period;
pub use vip_refresh::{RefreshNotice, VipRefresher};

use crate::alert::Alert;
use crate::config::Config;
use crate::history::ServingHistory;
use crate::observation::{ManualMode, Observation, VolumeObservation};
use crate::plan::{Intent, Plan, Step};
use crate::ports::Alerts;
use crate::reconcile::{ActionRecord, AlertRecord, Outcome, Ports, Reconciler, Report};
use crate::standing::vip_check_due;
use crate::status::Status;
use crate::time::Moment;
use crate::vip::VipClaim;
use alive::Alive;
use stale_check::StaleCheck;
use std::time::{Duration, Instant};

/// How many passes one wake-up may run while steps keep succeeding (each pass re-observes).
pub const MAX_PASSES: usize = 4;

/// What the engine needs from its surroundings besides the ports: the clock, and someone to
/// tell what it does. Only [`Hooks::now`] is required; the rest default to doing nothing.
pub trait Hooks {
    /// Now, on both clocks.
    fn now(&self) -> Moment;
    /// The loop is alive: called between port calls, so a watchdog sees each bounded step.
    fn keepalive(&self) {}
    /// A plan's step is about to change something through a port.
    fn step_started(&self, _step: &Step) {}
    /// ... and has ended, `ok` when it worked.
    fn step_ended(&self, _step: &Step, _ok: bool) {}
    /// The first pass of a wake-up found the role changed since the last one seen.
    fn role_seen(&mut self, _role: &'static str) {}
    /// A plan for `intent`, with nothing held, ran every step or found nothing left to do,
    /// the first time since the role last changed.
    fn reached(&mut self, _intent: &Intent) {}
    /// A pass ended (to log it, and to act on what it did).
    fn pass_done(&mut self, _pass: &Pass<'_>) {}
    /// The serving history changed and must be kept where a restarted daemon finds it.
    fn history_changed(&mut self, _history: &ServingHistory) {}
    /// Something an operator should read in the log.
    fn notice(&mut self, _notice: Notice) {}
}

/// One pass as it ended, for [`Hooks::pass_done`].
#[derive(Debug)]
pub struct Pass<'a> {
    /// Why the loop woke.
    pub reason: &'a str,
    /// Which pass of the wake-up (0 first).
    pub index: usize,
    /// How long the observation took.
    pub observed: Duration,
    /// How long the steps took.
    pub acted: Duration,
    /// What the pass saw.
    pub observation: &'a Observation,
    /// What it planned and did.
    pub report: &'a Report,
}

/// What one wake-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    /// Every step considered, over all passes, in order.
    pub actions: Vec<ActionRecord>,
}

impl Wake {
    /// The steps that failed, each as "step: error".
    pub fn failures(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Failed { error, .. } => Some(format!("{}: {error}", a.step)),
                _ => None,
            })
            .collect()
    }
}

/// The engine's state between wake-ups.
#[derive(Debug)]
pub struct Engine {
    reconciler: Reconciler,
    history: ServingHistory,
    /// Another host's claim on the VIP seen since the last observation.
    pending_claim: Option<VipClaim>,
    stale_check: StaleCheck,
    /// The role last reported seen.
    role_seen: Option<&'static str>,
    /// The intent last reported reached, so each is reported once per role.
    reached: Option<Intent>,
    observation: Option<Observation>,
    status: Option<Status>,
    wake_at: Option<Instant>,
    /// `[vip] refresh_interval`: when the VIP was last announced, when it is next due.
    refresher: VipRefresher,
}

impl Engine {
    /// An engine with the configuration's budgets and the serving history kept from before.
    pub fn new(config: &Config, history: ServingHistory) -> Self {
        Self {
            reconciler: Reconciler::new(config),
            history,
            pending_claim: None,
            stale_check: StaleCheck::default(),
            role_seen: None,
            reached: None,
            observation: None,
            status: None,
            wake_at: None,
            refresher: VipRefresher::default(),
        }
    }

    /// Takes new limits from a reloaded configuration, keeping records and history.
    pub fn reconfigure(&mut self, config: &Config) {
        self.reconciler.reconfigure(config);
    }

    /// An operator intervened: forget restart budgets and retry delays.
    pub fn reset_budgets(&mut self) {
        self.reconciler.reset_budgets();
    }

    /// The reconciler, for its records.
    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// What this host remembers of serving.
    pub fn history(&self) -> &ServingHistory {
        &self.history
    }

    /// The operator decided this host serves (a forced become-primary): it took over,
    /// whatever it had yielded to.
    pub fn operator_forced(&mut self, hooks: &mut dyn Hooks) {
        let now = hooks.now();
        self.history.operator_forced(now.wall);
        hooks.history_changed(&self.history);
    }

    /// The last observation.
    pub fn observation(&self) -> Option<&Observation> {
        self.observation.as_ref()
    }

    /// The status of the last pass.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// Raises an alert decided outside a pass (the PBD re-plug's result) with the pass's own
    /// screen, mute and record, and shows it in status at once; `None` when screened out.
    pub fn raise(
        &mut self,
        alert: Alert,
        manual: ManualMode,
        alerts: &mut dyn Alerts,
        now: Moment,
    ) -> Option<AlertRecord> {
        let record = self.reconciler.raise(alert, manual, alerts, now);
        if let Some(status) = self.status.as_mut() {
            status.alerts = self.reconciler.recent_alerts().cloned().collect();
        }
        record
    }

    /// Shows the XenServer PBD re-plug's last result in status (it runs beside the engine).
    pub fn set_pbd_replug(&mut self, last: Option<String>) {
        if let Some(status) = self.status.as_mut() {
            status.pbd_replug = last;
        }
    }

    /// When the last wake-up asked to be woken again (a retry delay, a stale-master check).
    pub fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }

    /// When the loop must wake for the next periodic VIP refresh (it runs a pass first, so
    /// the refresh is decided on a fresh observation).
    pub fn refresh_due(&self) -> Option<Instant> {
        self.refresher.due()
    }

    /// Whether this host serves: the last plan to serve found nothing left to do.
    pub fn serving(&self) -> bool {
        self.reached == Some(Intent::Serve)
    }

    /// Takes the claims the watch has; returns whether there was one. Only a claim while the
    /// VIP is here (or may be) matters; the planner decides what it means.
    pub fn take_claims(&mut self, host: &mut Host, hooks: &mut dyn Hooks) -> bool {
        let Some(watch) = host.claims.as_mut() else {
            return false;
        };
        let claims = watch.drain();
        let Some(last) = claims.last().cloned() else {
            return false;
        };
        hooks.notice(Notice::VipClaimed {
            count: claims.len(),
            last: last.clone(),
        });
        self.pending_claim = Some(last);
        true
    }

    /// A claim found outside a pass (a probe before a VIP refresh), weighed by the next pass,
    /// which is due at once.
    pub fn claim_found(&mut self, claim: VipClaim, now: Instant) {
        self.pending_claim = Some(claim);
        self.wake_at = Some(now);
    }

    /// Looks at everything the plan depends on, without changing anything: the role as the
    /// source last answered, each resource, the target, the VIP, a claim on it (the watch's,
    /// or a probe's while this host may be a stale master). Kept as the last observation.
    pub fn observe(
        &mut self,
        config: &Config,
        host: &mut Host,
        manual: ManualMode,
        hooks: &mut dyn Hooks,
    ) -> Observation {
        let role = host.role.current();
        let mut volumes = Vec::with_capacity(config.resources.len());
        for name in &config.resources {
            let (status, split_brain) = host.volumes.observe(name);
            let split_brain = split_brain.unwrap_or_else(|e| {
                hooks.notice(Notice::SplitBrainUnknown {
                    resource: name.clone(),
                    error: e.to_string(),
                });
                None
            });
            volumes.push(VolumeObservation {
                name: name.clone(),
                status: status.map_err(|e| e.to_string()),
                split_brain,
            });
            hooks.keepalive();
        }
        // Also drained here: a watch whose link went away wakes nothing.
        self.take_claims(host, hooks);
        let mut observation = Observation {
            role,
            manual,
            volumes,
            target: host.target.status().map_err(|e| e.to_string()),
            vip_here: host.vip.is_assigned(&config.vip).map_err(|e| e.to_string()),
            vip_claim: self.pending_claim.take(),
            history: self.history.clone(),
        };
        if observation.vip_claim.is_none() && vip_check_due(&observation) {
            let now = hooks.now().instant;
            observation.vip_claim =
                self.stale_check
                    .probe(&config.vip, host.vip.as_mut(), now, hooks);
        }
        self.observation = Some(observation.clone());
        observation
    }

    /// Observe → plan → act, repeated while steps succeed (each step done may unblock the
    /// next: a VIP seen gone lets frozen I/O resume, a stopped target lets a demotion
    /// through), up to [`MAX_PASSES`]; keeps the status of the last pass and the history each
    /// pass noted; then the periodic VIP refresh when the rule says it is due (invariant 30).
    /// `reason` is why the loop woke, for the hooks.
    pub fn wake(
        &mut self,
        config: &Config,
        host_name: &str,
        host: &mut Host,
        manual: ManualMode,
        reason: &str,
        hooks: &mut dyn Hooks,
    ) -> Wake {
        self.wake_at = None;
        let mut actions = Vec::new();
        let mut last_plan = None;
        for index in 0..MAX_PASSES {
            let started = hooks.now().instant;
            let observation = self.observe(config, host, manual, hooks);
            let observed = hooks.now().instant.saturating_duration_since(started);
            if index == 0 {
                self.note_role(&observation, hooks);
            }
            let now = hooks.now();
            let report = self.act(config, host, &observation, now, hooks);
            self.note_reached(&report, hooks);
            self.refresher.note(&report, hooks.now().instant);
            let acted = hooks
                .now()
                .instant
                .saturating_duration_since(started)
                .saturating_sub(observed);
            hooks.pass_done(&Pass {
                reason,
                index,
                observed,
                acted,
                observation: &observation,
                report: &report,
            });
            self.wake_at = report.wake_at;
            if self.history.note(&observation, &report.plan, now.wall) {
                hooks.history_changed(&self.history);
            }
            if vip_check_due(&observation) {
                // A host that may have been unreachable checks again soon, not only at the scan.
                let next = hooks.now().instant + stale_check_period(&self.history, now.wall);
                self.wake_at = Some(self.wake_at.map_or(next, |w| w.min(next)));
            }
            self.status = Some(Status::build(
                host_name,
                config,
                &observation,
                &report.plan,
                &self.reconciler,
                now,
            ));
            self.observation = Some(observation);
            actions.extend(report.actions.iter().cloned());
            hooks.keepalive();
            let progressed = report.actions.iter().any(|a| a.outcome.is_done());
            last_plan = Some(report.plan);
            if !progressed {
                break;
            }
        }
        if let Some(plan) = last_plan.as_ref() {
            self.refresh_vip(config, host, plan, hooks);
        }
        Wake { actions }
    }

    /// Asks the refresh rule with the last pass's observation and plan, and the record as
    /// that pass left it (a claim or a lost peer it noted counts now); an answer to the probe
    /// before a refresh is a claim for the next pass, which is due at once.
    fn refresh_vip(
        &mut self,
        config: &Config,
        host: &mut Host,
        plan: &Plan,
        hooks: &mut dyn Hooks,
    ) {
        let Some(seen) = self.observation.as_ref() else {
            return;
        };
        let mut seen = seen.clone();
        seen.history = self.history.clone();
        hooks.keepalive();
        let claim = self
            .refresher
            .after_wake(config, &seen, plan, host.vip.as_mut(), hooks);
        hooks.keepalive();
        if let Some(claim) = claim {
            self.claim_found(claim, hooks.now().instant);
        }
    }

    fn act(
        &mut self,
        config: &Config,
        host: &mut Host,
        observation: &Observation,
        now: Moment,
        hooks: &dyn Hooks,
    ) -> Report {
        let mut volumes = Alive {
            inner: host.volumes.port(),
            hooks,
        };
        let mut target = Alive {
            inner: host.target.as_mut(),
            hooks,
        };
        let mut vip = Alive {
            inner: host.vip.as_mut(),
            hooks,
        };
        let mut ports = Ports {
            volumes: &mut volumes,
            target: &mut target,
            vip: &mut vip,
            alerts: host.alerts.as_mut(),
        };
        self.reconciler
            .reconcile(config, observation, &mut ports, now)
    }

    /// Reports the role when it differs from the one last reported.
    fn note_role(&mut self, observation: &Observation, hooks: &mut dyn Hooks) {
        let role = observation.role.name();
        if self.role_seen != Some(role) {
            self.role_seen = Some(role);
            self.reached = None;
            hooks.role_seen(role);
        }
    }

    /// Reports `intent` reached the first time a plan for it, with nothing held, ran every
    /// step successfully or found nothing to do: right after the last step that reached it,
    /// not one observation later (by invariant 13, a plan that worked leaves nothing to do).
    fn note_reached(&mut self, report: &Report, hooks: &mut dyn Hooks) {
        let plan = &report.plan;
        let all_done = report.actions.len() == plan.steps.len()
            && report.actions.iter().all(|a| a.outcome.is_done());
        if !all_done || !plan.holds.is_empty() || matches!(plan.intent, Intent::Hold(_)) {
            return;
        }
        if self.reached.as_ref() != Some(&plan.intent) {
            self.reached = Some(plan.intent.clone());
            hooks.reached(&plan.intent);
        }
    }
}
