//! An optional Prometheus endpoint (text exposition format 0.0.4) at `/metrics`.
//!
//! The daemon publishes a snapshot after each wake-up ([`publish`]); a small thread of its own
//! answers scrapes from that snapshot, so a slow or hostile scraper never touches the poll loop.
//! Off unless asked for; meant to listen on loopback (`127.0.0.1:9725`).

use crate::mail::{AlertCounts, AlertStats};
use iscsi_ha_core::plan::{Intent, Step};
use iscsi_ha_core::reconcile::{ActionRecord, Outcome};
use iscsi_ha_core::status::Status;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default listening address when metrics are on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9725";

/// How long a scraper may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the daemon has published so far.
#[derive(Debug, Default)]
struct State {
    status: Option<Status>,
    wakes: u64,
    actions: BTreeMap<(&'static str, &'static str), u64>,
    takeovers: u64,
    /// Periodic VIP announcements (`[vip] refresh_interval`), by [`RefreshResult`].
    vip_refreshes: [u64; 3],
    published_at: Option<SystemTime>,
}

/// The metrics the daemon publishes and the endpoint serves.
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
    alerts: Arc<AlertStats>,
}

static INSTALLED: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Makes `metrics` the one [`publish`] feeds. Returns `false` if another was installed first.
pub fn install(metrics: Arc<Metrics>) -> bool {
    INSTALLED.set(metrics).is_ok()
}

/// Called by the daemon after each wake-up with the fresh status and the steps it ran; does
/// nothing while metrics are off.
pub fn publish(status: Option<&Status>, actions: &[ActionRecord]) {
    if let Some(m) = INSTALLED.get() {
        m.record(status, actions);
    }
}

/// What became of a periodic VIP announcement the daemon tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshResult {
    /// The frame left.
    Sent,
    /// Nothing left: the probe or the send failed, or the VIP was no longer here.
    Failed,
    /// Nothing left on purpose: another host answered the probe before it.
    Withheld,
}

impl RefreshResult {
    const ALL: [RefreshResult; 3] = [Self::Sent, Self::Failed, Self::Withheld];

    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Withheld => "withheld",
        }
    }
}

/// Called by the daemon after each periodic VIP announcement it tried; does nothing while
/// metrics are off.
pub fn vip_refreshed(result: RefreshResult) {
    if let Some(m) = INSTALLED.get() {
        m.record_vip_refresh(result);
    }
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Promote(_) => "promote",
        Step::Demote(_) => "demote",
        Step::ServeTarget => "serve_target",
        Step::StopTarget => "stop_target",
        Step::AssignVip => "assign_vip",
        Step::ReleaseVip => "release_vip",
        Step::ProbeVip => "probe_vip",
        Step::AnnounceVip => "announce_vip",
        Step::ResumeIo(_) => "resume_io",
        Step::Reconnect(_) => "reconnect",
        Step::DiscardAndReconnect(_) => "discard_and_reconnect",
    }
}

impl Metrics {
    /// Metrics reading the alert counters `alerts`.
    pub fn new(alerts: Arc<AlertStats>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            alerts,
        }
    }

    /// Takes in one wake-up's status and actions.
    pub fn record(&self, status: Option<&Status>, actions: &[ActionRecord]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.wakes += 1;
        if let Some(s) = status {
            state.status = Some(s.clone());
        }
        for a in actions {
            let outcome = match a.outcome {
                Outcome::Done => "done",
                Outcome::Failed { .. } => "failed",
                // Not run: the step waits for its retry delay or budget.
                Outcome::Deferred { .. } | Outcome::BudgetExhausted { .. } => continue,
            };
            *state
                .actions
                .entry((step_name(&a.step), outcome))
                .or_default() += 1;
            if a.step == Step::AssignVip && a.outcome == Outcome::Done {
                state.takeovers += 1;
            }
        }
        state.published_at = Some(SystemTime::now());
    }

    /// Counts one periodic VIP announcement by what became of it.
    pub fn record_vip_refresh(&self, result: RefreshResult) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let i = RefreshResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        state.vip_refreshes[i] += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        render(&state, self.alerts.snapshot())
    }

    /// Listens on `addr` and answers scrapes from a thread of its own. Returns the bound
    /// address (useful with port 0).
    pub fn serve(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                crate::mail::leave_signals_to_the_daemon();
                for stream in listener.incoming() {
                    match stream {
                        Ok(s) => {
                            if let Err(e) = me.answer(s) {
                                tracing::debug!("metrics scrape: {e}");
                            }
                        }
                        Err(e) => tracing::debug!("metrics accept: {e}"),
                    }
                }
            })?;
        Ok(bound)
    }

    fn answer(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.by_ref().take(8192).read_line(&mut request_line)?;
        // Read the headers to their end so the client sees a clean close.
        let mut line = String::new();
        for _ in 0..100 {
            line.clear();
            if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (code, body) = match (method, path) {
            ("GET", "/metrics") => ("200 OK", self.render()),
            ("GET", _) => ("404 Not Found", "see /metrics\n".to_string()),
            _ => ("405 Method Not Allowed", "GET only\n".to_string()),
        };
        let mut out = stream;
        write!(
            out,
            "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        out.flush()
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

fn render(state: &State, alerts: AlertCounts) -> String {
    let mut o = Out(String::new());
    o.family("iscsi_ha_info", "gauge", "The daemon's version.");
    o.sample("iscsi_ha_info", &[("version", crate::VERSION)], 1);
    o.family(
        "iscsi_ha_wakes_total",
        "counter",
        "Wake-ups (observe, plan, act) since the daemon started.",
    );
    o.sample("iscsi_ha_wakes_total", &[], state.wakes);
    if let Some(at) = state.published_at {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        o.family(
            "iscsi_ha_last_wake_timestamp_seconds",
            "gauge",
            "When the daemon last observed the host.",
        );
        o.sample("iscsi_ha_last_wake_timestamp_seconds", &[], secs);
    }
    if let Some(s) = &state.status {
        render_status(&mut o, s);
    }
    o.family(
        "iscsi_ha_failovers_total",
        "counter",
        "Times this host took the service over (the VIP assigned here).",
    );
    o.sample("iscsi_ha_failovers_total", &[], state.takeovers);
    o.family(
        "iscsi_ha_actions_total",
        "counter",
        "Steps run, by step and outcome (done or failed).",
    );
    for ((step, outcome), n) in &state.actions {
        o.sample(
            "iscsi_ha_actions_total",
            &[("step", step), ("outcome", outcome)],
            n,
        );
    }
    o.family(
        "iscsi_ha_vip_refreshes_total",
        "counter",
        "Periodic VIP announcements while serving ([vip] refresh_interval), by result: sent, failed (nothing left), or withheld (another host answered the probe before it).",
    );
    for (result, n) in RefreshResult::ALL.iter().zip(state.vip_refreshes) {
        o.sample(
            "iscsi_ha_vip_refreshes_total",
            &[("result", result.label())],
            n,
        );
    }
    o.family(
        "iscsi_ha_alerts_total",
        "counter",
        "Alerts raised (after the duplicate screen), by severity.",
    );
    for (severity, n) in ["error", "warning", "info"].iter().zip(alerts.raised) {
        o.sample("iscsi_ha_alerts_total", &[("severity", severity)], n);
    }
    o.family(
        "iscsi_ha_alert_mails_total",
        "counter",
        "Alert mails by result: sent, failed, or dropped because the queue was full.",
    );
    o.sample(
        "iscsi_ha_alert_mails_total",
        &[("result", "sent")],
        alerts.mail_sent,
    );
    o.sample(
        "iscsi_ha_alert_mails_total",
        &[("result", "failed")],
        alerts.mail_failed,
    );
    o.sample(
        "iscsi_ha_alert_mails_total",
        &[("result", "queue_full")],
        alerts.queue_full,
    );
    o.0
}

fn render_status(o: &mut Out, s: &Status) {
    o.family(
        "iscsi_ha_role",
        "gauge",
        "The pool role: 1 for the current one.",
    );
    for role in ["master", "slave", "unknown"] {
        o.sample(
            "iscsi_ha_role",
            &[("role", role)],
            flag(s.host_role == role),
        );
    }
    let intent = match &s.intent {
        Intent::Serve => "serve",
        Intent::Release => "release",
        Intent::Hold(_) => "hold",
    };
    o.family(
        "iscsi_ha_intent",
        "gauge",
        "What the host is doing about its role: 1 for the current intent.",
    );
    for i in ["serve", "release", "hold"] {
        o.sample("iscsi_ha_intent", &[("intent", i)], flag(intent == i));
    }
    o.family(
        "iscsi_ha_manual_mode",
        "gauge",
        "1 while the operator's manual mode is on.",
    );
    o.sample("iscsi_ha_manual_mode", &[], flag(s.manual_mode.is_on()));
    o.family(
        "iscsi_ha_drbd_observable",
        "gauge",
        "1 when the resource's state could be read.",
    );
    for r in &s.resources {
        o.sample(
            "iscsi_ha_drbd_observable",
            &[("resource", &r.name)],
            flag(r.error.is_none()),
        );
    }
    o.family(
        "iscsi_ha_drbd_state",
        "gauge",
        "Each readable resource's role, peer role, connection and disks, as labels; value 1.",
    );
    for r in &s.resources {
        if let (Some(role), Some(peer), Some(conn), Some(disk), Some(peer_disk)) =
            (r.role, r.peer_role, r.connection_state, r.disk, r.peer_disk)
        {
            o.sample(
                "iscsi_ha_drbd_state",
                &[
                    ("resource", &r.name),
                    ("role", &role.to_string()),
                    ("peer_role", &peer.to_string()),
                    ("connection", &conn.to_string()),
                    ("disk", &disk.to_string()),
                    ("peer_disk", &peer_disk.to_string()),
                ],
                1,
            );
        }
    }
    o.family(
        "iscsi_ha_drbd_primary",
        "gauge",
        "1 when the resource is Primary here.",
    );
    for r in &s.resources {
        o.sample(
            "iscsi_ha_drbd_primary",
            &[("resource", &r.name)],
            flag(r.role == Some(iscsi_ha_core::volume::VolumeRole::Primary)),
        );
    }
    o.family(
        "iscsi_ha_drbd_split_brain",
        "gauge",
        "1 when a split brain was detected on the resource (see iscsi-cfg status).",
    );
    for r in &s.resources {
        o.sample(
            "iscsi_ha_drbd_split_brain",
            &[("resource", &r.name)],
            flag(r.split_brain.is_some()),
        );
    }
    o.family(
        "iscsi_ha_drbd_sync_percent",
        "gauge",
        "Resync progress of resources that are resynchronising.",
    );
    for r in &s.resources {
        if let Some(sync) = r.sync {
            o.sample(
                "iscsi_ha_drbd_sync_percent",
                &[("resource", &r.name)],
                sync.percent_done,
            );
        }
    }
    o.family(
        "iscsi_ha_target_up",
        "gauge",
        "1 when the configured target is exported and accepts logins.",
    );
    o.sample("iscsi_ha_target_up", &[], flag(s.target.running));
    o.family(
        "iscsi_ha_target_daemon_up",
        "gauge",
        "1 when the target daemon answers.",
    );
    o.sample(
        "iscsi_ha_target_daemon_up",
        &[],
        flag(s.target.daemon_running),
    );
    o.family(
        "iscsi_ha_target_sessions",
        "gauge",
        "Initiator sessions logged in to the target.",
    );
    o.sample("iscsi_ha_target_sessions", &[], s.target.sessions);
    o.family(
        "iscsi_ha_vip_here",
        "gauge",
        "1 when the floating address is on this host (absent when it could not be read).",
    );
    if let Some(here) = s.vip.here {
        o.sample(
            "iscsi_ha_vip_here",
            &[("address", &s.vip.address)],
            flag(here),
        );
    }
    o.family(
        "iscsi_ha_holds",
        "gauge",
        "Reasons the host is not where its role wants it.",
    );
    o.sample("iscsi_ha_holds", &[], s.holds.len());
    o.family(
        "iscsi_ha_budget_exhausted",
        "gauge",
        "Components whose restart budget is used up.",
    );
    o.sample("iscsi_ha_budget_exhausted", &[], s.exhausted.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::time::Timestamp;

    #[test]
    fn counters_and_escaping() {
        let m = Metrics::new(Arc::new(AlertStats::default()));
        let at = Timestamp::from_system_time(SystemTime::now());
        m.record(
            None,
            &[
                ActionRecord {
                    at,
                    step: Step::AssignVip,
                    outcome: Outcome::Done,
                },
                ActionRecord {
                    at,
                    step: Step::ServeTarget,
                    outcome: Outcome::Failed {
                        error: "x".into(),
                        retry_can_help: true,
                    },
                },
                ActionRecord {
                    at,
                    step: Step::ServeTarget,
                    outcome: Outcome::Deferred { retry_in_ms: 5 },
                },
            ],
        );
        let text = m.render();
        assert!(text.contains("iscsi_ha_failovers_total 1\n"), "{text}");
        assert!(
            text.contains("iscsi_ha_actions_total{step=\"serve_target\",outcome=\"failed\"} 1\n")
        );
        assert!(text.contains("iscsi_ha_actions_total{step=\"assign_vip\",outcome=\"done\"} 1\n"));
        assert!(!text.contains("outcome=\"deferred\""));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(text.contains("iscsi_ha_vip_refreshes_total{result=\"sent\"} 0\n"));
        m.record_vip_refresh(RefreshResult::Sent);
        m.record_vip_refresh(RefreshResult::Sent);
        m.record_vip_refresh(RefreshResult::Failed);
        m.record_vip_refresh(RefreshResult::Withheld);
        let text = m.render();
        assert!(
            text.contains("iscsi_ha_vip_refreshes_total{result=\"sent\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("iscsi_ha_vip_refreshes_total{result=\"failed\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("iscsi_ha_vip_refreshes_total{result=\"withheld\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_serving_master_with_a_resyncing_resource() {
        use iscsi_ha_core::observation::ManualMode;
        use iscsi_ha_core::status::{ResourceView, TargetView, VipView};
        use iscsi_ha_core::volume::{Connection, DiskState, SyncProgress, VolumeRole};
        let resource = |name: &str, sync: Option<SyncProgress>| ResourceView {
            name: name.into(),
            role: Some(VolumeRole::Primary),
            peer_role: Some(VolumeRole::Secondary),
            connection: Some("SyncSource".into()),
            connection_state: Some(Connection::SyncSource),
            disk: Some(DiskState::UpToDate),
            peer_disk: Some(DiskState::Inconsistent),
            sync,
            suspended: Some(false),
            error: None,
            split_brain: None,
        };
        let status = Status {
            host: "xcp1".into(),
            fingerprint: "0123456789abcdef".into(),
            host_role: "master".into(),
            role_reason: None,
            intent: Intent::Serve,
            manual_mode: ManualMode::Off,
            resources: vec![
                resource(
                    "r0",
                    Some(SyncProgress {
                        percent_done: 42.5,
                        out_of_sync_kib: 1024,
                    }),
                ),
                ResourceView {
                    error: Some("unavailable".into()),
                    role: None,
                    ..resource("r1", None)
                },
            ],
            target: TargetView {
                running: true,
                iqn: "iqn.2024-01.com.example:t".into(),
                luns: Vec::new(),
                sessions: 2,
                daemon_running: true,
                error: None,
            },
            vip: VipView {
                address: "10.0.0.3/24".into(),
                interface: "xenbr1".into(),
                here: Some(true),
                error: None,
            },
            holds: Vec::new(),
            warnings: Vec::new(),
            exhausted: vec!["target".into()],
            retrying: Vec::new(),
            last_actions: Vec::new(),
            alerts: Vec::new(),
            pbd_replug: None,
            updated_at: Timestamp::from_system_time(SystemTime::now()),
        };
        let m = Metrics::new(Arc::new(AlertStats::default()));
        m.record(Some(&status), &[]);
        let text = m.render();
        for line in [
            "iscsi_ha_role{role=\"master\"} 1\n",
            "iscsi_ha_intent{intent=\"serve\"} 1\n",
            "iscsi_ha_drbd_state{resource=\"r0\",role=\"Primary\",peer_role=\"Secondary\",connection=\"SyncSource\",disk=\"UpToDate\",peer_disk=\"Inconsistent\"} 1\n",
            "iscsi_ha_drbd_primary{resource=\"r0\"} 1\n",
            "iscsi_ha_drbd_primary{resource=\"r1\"} 0\n",
            "iscsi_ha_drbd_observable{resource=\"r1\"} 0\n",
            "iscsi_ha_drbd_sync_percent{resource=\"r0\"} 42.5\n",
            "iscsi_ha_drbd_split_brain{resource=\"r0\"} 0\n",
            "iscsi_ha_target_up 1\n",
            "iscsi_ha_target_sessions 2\n",
            "iscsi_ha_vip_here{address=\"10.0.0.3/24\"} 1\n",
            "iscsi_ha_budget_exhausted 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in:\n{text}");
        }
        assert!(!text.contains("resource=\"r1\",role="), "{text}");
    }
}
