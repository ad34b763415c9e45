//! The operator's manual mode, kept on disk so that a daemon restart keeps it (the original kept
//! it in `/etc/iscsi-ha/state/manual`).

use crate::small_file::{self, WORD_FILE_CAP};
use iscsi_ha_core::observation::ManualMode;
use std::path::{Path, PathBuf};

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/iscsi-ha";

/// The manual-mode file in a state directory.
#[derive(Debug, Clone)]
pub struct ManualState {
    path: PathBuf,
}

impl ManualState {
    /// The manual-mode file in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("manual-mode"),
        }
    }

    /// Reads the saved mode; a missing file means off, an unreadable one is an error.
    pub fn load(&self) -> Result<ManualMode, String> {
        Ok(self.load_recorded()?.unwrap_or(ManualMode::Off))
    }

    /// Reads the saved mode; `None` when this host has never recorded one (a first start, for
    /// instance after migrating from the original, whose own manual file may then be adopted).
    pub fn load_recorded(&self) -> Result<Option<ManualMode>, String> {
        match small_file::read(&self.path, WORD_FILE_CAP) {
            Ok(text) => match text.trim() {
                "become-primary" => Ok(Some(ManualMode::BecomePrimary)),
                "become-secondary" => Ok(Some(ManualMode::BecomeSecondary)),
                "" | "off" => Ok(Some(ManualMode::Off)),
                other => Err(format!(
                    "{} holds {other:?}, not a manual mode: write become-primary, become-secondary or off into it, or remove it",
                    self.path.display()
                )),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Saves the mode atomically (write a temporary file, rename it over). Off is written
    /// too, not left as a missing file: a missing file means "never recorded".
    pub fn save(&self, mode: ManualMode) -> std::io::Result<()> {
        let word = match mode {
            ManualMode::Off => "off",
            ManualMode::BecomePrimary => "become-primary",
            ManualMode::BecomeSecondary => "become-secondary",
        };
        crate::state_file::write_atomically(&self.path, word.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn round_trips_and_defaults_to_off() {
        let dir = tempfile::tempdir().unwrap();
        let state = ManualState::new(dir.path());
        assert_eq!(state.load(), Ok(ManualMode::Off));
        assert_eq!(state.load_recorded(), Ok(None));
        state.save(ManualMode::BecomeSecondary).unwrap();
        assert_eq!(state.load(), Ok(ManualMode::BecomeSecondary));
        state.save(ManualMode::Off).unwrap();
        assert_eq!(state.load(), Ok(ManualMode::Off));
        assert_eq!(state.load_recorded(), Ok(Some(ManualMode::Off)));
        fs::write(dir.path().join("manual-mode"), "sideways").unwrap();
        assert!(state.load().is_err());
    }
}
