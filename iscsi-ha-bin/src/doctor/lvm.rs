//! `/etc/lvm/lvm.conf`, the `devices` section, enough for doctor: `filter`, `global_filter`
//! (arrays, possibly over several lines) and `write_cache_state`. LVM scanning DRBD's backing
//! disk would activate its volumes underneath DRBD (writes that bypass replication), and a
//! device LVM holds makes a demotion fail, which blocks failover.

use regex::Regex;
use std::collections::BTreeMap;

/// Where LVM reads its configuration.
pub const LVM_CONF: &str = "/etc/lvm/lvm.conf";

/// A value in lvm.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LvmValue {
    /// A number or a bare word.
    Scalar(String),
    /// A quoted string.
    Text(String),
    /// `[ "a", "b" ]`.
    List(Vec<String>),
}

/// The `devices` section's settings, by name.
pub type DevicesSection = BTreeMap<String, LvmValue>;

use super::lexer::Lexeme as Tok;

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    super::lexer::lex(text, "{}[]=,")
}

/// The `devices` section of lvm.conf's text (empty when there is none). Later settings of the
/// same name win, as in LVM.
pub fn parse_devices(text: &str) -> Result<DevicesSection, String> {
    let toks = tokenize(text)?;
    let mut out = DevicesSection::new();
    let mut i = 0;
    let mut path: Vec<String> = Vec::new();
    while i < toks.len() {
        match (&toks[i], toks.get(i + 1)) {
            (Tok::Word(name), Some(Tok::Sym('{'))) => {
                path.push(name.clone());
                i += 2;
            }
            (Tok::Sym('}'), _) => {
                if path.pop().is_none() {
                    return Err("a `}` closes nothing".into());
                }
                i += 1;
            }
            (Tok::Word(name), Some(Tok::Sym('='))) => {
                let (value, next) = parse_value(&toks, i + 2)
                    .ok_or_else(|| format!("`{name} =` has no value LVM would read"))?;
                if path == ["devices"] {
                    out.insert(name.clone(), value);
                }
                i = next;
            }
            (t, _) => return Err(format!("unexpected {t:?}")),
        }
    }
    if !path.is_empty() {
        return Err(format!("section `{}` is not closed", path.join("/")));
    }
    Ok(out)
}

fn parse_value(toks: &[Tok], i: usize) -> Option<(LvmValue, usize)> {
    match toks.get(i)? {
        Tok::Word(w) => Some((LvmValue::Scalar(w.clone()), i + 1)),
        Tok::Text(t) => Some((LvmValue::Text(t.clone()), i + 1)),
        Tok::Sym('[') => {
            let mut items = Vec::new();
            let mut j = i + 1;
            loop {
                match toks.get(j)? {
                    Tok::Sym(']') => return Some((LvmValue::List(items), j + 1)),
                    Tok::Sym(',') => {}
                    Tok::Text(t) | Tok::Word(t) => items.push(t.clone()),
                    Tok::Sym(_) => return None,
                }
                j += 1;
            }
        }
        Tok::Sym(_) => None,
    }
}

/// What a filter decides for a device path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterVerdict {
    /// An `r` pattern matched first.
    Rejected(String),
    /// An `a` pattern matched first.
    Accepted(String),
    /// No pattern matched: LVM accepts the device.
    NoMatch,
}

/// Applies an LVM filter (`"a|regex|"`, `"r|regex|"`, any delimiter) to one name of a device:
/// the first pattern that matches decides. A pattern that does not parse is an error naming it.
pub fn apply_filter(patterns: &[String], name: &str) -> Result<FilterVerdict, String> {
    for p in patterns {
        let mut chars = p.chars();
        let kind = chars.next();
        let delim = chars.next();
        let (Some(kind @ ('a' | 'r')), Some(delim)) = (kind, delim) else {
            return Err(format!("{p:?} is not `a|regex|` or `r|regex|`"));
        };
        let rest: String = chars.collect();
        let Some(body) = rest.strip_suffix(delim) else {
            return Err(format!("{p:?} does not end with its delimiter {delim:?}"));
        };
        let re = Regex::new(body).map_err(|e| format!("{p:?}: {e}"))?;
        if re.is_match(name) {
            return Ok(if kind == 'r' {
                FilterVerdict::Rejected(p.clone())
            } else {
                FilterVerdict::Accepted(p.clone())
            });
        }
    }
    Ok(FilterVerdict::NoMatch)
}

/// Whether a filter rejects a device known by several names (its path and its
/// `/dev/disk/by-*` links): LVM rejects it only when every name is rejected, so one name an
/// `a` pattern (or no pattern) lets through is enough to accept it. `Ok(pattern)` names a
/// rejecting pattern; `Err` says which name gets through and why.
pub fn rejects_device(
    patterns: &[String],
    names: &[String],
) -> Result<Result<String, String>, String> {
    let mut by = String::new();
    for n in names {
        match apply_filter(patterns, n)? {
            FilterVerdict::Rejected(p) => by = p,
            FilterVerdict::Accepted(p) => return Ok(Err(format!("{n} is accepted by {p:?}"))),
            FilterVerdict::NoMatch => {
                return Ok(Err(format!("{n} matches no pattern (LVM accepts it)")))
            }
        }
    }
    Ok(Ok(by))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CONF: &str = r#"
config {
    checks = 1
}
devices {
    dir = "/dev"
    # filter = [ "a|.*|" ]
    global_filter = [ "r|^/dev/vdb$|",
                      "r|/dev/drbd.*|",   # DRBD's own devices
                      "a|.*|" ]
    write_cache_state = 0
    types = [ "fd", 16 ]
}
activation { volume_list = [ "vg0" ] }
"#;

    #[test]
    fn reads_the_devices_section_with_arrays_over_lines_and_comments() {
        let d = parse_devices(CONF).unwrap();
        assert_eq!(
            d.get("global_filter"),
            Some(&LvmValue::List(vec![
                "r|^/dev/vdb$|".into(),
                "r|/dev/drbd.*|".into(),
                "a|.*|".into()
            ]))
        );
        assert_eq!(
            d.get("write_cache_state"),
            Some(&LvmValue::Scalar("0".into()))
        );
        assert_eq!(d.get("filter"), None);
        assert_eq!(d.get("volume_list"), None);
        assert!(parse_devices("devices {").is_err());
        assert!(parse_devices("devices { filter = [ \"a|x|\" }").is_err());
    }

    #[test]
    fn the_first_matching_pattern_decides_and_every_name_must_be_rejected() {
        let v = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = v(&["r|^/dev/vdb$|", "a|.*|"]);
        assert_eq!(
            apply_filter(&f, "/dev/vdb").unwrap(),
            FilterVerdict::Rejected("r|^/dev/vdb$|".into())
        );
        assert_eq!(
            apply_filter(&f, "/dev/vdc").unwrap(),
            FilterVerdict::Accepted("a|.*|".into())
        );
        assert_eq!(
            apply_filter(&[], "/dev/sdb").unwrap(),
            FilterVerdict::NoMatch
        );
        assert!(apply_filter(&v(&["x|a|"]), "/dev/sdb").is_err());
        assert!(apply_filter(&v(&["r|(|"]), "/dev/sdb").is_err());
        assert_eq!(
            rejects_device(&f, &v(&["/dev/vdb"])).unwrap(),
            Ok("r|^/dev/vdb$|".to_string())
        );
        let by_id = v(&["/dev/vdb", "/dev/disk/by-id/virtio-disk1"]);
        assert!(rejects_device(&f, &by_id)
            .unwrap()
            .unwrap_err()
            .contains("by-id/virtio-disk1"));
        let f = v(&["r|^/dev/vdb$|", "r|/dev/disk/by-id/virtio-disk1|"]);
        assert!(rejects_device(&f, &by_id).unwrap().is_ok());
    }
}
