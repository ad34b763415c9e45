//! The configuration: `/etc/iscsi-ha/iscsi-ha.toml`, its secrets file, and the importer for the
//! original `iscsi-ha.conf`.
//!
//! [`Config::parse`] takes the text (the binary reads the files and checks their modes) and
//! returns either a checked configuration with every default filled in, or every error found,
//! each naming the key and its line and column.

mod duration;
mod error;
pub mod fingerprint;
pub mod legacy;
mod locate;
pub mod reload;
pub mod schema;
mod validate;

pub use duration::{ConfigDuration, DurationError, PeriodOrOff};
pub use error::{line_column, ConfigError, ConfigErrors, SettingProblem};
pub use fingerprint::{fingerprint, FINGERPRINT_HEX_LEN};
pub use locate::{key_position, KeyPath, Segment};

use crate::resource::ResourceName;
use crate::target::TargetSpec;
use crate::vip::Vip;
use schema::{ConfigFile, SecretsFile};

/// Default path of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/iscsi-ha/iscsi-ha.toml";

/// Default path of XAPI's pool role file.
pub const DEFAULT_POOL_CONF: &str = "/etc/xensource/pool.conf";

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file with every default filled in (derived LUN identities included); secrets inside
    /// print as `<redacted>`.
    pub file: ConfigFile,
    /// The replicated resources, in order.
    pub resources: Vec<ResourceName>,
    /// The target the master exports, passwords resolved.
    pub target: TargetSpec,
    /// The floating address.
    pub vip: Vip,
    /// The SMTP password, from the file or the secrets file.
    pub smtp_password: Option<crate::secret::Secret>,
    /// What is accepted but should be known (an iSCSI name outside RFC 3720, which tgtd takes),
    /// in the form of an error: `check-config` prints them and still exits 0.
    pub warnings: Vec<ConfigError>,
    inline_secrets: bool,
}

/// A text to parse and where it came from (for error messages).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The text.
    pub text: &'a str,
    /// Its origin, usually the file path.
    pub origin: &'a str,
}

impl Config {
    /// Parses and checks a configuration, with the secrets file's text when `[secrets] file`
    /// is set. Returns every problem found, not just the first.
    ///
    /// serde stops at its first error, so of the mistakes it finds (syntax, unknown keys,
    /// wrong types, missing keys) only the first is reported; bad names, ranges and durations
    /// are checked again here so that all of those are reported together with it.
    pub fn parse(main: Source<'_>, secrets: Option<Source<'_>>) -> Result<Self, ConfigErrors> {
        let file: ConfigFile = match deserialize(main) {
            Ok(file) => file,
            Err(ConfigErrors(mut errors)) => {
                for e in validate::check_values(main) {
                    if !errors.iter().any(|known| known.key == e.key) {
                        errors.push(e);
                    }
                }
                errors.sort_by_key(|e| (e.line, e.column));
                return Err(ConfigErrors(errors));
            }
        };
        let secrets_file: SecretsFile = match secrets {
            Some(source) => deserialize(source)?,
            None => SecretsFile::default(),
        };
        validate::validate(file, &secrets_file, main)
    }

    /// Whether the main file itself holds a password (then it must be readable by root only).
    pub fn holds_inline_secrets(&self) -> bool {
        self.inline_secrets
    }

    /// The effective configuration as TOML, defaults filled in, secrets redacted.
    pub fn to_effective_toml(&self) -> String {
        toml::to_string(&self.file).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

/// Whether a secrets file's text holds any secret (used to decide if its mode matters).
pub fn secrets_text_holds_secrets(text: &str) -> bool {
    toml::from_str::<SecretsFile>(text)
        .map(|s| s.smtp_password.is_some() || !s.chap.is_empty())
        .unwrap_or(true)
}

fn deserialize<T: serde::de::DeserializeOwned>(source: Source<'_>) -> Result<T, ConfigErrors> {
    let deserializer = toml::Deserializer::new(source.text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let mut key = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.message().trim().to_string();
        // serde names the table, not the key that is missing from it.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            key = if key == "." {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
        }
        let (line, column) = match inner.span() {
            Some(span) => {
                let (l, c) = line_column(source.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigErrors(vec![ConfigError {
            origin: source.origin.to_string(),
            key: if key == "." { String::new() } else { key },
            line,
            column,
            message,
        }])
    })
}
