//! iSCSI names as a configuration may write them, and how they stray from RFC 3720 §3.2.6
//! (RFC 3980 for `naa.`).
//!
//! The rule here is the one every backend takes, so that a configuration keeps its names when
//! it moves from one target backend to another (XenServer SRs are bound to the name they log in
//! with: renaming the target means recreating the SR). Its characters are the narrowest set any
//! backend allows — tgtd's (`tgt_target_create` takes ASCII letters, digits, `:`, `.`, `-`) —
//! and its length the longest value an iSCSI login's text keys carry (255 bytes, RFC 3720 §5.1).
//! A backend that keeps less says so at the key (LIO: 223 bytes, `iscsi_ha_lio::settings`).
//! A name that breaks only the RFC's stricter rules (the noSAN installer's
//! `iqn.2015.com.halizard:noSAN`) is accepted with a warning.
//!
//! The text is kept exactly as written: targets compare names byte for byte (tgtd's
//! `target_find_by_name` and `iqn_match` use `strcmp`), so `...:noSAN` and `...:nosan` are
//! different targets.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest iSCSI name RFC 3720 allows (§3.2.6.2); a longer one only draws a warning.
pub const MAX_ISCSI_NAME_LEN: usize = 223;

/// Longest name accepted: the longest value a login's text key carries (RFC 3720 §5.1), and
/// what tgtd's 256-byte name buffers keep whole (`ISCSI_NAME_LEN`, tgt `usr/iscsi/iscsid.h`).
pub const MAX_NAME_LEN: usize = 255;

/// An iSCSI name every backend takes, as written (case kept): ASCII letters, digits, `:`, `.`
/// and `-`, 1 to [`MAX_NAME_LEN`] bytes. [`Iqn::rfc_deviations`] says where it strays from the RFC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iqn(String);

/// Why a string cannot be an iSCSI name here: a backend would refuse it, or no login could
/// carry it whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not an iSCSI name every target backend accepts: {reason} (expected e.g. iqn.2024-01.com.example:storage)")]
pub struct IqnError {
    /// The refused text.
    pub name: String,
    /// Which rule it breaks, and whose.
    pub reason: &'static str,
}

/// One RFC rule a name breaks although the backends accept it; shown as a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfcDeviation {
    /// The rule's place, e.g. `RFC 3720 §3.2.6.3.1`.
    pub rule: &'static str,
    /// What the rule asks for.
    pub what: &'static str,
}

impl fmt::Display for RfcDeviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.what)
    }
}

/// The characters every backend allows in a target name: tgtd's, the narrowest (tgt
/// `usr/target.c` `tgt_target_create`: `isalnum(*p) || *p == ':' || *p == '.' || *p == '-'`;
/// tgtd never calls `setlocale`, so `isalnum` is ASCII's). They exclude `,` and `=`, on which
/// tgtd splits its request parameters.
fn every_backend_allows(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-')
}

impl Iqn {
    /// Takes `name` as written if every backend accepts it.
    pub fn new(name: impl Into<String>) -> Result<Self, IqnError> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("it is empty; a target needs a name")
        } else if name.len() > MAX_NAME_LEN {
            Some("longer than 255 bytes, the longest value an iSCSI login carries (RFC 3720 §5.1)")
        } else if !name.chars().all(every_backend_allows) {
            Some("only ASCII letters, digits, ':', '.' and '-', the characters every target backend takes (tgtd allows no others: tgt usr/target.c, tgt_target_create)")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(IqnError { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every RFC rule the name breaks; empty for a name RFC 3720 (or RFC 3980) allows.
    pub fn rfc_deviations(&self) -> Vec<RfcDeviation> {
        let mut out = Vec::new();
        if self.0.len() > MAX_ISCSI_NAME_LEN {
            out.push(RfcDeviation {
                rule: "RFC 3720 §3.2.6.2",
                what: "an iSCSI name is at most 223 bytes",
            });
        }
        if self.0.chars().any(|c| c.is_ascii_uppercase()) {
            out.push(RfcDeviation {
                rule: "RFC 3720 §3.2.6.2",
                what: "iSCSI names are written in lower case (targets and initiators compare the exact text, so write it the same way everywhere)",
            });
        }
        // The structure is checked on the lower-case text, so that upper case is reported once.
        let lower = self.0.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("iqn.") {
            iqn_deviations(rest, &mut out);
        } else if let Some(hex) = lower.strip_prefix("eui.") {
            if !is_hex(hex, &[16]) {
                out.push(RfcDeviation {
                    rule: "RFC 3720 §3.2.6.3.2",
                    what: "eui. is followed by 16 hex digits",
                });
            }
        } else if let Some(hex) = lower.strip_prefix("naa.") {
            if !is_hex(hex, &[16, 32]) {
                out.push(RfcDeviation {
                    rule: "RFC 3980",
                    what: "naa. is followed by 16 or 32 hex digits",
                });
            }
        } else {
            out.push(RfcDeviation {
                rule: "RFC 3720 §3.2.6.3",
                what: "an iSCSI name starts with its type: iqn., eui. (or naa., RFC 3980)",
            });
        }
        out
    }
}

/// The `iqn.` rules for what follows `iqn.`, already in lower case and in the backends' characters.
fn iqn_deviations(rest: &str, out: &mut Vec<RfcDeviation>) {
    let bytes = rest.as_bytes();
    let date_ok = bytes.len() >= 8
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && matches!(
            &rest[5..7],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
        && bytes[7] == b'.';
    if !date_ok {
        out.push(RfcDeviation {
            rule: "RFC 3720 §3.2.6.3.1",
            what: "after iqn. comes a date as yyyy-mm (a month the naming authority owned its domain), then a dot",
        });
        return;
    }
    let (authority, unique) = match rest[8..].split_once(':') {
        Some((authority, unique)) => (authority, Some(unique)),
        None => (&rest[8..], None),
    };
    let labels_ok = !authority.is_empty() && authority.split('.').all(|label| !label.is_empty());
    if !labels_ok {
        out.push(RfcDeviation {
            rule: "RFC 3720 §3.2.6.3.1",
            what: "after the date comes the naming authority, a reversed domain name (labels of letters, digits and '-' between single dots)",
        });
    }
    if unique.is_some_and(str::is_empty) {
        out.push(RfcDeviation {
            rule: "RFC 3720 §3.2.6.3.1",
            what: "a ':' after the naming authority is followed by a name unique within it",
        });
    }
}

fn is_hex(hex: &str, lengths: &[usize]) -> bool {
    lengths.contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit())
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
    use proptest::prelude::*;

    fn rules(name: &str) -> Vec<String> {
        Iqn::new(name)
            .unwrap_or_else(|e| panic!("{e}"))
            .rfc_deviations()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rfc_3720_names_draw_no_warning() {
        for name in [
            "iqn.2024-01.com.example:storage",
            "iqn.2001-04.com.example",
            "iqn.2015-06.com.halizard:nosan.disk-1",
            "iqn.1994-05.com.redhat:8a8b3c2d1e",
            "iqn.2024-01.com.example:a:b:c",
            "eui.02004567a425678d",
            "naa.52004567ba64678d",
            "naa.6001405a1b2c3d4e5f60718293a4b5c6",
        ] {
            assert_eq!(rules(name), Vec::<String>::new(), "{name}");
        }
    }

    #[test]
    fn the_nosan_name_is_kept_exactly_with_two_warnings() {
        let iqn = Iqn::new("iqn.2015.com.halizard:noSAN").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(iqn.as_str(), "iqn.2015.com.halizard:noSAN");
        assert_eq!(iqn.to_string(), "iqn.2015.com.halizard:noSAN");
        let found = rules("iqn.2015.com.halizard:noSAN");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("RFC 3720 §3.2.6.2: iSCSI names are written in lower case"));
        assert!(found[1].starts_with("RFC 3720 §3.2.6.3.1: after iqn. comes a date as yyyy-mm"));
    }

    #[test]
    fn each_rfc_rule_is_named_by_its_section() {
        let cases: [(&str, &str); 8] = [
            (
                "iqn.2024-13.com.example",
                "RFC 3720 §3.2.6.3.1: after iqn. comes a date",
            ),
            (
                "iqn.2024-01.",
                "RFC 3720 §3.2.6.3.1: after the date comes the naming authority",
            ),
            (
                "iqn.2024-01.com..example",
                "RFC 3720 §3.2.6.3.1: after the date comes the naming authority",
            ),
            (
                "iqn.2024-01.com.example:",
                "RFC 3720 §3.2.6.3.1: a ':' after the naming authority",
            ),
            (
                "target1",
                "RFC 3720 §3.2.6.3: an iSCSI name starts with its type",
            ),
            (
                "eui.123",
                "RFC 3720 §3.2.6.3.2: eui. is followed by 16 hex digits",
            ),
            (
                "naa.zz04567ba64678d0",
                "RFC 3980: naa. is followed by 16 or 32 hex digits",
            ),
            (
                "IQN.2024-01.com.example",
                "RFC 3720 §3.2.6.2: iSCSI names are written in lower case",
            ),
        ];
        for (name, rule) in cases {
            let found = rules(name);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert!(found[0].starts_with(rule), "{name}: {found:?}");
        }
        let long = format!("iqn.2024-01.com.example:{}", "a".repeat(200));
        assert_eq!(
            rules(&long),
            vec!["RFC 3720 §3.2.6.2: an iSCSI name is at most 223 bytes".to_string()]
        );
    }

    #[test]
    fn only_what_a_backend_refuses_is_refused_naming_the_rule() {
        for (name, reason) in [
            ("", "it is empty"),
            ("iqn.2024-01.com.example:a b", "only ASCII letters"),
            ("iqn.2024-01.com.example:disk_1", "only ASCII letters"),
            ("iqn.2024-01.com.example:a,b", "only ASCII letters"),
            ("iqn.2024-01.com.example:a=b", "only ASCII letters"),
            ("iqn.2024-01.com.exämple", "only ASCII letters"),
        ] {
            let err = Iqn::new(name).err().map(|e| e.reason);
            assert!(
                err.is_some_and(|r| r.starts_with(reason)),
                "{name}: {err:?}"
            );
        }
        let at_limit = format!("iqn.2024-01.com.example:{}", "a".repeat(MAX_NAME_LEN - 24));
        assert_eq!(at_limit.len(), MAX_NAME_LEN);
        assert!(Iqn::new(at_limit.clone()).is_ok());
        let err = Iqn::new(format!("{at_limit}a")).err().map(|e| e.reason);
        assert!(err.is_some_and(|r| r.starts_with("longer than 255 bytes")));
    }

    #[test]
    fn error_names_the_text_and_the_rule() {
        let err = Iqn::new("iqn.2015-01.com.x:a_b")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("\"iqn.2015-01.com.x:a_b\" is not an iSCSI name every target backend accepts: only ASCII letters, digits, ':', '.' and '-', the characters every target backend takes (tgtd allows no others: tgt usr/target.c, tgt_target_create) (expected e.g. iqn.2024-01.com.example:storage)")
        );
    }

    /// A name RFC 3720 allows for `iqn.`: date, reversed domain, optional unique part.
    fn rfc_iqn() -> impl Strategy<Value = String> {
        (
            1990u32..2100,
            1u32..=12,
            proptest::collection::vec("[a-z0-9][a-z0-9-]{0,10}", 1..4),
            proptest::option::of("[a-z0-9][a-z0-9.:-]{0,30}"),
        )
            .prop_map(|(year, month, labels, unique)| {
                let mut name = format!("iqn.{year}-{month:02}.{}", labels.join("."));
                if let Some(u) = unique {
                    name.push(':');
                    name.push_str(&u);
                }
                name
            })
    }

    proptest! {
        #[test]
        fn whatever_every_backend_accepts_is_taken_exactly(name in "[A-Za-z0-9:.-]{1,255}") {
            let iqn = Iqn::new(name.clone());
            prop_assert!(iqn.is_ok(), "{:?}", iqn);
            prop_assert_eq!(iqn.map(String::from).ok(), Some(name));
        }

        #[test]
        fn a_character_a_backend_refuses_is_refused(
            head in "[a-z0-9:.-]{0,20}",
            bad in "[^A-Za-z0-9:.-]",
            tail in "[a-z0-9:.-]{0,20}",
        ) {
            let name = format!("{head}{bad}{tail}");
            let err = Iqn::new(name).err().map(|e| e.reason);
            prop_assert!(err.is_some_and(|r| r.starts_with("only ASCII letters")), "{:?}", err);
        }

        #[test]
        fn rfc_names_draw_no_warning(name in rfc_iqn()) {
            prop_assert_eq!(rules(&name), Vec::<String>::new());
        }

        #[test]
        fn upper_case_in_an_rfc_name_draws_only_the_case_warning(
            name in rfc_iqn(),
            at in any::<proptest::sample::Index>(),
        ) {
            let letters: Vec<usize> = name
                .char_indices()
                .filter(|(_, c)| c.is_ascii_lowercase())
                .map(|(i, _)| i)
                .collect();
            let i = letters[at.index(letters.len())];
            let mut upper = name.clone();
            upper.replace_range(i..=i, &name[i..=i].to_ascii_uppercase());
            let found = rules(&upper);
            prop_assert_eq!(found.len(), 1);
            prop_assert!(found[0].starts_with("RFC 3720 §3.2.6.2: iSCSI names are written in lower case"));
            prop_assert_eq!(Iqn::new(upper.clone()).map(String::from).ok(), Some(upper));
        }
    }
}
