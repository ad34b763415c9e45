//! Alerts: what the operator is told, and the screen that stops repeats.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// How serious an alert is (the original sent 1 for errors and 4 for notices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something failed, or storage is at risk.
    Error,
    /// Something unusual that may need a look.
    Warning,
    /// A change worth knowing (promoted, VIP taken).
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Alert {
    /// How serious.
    pub severity: Severity,
    /// What happened, in one line an operator can act on. Also the duplicate-screen key.
    pub message: String,
}

impl Alert {
    /// An alert of `severity` saying `message`.
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Self {
            severity,
            message: message.into(),
        }
    }
}

/// Screens out an alert identical to one let through less than `window` ago
/// (the original's MAIL_SCREEN_TIME).
#[derive(Debug, Clone)]
pub struct AlertScreen {
    window: Duration,
    last_sent: HashMap<Alert, Instant>,
}

impl AlertScreen {
    /// A screen with the given duplicate window.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_sent: HashMap::new(),
        }
    }

    /// Whether `alert` may go out at `now`; if so it is remembered as sent.
    pub fn admit(&mut self, alert: &Alert, now: Instant) -> bool {
        let window = self.window;
        self.last_sent
            .retain(|_, sent| now.saturating_duration_since(*sent) < window);
        if self.last_sent.contains_key(alert) {
            return false;
        }
        self.last_sent.insert(alert.clone(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_inside_the_window_are_screened() {
        let t0 = Instant::now();
        let mut screen = AlertScreen::new(Duration::from_secs(60));
        let a = Alert::new(Severity::Error, "the target failed");
        assert!(screen.admit(&a, t0));
        assert!(!screen.admit(&a, t0 + Duration::from_secs(59)));
        assert!(screen.admit(&Alert::new(Severity::Error, "other"), t0));
        assert!(screen.admit(&a, t0 + Duration::from_secs(60)));
    }
}
