//! The daemon: one thread, one `poll` loop. Every wake-up (a role change, a DRBD event, an
//! address event, the target daemon exiting, an operator request, a signal, the safety timer)
//! runs observe → plan → act → publish status.
//!
//! # The loop never blocks for long
//!
//! Anything that can take long either runs beside the loop, its descriptor in the poll set,
//! or is bounded; the watchdog keep-alive (`WATCHDOG=1`, which says the loop is alive) goes out
//! between passes, after each resource observed and around every port call of a step
//! ([`alive`]), so systemd's `WatchdogSec` (30 s in the shipped unit) must exceed the longest
//! single bound below, not a whole wake-up.
//!
//! | what | how long it can hold the loop |
//! |---|---|
//! | role command, XAPI's `xe` | nothing: run beside the loop, its output polled, one at a time, killed with its process group at `[role] timeout` (13 s by default); the last answer stands until the source has not answered for 3 timeouts |
//! | XenServer PBD re-plug (`[xapi] replug_pbds`) | nothing: a chain of `xe` calls run beside the loop one at a time, its output polled, each killed with its process group at `[xapi] timeout` (13 s by default); losing the serving role kills it |
//! | the fingerprint in the pool database (`[role] source = "xapi"`) | nothing: two `xe` calls at start and after a reload that changed it, run beside the loop one at a time as the re-plug's; the inventory is a bounded read of a regular file |
//! | control clients | nothing: non-blocking connections, a request gathered as it arrives (at most 4096 bytes, 2 s for the whole request and 2 s for taking the answer), at most 32 at once |
//! | DRBD generic netlink | each request 30 s at most (`iscsi_ha_drbd::client::DEFAULT_TIMEOUT`; DRBD's own timeouts end a role change far sooner), family resolution 5 s; one GET_STATUS dump per resource per pass |
//! | tgtd | each management request 5 s (`TgtConfig` `request_timeout`); a managed tgtd's start and stop 5 s each |
//! | LIO (`backend = "lio"`) | configfs operations, each one system call into the kernel; reads are bounded (16 KiB per attribute, 65,536 entries per directory); disabling the TPG at a stop ends its sessions first, which the kernel bounds by its own connection timeouts (seconds) |
//! | VIP | ARP probe `[vip] probe_timeout` (100 ms by default), ICMP check 200 ms; announcements are sent by a thread of their own; the periodic refresh (`[vip] refresh_interval`) is one such probe, one address listing and one non-blocking send, its time a deadline of the timer ([`vip_refresh`]) |
//! | `[tickle]` | a non-blocking UDP socket read at most 16 datagrams per wake-up; the connection tables read once a second while serving (bounded, [`iscsi_ha_net::connections::MAX_TABLE_BYTES`]); 3 raw non-blocking sends per listed connection at a takeover |
//! | role file, pool.conf | a bounded read of a regular file (FIFOs and devices are refused) |
//! | HA-Lizard's files (`[ha_lizard]`) | nothing: handed to a writer thread of their own ([`crate::ha_lizard`]) |

mod alive;
mod handover;
mod host;
mod operator;
mod os;
mod phase;
mod publish;
mod replug;
mod vip_refresh;

use alive::Alive;
pub use host::{ClaimWatch, EventSource, Host, Volumes};
pub use os::{block_signals, Notifier, SignalRequest, Signals, WakeTimer};
pub use vip_refresh::VipRefresher;

use crate::config_file;
use crate::control::{ControlServer, PeerRequest};
use crate::ha_lizard::HaLizardFiles;
use crate::manual_state::ManualState;
use crate::serving_history::HistoryFile;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::history::ServingHistory;
use iscsi_ha_core::observation::{ManualMode, Observation, VolumeObservation};
use iscsi_ha_core::reconcile::{ActionRecord, Outcome, Ports, Reconciler, Report};
use iscsi_ha_core::standing::vip_check_due;
use iscsi_ha_core::status::Status;
use iscsi_ha_core::time::{Moment, Timestamp};
use iscsi_ha_core::vip::{VipClaim, VipProbe};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The wake-up reason of a role source's answer (or its timeout).
const ROLE_ANSWER: &str = "role source";

/// How many passes one wake-up may run while steps keep succeeding (each pass re-observes).
const MAX_PASSES: usize = 4;

/// How often a serving host that may have been unreachable probes the VIP it holds, at first.
const VIP_CHECK_EVERY: Duration = Duration::from_secs(1);
/// ... and after the first minute.
const VIP_CHECK_LATER: Duration = Duration::from_secs(5);

/// Everything the daemon needs to start.
#[allow(missing_debug_implementations)]
pub struct DaemonParts {
    /// The checked configuration.
    pub config: Config,
    /// Where it was read from (for reloads).
    pub config_path: PathBuf,
    /// This host's name, for status and alerts.
    pub host_name: String,
    /// The ports and event sources.
    pub host: Host,
    /// The listening control socket.
    pub control: ControlServer,
    /// Where manual mode is kept.
    pub manual: ManualState,
    /// What this host remembers of serving (who took over, who lost its peer, who yielded).
    pub history: HistoryFile,
}

/// The running daemon's state.
#[allow(missing_debug_implementations)]
pub struct Daemon {
    config: Config,
    config_path: PathBuf,
    host_name: String,
    host: Host,
    control: ControlServer,
    manual_state: ManualState,
    manual: ManualMode,
    history: HistoryFile,
    /// The original's files HA-Lizard reads.
    ha_lizard: HaLizardFiles,
    /// Another host's claim on the VIP seen since the last observation.
    pending_claim: Option<VipClaim>,
    /// When the VIP was last probed while held here (stale-master check), to space probes.
    last_vip_check: Option<Instant>,
    /// Steps whose failure was logged as an error, with that error (logged once).
    failing: std::collections::HashMap<iscsi_ha_core::plan::Step, String>,
    reconciler: Reconciler,
    signals: Signals,
    timer: WakeTimer,
    notifier: Notifier,
    observation: Option<Observation>,
    status: Option<Status>,
    wake_at: Option<Instant>,
    last_scan: Instant,
    /// XenServer's PBD re-plug once this host serves (`[xapi] replug_pbds`).
    replug: crate::xapi::Replugger,
    /// The fingerprint published in the pool database (`[role] source = "xapi"`).
    publisher: publish::Publisher,
    /// The role last stamped `role seen` ([`phase`]).
    stamped_role: Option<&'static str>,
    /// The intent last stamped as reached (`serving`, `released`), so each is stamped once.
    stamped_reached: Option<iscsi_ha_core::plan::Intent>,
    /// `[tickle]`: the connection lists exchanged with the peer, the tickles at a takeover.
    handover: Option<handover::Handover>,
    /// `[vip] refresh_interval`: when the VIP was last announced, when it is next due.
    vip_refresh: vip_refresh::VipRefresher,
}

/// Which descriptor woke the loop.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Timer,
    Control,
    /// A control connection, by id.
    Peer(u64),
    Role,
    /// The PBD re-plug's running `xe`.
    Replug,
    /// The fingerprint publication's running `xe`.
    Publish,
    Claims,
    /// The peer's connection lists (`[tickle]`).
    Handover,
    Event(usize),
}

impl Daemon {
    /// Prepares the daemon: blocks signals, loads the saved manual mode.
    pub fn new(parts: DaemonParts) -> anyhow::Result<Self> {
        let manual = match parts.manual.load_recorded().map_err(anyhow::Error::msg)? {
            Some(mode) => mode,
            None => adopt_original_manual_mode(&parts)?,
        };
        let ha_lizard = HaLizardFiles::start(
            &parts.config.file.ha_lizard,
            &parts.config.resources,
            manual,
        );
        let handover = handover::Handover::start(&parts.config, parts.history.state_dir());
        Ok(Self {
            handover,
            ha_lizard,
            reconciler: Reconciler::new(&parts.config),
            config: parts.config,
            config_path: parts.config_path,
            host_name: parts.host_name,
            host: parts.host,
            control: parts.control,
            manual_state: parts.manual,
            manual,
            history: parts.history,
            pending_claim: None,
            last_vip_check: None,
            failing: std::collections::HashMap::new(),
            signals: Signals::new()?,
            timer: WakeTimer::new()?,
            notifier: Notifier::new(),
            observation: None,
            status: None,
            wake_at: None,
            last_scan: Instant::now(),
            replug: crate::xapi::Replugger::new(),
            publisher: publish::Publisher::default(),
            stamped_role: None,
            stamped_reached: None,
            vip_refresh: vip_refresh::VipRefresher::default(),
        })
    }

    /// Runs until SIGTERM/SIGINT. The storage is left as it is on the way out: stopping the
    /// daemon is not a failover.
    pub fn run(&mut self) -> anyhow::Result<()> {
        tracing::info!(host = %self.host_name, manual = ?self.manual, "iscsi-ha daemon starting");
        self.host.role.refresh();
        if self.host.role.starting() {
            tracing::info!("waiting for the role source's first answer before acting");
        } else {
            let _ = self.wake("start", phase::Stamp::now());
        }
        self.notifier.ready(&self.one_line_status());
        self.publish_fingerprint();
        loop {
            self.arm_timer();
            let tokens = self.wait()?;
            let woke = phase::Stamp::now();
            let mut reasons: Vec<&'static str> = Vec::new();
            let mut listener_ready = false;
            let mut peers_ready = Vec::new();
            for token in tokens {
                match token {
                    Token::Signals => {
                        for request in self.signals.drain() {
                            match request {
                                SignalRequest::Stop => {
                                    tracing::info!(
                                        "stopping on signal; the storage is left as it is"
                                    );
                                    self.notifier.stopping();
                                    return Ok(());
                                }
                                SignalRequest::Reload => {
                                    let outcome = self.reload();
                                    match outcome {
                                        Ok(m) => tracing::info!("{m}"),
                                        Err(e) => tracing::error!("reload refused, keeping the running configuration:\n{e}"),
                                    }
                                    reasons.push("reload");
                                }
                                SignalRequest::Ignore(signal) => {
                                    tracing::info!("ignoring signal {signal}");
                                }
                            }
                        }
                    }
                    Token::Timer => {
                        self.timer.drain();
                        let now = Instant::now();
                        if self.host.role.due().is_some_and(|at| at <= now)
                            && self.host.role.drain_changes()
                        {
                            reasons.push(ROLE_ANSWER);
                        }
                        if self.replug.due().is_some_and(|at| at <= now) {
                            self.poll_replug();
                        }
                        if self.publisher.run.as_ref().is_some_and(|r| r.due() <= now) {
                            self.poll_publish();
                        }
                        self.push_connections(now);
                        // A pass first, so the refresh is decided on a fresh observation.
                        if self.vip_refresh.due().is_some_and(|at| at <= now) {
                            reasons.push("VIP refresh due");
                        }
                        // The timer also fires for a keep-alive or a control connection's
                        // deadline, which need no pass.
                        if self.pass_due(now) {
                            reasons.push("timer");
                        }
                    }
                    Token::Control => listener_ready = true,
                    Token::Peer(id) => peers_ready.push(id),
                    Token::Role => {
                        if self.host.role.drain_changes() {
                            reasons.push(ROLE_ANSWER);
                        }
                    }
                    Token::Replug => self.poll_replug(),
                    Token::Publish => self.poll_publish(),
                    Token::Handover => {
                        if let Some(h) = self.handover.as_mut() {
                            h.receive();
                        }
                    }
                    Token::Claims => {
                        if self.take_claims() {
                            reasons.push("VIP claimed by another host");
                        }
                    }
                    Token::Event(i) => {
                        if let Some(source) = self.host.events.get_mut(i) {
                            match source.drain() {
                                Ok(false) => {}
                                Ok(true) => reasons.push("event"),
                                Err(e) => {
                                    tracing::warn!(source = source.name(), "event source: {e}");
                                    reasons.push("event");
                                }
                            }
                        }
                    }
                }
            }
            self.notifier.keepalive();
            // Between passes too: HA-Lizard's status file is refreshed while the loop runs,
            // and only then.
            self.ha_lizard.publish(self.status.as_ref(), Instant::now());
            // Also run when nothing is ready: it closes connections past their deadline.
            for peer in self.control.service(listener_ready, &peers_ready) {
                self.answer(peer);
            }
            if reasons.is_empty() {
                continue;
            }
            if self.host.role.starting() {
                // Nothing is done on a role not known yet; the first answer (or its timeout)
                // wakes the loop again.
                continue;
            }
            // A wake-up that only brings the role source's answer must not ask it again, or
            // a quick source would be asked in a loop.
            let reason = reasons
                .iter()
                .find(|r| **r != ROLE_ANSWER)
                .unwrap_or(&reasons[0]);
            let _ = self.wake(reason, woke);
        }
    }

    fn wait(&mut self) -> anyhow::Result<Vec<Token>> {
        let mut tokens = vec![Token::Signals, Token::Timer, Token::Control];
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.timer.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.control.as_fd(), PollFlags::POLLIN),
        ];
        for (id, fd, flags) in self.control.connections() {
            tokens.push(Token::Peer(id));
            fds.push(PollFd::new(fd, flags));
        }
        if let Some(fd) = self.host.role.change_fd() {
            tokens.push(Token::Role);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(fd) = self.replug.fd() {
            tokens.push(Token::Replug);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(fd) = self.publisher.run.as_ref().and_then(|r| r.fd()) {
            tokens.push(Token::Publish);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(h) = self.handover.as_ref() {
            tokens.push(Token::Handover);
            fds.push(PollFd::new(h.fd(), PollFlags::POLLIN));
        }
        if let Some(claims) = self.host.claims.as_mut() {
            claims.refresh();
        }
        if let Some(fd) = self.host.claims.as_ref().and_then(|c| c.fd()) {
            tokens.push(Token::Claims);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        for source in self.host.events.iter_mut() {
            source.refresh();
        }
        for (i, source) in self.host.events.iter().enumerate() {
            if let Some(fd) = source.fd() {
                tokens.push(Token::Event(i));
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
        }
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let ready = fds
            .iter()
            .zip(tokens)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, t)| t)
            .collect();
        Ok(ready)
    }

    /// Whether the scan or a wake-up the last pass asked for is due.
    fn pass_due(&self, now: Instant) -> bool {
        let scan = self.config.file.monitor.scan_interval.get();
        now >= self.last_scan + scan || self.wake_at.is_some_and(|at| at <= now)
    }

    fn arm_timer(&mut self) {
        let now = Instant::now();
        let scan = self.config.file.monitor.scan_interval.get();
        let mut next = (self.last_scan + scan).saturating_duration_since(now);
        for at in [
            self.wake_at,
            self.notifier.keepalive_due(),
            self.host.role.due(),
            self.replug.due(),
            self.publisher.run.as_ref().map(|r| r.due()),
            self.control.next_deadline(),
            self.ha_lizard.due(),
            self.handover.as_ref().and_then(|h| h.due(self.serving())),
            self.vip_refresh.due(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(at.saturating_duration_since(now));
        }
        if let Err(e) = self.timer.arm(next) {
            tracing::error!("cannot arm the wake-up timer: {e}");
        }
    }

    /// Observe → plan → act, repeated while steps succeed, then publish status. Returns what
    /// was done. `woke` is when the loop woke for it (the stamp of a role seen).
    fn wake(&mut self, reason: &str, woke: phase::Stamp) -> Vec<ActionRecord> {
        self.last_scan = Instant::now();
        self.wake_at = None;
        if reason != ROLE_ANSWER {
            // Asked now, answered later: the answer wakes the loop (ROLE_ANSWER).
            self.host.role.refresh();
        }
        let mut done = Vec::new();
        let mut last_plan = None;
        for pass in 0..MAX_PASSES {
            let started = Instant::now();
            let observation = self.observe();
            let observed = started.elapsed();
            if pass == 0 {
                self.stamp_role(&observation, woke);
            }
            let now = moment();
            let report = self.act(&observation, now);
            self.stamp_reached(&report);
            self.tickle_after_takeover(&report);
            self.vip_refresh.note(&report, Instant::now());
            if !report.actions.is_empty() {
                tracing::info!(
                    reason,
                    pass,
                    observe_ms = observed.as_millis(),
                    act_ms = started.elapsed().saturating_sub(observed).as_millis(),
                    "pass: {}",
                    report
                        .plan
                        .steps
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            self.log_report(reason, pass, &report);
            self.wake_at = report.wake_at;
            if self
                .history
                .history
                .note(&observation, &report.plan, now.wall)
            {
                self.history.save();
            }
            if vip_check_due(&observation) {
                // A host that may have been unreachable checks again soon, not only at the scan.
                let next = Instant::now() + vip_check_period(&self.history.history, now.wall);
                self.wake_at = Some(self.wake_at.map_or(next, |w| w.min(next)));
            }
            let status = Status::build(
                &self.host_name,
                &self.config,
                &observation,
                &report.plan,
                &self.reconciler,
                now,
            );
            self.status = Some(status);
            self.observation = Some(observation);
            done.extend(report.actions.iter().cloned());
            last_plan = Some(report.plan);
            self.notifier.keepalive();
            // Any step done may unblock the next (a VIP seen gone lets frozen I/O resume, a
            // stopped target lets a demotion through): observe again, up to MAX_PASSES.
            let progressed = report.actions.iter().any(|a| a.outcome == Outcome::Done);
            if !progressed {
                break;
            }
        }
        self.follow_replug();
        self.push_connections(Instant::now());
        self.refresh_vip(last_plan.as_ref());
        crate::metrics::publish(self.status.as_ref(), &done);
        self.ha_lizard.publish(self.status.as_ref(), Instant::now());
        self.notifier.alive(&self.one_line_status());
        done
    }

    /// Stamps `role seen` when the role differs from the one last stamped.
    fn stamp_role(&mut self, observation: &Observation, woke: phase::Stamp) {
        let role = observation.role.name();
        if self.stamped_role != Some(role) {
            self.stamped_role = Some(role);
            self.stamped_reached = None;
            phase::at("role seen", woke, Some(role));
        }
    }

    /// Stamps `serving` or `released` the first time a plan for that intent, with nothing
    /// held, ran every step successfully or found nothing to do: right after the last step
    /// that reached it, not one observation later (by invariant 13, a plan that worked leaves
    /// nothing to do).
    fn stamp_reached(&mut self, report: &Report) {
        use iscsi_ha_core::plan::Intent;
        let plan = &report.plan;
        let all_done = report.actions.len() == plan.steps.len()
            && report.actions.iter().all(|a| a.outcome.is_done());
        if !all_done || !plan.holds.is_empty() {
            return;
        }
        let name = match plan.intent {
            Intent::Serve => "serving",
            Intent::Release => "released",
            Intent::Hold(_) => return,
        };
        if self.stamped_reached.as_ref() != Some(&plan.intent) {
            self.stamped_reached = Some(plan.intent.clone());
            phase::at(name, phase::Stamp::now(), None);
        }
    }

    /// Whether this host serves: the last plan to serve found nothing left to do.
    fn serving(&self) -> bool {
        self.stamped_reached == Some(iscsi_ha_core::plan::Intent::Serve)
    }

    /// `[vip] refresh_interval`: after a wake-up, asks the rule with its last observation and
    /// plan, and the record as that pass left it (a claim or a lost peer it noted counts now).
    fn refresh_vip(&mut self, plan: Option<&iscsi_ha_core::plan::Plan>) {
        let (Some(plan), Some(seen)) = (plan, self.observation.as_ref()) else {
            return;
        };
        let mut seen = seen.clone();
        seen.history = self.history.history.clone();
        let claim = self.vip_refresh.after_wake(
            &self.config,
            &seen,
            plan,
            self.host.vip.as_mut(),
            moment(),
        );
        if let Some(claim) = claim {
            // The next pass weighs it as any claim (a conflict, a contest, a yield).
            self.pending_claim = Some(claim);
            self.wake_at = Some(Instant::now());
        }
    }

    /// `[tickle]`: while serving, hands the connection list to the peer when due.
    fn push_connections(&mut self, now: Instant) {
        let serving = self.serving();
        if let Some(h) = self.handover.as_mut() {
            h.push(serving, now);
        }
    }

    /// `[tickle]`: once this pass assigned the VIP (the assignment sends the first
    /// announcement before it returns, and the target was started before it), the peer's
    /// initiators are tickled so they log in here at once.
    fn tickle_after_takeover(&mut self, report: &Report) {
        let assigned = report
            .actions
            .iter()
            .any(|a| a.step == iscsi_ha_core::plan::Step::AssignVip && a.outcome.is_done());
        if let (true, Some(h)) = (assigned, self.handover.as_mut()) {
            h.tickle();
        }
    }

    fn act(&mut self, observation: &Observation, now: Moment) -> Report {
        let host = &mut self.host;
        let notifier = &self.notifier;
        let mut volumes = Alive {
            inner: host.volumes.port(),
            notifier,
        };
        let mut target = Alive {
            inner: host.target.as_mut(),
            notifier,
        };
        let mut vip = Alive {
            inner: host.vip.as_mut(),
            notifier,
        };
        let mut ports = Ports {
            volumes: &mut volumes,
            target: &mut target,
            vip: &mut vip,
            alerts: host.alerts.as_mut(),
        };
        self.reconciler
            .reconcile(&self.config, observation, &mut ports, now)
    }

    fn observe(&mut self) -> Observation {
        let role = self.host.role.current();
        let volumes = self
            .config
            .resources
            .iter()
            .map(|name| {
                let (status, split_brain) = self.host.volumes.observe(name);
                let observed = VolumeObservation {
                    name: name.clone(),
                    status: status.map_err(|e| e.to_string()),
                    split_brain: split_brain.unwrap_or_else(|e| {
                        tracing::debug!("{name}: cannot tell whether it is in split brain: {e}");
                        None
                    }),
                };
                self.notifier.keepalive();
                observed
            })
            .collect();
        let mut observation = Observation {
            role,
            manual: self.manual,
            volumes,
            target: self.host.target.status().map_err(|e| e.to_string()),
            vip_here: self
                .host
                .vip
                .is_assigned(&self.config.vip)
                .map_err(|e| e.to_string()),
            vip_claim: {
                // Also drained here: a watch whose link went away wakes nothing.
                self.take_claims();
                self.pending_claim.take()
            },
            history: self.history.history.clone(),
        };
        if observation.vip_claim.is_none() && vip_check_due(&observation) {
            observation.vip_claim = self.check_vip_held_here();
        }
        observation
    }

    /// Takes the claims the watch has; returns whether there was one. Only a claim while the
    /// VIP is here (or may be) matters; the planner decides what it means.
    fn take_claims(&mut self) -> bool {
        let Some(watch) = self.host.claims.as_mut() else {
            return false;
        };
        let claims = watch.drain();
        let Some(last) = claims.last().cloned() else {
            return false;
        };
        tracing::warn!(claims = claims.len(), "another host claims the VIP: {last}");
        self.pending_claim = Some(last);
        true
    }

    /// Probes the VIP while holding it: a host that may have been unreachable asks whether
    /// another host answers for it too. At most once per [`VIP_CHECK_EVERY`].
    fn check_vip_held_here(&mut self) -> Option<VipClaim> {
        let now = Instant::now();
        if self
            .last_vip_check
            .is_some_and(|at| now.saturating_duration_since(at) < VIP_CHECK_EVERY)
        {
            return None;
        }
        self.last_vip_check = Some(now);
        match self.host.vip.probe(&self.config.vip) {
            Ok(VipProbe::LiveElsewhere { owner }) => {
                tracing::warn!(
                    owner = owner.as_deref().unwrap_or("unknown"),
                    "another host answers for the VIP that this host holds"
                );
                Some(VipClaim {
                    owner,
                    how: "reply to our probe while holding the VIP".into(),
                })
            }
            Ok(VipProbe::Free) => None,
            Err(e) => {
                tracing::warn!("cannot probe the VIP held here: {e}");
                None
            }
        }
    }

    /// Logs what a pass did. A step that keeps failing with the same error is logged as an
    /// error once (then at debug level) and once more when it works again, so a component that
    /// cannot work does not fill the log; status says when it is retried.
    fn log_report(&mut self, reason: &str, pass: usize, report: &Report) {
        if report.actions.is_empty() {
            tracing::debug!(reason, pass, intent = ?report.plan.intent, holds = report.plan.holds.len(), "nothing to do");
        }
        for a in &report.actions {
            match &a.outcome {
                Outcome::Done => {
                    if self.failing.remove(&a.step).is_some() {
                        tracing::info!(reason, "{}: done, it works again", a.step);
                    } else {
                        tracing::info!(reason, "{}: done", a.step);
                    }
                }
                Outcome::Failed { error, .. } => {
                    if self.failing.get(&a.step) == Some(error) {
                        tracing::debug!(reason, "{}: still failing: {error}", a.step);
                    } else {
                        tracing::error!(reason, "{}: failed: {error}", a.step);
                        self.failing.insert(a.step.clone(), error.clone());
                    }
                }
                Outcome::Deferred { retry_in_ms } => {
                    tracing::debug!("{}: deferred {retry_in_ms} ms", a.step)
                }
                Outcome::BudgetExhausted { retry_in_ms } => {
                    tracing::debug!("{}: budget exhausted for {retry_in_ms} ms more", a.step)
                }
            }
        }
        for hold in &report.plan.holds {
            tracing::debug!("hold: {hold}");
        }
    }

    fn one_line_status(&self) -> String {
        match &self.status {
            Some(s) => format!(
                "role {} intent {:?}; target {}; VIP {}",
                s.host_role,
                s.intent,
                if s.target.running {
                    "serving"
                } else {
                    "stopped"
                },
                match s.vip.here {
                    Some(true) => "here",
                    Some(false) => "not here",
                    None => "unknown",
                }
            ),
            None => "starting".into(),
        }
    }

    /// Re-reads the configuration file; a bad one is refused and the running one kept.
    /// Re-reads the configuration file. A bad file is refused and the running one kept. A
    /// changed VIP or resource list is refused too, naming them: the running daemon would go
    /// on holding the old address or Primary role with nothing left to release it. A changed
    /// `[role]` rebuilds the role source; the target, monitor and alert-screen settings apply
    /// at the next pass; the sections that wait for a restart are named when they changed.
    fn reload(&mut self) -> Result<String, String> {
        let fresh = config_file::load(&self.config_path).map_err(|e| e.to_string())?;
        let (old, new) = (&self.config.file, &fresh.file);
        let mut refused = Vec::new();
        if self.config.vip != fresh.vip {
            refused.push("[vip] address, prefix or interface");
        }
        if self.config.resources != fresh.resources {
            refused.push("[replication] resources");
        }
        if self.config.file.target.backend != fresh.file.target.backend {
            // The new backend would not know the old one's target, which would stay exported.
            refused.push("[target] backend");
        }
        if !refused.is_empty() {
            return Err(format!(
                "{} changed in {}; a reload would leave the old ones held here with nothing to release them. Move the pool role away from this host (it then releases them), restart the daemon (systemctl restart iscsi-ha), then move the role back; or put the old values back",
                refused.join(" and "),
                self.config_path.display()
            ));
        }
        // pool.conf's cross-check runs `[xapi] xe` and reads `[xapi] inventory`.
        if old.role != new.role
            || old.xapi.xe != new.xapi.xe
            || old.xapi.inventory != new.xapi.inventory
        {
            self.host.role = crate::role::from_config(&new.role, &new.xapi).map_err(|e| {
                format!("the new [role] cannot be used ({e}); the running configuration is kept")
            })?;
        }
        let mut at_restart = Vec::new();
        if old.target.tgt_daemon() != new.target.tgt_daemon() {
            at_restart.push("[target.tgt]");
        }
        if old.target.lio != new.target.lio {
            at_restart.push("[target.lio]");
        }
        if (
            old.vip.announce_count,
            old.vip.announce_interval,
            old.vip.refresh_after,
            old.vip.probe_timeout,
            old.vip.icmp_check,
        ) != (
            new.vip.announce_count,
            new.vip.announce_interval,
            new.vip.refresh_after,
            new.vip.probe_timeout,
            new.vip.icmp_check,
        ) {
            at_restart.push("[vip] timings");
        }
        if old.alerts.mail != new.alerts.mail {
            at_restart.push("[alerts.mail]");
        }
        if old.logging != new.logging {
            at_restart.push("[logging]");
        }
        if old.metrics != new.metrics {
            at_restart.push("[metrics]");
        }
        if old.ha_lizard != new.ha_lizard {
            at_restart.push("[ha_lizard]");
        }
        if old.tickle != new.tickle {
            at_restart.push("[tickle]");
        }
        self.reconciler.reconfigure(&fresh);
        self.config = fresh;
        // Only when what would be published changed (or the last attempt failed).
        self.publish_fingerprint();
        Ok(if at_restart.is_empty() {
            format!(
                "{} reloaded; every change applies now",
                self.config_path.display()
            )
        } else {
            format!(
                "{} reloaded; {} changed and take effect only at the next start (systemctl restart iscsi-ha)",
                self.config_path.display(),
                at_restart.join(", ")
            )
        })
    }

    fn answer(&mut self, peer: PeerRequest) {
        let response = match peer.request {
            Ok(request) => self.handle(request),
            Err(message) => crate::control::Response::Error { message },
        };
        self.control.respond(peer.id, &response);
    }

    fn set_manual(&mut self, mode: ManualMode) -> Result<(), String> {
        self.manual_state
            .save(mode)
            .map_err(|e| format!("cannot save manual mode: {e}"))?;
        self.manual = mode;
        self.ha_lizard.manual(mode);
        Ok(())
    }
}

/// How often a serving host that may have been unreachable probes the VIP it holds: every
/// second in the first minute after it lost its peer (when a stale master comes back), then
/// every five seconds for as long as it is not connected again, so that a link restored much
/// later is still noticed within seconds at the cost of one ARP probe per period.
/// At a first start (no manual mode recorded here yet) takes over the original's manual mode,
/// so that migrating a host the operator had put in manual mode does not hand it back to the
/// pool role behind their back; records whatever was found so this happens only once.
fn adopt_original_manual_mode(parts: &DaemonParts) -> anyhow::Result<ManualMode> {
    let section = &parts.config.file.ha_lizard;
    let found = crate::ha_lizard::original_manual_mode(section)
        .map_err(|e| anyhow::anyhow!("{e}\nrefusing to start"))?;
    let mode = found.unwrap_or(ManualMode::Off);
    if found.is_some() {
        tracing::warn!(
            "manual mode {mode:?} taken over from the original's {}: storage stays as the operator left it; iscsi-cfg manual-mode-disable once the pool role and the storage agree",
            section.manual_file
        );
    }
    parts
        .manual
        .save(mode)
        .map_err(|e| anyhow::anyhow!("cannot record manual mode: {e}"))?;
    Ok(mode)
}

fn vip_check_period(history: &ServingHistory, now: Timestamp) -> Duration {
    let recent = history
        .lost_peer_at
        .is_none_or(|at| iscsi_ha_core::history::elapsed(at, now) < 60_000);
    if recent {
        VIP_CHECK_EVERY
    } else {
        VIP_CHECK_LATER
    }
}

fn moment() -> Moment {
    Moment {
        instant: Instant::now(),
        wall: Timestamp::from_system_time(SystemTime::now()),
    }
}

/// How long operator commands wait for the daemon by default.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspect_host_checks_its_vip_every_second_for_a_minute_then_every_five() {
        let t = Timestamp::from_unix_millis;
        let lost = ServingHistory {
            lost_peer_at: Some(t(100_000)),
            ..ServingHistory::default()
        };
        assert_eq!(vip_check_period(&lost, t(100_000)), Duration::from_secs(1));
        assert_eq!(vip_check_period(&lost, t(159_999)), Duration::from_secs(1));
        assert_eq!(vip_check_period(&lost, t(160_000)), Duration::from_secs(5));
        assert_eq!(
            vip_check_period(&lost, t(3_600_000)),
            Duration::from_secs(5)
        );
        // A split brain without a lost peer on record: the one-second period.
        assert_eq!(
            vip_check_period(&ServingHistory::default(), t(0)),
            Duration::from_secs(1)
        );
    }
}
