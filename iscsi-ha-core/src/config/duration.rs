//! Durations written the way admins write them: `10s`, `500ms`, `30m`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A positive duration read from text such as `10s`, `250ms` or `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigDuration(Duration);

/// Why a duration text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {reason} (write e.g. \"10s\", \"500ms\", \"30m\")")]
pub struct DurationError {
    /// The refused text.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigDuration {
    /// Wraps a duration.
    pub const fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<String> for ConfigDuration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        match humantime::parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(DurationError {
                text,
                reason: "it must be longer than zero".into(),
            }),
            Ok(d) => Ok(Self(d)),
            Err(e) => Err(DurationError {
                text,
                reason: e.to_string(),
            }),
        }
    }
}

impl From<ConfigDuration> for String {
    fn from(value: ConfigDuration) -> Self {
        value.to_string()
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
