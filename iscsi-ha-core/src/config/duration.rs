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

/// A period that `"0s"` turns off (`[vip] refresh_interval`): `None` when off. Unlike
/// [`ConfigDuration`], zero is accepted, because "never" needs a spelling of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeriodOrOff(Option<ConfigDuration>);

impl PeriodOrOff {
    /// A period of `duration`; zero is off.
    pub fn new(duration: Duration) -> Self {
        Self((!duration.is_zero()).then_some(ConfigDuration(duration)))
    }

    /// The period, or `None` when it is off.
    pub fn get(self) -> Option<Duration> {
        self.0.map(ConfigDuration::get)
    }
}

impl TryFrom<String> for PeriodOrOff {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        match humantime::parse_duration(&text) {
            Ok(d) => Ok(Self::new(d)),
            Err(e) => Err(DurationError {
                text,
                reason: e.to_string(),
            }),
        }
    }
}

impl From<PeriodOrOff> for String {
    fn from(value: PeriodOrOff) -> Self {
        match value.0 {
            Some(d) => d.to_string(),
            None => "0s".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_period_off_and_anything_else_is_kept() {
        let off = PeriodOrOff::try_from("0s".to_string()).unwrap();
        assert_eq!(off.get(), None);
        assert_eq!(String::from(off), "0s");
        let on = PeriodOrOff::try_from("90s".to_string()).unwrap();
        assert_eq!(on.get(), Some(Duration::from_secs(90)));
        assert_eq!(String::from(on), "1m 30s");
        let bad = PeriodOrOff::try_from("soon".to_string()).unwrap_err();
        assert!(
            bad.to_string().contains("\"soon\" is not a duration"),
            "{bad}"
        );
        // ConfigDuration keeps refusing zero.
        assert!(ConfigDuration::try_from("0s".to_string()).is_err());
    }
}
