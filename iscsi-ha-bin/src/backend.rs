//! The target backend a configuration chooses (`[target] backend`): what the core cannot check
//! because it knows no backend's words. The adapter crate owns its table's meaning and its
//! limits; this module only reports them at their place in the file, so `check-config`, the
//! daemon's start and a reload all refuse a configuration that would lose an access rule.

use iscsi_ha_core::config::schema::TargetBackend;
use iscsi_ha_core::config::{key_position, Config, ConfigError, KeyPath};
use iscsi_ha_lio::settings::SettingProblem;
use iscsi_ha_lio::LioConfig;

/// The LIO adapter's settings for a configuration with `backend = "lio"`, or its problems.
pub fn lio_config(config: &Config) -> Result<LioConfig, Vec<SettingProblem>> {
    iscsi_ha_lio::settings::lio_config(config.file.target.lio.as_ref(), config.vip.address())
}

/// Every problem of the chosen backend with `config`, each at its key in `text` (the file the
/// configuration came from, named `origin`).
pub fn check(config: &Config, text: &str, origin: &str) -> Vec<ConfigError> {
    let problems = match config.file.target.backend {
        TargetBackend::Tgt => Vec::new(),
        TargetBackend::Lio => {
            let mut found = iscsi_ha_lio::settings::unsupported(&config.target);
            if let Err(more) = lio_config(config) {
                found.extend(more);
            }
            found
        }
    };
    problems
        .into_iter()
        .map(|p| at(text, origin, &p.at, p.message))
        .collect()
}

fn at(text: &str, origin: &str, key: &KeyPath, message: String) -> ConfigError {
    let position = key_position(text, key);
    ConfigError {
        origin: origin.to_string(),
        key: key.to_string(),
        line: position.map(|(l, _)| l),
        column: position.map(|(_, c)| c),
        message,
    }
}
