//! The daemon: one thread, one `poll` loop over the descriptors the ports offer. Every
//! wake-up (a role change, a DRBD event, an address event, the target daemon exiting, an
//! operator request, a signal, the safety timer) hands over to the core's engine
//! ([`iscsi_ha_core::engine::Engine::wake`]: observe → plan → act, repeated while steps
//! succeed), then publishes status, metrics and HA-Lizard's files.
//!
//! # The loop never blocks for long
//!
//! Anything that can take long either runs beside the loop, its descriptor in the poll set,
//! or is bounded; the watchdog keep-alive (`WATCHDOG=1`, which says the loop is alive) goes out
//! between passes, after each resource observed and around every port call of a step (the
//! engine calls [`iscsi_ha_core::engine::Hooks::keepalive`]), so systemd's `WatchdogSec` (30 s
//! in the shipped unit) must exceed the longest single bound below, not a whole wake-up.
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
//! | VIP | ARP probe `[vip] probe_timeout` (100 ms by default), ICMP check 200 ms; announcements are sent by a thread of their own; the periodic refresh (`[vip] refresh_interval`) is one such probe, one address listing and one non-blocking send, its time a deadline of the timer (`iscsi_ha_core::engine::VipRefresher`) |
//! | `[tickle]` | a non-blocking UDP socket read at most 16 datagrams per wake-up; the connection tables read once a second while serving (bounded, [`iscsi_ha_net::connections::MAX_TABLE_BYTES`]); 3 raw non-blocking sends per listed connection at a takeover |
//! | role file, pool.conf | a bounded read of a regular file (FIFOs and devices are refused) |
//! | HA-Lizard's files (`[ha_lizard]`) | nothing: handed to a writer thread of their own ([`crate::ha_lizard`]) |

mod handover;
mod hooks;
mod operator;
mod os;
mod phase;
mod publish;
mod replug;

use hooks::{moment, Surroundings};
pub use os::{block_signals, Notifier, SignalRequest, Signals, WakeTimer};

use crate::config_file;
use crate::control::{ControlServer, PeerRequest};
use crate::ha_lizard::HaLizardFiles;
use crate::manual_state::ManualState;
use crate::serving_history::HistoryFile;
use iscsi_ha_core::config::reload::Reload;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::engine::{Engine, Host, Wake};
use iscsi_ha_core::observation::ManualMode;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The wake-up reason of a role source's answer (or its timeout).
const ROLE_ANSWER: &str = "role source";

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

/// The running daemon's state: the engine, the ports it drives, and what the binary keeps
/// around it (descriptors, files, the control socket, XenServer's `xe` runs).
#[allow(missing_debug_implementations)]
pub struct Daemon {
    config: Config,
    config_path: PathBuf,
    host_name: String,
    host: Host,
    engine: Engine,
    /// The engine's clocks, watchdog, log and history file.
    around: Surroundings,
    control: ControlServer,
    manual_state: ManualState,
    manual: ManualMode,
    /// The original's files HA-Lizard reads.
    ha_lizard: HaLizardFiles,
    signals: Signals,
    timer: WakeTimer,
    last_scan: Instant,
    /// XenServer's PBD re-plug once this host serves (`[xapi] replug_pbds`).
    replug: crate::xapi::Replugger,
    /// The fingerprint published in the pool database (`[role] source = "xapi"`).
    publisher: publish::Publisher,
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
            engine: Engine::new(&parts.config, parts.history.history.clone()),
            around: Surroundings::new(Notifier::new(), parts.history, handover),
            ha_lizard,
            config: parts.config,
            config_path: parts.config_path,
            host_name: parts.host_name,
            host: parts.host,
            control: parts.control,
            manual_state: parts.manual,
            manual,
            signals: Signals::new()?,
            timer: WakeTimer::new()?,
            last_scan: Instant::now(),
            replug: crate::xapi::Replugger::new(),
            publisher: publish::Publisher::default(),
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
        self.around.notifier.ready(&self.one_line_status());
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
                                    self.around.notifier.stopping();
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
                        if self.engine.refresh_due().is_some_and(|at| at <= now) {
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
                        if let Some(h) = self.around.handover.as_mut() {
                            h.receive();
                        }
                    }
                    Token::Claims => {
                        if self.engine.take_claims(&mut self.host, &mut self.around) {
                            reasons.push("VIP claimed by another host");
                        }
                    }
                    Token::Event(i) => {
                        if let Some(source) = self.host.event_sources().into_iter().nth(i) {
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
            self.around.notifier.keepalive();
            // Between passes too: HA-Lizard's status file is refreshed while the loop runs,
            // and only then.
            self.ha_lizard.publish(self.engine.status(), Instant::now());
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
        if let Some(fd) = self.replug.fd() {
            tokens.push(Token::Replug);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(fd) = self.publisher.run.as_ref().and_then(|r| r.fd()) {
            tokens.push(Token::Publish);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(h) = self.around.handover.as_ref() {
            tokens.push(Token::Handover);
            fds.push(PollFd::new(h.fd(), PollFlags::POLLIN));
        }
        let host = self.host.descriptors();
        if let Some(fd) = host.role {
            tokens.push(Token::Role);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(fd) = host.claims {
            tokens.push(Token::Claims);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        for (i, fd) in host.events.into_iter().enumerate() {
            if let Some(fd) = fd {
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
        now >= self.last_scan + scan || self.engine.wake_at().is_some_and(|at| at <= now)
    }

    fn arm_timer(&mut self) {
        let now = Instant::now();
        let scan = self.config.file.monitor.scan_interval.get();
        let mut next = (self.last_scan + scan).saturating_duration_since(now);
        for at in [
            self.engine.wake_at(),
            self.around.notifier.keepalive_due(),
            self.host.role.due(),
            self.replug.due(),
            self.publisher.run.as_ref().map(|r| r.due()),
            self.control.next_deadline(),
            self.ha_lizard.due(),
            self.around
                .handover
                .as_ref()
                .and_then(|h| h.due(self.engine.serving())),
            self.engine.refresh_due(),
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

    /// Runs the engine for one wake-up (observe → plan → act, repeated while steps succeed),
    /// then what follows it here: the PBD re-plug, the connection lists, the VIP refresh,
    /// metrics, HA-Lizard's files and systemd. `woke` is when the loop woke for it (the stamp
    /// of a role seen).
    fn wake(&mut self, reason: &str, woke: phase::Stamp) -> Wake {
        self.last_scan = Instant::now();
        if reason != ROLE_ANSWER {
            // Asked now, answered later: the answer wakes the loop (ROLE_ANSWER).
            self.host.role.refresh();
        }
        self.around.woke = woke;
        let wake = self.engine.wake(
            &self.config,
            &self.host_name,
            &mut self.host,
            self.manual,
            reason,
            &mut self.around,
        );
        self.follow_replug();
        self.push_connections(Instant::now());
        crate::metrics::publish(self.engine.status(), &wake.actions);
        self.ha_lizard.publish(self.engine.status(), Instant::now());
        self.around.notifier.alive(&self.one_line_status());
        wake
    }

    /// `[tickle]`: while serving, hands the connection list to the peer when due.
    fn push_connections(&mut self, now: Instant) {
        let serving = self.engine.serving();
        if let Some(h) = self.around.handover.as_mut() {
            h.push(serving, now);
        }
    }

    fn one_line_status(&self) -> String {
        match self.engine.status() {
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

    /// Re-reads the configuration file. A bad file is refused and the running one kept; what a
    /// good one may change is the core's rule ([`Reload::between`]): a changed VIP, resource
    /// list or backend is refused, naming them; a changed `[role]` rebuilds the role source;
    /// the target, monitor and alert-screen settings apply at the next pass; the sections that
    /// wait for a restart are named when they changed.
    fn reload(&mut self) -> Result<String, String> {
        let fresh = config_file::load(&self.config_path).map_err(|e| e.to_string())?;
        let change = Reload::between(&self.config, &fresh);
        if !change.refused.is_empty() {
            return Err(format!(
                "{} changed in {}; a reload would leave the old ones held here with nothing to release them. Move the pool role away from this host (it then releases them), restart the daemon (systemctl restart iscsi-ha), then move the role back; or put the old values back",
                change.refused.join(" and "),
                self.config_path.display()
            ));
        }
        if change.role_source {
            let new = &fresh.file;
            self.host.role = crate::role::from_config(&new.role, &new.xapi).map_err(|e| {
                format!("the new [role] cannot be used ({e}); the running configuration is kept")
            })?;
        }
        let at_restart = change.at_restart;
        self.engine.reconfigure(&fresh);
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

/// How long operator commands wait for the daemon by default.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
