//! The reconciler: runs a plan's steps through the ports in order, stops at the first failure,
//! keeps restart budgets, records outcomes and decides which alerts go out.

use crate::alert::{Alert, AlertScreen, Severity};
use crate::budget::{BudgetSettings, Budgets, Gate};
use crate::config::Config;
use crate::observation::{ManualMode, Observation};
use crate::plan::{plan, Component, Hold, Intent, Plan, Step};
use crate::ports::{Alerts, FloatingIp, FloatingIpError, IscsiTarget, ReplicatedVolume, RetryHint};
use crate::time::{Moment, Timestamp};
use crate::vip::VipProbe;
use crate::volume::{DiskState, VolumeRole};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A peer that is still Primary is the normal middle of a planned switch (the old master is
/// demoting); it is alerted only when it lasts this long.
pub const PEER_PRIMARY_ALERT_AFTER: Duration = Duration::from_secs(10);

/// A condition seen in the last pass: since when, and whether it was alerted.
#[derive(Debug, Clone, Copy)]
struct Condition {
    since: Instant,
    alerted: bool,
}

/// How many action and alert records are kept for status.
pub const HISTORY_LEN: usize = 20;

/// The ports the reconciler acts through.
#[allow(missing_debug_implementations)]
pub struct Ports<'a> {
    /// The replicated volumes.
    pub volumes: &'a mut dyn ReplicatedVolume,
    /// The iSCSI target.
    pub target: &'a mut dyn IscsiTarget,
    /// The floating address.
    pub vip: &'a mut dyn FloatingIp,
    /// Where alerts go.
    pub alerts: &'a mut dyn Alerts,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// It worked.
    Done,
    /// It failed.
    Failed {
        /// The port's error.
        error: String,
        /// Whether retrying may help.
        retry_can_help: bool,
    },
    /// Not tried: the component failed recently and waits for its retry delay.
    Deferred {
        /// Milliseconds until it is tried again.
        retry_in_ms: u64,
    },
    /// Not tried: the component used up its restart budget.
    BudgetExhausted {
        /// Milliseconds until the budget window lets it run again.
        retry_in_ms: u64,
    },
}

impl Outcome {
    /// Whether the step ran and worked.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

/// One executed (or skipped) step, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// When.
    pub at: Timestamp,
    /// The step.
    pub step: Step,
    /// What happened.
    pub outcome: Outcome,
}

/// One alert the core decided on, and whether it went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// When.
    pub at: Timestamp,
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// How far it went.
    pub delivery: Delivery,
}

/// How far an alert went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Handed to the alert port, which sends it on (mail).
    Sent,
    /// Handed to the alert port, which only logs it: no mail transport is configured.
    Logged,
    /// Not sent: manual mode mutes alerts.
    Muted,
    /// The alert port failed.
    Failed(String),
}

/// The result of one reconcile pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The plan that was executed.
    pub plan: Plan,
    /// What happened to each step that was considered (it stops at the first that did not work).
    pub actions: Vec<ActionRecord>,
    /// Alerts decided on in this pass (screened duplicates left out).
    pub alerts: Vec<AlertRecord>,
    /// When the daemon should wake up to retry a deferred step, if any.
    pub wake_at: Option<Instant>,
}

/// Keeps what must outlive one pass: budgets, the alert screen, history.
#[derive(Debug)]
pub struct Reconciler {
    budgets: Budgets,
    screen: AlertScreen,
    last_intent: Option<Intent>,
    conditions: BTreeMap<String, Condition>,
    actions: VecDeque<ActionRecord>,
    alerts: VecDeque<AlertRecord>,
}

impl Reconciler {
    /// A reconciler with the configuration's budgets and alert screen.
    pub fn new(config: &Config) -> Self {
        let monitor = &config.file.monitor;
        Self {
            budgets: Budgets::new(BudgetSettings {
                max_starts: monitor.max_starts,
                window: monitor.start_window.get(),
                retry_delay: monitor.retry_delay.get(),
            }),
            screen: AlertScreen::new(config.file.alerts.screen.get()),
            last_intent: None,
            conditions: BTreeMap::new(),
            actions: VecDeque::new(),
            alerts: VecDeque::new(),
        }
    }

    /// Takes new limits from a reloaded configuration, keeping history.
    pub fn reconfigure(&mut self, config: &Config) {
        let fresh = Self::new(config);
        self.budgets = fresh.budgets;
        self.screen = fresh.screen;
    }

    /// An operator intervened: forget restart budgets and retry delays.
    pub fn reset_budgets(&mut self) {
        self.budgets.reset();
    }

    /// Keeps an action taken outside a pass (an operator's forced promotion or split-brain
    /// recovery) in the record status shows.
    pub fn record(&mut self, action: ActionRecord) {
        push_bounded(&mut self.actions, action);
    }

    /// The last actions, oldest first.
    pub fn recent_actions(&self) -> impl Iterator<Item = &ActionRecord> {
        self.actions.iter()
    }

    /// The last alerts, oldest first.
    pub fn recent_alerts(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.iter()
    }

    /// Components that failed and wait for their retry, with the time left.
    pub fn waiting(&self, now: Instant) -> Vec<(Component, Duration)> {
        self.budgets.waiting(now)
    }

    /// Components whose restart budget is used up.
    pub fn exhausted(&self, now: Instant) -> Vec<Component> {
        self.budgets.exhausted(now)
    }

    /// Plans from `observation` and executes the plan through `ports`.
    pub fn reconcile(
        &mut self,
        config: &Config,
        observation: &Observation,
        ports: &mut Ports<'_>,
        now: Moment,
    ) -> Report {
        let plan = plan(config, observation);
        if self.last_intent.as_ref() != Some(&plan.intent) {
            // A new role acts at once; the starts stay counted, so a flapping role cannot
            // restart a failing component beyond its budget.
            self.budgets.forget_delays();
            self.last_intent = Some(plan.intent.clone());
        }
        let (mut pending, mut wake_at) = self.condition_alerts(observation, &plan, now.instant);
        let mut actions = Vec::new();
        let yielding = plan.holds.iter().any(|h| matches!(h, Hold::Yielded { .. }));
        let mut vip_probed_free = false;
        for step in &plan.steps {
            let component = step.component();
            let outcome = match self.budgets.gate(&component, step.is_start(), now.instant) {
                Gate::Go => {
                    if step.is_start() {
                        self.budgets.record_start(&component, now.instant);
                    }
                    let result = execute(step, config, ports, vip_probed_free);
                    if *step == Step::ProbeVip && result.is_ok() {
                        vip_probed_free = true;
                    }
                    match &result {
                        Ok(()) => {
                            self.budgets.record_success(&component, step.is_start());
                            if let Some(a) = success_alert(step, config) {
                                pending.push(a);
                            }
                        }
                        Err(failure) => {
                            let delay = self.budgets.record_failure(&component, now.instant);
                            wake_at = earliest(wake_at, now.instant + delay);
                            pending.push(failure.alert(step, config));
                        }
                    }
                    match result {
                        Ok(()) => Outcome::Done,
                        Err(f) => Outcome::Failed {
                            error: f.message,
                            retry_can_help: f.retry_can_help,
                        },
                    }
                }
                Gate::WaitUntil(at) => {
                    wake_at = earliest(wake_at, at);
                    Outcome::Deferred {
                        retry_in_ms: millis(at.saturating_duration_since(now.instant)),
                    }
                }
                Gate::Exhausted { until, newly } => {
                    if newly {
                        pending.push(Alert::new(
                            Severity::Error,
                            format!(
                                "{component} was started {} times within {}; it keeps failing and is left alone until the window passes or an operator intervenes (iscsi-cfg reset)",
                                config.file.monitor.max_starts, config.file.monitor.start_window
                            ),
                        ));
                    }
                    wake_at = earliest(wake_at, until);
                    Outcome::BudgetExhausted {
                        retry_in_ms: millis(until.saturating_duration_since(now.instant)),
                    }
                }
            };
            let done = outcome.is_done();
            actions.push(ActionRecord {
                at: now.wall,
                step: step.clone(),
                outcome,
            });
            if !done && !continues_after_failure(step, yielding) {
                break;
            }
        }
        for a in &actions {
            if !matches!(
                a.outcome,
                Outcome::Deferred { .. } | Outcome::BudgetExhausted { .. }
            ) {
                push_bounded(&mut self.actions, a.clone());
            }
        }
        let alerts = self.send(pending, observation, ports, now);
        Report {
            plan,
            actions,
            alerts,
            wake_at,
        }
    }

    /// Alerts for conditions that appeared since the last pass (role unknown, split brain,
    /// something unobservable, replication degraded while serving), each once while it lasts;
    /// a peer still Primary only once it has lasted [`PEER_PRIMARY_ALERT_AFTER`]. Returns the
    /// alerts, and when to wake up to raise a delayed one.
    fn condition_alerts(
        &mut self,
        observation: &Observation,
        plan: &Plan,
        now: Instant,
    ) -> (Vec<Alert>, Option<Instant>) {
        let previous = std::mem::take(&mut self.conditions);
        let mut alerts = Vec::new();
        let mut wake = None;
        let mut raise = |key: String, alert: Alert, after: Duration| {
            let mut c = previous.get(&key).copied().unwrap_or(Condition {
                since: now,
                alerted: false,
            });
            if !c.alerted {
                let due = c.since + after;
                if now >= due {
                    alerts.push(alert);
                    c.alerted = true;
                } else {
                    wake = Some(wake.map_or(due, |w: Instant| w.min(due)));
                }
            }
            self.conditions.insert(key, c);
        };
        for hold in &plan.holds {
            let severity = match hold {
                Hold::RoleUnknown { .. }
                | Hold::SplitBrain { .. }
                | Hold::StaleData { .. }
                | Hold::Yielded { .. } => Severity::Error,
                Hold::PeerPrimary { .. }
                | Hold::Unobservable { .. }
                | Hold::Contested { .. }
                | Hold::AddressConflict { .. } => Severity::Warning,
            };
            let key = match hold {
                Hold::RoleUnknown { .. } => "role-unknown".to_string(),
                Hold::Yielded { .. } => "yielded".to_string(),
                Hold::Contested { .. } => "contested".to_string(),
                Hold::AddressConflict { .. } => "address-conflict".to_string(),
                other => format!("{other:?}"),
            };
            let after = match hold {
                Hold::PeerPrimary { .. } => PEER_PRIMARY_ALERT_AFTER,
                _ => Duration::ZERO,
            };
            raise(key, Alert::new(severity, hold.to_string()), after);
        }
        if plan.intent == Intent::Serve {
            for v in &observation.volumes {
                let Ok(s) = &v.status else { continue };
                let degraded = !s.connection.is_connected()
                    || s.disk != DiskState::UpToDate
                    || s.peer_disk != DiskState::UpToDate;
                if degraded && s.role == VolumeRole::Primary {
                    raise(
                        format!("degraded {}", v.name),
                        Alert::new(
                            Severity::Warning,
                            format!(
                                "{}: replication degraded on the serving host: connection {}, disk {}/{}",
                                v.name, s.connection_detail, s.disk, s.peer_disk
                            ),
                        ),
                        Duration::ZERO,
                    );
                }
            }
        }
        (alerts, wake)
    }

    /// Raises an alert the daemon decided on outside a pass (the PBD re-plug's result), with
    /// the same duplicate screen, manual-mode mute and record as the pass's own; `None` when
    /// screened out.
    pub fn raise(
        &mut self,
        alert: Alert,
        manual: ManualMode,
        alerts: &mut dyn Alerts,
        now: Moment,
    ) -> Option<AlertRecord> {
        self.send_all(vec![alert], manual, alerts, now).pop()
    }

    fn send(
        &mut self,
        pending: Vec<Alert>,
        observation: &Observation,
        ports: &mut Ports<'_>,
        now: Moment,
    ) -> Vec<AlertRecord> {
        self.send_all(pending, observation.manual, ports.alerts, now)
    }

    fn send_all(
        &mut self,
        pending: Vec<Alert>,
        manual: ManualMode,
        alerts: &mut dyn Alerts,
        now: Moment,
    ) -> Vec<AlertRecord> {
        let mut out = Vec::new();
        for alert in pending {
            if !self.screen.admit(&alert, now.instant) {
                continue;
            }
            let delivery = if manual.is_on() {
                Delivery::Muted
            } else {
                match alerts.deliver(&alert) {
                    Ok(()) if alerts.sends() => Delivery::Sent,
                    Ok(()) => Delivery::Logged,
                    Err(e) => Delivery::Failed(e.to_string()),
                }
            };
            let record = AlertRecord {
                at: now.wall,
                alert,
                delivery,
            };
            push_bounded(&mut self.alerts, record.clone());
            out.push(record);
        }
        out
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == HISTORY_LEN {
        queue.pop_front();
    }
    queue.push_back(item);
}

fn earliest(current: Option<Instant>, candidate: Instant) -> Option<Instant> {
    Some(current.map_or(candidate, |c| c.min(candidate)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) struct Failure {
    message: String,
    retry_can_help: bool,
    vip_elsewhere: Option<Option<String>>,
}

impl Failure {
    fn from<E: RetryHint + ToString>(e: &E) -> Self {
        Self {
            message: e.to_string(),
            retry_can_help: e.retry_can_help(),
            vip_elsewhere: None,
        }
    }

    fn alert(&self, step: &Step, config: &Config) -> Alert {
        match &self.vip_elsewhere {
            Some(owner) => Alert::new(
                Severity::Warning,
                format!(
                    "{} answers on another host{} - not taking it, and nothing is promoted while it does",
                    config.vip.address(),
                    owner
                        .as_deref()
                        .map(|o| format!(" ({o})"))
                        .unwrap_or_default()
                ),
            ),
            None => Alert::new(Severity::Error, format!("{step} failed: {}", self.message)),
        }
    }
}

/// Whether the steps after a failed (or deferred) `step` still run. A release goes on where
/// the next step is still safe: demoting after a failed stop (DRBD refuses while the device is
/// open, and a dead target no longer holds it), every demotion after another failed. Stopping
/// the target after a failed VIP release would cut off the initiators that still reach this
/// host through the VIP while the peer cannot take over (it waits for this host's demotion):
/// one server, alerted, is kept, unless this host yields to another server, when two servers
/// are the worse outcome and the target stops anyway.
fn continues_after_failure(step: &Step, yielding: bool) -> bool {
    match step {
        Step::ReleaseVip => yielding,
        // Reconnecting comes last and touches nothing the other steps need.
        Step::StopTarget | Step::ResumeIo(_) | Step::Demote(_) | Step::Reconnect(_) => true,
        Step::DiscardAndReconnect(_) => false,
        Step::ProbeVip
        | Step::Promote(_)
        | Step::ServeTarget
        | Step::AssignVip
        | Step::AnnounceVip => false,
    }
}

fn vip_elsewhere(config: &Config, owner: Option<String>) -> Failure {
    let e = FloatingIpError::AddressConflict {
        address: config.vip.address().to_string(),
        owner: owner.clone(),
    };
    let mut f = Failure::from(&e);
    f.vip_elsewhere = Some(owner);
    f
}

pub(crate) fn execute(
    step: &Step,
    config: &Config,
    ports: &mut Ports<'_>,
    vip_probed_free: bool,
) -> Result<(), Failure> {
    match step {
        Step::ProbeVip => match ports
            .vip
            .probe(&config.vip)
            .map_err(|e| Failure::from(&e))?
        {
            VipProbe::LiveElsewhere { owner } => Err(vip_elsewhere(config, owner)),
            VipProbe::Free => Ok(()),
        },
        Step::AnnounceVip => ports
            .vip
            .announce(&config.vip)
            .map_err(|e| Failure::from(&e)),
        Step::Promote(r) => ports
            .volumes
            .promote(r, false)
            .map_err(|e| Failure::from(&e)),
        Step::Demote(r) => ports.volumes.demote(r).map_err(|e| Failure::from(&e)),
        Step::ResumeIo(r) => ports.volumes.resume_io(r).map_err(|e| Failure::from(&e)),
        // Never discarding: DRBD's handshake decides which side resynchronises.
        Step::Reconnect(r) => ports
            .volumes
            .connect(r, false)
            .map_err(|e| Failure::from(&e)),
        // Only an operator discards data, through the engine's own call, never a plan.
        Step::DiscardAndReconnect(r) => Err(Failure {
            message: format!("{r}: discarding data is an operator's decision (iscsi-cfg split-brain resolve), never a plan's"),
            retry_can_help: false,
            vip_elsewhere: None,
        }),
        Step::ServeTarget => ports
            .target
            .serve(&config.target)
            .map_err(|e| Failure::from(&e)),
        Step::StopTarget => ports
            .target
            .stop(&config.target)
            .map_err(|e| Failure::from(&e)),
        Step::ReleaseVip => ports
            .vip
            .release(&config.vip)
            .map_err(|e| Failure::from(&e)),
        // The probe before promotion in this same pass stands for the one before assigning.
        Step::AssignVip if vip_probed_free => {
            ports.vip.assign(&config.vip).map_err(|e| Failure::from(&e))
        }
        Step::AssignVip => match ports
            .vip
            .probe(&config.vip)
            .map_err(|e| Failure::from(&e))?
        {
            VipProbe::LiveElsewhere { owner } => Err(vip_elsewhere(config, owner)),
            VipProbe::Free => ports.vip.assign(&config.vip).map_err(|e| Failure::from(&e)),
        },
    }
}

fn success_alert(step: &Step, config: &Config) -> Option<Alert> {
    let message = match step {
        Step::Promote(r) => format!("{r} promoted to Primary"),
        Step::Demote(r) => format!("{r} demoted to Secondary"),
        Step::ServeTarget => format!("target {} serving", config.target.iqn),
        Step::StopTarget => format!("target {} stopped", config.target.iqn),
        Step::AssignVip => format!("{} assigned here and announced", config.vip),
        Step::ResumeIo(r) => {
            format!("{r}: frozen I/O resumed on this host only (it no longer serves)")
        }
        Step::Reconnect(r) => format!("{r}: connecting to its peer again"),
        Step::DiscardAndReconnect(r) => {
            format!("{r}: reconnecting, this host's changes since the split brain discarded")
        }
        Step::ProbeVip | Step::AnnounceVip => return None,
        Step::ReleaseVip => format!("{} released", config.vip),
    };
    Some(Alert::new(Severity::Info, message))
}
