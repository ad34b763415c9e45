//! Strict readers of `xe` list output. `xe <class>-list params=a,b` prints one record per
//! object, records separated by blank lines, one `name ( RO): value` line per parameter (the
//! access tag is ` RO`, ` RW`, `MRO`, `MRW`, `SRO` or `SRW`; `M` marks a map, printed as
//! `key: value; key: value`). Anything else is refused, never guessed at: a reply XAPI did not
//! write must not make us plug (or skip) storage.

use std::collections::BTreeMap;

/// The most of an `xe` reply that is kept ([`crate::role::ChildRun`]'s output cap); a reply
/// this long may have been cut and is refused.
pub const REPLY_CAP: usize = 64 * 1024;

/// Why an `xe` reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XeParseError {
    /// A line that is not `name (tag): value`.
    #[error("line {line} is not an xe parameter line")]
    NotAParameter {
        /// 1-based line number.
        line: usize,
    },
    /// A parameter that was not asked for, or one given twice in a record.
    #[error("line {line}: unexpected parameter {name:?}")]
    Unexpected {
        /// 1-based line number.
        line: usize,
        /// The parameter.
        name: String,
    },
    /// A record without a parameter that was asked for.
    #[error("record {record} lacks {name}")]
    Missing {
        /// 1-based record number.
        record: usize,
        /// The parameter.
        name: String,
    },
    /// A value of the wrong form (the value itself is not repeated: it may be a secret).
    #[error("{what} is not {expected}")]
    BadValue {
        /// Which value.
        what: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The reply reached the output cap and may have been cut.
    #[error("the reply is {0} bytes or more and may have been cut")]
    TooLong(usize),
}

/// One object's parameters, as printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XeRecord(BTreeMap<String, String>);

impl XeRecord {
    /// The value of `name` (every parameter asked for is present once parsing succeeded).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// Parses `xe <class>-list params=<fields>` output: every record must hold exactly `fields`.
/// An empty reply is no records.
pub fn parse_records(text: &str, fields: &[&str]) -> Result<Vec<XeRecord>, XeParseError> {
    if text.len() >= REPLY_CAP {
        return Err(XeParseError::TooLong(REPLY_CAP));
    }
    let mut records = Vec::new();
    let mut current: Option<XeRecord> = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            if let Some(record) = current.take() {
                records.push(complete(record, fields, records.len() + 1)?);
            }
            continue;
        }
        let (name, value) =
            parameter_line(line).ok_or(XeParseError::NotAParameter { line: line_no })?;
        let record = current.get_or_insert_with(XeRecord::default);
        if !fields.contains(&name) || record.0.contains_key(name) {
            return Err(XeParseError::Unexpected {
                line: line_no,
                name: name.to_string(),
            });
        }
        record.0.insert(name.to_string(), value.to_string());
    }
    if let Some(record) = current.take() {
        records.push(complete(record, fields, records.len() + 1)?);
    }
    Ok(records)
}

fn complete(record: XeRecord, fields: &[&str], number: usize) -> Result<XeRecord, XeParseError> {
    match fields.iter().find(|f| !record.0.contains_key(**f)) {
        Some(missing) => Err(XeParseError::Missing {
            record: number,
            name: (*missing).to_string(),
        }),
        None => Ok(record),
    }
}

/// `   name (TAG)   : value` → (name, value).
fn parameter_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    let open = line.find(" (")?;
    let name = &line[..open];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return None;
    }
    let rest = &line[open + 2..];
    let tag = rest.get(..3)?;
    if !matches!(tag, " RO" | " RW" | "MRO" | "MRW" | "SRO" | "SRW") {
        return None;
    }
    let rest = rest[3..].strip_prefix(')')?.trim_start_matches(' ');
    let value = rest.strip_prefix(':')?;
    Some((name, value.strip_prefix(' ').unwrap_or(value).trim_end()))
}

/// Parses a map parameter's value, `key: value; key: value` (keys are single words; a value
/// runs to the next `; `). `what` names the map in errors; values are never quoted in them.
pub fn parse_map(text: &str, what: &str) -> Result<BTreeMap<String, String>, XeParseError> {
    let mut map = BTreeMap::new();
    if text.trim().is_empty() {
        return Ok(map);
    }
    for (i, entry) in text.split("; ").enumerate() {
        let bad = || XeParseError::BadValue {
            what: format!("entry {} of {what}", i + 1),
            expected: "key: value",
        };
        let (key, value) = entry.split_once(':').ok_or_else(bad)?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) || map.contains_key(key) {
            return Err(bad());
        }
        map.insert(key.to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// Whether `text` is a UUID as XAPI prints them (8-4-4-4-12 hexadecimal digits).
pub fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBD: &str = "8c2e0d7e-5a56-4b7f-9d0c-1c1e6f2b9a01";

    #[test]
    fn records_are_read_as_xe_prints_them() {
        let text = format!(
            "uuid ( RO)                  : {PBD}\n    currently-attached ( RO): false\n         device-config (MRO): target: 10.10.10.3; targetIQN: iqn.2024-01.com.example:storage\n\n\nuuid ( RO)                  : {PBD}\n    currently-attached ( RO): true\n         device-config (MRO): \n\n"
        );
        let fields = ["uuid", "currently-attached", "device-config"];
        let records = parse_records(&text, &fields).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].get("uuid"), PBD);
        assert_eq!(records[0].get("currently-attached"), "false");
        let map = parse_map(records[0].get("device-config"), "device-config").unwrap();
        assert_eq!(map["target"], "10.10.10.3");
        assert_eq!(map["targetIQN"], "iqn.2024-01.com.example:storage");
        assert!(parse_map(records[1].get("device-config"), "x")
            .unwrap()
            .is_empty());
        assert_eq!(parse_records("", &fields).unwrap(), Vec::new());
        assert_eq!(parse_records("\n\n", &fields).unwrap(), Vec::new());
    }

    #[test]
    fn anything_xapi_would_not_print_is_refused() {
        let fields = ["uuid", "type"];
        for (text, want) in [
            ("hello world\n", "line 1 is not an xe parameter line"),
            (
                "uuid ( RO): a\nuuid ( RO): b\n",
                "line 2: unexpected parameter \"uuid\"",
            ),
            (
                "uuid ( RO): a\nname-label ( RW): b\n",
                "unexpected parameter \"name-label\"",
            ),
            ("uuid ( RO): a\n", "record 1 lacks type"),
            ("uuid (XX): a\ntype ( RO): b\n", "line 1 is not"),
            ("UUID ( RO): a\n", "line 1 is not"),
            ("uuid ( RO) a\n", "line 1 is not"),
            ("\u{0}\u{1}garbage", "line 1 is not"),
        ] {
            let e = parse_records(text, &fields).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let long = "x".repeat(REPLY_CAP);
        assert!(matches!(
            parse_records(&long, &fields),
            Err(XeParseError::TooLong(_))
        ));
        for map in ["target", "target: a; target: b", ": x", "two words: x"] {
            let e = parse_map(map, "device-config").unwrap_err().to_string();
            assert!(
                e.contains("of device-config is not key: value"),
                "{map}: {e}"
            );
        }
    }

    #[test]
    fn uuids_have_xapis_form() {
        assert!(is_uuid(PBD));
        assert!(!is_uuid("8c2e0d7e5a564b7f9d0c1c1e6f2b9a01"));
        assert!(!is_uuid("8c2e0d7e-5a56-4b7f-9d0c-1c1e6f2b9a0z"));
        assert!(!is_uuid(""));
    }
}
