//! A small, bounded reader of `drbd.conf`: what `doctor` needs and the kernel does not hold
//! (the fence-peer handler), plus the options it does hold, as a fallback when a resource is
//! not connected. Not a drbdadm: it reads `include` (with `*`/`?` globs in the last path
//! component), `#` comments, quoted strings, and `common` and `resource NAME` sections with
//! their `handlers`, `disk`, `net` sub-sections, and `device`/`disk` (also inside `on HOST`);
//! anything else is skipped. A resource's own
//! value wins over `common`'s, as in drbdadm.

use crate::small_file::{self, CONFIG_FILE_CAP};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where drbdadm starts reading.
pub const DRBD_CONF: &str = "/etc/drbd.conf";
/// At most this many files are read (includes included).
const MAX_FILES: usize = 64;
/// Includes nest at most this deep.
const MAX_DEPTH: usize = 4;

/// Why the configuration could not be read; says which file and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DrbdConfError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// Options of a section, keyed `sub-section.option` (`handlers.fence-peer`, `disk.fencing`,
/// `net.after-sb-1pri`) or plain `protocol`; values as written, quotes removed.
pub type Options = BTreeMap<String, String>;

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrbdConf {
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// The `common` section.
    pub common: Options,
    /// Each `resource` section by name.
    pub resources: BTreeMap<String, Options>,
}

impl DrbdConf {
    /// The effective value of `key` for `resource`: its own, else `common`'s; with the file
    /// section it came from (`resource r0` or `common`) for messages.
    pub fn get(&self, resource: &str, key: &str) -> Option<(&str, &'static str)> {
        if let Some(v) = self.resources.get(resource).and_then(|o| o.get(key)) {
            return Some((v, "resource"));
        }
        self.common.get(key).map(|v| (v.as_str(), "common"))
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    use super::lexer::{lex, Lexeme};
    Ok(lex(text, "{};")?
        .into_iter()
        .map(|l| match l {
            Lexeme::Sym('{') => Token::Open,
            Lexeme::Sym('}') => Token::Close,
            Lexeme::Sym(_) => Token::End,
            Lexeme::Word(w) | Lexeme::Text(w) => Token::Word(w),
        })
        .collect())
}

/// One statement: its words, and its block when it has one (`disk { ... }`).
#[derive(Debug)]
struct Statement {
    words: Vec<String>,
    block: Option<Vec<Statement>>,
}

fn parse_block(tokens: &[Token], pos: &mut usize, nested: bool) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    while let Some(t) = tokens.get(*pos) {
        *pos += 1;
        match t {
            Token::Word(w) => words.push(w.clone()),
            Token::End => {
                if !words.is_empty() {
                    out.push(Statement {
                        words: std::mem::take(&mut words),
                        block: None,
                    });
                }
            }
            Token::Open => {
                let block = parse_block(tokens, pos, true)?;
                out.push(Statement {
                    words: std::mem::take(&mut words),
                    block: Some(block),
                });
            }
            Token::Close if nested => {
                if !words.is_empty() {
                    return Err(format!("`{}` lacks its `;`", words.join(" ")));
                }
                return Ok(out);
            }
            Token::Close => return Err("a `}` closes nothing".into()),
        }
    }
    if nested {
        return Err("a `{` is not closed".into());
    }
    if !words.is_empty() {
        return Err(format!("`{}` lacks its `;`", words.join(" ")));
    }
    Ok(out)
}

/// The options of a `common` or `resource` body.
fn options_of(body: &[Statement]) -> Options {
    let mut out = Options::new();
    for s in body {
        let Some(first) = s.words.first() else {
            continue;
        };
        match &s.block {
            Some(inner)
                if s.words.len() == 1 && matches!(first.as_str(), "handlers" | "disk" | "net") =>
            {
                for o in inner
                    .iter()
                    .filter(|o| o.block.is_none() && o.words.len() >= 2)
                {
                    out.insert(format!("{first}.{}", o.words[0]), o.words[1..].join(" "));
                }
            }
            None if matches!(first.as_str(), "protocol" | "disk" | "device")
                && s.words.len() == 2 =>
            {
                out.insert(first.clone(), s.words[1].clone());
            }
            // `on HOST { device ..; disk ..; }`: kept as `on.HOST.disk`.
            Some(inner) if first == "on" && s.words.len() == 2 => {
                for o in inner
                    .iter()
                    .filter(|o| o.block.is_none() && o.words.len() == 2)
                {
                    if matches!(o.words[0].as_str(), "disk" | "device") {
                        out.insert(
                            format!("on.{}.{}", s.words[1], o.words[0]),
                            o.words[1].clone(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // 8.4 also takes the protocol inside `net`.
    if let Some(p) = out.get("net.protocol").cloned() {
        out.entry("protocol".into()).or_insert(p);
    }
    out
}

/// Whether `name` matches a glob of `*` and `?`.
fn glob_match(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some('?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The files an `include` names, sorted (as glob(3) sorts them); relative to the including
/// file's directory. A pattern that matches nothing is no error (drbdadm skips it too).
fn expand_include(pattern: &str, from: &Path) -> Result<Vec<PathBuf>, DrbdConfError> {
    let base = from.parent().unwrap_or(Path::new("/"));
    let full = base.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![full]);
    }
    let dir = full.parent().unwrap_or(Path::new("/"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(DrbdConfError {
                path: dir.display().to_string(),
                reason: format!("cannot list the directory ({e})"),
            })
        }
    };
    let pattern: Vec<char> = name.chars().collect();
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n: Vec<char> = e.file_name().to_string_lossy().chars().collect();
            // As glob(3): `*` does not match a leading dot.
            n.first() != Some(&'.') && glob_match(&pattern, &n)
        })
        .map(|e| e.path())
        .take(MAX_FILES + 1)
        .collect();
    out.sort();
    Ok(out)
}

/// Reads `path` and everything it includes.
pub fn read(path: &Path) -> Result<DrbdConf, DrbdConfError> {
    let mut conf = DrbdConf::default();
    read_into(path, 0, &mut conf)?;
    Ok(conf)
}

fn read_into(path: &Path, depth: usize, conf: &mut DrbdConf) -> Result<(), DrbdConfError> {
    let fail = |reason: String| DrbdConfError {
        path: path.display().to_string(),
        reason,
    };
    if conf.files.len() >= MAX_FILES {
        return Err(fail(format!("more than {MAX_FILES} files are included")));
    }
    let text = small_file::read(path, CONFIG_FILE_CAP).map_err(|e| fail(e.to_string()))?;
    conf.files.push(path.to_path_buf());
    let tokens = tokenize(&text).map_err(fail)?;
    let statements = parse_block(&tokens, &mut 0, false).map_err(fail)?;
    for s in statements {
        match (s.words.first().map(String::as_str), s.words.len(), &s.block) {
            (Some("include"), 2, None) => {
                if depth >= MAX_DEPTH {
                    return Err(fail(format!("includes nest deeper than {MAX_DEPTH}")));
                }
                for file in expand_include(&s.words[1], path)? {
                    read_into(&file, depth + 1, conf)?;
                }
            }
            (Some("common"), 1, Some(body)) => {
                conf.common.extend(options_of(body));
            }
            (Some("resource"), 2, Some(body)) => {
                conf.resources
                    .entry(s.words[1].clone())
                    .or_default()
                    .extend(options_of(body));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_common_and_resource_sections_through_includes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("drbd.d")).unwrap();
        std::fs::write(
            d.join("drbd.conf"),
            "# main\ninclude \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\n",
        )
        .unwrap();
        std::fs::write(
            d.join("drbd.d/global_common.conf"),
            "global { usage-count no; }\ncommon {\n  protocol C; # why\n  handlers { fence-peer \"/usr/sbin/iscsi-ha fence-peer\"; }\n  net { after-sb-0pri disconnect; }\n}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("drbd.d/r0.res"),
            "resource r0 {\n  disk /dev/vdb;\n  on node2 { device /dev/drbd3; }\n  disk { fencing resource-and-stonith; }\n  net { protocol A; after-sb-1pri discard-secondary; }\n  on node1 { address 10.0.0.1:7789; }\n}\n",
        )
        .unwrap();
        std::fs::write(d.join("drbd.d/.hidden.res"), "resource x {").unwrap();
        let conf = read(&d.join("drbd.conf")).unwrap();
        assert_eq!(conf.files.len(), 3);
        assert_eq!(
            conf.get("r0", "handlers.fence-peer"),
            Some(("/usr/sbin/iscsi-ha fence-peer", "common"))
        );
        assert_eq!(
            conf.get("r0", "disk.fencing"),
            Some(("resource-and-stonith", "resource"))
        );
        assert_eq!(conf.get("r0", "protocol"), Some(("A", "resource")));
        assert_eq!(conf.get("r1", "protocol"), Some(("C", "common")));
        assert_eq!(
            conf.get("r0", "net.after-sb-1pri"),
            Some(("discard-secondary", "resource"))
        );
        assert_eq!(
            conf.get("r0", "net.after-sb-0pri"),
            Some(("disconnect", "common"))
        );
    }

    #[test]
    fn broken_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("drbd.conf");
        for (text, why) in [
            ("resource r0 { protocol C;", "not closed"),
            ("resource r0 { protocol C }", "lacks its `;`"),
            ("}", "closes nothing"),
            ("common { handlers { fence-peer \"x; } }", "quoted string"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read(&p).unwrap_err();
            assert!(e.reason.contains(why), "{text}: {e}");
            assert_eq!(e.path, p.display().to_string());
        }
        std::fs::write(&p, "include \"drbd.conf\";").unwrap();
        assert!(read(&p).unwrap_err().reason.contains("deeper"));
        assert!(read(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn globs_match_like_glob3() {
        let m = |p: &str, n: &str| {
            glob_match(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("*.res", "r0.res"));
        assert!(m("r?.res", "r0.res"));
        assert!(!m("*.res", "r0.res.bak"));
        assert!(m("*", ""));
    }
}
