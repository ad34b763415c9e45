//! `/etc/multipath.conf`'s `blacklist` and `blacklist_exceptions` `devnode` patterns, and
//! who holds a block device now (`/sys/class/block/NAME/holders`). multipathd claiming a
//! `drbdN` device (or LVM/device-mapper holding it) keeps it open, so DRBD refuses to demote
//! it and failover blocks.

use regex::Regex;
use std::path::Path;

/// Where multipath reads its configuration.
pub const MULTIPATH_CONF: &str = "/etc/multipath.conf";

/// The `devnode` patterns that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    /// `blacklist { devnode "..." }`.
    pub devnodes: Vec<String>,
    /// `blacklist_exceptions { devnode "..." }` (an exception wins over the blacklist).
    pub exceptions: Vec<String>,
}

/// Reads the `devnode` lines of the top-level `blacklist` and `blacklist_exceptions`
/// sections; `#` and `!` start comments. Unbalanced braces are an error.
pub fn parse(text: &str) -> Result<Blacklist, String> {
    let mut out = Blacklist::default();
    let mut stack: Vec<String> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let words = split_words(strip_comment(raw));
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w == "}" {
                if stack.pop().is_none() {
                    return Err(format!("line {}: a `}}` closes nothing", n + 1));
                }
                i += 1;
            } else if words.get(i + 1).map(String::as_str) == Some("{") {
                stack.push(w.clone());
                i += 2;
            } else if w == "devnode" && stack.len() == 1 && i + 1 < words.len() {
                match stack[0].as_str() {
                    "blacklist" => out.devnodes.push(words[i + 1].clone()),
                    "blacklist_exceptions" => out.exceptions.push(words[i + 1].clone()),
                    _ => {}
                }
                i += 2;
            } else {
                i += 1;
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("section `{open}` is not closed"));
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                if quoted {
                    out.push(std::mem::take(&mut cur));
                }
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether multipath leaves the kernel device `name` (`drbd1`) alone: a blacklist pattern
/// matches it and no exception does. Returns the deciding pattern, or why it is not left alone.
pub fn excludes(list: &Blacklist, name: &str) -> Result<String, String> {
    let matching = |patterns: &[String]| -> Result<Option<String>, String> {
        for p in patterns {
            let re = Regex::new(p).map_err(|e| format!("pattern {p:?} does not parse: {e}"))?;
            if re.is_match(name) {
                return Ok(Some(p.clone()));
            }
        }
        Ok(None)
    };
    if let Some(e) = matching(&list.exceptions)? {
        return Err(format!(
            "blacklist_exceptions devnode {e:?} takes {name} back"
        ));
    }
    matching(&list.devnodes)?.ok_or_else(|| format!("no blacklist devnode pattern matches {name}"))
}

/// The devices holding `/sys/class/block/NAME` (device-mapper's `dm-3`, md's `md0`), read
/// from sysfs; an unreadable directory is an error.
pub fn holders(sys_block: &Path, name: &str) -> Result<Vec<String>, String> {
    let dir = sys_block.join(name).join("holders");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .take(64)
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_devnodes_of_both_sections_and_skips_comments() {
        let text = r#"
defaults { user_friendly_names yes }
blacklist {
    devnode "^(ram|loop)[0-9]*"   # built-in style
    # devnode "^sd"
    devnode "^drbd[0-9]+"
    device {
        vendor "ACME"
    }
}
blacklist_exceptions {
    devnode "^sdz"
}
"#;
        let b = parse(text).unwrap();
        assert_eq!(b.devnodes, vec!["^(ram|loop)[0-9]*", "^drbd[0-9]+"]);
        assert_eq!(b.exceptions, vec!["^sdz"]);
        assert_eq!(excludes(&b, "drbd1"), Ok("^drbd[0-9]+".into()));
        assert!(excludes(&b, "sdb").is_err());
        assert!(parse("blacklist {\n devnode \"x\"\n").is_err());
        assert!(parse("}\n").is_err());
    }

    #[test]
    fn an_exception_takes_a_device_back() {
        let b = Blacklist {
            devnodes: vec![".*".into()],
            exceptions: vec!["^drbd".into()],
        };
        assert!(excludes(&b, "drbd0")
            .unwrap_err()
            .contains("takes drbd0 back"));
    }
}
