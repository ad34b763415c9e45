//! iSCSI names (RFC 3720 §3.2.6, RFC 3980 for `naa.`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest iSCSI name allowed (RFC 3720 §3.2.6.1).
pub const MAX_ISCSI_NAME_LEN: usize = 223;

/// An iSCSI name in normalised (lower-case) form: `iqn.yyyy-mm.reversed.domain[:anything]`,
/// `eui.` followed by 16 hex digits, or `naa.` followed by 16 or 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iqn(String);

/// Why a string is not an iSCSI name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not an iSCSI name: {reason} (expected e.g. iqn.2024-01.com.example:storage)")]
pub struct IqnError {
    /// The refused text.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Iqn {
    /// Checks `name` against RFC 3720 syntax and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, IqnError> {
        let name = name.into();
        match check(&name) {
            Ok(()) => Ok(Self(name)),
            Err(reason) => Err(IqnError { name, reason }),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_ISCSI_NAME_LEN {
        return Err("longer than 223 bytes");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("iSCSI names are case-insensitive and must be written in lower case");
    }
    if let Some(rest) = name.strip_prefix("iqn.") {
        check_iqn(rest)
    } else if let Some(hex) = name.strip_prefix("eui.") {
        check_hex(hex, &[16])
    } else if let Some(hex) = name.strip_prefix("naa.") {
        check_hex(hex, &[16, 32])
    } else {
        Err("it must start with iqn., eui. or naa.")
    }
}

fn check_iqn(rest: &str) -> Result<(), &'static str> {
    let bytes = rest.as_bytes();
    let date_ok = bytes.len() >= 8
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && matches!(
            &rest[5..7],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
        && bytes[7] == b'.';
    if !date_ok {
        return Err("after iqn. comes the date as yyyy-mm and a dot");
    }
    let (authority, unique) = match rest[8..].split_once(':') {
        Some((authority, unique)) => (authority, Some(unique)),
        None => (&rest[8..], None),
    };
    let labels_ok = !authority.is_empty()
        && authority.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !labels_ok {
        return Err("the naming authority must be a reversed domain name (letters, digits, '-', dots between)");
    }
    if let Some(unique) = unique {
        let ok = !unique.is_empty()
            && unique.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':')
            });
        if !ok {
            return Err("after ':' use only letters, digits, '-', '.' and ':'");
        }
    }
    Ok(())
}

fn check_hex(hex: &str, lengths: &[usize]) -> Result<(), &'static str> {
    if lengths.contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("eui. takes 16 hex digits, naa. 16 or 32")
    }
}

impl TryFrom<String> for Iqn {
    type Error = IqnError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Iqn> for String {
    fn from(value: Iqn) -> Self {
        value.0
    }
}

impl fmt::Display for Iqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc_3720_names() {
        for name in [
            "iqn.2024-01.com.example:storage",
            "iqn.2001-04.com.example",
            "iqn.2015-06.com.halizard:nosan.disk-1",
            "iqn.1994-05.com.redhat:8a8b3c2d1e",
            "eui.02004567a425678d",
            "naa.52004567ba64678d",
            "naa.6001405a1b2c3d4e5f60718293a4b5c6",
        ] {
            assert!(Iqn::new(name).is_ok(), "{name} should be accepted");
        }
    }

    #[test]
    fn refuses_what_is_not_rfc_3720() {
        for name in [
            "",
            "iqn.2015.com.halizard:noSAN",
            "iqn.2024-13.com.example",
            "iqn.2024-01.",
            "iqn.2024-01.com..example",
            "iqn.2024-01.com.example:",
            "iqn.2024-01.com.example:a b",
            "IQN.2024-01.com.example",
            "eui.123",
            "naa.zz04567ba64678d0",
            "target1",
        ] {
            assert!(Iqn::new(name).is_err(), "{name} should be refused");
        }
        let long = format!("iqn.2024-01.com.example:{}", "a".repeat(200));
        assert!(Iqn::new(long).is_err());
    }

    #[test]
    fn error_names_the_text_and_the_reason() {
        let err = Iqn::new("iqn.2015.com.x").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("\"iqn.2015.com.x\" is not an iSCSI name: after iqn. comes the date as yyyy-mm and a dot (expected e.g. iqn.2024-01.com.example:storage)")
        );
    }
}
