//! The alert port when mail is off: alerts go to the log, by severity.

use iscsi_ha_core::alert::{Alert, Severity};
use iscsi_ha_core::ports::{AlertError, Alerts};

/// Writes each alert to the log.
#[derive(Debug, Default)]
pub struct LogAlerts;

impl Alerts for LogAlerts {
    fn deliver(&mut self, alert: &Alert) -> Result<(), AlertError> {
        match alert.severity {
            Severity::Error => tracing::error!(target: "iscsi_ha::alert", "{}", alert.message),
            Severity::Warning => tracing::warn!(target: "iscsi_ha::alert", "{}", alert.message),
            Severity::Info => tracing::info!(target: "iscsi_ha::alert", "{}", alert.message),
        }
        Ok(())
    }
}
