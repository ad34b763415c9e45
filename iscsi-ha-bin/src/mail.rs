//! The alert port: every alert is logged, and with `[alerts.mail] enabled` also mailed over SMTP
//! (plain, STARTTLS or implicit TLS, optional authentication).
//!
//! The core decides which alerts go out (it screens duplicates and mutes manual mode); this
//! module only carries them. Mail must never hold up the daemon: [`MailAlerts::deliver`] puts the
//! alert on a bounded queue and returns at once, a worker thread talks to the mail server, and a
//! server that is down or slow costs a logged failure, never a stalled failover.

use iscsi_ha_core::alert::{Alert, Severity};
use iscsi_ha_core::config::schema::{MailSection, MailTls};
use iscsi_ha_core::config::Config;
use iscsi_ha_core::ports::{AlertError, Alerts};
use iscsi_ha_core::secret::Secret;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How many alerts may wait for the mail worker; more are dropped (and counted).
pub const QUEUE_LEN: usize = 32;

/// How long one SMTP conversation may take (connect, each command) before it is given up.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts of what happened to alerts since the daemon started, for metrics.
#[derive(Debug, Default)]
pub struct AlertStats {
    raised: [AtomicU64; 3],
    mail_sent: AtomicU64,
    mail_failed: AtomicU64,
    queue_full: AtomicU64,
}

/// A copy of [`AlertStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// Alerts handed to the port, by severity: error, warning, info.
    pub raised: [u64; 3],
    /// Mails the server accepted.
    pub mail_sent: u64,
    /// Mails that could not be delivered.
    pub mail_failed: u64,
    /// Alerts dropped because the mail queue was full.
    pub queue_full: u64,
}

impl AlertStats {
    /// The counts now.
    pub fn snapshot(&self) -> AlertCounts {
        AlertCounts {
            raised: [0, 1, 2].map(|i| self.raised[i].load(Ordering::Relaxed)),
            mail_sent: self.mail_sent.load(Ordering::Relaxed),
            mail_failed: self.mail_failed.load(Ordering::Relaxed),
            queue_full: self.queue_full.load(Ordering::Relaxed),
        }
    }

    fn count_raised(&self, severity: Severity) {
        let i = match severity {
            Severity::Error => 0,
            Severity::Warning => 1,
            Severity::Info => 2,
        };
        self.raised[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes an alert to the log at the level its severity calls for.
fn log_alert(alert: &Alert) {
    match alert.severity {
        Severity::Error => tracing::error!(target: "iscsi_ha::alert", "ALERT: {}", alert.message),
        Severity::Warning => tracing::warn!(target: "iscsi_ha::alert", "ALERT: {}", alert.message),
        Severity::Info => tracing::info!(target: "iscsi_ha::alert", "ALERT: {}", alert.message),
    }
}

/// Why the mail settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address does not parse.
    #[error("alerts.mail.{key}: {value:?} is not a mail address: {reason}")]
    Address {
        /// The key (`from`, `to`).
        key: &'static str,
        /// The value given.
        value: String,
        /// The parser's words.
        reason: String,
    },
    /// Mail is on but nobody receives it.
    #[error("alerts.mail.to: mail is enabled but no recipient is given")]
    NoRecipients,
    /// A user without a password, or the other way round.
    #[error("alerts.mail: user and password go together (password may come from the secrets file's smtp_password)")]
    HalfCredentials,
    /// The TLS settings could not be built (no usable CA store).
    #[error("alerts.mail.tls: {0}")]
    Tls(String),
    /// The mail worker thread could not be started.
    #[error("cannot start the mail worker: {0}")]
    Worker(String),
}

/// Everything the mail worker needs, checked.
#[derive(Clone)]
pub struct MailSettings {
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    server: String,
    port: u16,
    tls: MailTls,
    credentials: Option<(String, Secret)>,
    host: String,
    timeout: Duration,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a Secret and prints redacted; listed for completeness.
        f.debug_struct("MailSettings")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("password", &self.credentials.as_ref().map(|c| &c.1))
            .finish()
    }
}

impl MailSettings {
    /// Checks `[alerts.mail]`; `password` is the resolved SMTP password (inline or from the
    /// secrets file), `host` this host's name for `{host}` in the subject.
    pub fn from_config(
        section: &MailSection,
        password: Option<&Secret>,
        host: &str,
    ) -> Result<Self, MailError> {
        let mailbox = |key: &'static str, value: &str| {
            value.parse::<Mailbox>().map_err(|e| MailError::Address {
                key,
                value: value.to_string(),
                reason: e.to_string(),
            })
        };
        let from = mailbox("from", &section.from)?;
        let to = section
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(MailError::NoRecipients);
        }
        let password = password.or(section.password.as_ref());
        let credentials = match (&section.user, password) {
            (Some(user), Some(pw)) => Some((user.clone(), pw.clone())),
            (None, None) => None,
            _ => return Err(MailError::HalfCredentials),
        };
        Ok(Self {
            from,
            to,
            subject: section.subject.replace("{host}", host),
            server: section.server.clone(),
            port: section.port,
            tls: section.tls,
            credentials,
            host: host.to_string(),
            timeout: SMTP_TIMEOUT,
        })
    }

    /// Gives up on a server after `timeout` instead of [`SMTP_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The subject with the host name filled in.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    fn transport(&self) -> Result<SmtpTransport, MailError> {
        let tls = match self.tls {
            MailTls::None => Tls::None,
            MailTls::Starttls => Tls::Required(self.tls_parameters()?),
            MailTls::Tls => Tls::Wrapper(self.tls_parameters()?),
        };
        let mut builder = SmtpTransport::builder_dangerous(self.server.as_str())
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .hello_name(ClientId::Domain(self.host.clone()));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(builder.build())
    }

    fn tls_parameters(&self) -> Result<TlsParameters, MailError> {
        TlsParameters::new(self.server.clone()).map_err(|e| MailError::Tls(e.to_string()))
    }

    fn message(&self, alert: &Alert) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(self.subject.clone());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let body = format!(
            "{severity}: {message}\n\nHost: {host}\nTime: {time}\n\n-- \niscsi-ha {version}\n",
            severity = alert.severity,
            message = alert.message,
            host = self.host,
            time = humantime::format_rfc3339_seconds(SystemTime::now()),
            version = crate::VERSION,
        );
        builder.body(body).map_err(|e| e.to_string())
    }
}

/// Logs every alert and mails it from a worker thread.
#[derive(Debug)]
pub struct MailAlerts {
    queue: Option<SyncSender<Alert>>,
    worker: Option<JoinHandle<()>>,
    stats: Arc<AlertStats>,
}

impl MailAlerts {
    /// Starts the mail worker.
    pub fn start(settings: MailSettings, stats: Arc<AlertStats>) -> Result<Self, MailError> {
        Self::with_queue(settings, stats, QUEUE_LEN)
    }

    /// Starts the mail worker with a queue of `len` alerts.
    pub fn with_queue(
        settings: MailSettings,
        stats: Arc<AlertStats>,
        len: usize,
    ) -> Result<Self, MailError> {
        let transport = settings.transport()?;
        let (tx, rx) = sync_channel(len);
        let worker_stats = stats.clone();
        let worker = std::thread::Builder::new()
            .name("alert-mail".into())
            .spawn(move || mail_worker(&settings, &transport, &rx, &worker_stats))
            .map_err(|e| MailError::Worker(e.to_string()))?;
        Ok(Self {
            queue: Some(tx),
            worker: Some(worker),
            stats,
        })
    }

    /// Waits until every queued alert has been tried, then stops the worker.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.queue.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for MailAlerts {
    fn drop(&mut self) {
        // Dropping the sender ends the worker once the queue is empty; don't wait for a slow
        // server on the way out.
        drop(self.queue.take());
    }
}

impl Alerts for MailAlerts {
    fn deliver(&mut self, alert: &Alert) -> Result<(), AlertError> {
        log_alert(alert);
        self.stats.count_raised(alert.severity);
        let Some(queue) = &self.queue else {
            return Err(AlertError::Delivery("the mail worker is stopped".into()));
        };
        match queue.try_send(alert.clone()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "alert mail queue full ({} waiting; is the mail server down?); this alert is only logged",
                    QUEUE_LEN
                );
                Err(AlertError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(AlertError::Delivery("the mail worker has stopped".into()))
            }
        }
    }
}

/// Blocks the signals the daemon reads from its signalfd in the calling helper thread. A thread
/// started before the daemon blocked them would otherwise take a SIGTERM with the default
/// action and kill the process without its clean stop.
pub fn leave_signals_to_the_daemon() {
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGTERM);
    mask.add(nix::sys::signal::Signal::SIGINT);
    mask.add(nix::sys::signal::Signal::SIGHUP);
    if let Err(e) = mask.thread_block() {
        tracing::warn!("cannot block signals in a helper thread: {e}");
    }
}

fn mail_worker(
    settings: &MailSettings,
    transport: &SmtpTransport,
    queue: &Receiver<Alert>,
    stats: &AlertStats,
) {
    leave_signals_to_the_daemon();
    while let Ok(alert) = queue.recv() {
        let result = settings
            .message(&alert)
            .and_then(|m| transport.send(&m).map_err(|e| e.to_string()));
        match result {
            Ok(_) => {
                stats.mail_sent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "alert mailed via {}:{}: {}",
                    settings.server,
                    settings.port,
                    alert.message
                );
            }
            Err(e) => {
                stats.mail_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "cannot mail alert via {}:{}: {e}; the alert was: {}",
                    settings.server,
                    settings.port,
                    alert.message
                );
            }
        }
    }
}

/// Logs every alert (mail off).
#[derive(Debug, Default)]
pub struct LogOnlyAlerts {
    stats: Arc<AlertStats>,
}

impl LogOnlyAlerts {
    /// Counting into `stats`.
    pub fn new(stats: Arc<AlertStats>) -> Self {
        Self { stats }
    }
}

impl Alerts for LogOnlyAlerts {
    fn deliver(&mut self, alert: &Alert) -> Result<(), AlertError> {
        log_alert(alert);
        self.stats.count_raised(alert.severity);
        Ok(())
    }

    fn sends(&self) -> bool {
        false
    }
}

/// The alert port `[alerts.mail]` asks for: mail (and log) when enabled, else log only.
pub fn build_alerts(
    config: &Config,
    host: &str,
    stats: Arc<AlertStats>,
) -> Result<Box<dyn Alerts>, MailError> {
    let mail = &config.file.alerts.mail;
    if !mail.enabled {
        return Ok(Box::new(LogOnlyAlerts::new(stats)));
    }
    let settings = MailSettings::from_config(mail, config.smtp_password.as_ref(), host)?;
    tracing::info!(
        "alerts are mailed to {} via {}:{} ({:?})",
        mail.to.join(", "),
        mail.server,
        mail.port,
        mail.tls
    );
    Ok(Box::new(MailAlerts::start(settings, stats)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn section(port: u16) -> MailSection {
        MailSection {
            enabled: true,
            to: vec!["ops@example.com".into()],
            port,
            ..MailSection::default()
        }
    }

    #[test]
    fn the_subject_names_the_host() {
        let s = MailSettings::from_config(&section(25), None, "xcp1").unwrap();
        assert_eq!(s.subject(), "iSCSI-HA alert from host xcp1");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut m = section(25);
        m.to = vec!["not an address".into()];
        let e = MailSettings::from_config(&m, None, "h")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("alerts.mail.to: \"not an address\" is not a mail address"),
            "{e}"
        );
        m.to.clear();
        assert!(matches!(
            MailSettings::from_config(&m, None, "h"),
            Err(MailError::NoRecipients)
        ));
        let mut m = section(25);
        m.user = Some("u".into());
        assert!(matches!(
            MailSettings::from_config(&m, None, "h"),
            Err(MailError::HalfCredentials)
        ));
        let s = MailSettings::from_config(&m, Some(&Secret::new("pw-in-debug")), "h").unwrap();
        assert!(!format!("{s:?}").contains("pw-in-debug"));
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        // A server that accepts connections and never speaks: the worker is stuck in its
        // first conversation, so the queue fills.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let settings = MailSettings::from_config(&section(port), None, "h")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        let stats = Arc::new(AlertStats::default());
        let mut alerts = MailAlerts::with_queue(settings, stats.clone(), 2).unwrap();
        let t0 = Instant::now();
        let results: Vec<_> = (0..6)
            .map(|i| alerts.deliver(&Alert::new(Severity::Error, format!("alert {i}"))))
            .collect();
        assert!(t0.elapsed() < Duration::from_millis(500), "deliver blocked");
        assert!(results.contains(&Err(AlertError::QueueFull)), "{results:?}");
        let counts = stats.snapshot();
        assert_eq!(counts.raised[0], 6);
        assert!(counts.queue_full >= 3, "{counts:?}");
        alerts.finish();
        let counts = stats.snapshot();
        assert_eq!(counts.mail_sent, 0);
        assert_eq!(counts.mail_failed + counts.queue_full, 6, "{counts:?}");
    }
}
