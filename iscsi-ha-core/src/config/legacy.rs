//! Importer for the original bash add-on's `iscsi-ha.conf` (sourced `KEY=VALUE` lines), and
//! optionally the target a backend's reader found in its own file (tgt's `targets.conf`, read
//! by `iscsi-ha-tgt`), producing the equivalent TOML and a list of what has no equivalent.

use crate::iqn::Iqn;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// One `KEY=VALUE` assignment read from the legacy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable name.
    pub key: String,
    /// The value with quotes removed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// Which of the original's files a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LegacyFile {
    /// The add-on's `iscsi-ha.conf`.
    IscsiHaConf,
    /// tgt's `targets.conf`.
    TargetsConf,
}

impl LegacyFile {
    /// The file's usual name, for notes printed without its path.
    pub fn name(self) -> &'static str {
        match self {
            Self::IscsiHaConf => "iscsi-ha.conf",
            Self::TargetsConf => "targets.conf",
        }
    }
}

/// The target a backend's reader found in the original's target file, in the words of
/// `[target]`: what the importer writes, nothing of how that backend spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedTarget {
    /// The target's name, exactly as the original served it.
    pub iqn: Iqn,
    /// Its LUNs, in the file's order.
    pub luns: Vec<ImportedLun>,
    /// Who may log in.
    pub access: ImportedAccess,
}

/// One `[[target.lun]]` to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedLun {
    /// The LUN number.
    pub lun: u64,
    /// The backing device.
    pub path: String,
    /// SCSI device id, when the original set one.
    pub scsi_id: Option<String>,
    /// SCSI serial number, when the original set one.
    pub scsi_sn: Option<String>,
    /// INQUIRY vendor, when the original set one.
    pub vendor_id: Option<String>,
    /// INQUIRY product, when the original set one.
    pub product_id: Option<String>,
    /// Exported read-only.
    pub read_only: bool,
    /// `write_cache`, written only when the original set it explicitly (`None` leaves the
    /// key out, so iscsi-ha's default applies; the reader says so in a note).
    pub write_cache: Option<bool>,
}

/// `[target.access]` to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedAccess {
    /// Initiator addresses or ranges, as written (check-config validates them).
    pub initiators: Vec<String>,
    /// Initiator names.
    pub initiator_names: Vec<Iqn>,
    /// Every initiator allowed.
    pub allow_all: bool,
    /// Incoming CHAP accounts: user and password.
    pub incoming: Vec<(String, String)>,
    /// The outgoing (mutual) CHAP account.
    pub outgoing: Option<(String, String)>,
}

/// What a backend's reader made of the original's target file: the target, when the file held
/// one, and notes about what it changed or could not carry over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetImport {
    /// The target; `None` when the file defined none (a placeholder is written instead).
    pub target: Option<ImportedTarget>,
    /// Notes about the target file.
    pub notes: Vec<ImportNote>,
}

/// Something the importer could not carry over, or carried over with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportNote {
    /// The file the line number counts in.
    pub file: LegacyFile,
    /// The legacy key (or `line N` for a line that is not an assignment; for targets.conf, the
    /// directive or `target NAME`).
    pub key: String,
    /// 1-based line number, when it comes from a line.
    pub line: Option<usize>,
    /// What happened and what to do.
    pub note: String,
}

/// The importer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyImport {
    /// The TOML configuration text.
    pub toml: String,
    /// Keys with no equivalent, values that could not be carried over, and changes made.
    pub notes: Vec<ImportNote>,
}

/// Reads the assignments of a bash configuration file. Lines that are not assignments are
/// reported as notes; later assignments of a key win, as in bash.
pub fn parse_assignments(text: &str) -> (Vec<Assignment>, Vec<ImportNote>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .unwrap_or(trimmed)
            .trim_start();
        let Some((key, rest)) = body.split_once('=') else {
            notes.push(ImportNote {
                file: LegacyFile::IscsiHaConf,
                key: format!("line {line}"),
                line: Some(line),
                note: format!("not a KEY=VALUE assignment, ignored: {trimmed}"),
            });
            continue;
        };
        let valid_key = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        if !valid_key {
            notes.push(ImportNote {
                file: LegacyFile::IscsiHaConf,
                key: format!("line {line}"),
                line: Some(line),
                note: format!("not a KEY=VALUE assignment, ignored: {trimmed}"),
            });
            continue;
        }
        let (value, note) = unquote(rest);
        if let Some(note) = note {
            notes.push(ImportNote {
                file: LegacyFile::IscsiHaConf,
                key: key.to_string(),
                line: Some(line),
                note,
            });
        }
        // Inside single quotes bash expands nothing; elsewhere the original saw the result.
        let expanded = if rest.trim_start().starts_with('\'') {
            Vec::new()
        } else if key == "MAIL_SUBJECT" {
            // The host name is carried over as `{host}` (see the subject below).
            shell_expansions(&value.replace("${HOSTNAME}", "").replace("$HOSTNAME", ""))
        } else {
            shell_expansions(&value)
        };
        if !expanded.is_empty() {
            notes.push(ImportNote {
                file: LegacyFile::IscsiHaConf,
                key: key.to_string(),
                line: Some(line),
                note: format!(
                    "holds {} that bash expanded when the original ran; copied literally as {value:?}: replace it with the value it had",
                    expanded.join(" and ")
                ),
            });
        }
        out.push(Assignment {
            key: key.to_string(),
            value,
            line,
        });
    }
    (out, notes)
}

/// The kinds of shell expansion in a value bash would have expanded: command substitution
/// (`$(…)`, backticks), parameter expansion (`${…}`, `$NAME`, `$1`, `$?`…), arithmetic (`$((…))`).
fn shell_expansions(value: &str) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut add = |kind: &'static str| {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    };
    if value.contains('`') {
        add("a command substitution (`...`)");
    }
    let bytes = value.as_bytes();
    for (i, _) in value.match_indices('$') {
        match bytes.get(i + 1) {
            Some(b'(') if bytes.get(i + 2) == Some(&b'(') => {
                add("an arithmetic expansion ($((...)))")
            }
            Some(b'(') => add("a command substitution ($(...))"),
            Some(b'{') => add("a parameter expansion (${...})"),
            Some(c) if c.is_ascii_alphanumeric() || b"_?#@*!$-".contains(c) => {
                add("a variable ($NAME)");
            }
            _ => {}
        }
    }
    kinds
}

/// Removes bash quoting from a value: `"a b"`, `'a b'`, or a bare word ending at whitespace
/// or an unquoted `#`. A closing typographic quote (’ or ”), as in text pasted from documents,
/// is accepted with a note.
fn unquote(rest: &str) -> (String, Option<String>) {
    let rest = rest.trim_end();
    let mut chars = rest.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => {
            let inner = chars.as_str();
            if let Some(end) = inner.find(q) {
                (inner[..end].to_string(), None)
            } else if let Some(end) = inner.find(['\u{2019}', '\u{201d}']) {
                (
                    inner[..end].to_string(),
                    Some("closing quote is a typographic quote; read as a plain one".into()),
                )
            } else {
                (
                    inner.to_string(),
                    Some("quote is not closed on this line; the rest of the line was taken".into()),
                )
            }
        }
        _ => {
            let word = rest
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default();
            let word = word.split('#').next().unwrap_or_default();
            (word.to_string(), None)
        }
    }
}

/// Converts a dotted IPv4 netmask to a prefix length; `None` when the mask is not contiguous.
pub fn mask_to_prefix(mask: &str) -> Option<u8> {
    let bits = u32::from(mask.trim().parse::<Ipv4Addr>().ok()?);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| u8::try_from(ones).ok())?
}

struct Toml {
    out: String,
}

impl Toml {
    fn section(&mut self, name: &str) {
        let _ = write!(self.out, "\n[{name}]\n");
    }
    fn raw(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }
    fn string(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.out, "{key} = {}", quote(value));
    }
    fn strings(&mut self, key: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
        let _ = writeln!(self.out, "{key} = [{}]", items.join(", "));
    }
    fn number(&mut self, key: &str, value: u64) {
        let _ = writeln!(self.out, "{key} = {value}");
    }
    fn boolean(&mut self, key: &str, value: bool) {
        let _ = writeln!(self.out, "{key} = {value}");
    }
}

fn quote(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Keys the original read that need no setting here, with the reason.
const NO_EQUIVALENT: &[(&str, &str)] = &[
    ("ISCSI_TARGET_SERVICE", "tgtd is driven over its socket; see [target.tgt] (managed = true starts it)"),
    ("MONITOR_KILLALL", "there is no separate monitor process to kill; a failing component exhausts its restart budget instead"),
    ("MONITOR_SCANRATE", "there is no busy re-check loop; the daemon reacts to events"),
    ("MAIL_USE_SHARED_PARAMS", "HA-Lizard's shared mail settings are not read; the mail settings are imported from this file"),
    ("MANUAL_MODE", "manual mode is kept by the daemon (iscsi-cfg manual-mode-enable), not in the configuration"),
    ("SERVER_ONE_IP", "peer addresses come from drbd.conf, not from this file"),
    ("SERVER_TWO_IP", "peer addresses come from drbd.conf, not from this file"),
    ("REPLICATION_IP_ISCSI", "peer addresses come from drbd.conf, not from this file"),
];

/// Imports a legacy `iscsi-ha.conf`, with the target a backend's reader found in the original's
/// target file when there is one (a refusal to carry it over whole is that reader's to make).
pub fn import(conf: &str, target: Option<TargetImport>) -> LegacyImport {
    let (assignments, mut notes) = parse_assignments(conf);
    let mut vars: BTreeMap<&str, &Assignment> = BTreeMap::new();
    for a in &assignments {
        vars.insert(a.key.as_str(), a);
    }
    let mut used: Vec<&str> = Vec::new();
    let mut get = |key: &'static str| {
        used.push(key);
        vars.get(key).map(|a| (a.value.clone(), a.line))
    };
    let mut note = |key: &str, line: Option<usize>, text: String| {
        notes.push(ImportNote {
            file: LegacyFile::IscsiHaConf,
            key: key.to_string(),
            line,
            note: text,
        });
    };

    let mut t = Toml {
        out: String::from(
            "# Imported from the original iSCSI-HA iscsi-ha.conf by `iscsi-ha import-legacy`.\n\
             # Check it with `iscsi-ha check-config` before starting the daemon.\n",
        ),
    };

    t.section("role");
    t.raw("# The original read /etc/xensource/pool.conf.");
    t.string("source", "xapi");
    if let Some((v, line)) = get("XE_TIMEOUT") {
        match v.parse::<u64>() {
            Ok(secs) if secs > 0 => t.string("timeout", &format!("{secs}s")),
            _ => note(
                "XE_TIMEOUT",
                Some(line),
                format!("{v:?} is not a number of seconds; default kept"),
            ),
        }
    }

    t.section("replication");
    let resources: Vec<String> = match get("DRBD_RESOURCES") {
        Some((v, _)) => v
            .split([':', ' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => {
            note(
                "DRBD_RESOURCES",
                None,
                "not set; the original's default iscsi1 was used".into(),
            );
            vec!["iscsi1".to_string()]
        }
    };
    t.strings("resources", &resources);

    let mut target_notes = Vec::new();
    import_target(&mut t, target, &mut target_notes);

    t.section("vip");
    let ip = get("DRBD_VIRTUAL_IP");
    let mask = get("DRBD_VIRTUAL_MASK");
    let prefix = match &mask {
        Some((m, line)) => match mask_to_prefix(m) {
            Some(p) => p,
            None => {
                note(
                    "DRBD_VIRTUAL_MASK",
                    Some(*line),
                    format!("{m:?} is not a contiguous netmask; /24 used, check vip.address"),
                );
                24
            }
        },
        None => {
            note(
                "DRBD_VIRTUAL_MASK",
                None,
                "not set; the original's default 255.255.255.0 (/24) was used".into(),
            );
            24
        }
    };
    let ip = ip.map_or_else(
        || {
            note(
                "DRBD_VIRTUAL_IP",
                None,
                "not set; the original's default 10.10.10.3 was used".into(),
            );
            "10.10.10.3".to_string()
        },
        |(v, _)| v,
    );
    t.string("address", &format!("{ip}/{prefix}"));
    let interface = get("DRBD_INTERFACE").map_or_else(
        || {
            note(
                "DRBD_INTERFACE",
                None,
                "not set; the original's default xenbr1 was used".into(),
            );
            "xenbr1".to_string()
        },
        |(v, _)| v,
    );
    t.string("interface", &interface);

    t.section("monitor");
    if let Some((v, line)) = get("MONITOR_MAX_STARTS") {
        match v.parse::<u64>() {
            Ok(n) if n > 0 => t.number("max_starts", n),
            _ => note(
                "MONITOR_MAX_STARTS",
                Some(line),
                format!("{v:?} is not a positive number; default 5 kept"),
            ),
        }
    }
    if let Some((v, line)) = get("MONITOR_DELAY") {
        match v.parse::<u64>() {
            Ok(n) if n > 0 => {
                t.string("retry_delay", &format!("{n}s"));
                note("MONITOR_DELAY", Some(line), "became monitor.retry_delay (wait after a failed step); the daemon reacts to events instead of polling every MONITOR_DELAY seconds".into());
            }
            _ => note(
                "MONITOR_DELAY",
                Some(line),
                format!("{v:?} is not a positive number; default kept"),
            ),
        }
    }

    t.section("alerts");
    if let Some((v, line)) = get("MAIL_SCREEN_TIME") {
        match v.parse::<u64>() {
            Ok(n) if n > 0 => t.string("screen", &format!("{n}m")),
            _ => note(
                "MAIL_SCREEN_TIME",
                Some(line),
                format!("{v:?} is not a number of minutes; default 30m kept"),
            ),
        }
    }
    t.section("alerts.mail");
    let mut mail_on = get("MAIL_ON").is_some_and(|(v, _)| v == "1");
    let to: Vec<String> = get("MAIL_TO")
        .map(|(v, line)| {
            let (good, bad): (Vec<String>, Vec<String>) = v
                .split([',', ' ', ';'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .partition(|s| s.contains('@'));
            if !bad.is_empty() {
                note(
                    "MAIL_TO",
                    Some(line),
                    format!("{v:?} holds no valid mail address; fill in alerts.mail.to"),
                );
            }
            good
        })
        .unwrap_or_default();
    if mail_on && to.is_empty() {
        mail_on = false;
        note("MAIL_ON", None, "mail was on but has no valid recipient; mail left off until alerts.mail.to is filled in".into());
    }
    t.boolean("enabled", mail_on);
    if let Some((v, _)) = get("MAIL_FROM") {
        t.string("from", &v);
    }
    t.strings("to", &to);
    if let Some((v, _)) = get("MAIL_SUBJECT") {
        t.string(
            "subject",
            &v.replace("${HOSTNAME}", "{host}")
                .replace("$HOSTNAME", "{host}"),
        );
    }
    if let Some((v, _)) = get("SMTP_SERVER") {
        t.string("server", &v);
    }
    if let Some((v, line)) = get("SMTP_PORT") {
        match v.parse::<u16>() {
            Ok(port) => {
                t.number("port", u64::from(port));
                if port == 465 {
                    t.string("tls", "tls");
                }
            }
            Err(_) => note(
                "SMTP_PORT",
                Some(line),
                format!("{v:?} is not a port; default 25 kept"),
            ),
        }
    }
    let user = get("SMTP_USER").filter(|(v, _)| !v.is_empty());
    let pass = get("SMTP_PASS").filter(|(v, _)| !v.is_empty());
    if let Some((v, _)) = &user {
        t.string("user", v);
    }
    if let Some((v, _)) = &pass {
        t.string("password", v);
        note("SMTP_PASS", None, "copied into alerts.mail.password: keep this file readable by root only (chmod 600), or move it to a secrets file".into());
    }

    t.section("logging");
    if let Some((v, line)) = get("ENABLE_LOGGING") {
        if v == "0" {
            note(
                "ENABLE_LOGGING",
                Some(line),
                "logging cannot be turned off; level = \"warn\" keeps it quiet".into(),
            );
            t.string("level", "warn");
        }
    }

    for (key, why) in NO_EQUIVALENT {
        if let Some(a) = vars.get(key) {
            note(key, Some(a.line), format!("no equivalent: {why}"));
        }
    }
    for a in &assignments {
        let known =
            used.contains(&a.key.as_str()) || NO_EQUIVALENT.iter().any(|(k, _)| *k == a.key);
        if !known && vars.get(a.key.as_str()).is_some_and(|v| v.line == a.line) {
            note(&a.key, Some(a.line), "unknown key, not imported".into());
        }
    }
    notes.extend(target_notes);
    notes.sort_by_key(|n| (n.file, n.line.unwrap_or(usize::MAX)));
    LegacyImport { toml: t.out, notes }
}

/// Writes `[target]` from the imported target, or a placeholder to fill in when there is none.
fn import_target(t: &mut Toml, target: Option<TargetImport>, notes: &mut Vec<ImportNote>) {
    if let Some(import) = target {
        notes.extend(import.notes);
        if let Some(target) = import.target {
            write_target(t, &target);
            return;
        }
    }
    notes.push(ImportNote {
        file: LegacyFile::IscsiHaConf,
        key: "target".into(),
        line: None,
        note: "iscsi-ha.conf does not hold the target; it was in /etc/tgt/targets.conf. Pass it with --targets-conf, or fill in [target] by hand".into(),
    });
    t.section("target");
    t.raw("# FILL IN: the target exported by the master (from /etc/tgt/targets.conf).");
    t.string("iqn", "iqn.2024-01.com.example:storage");
    t.raw("\n[[target.lun]]");
    t.number("lun", 1);
    t.string("path", "/dev/drbd1");
    t.section("target.access");
    t.raw("# FILL IN: who may log in.");
    t.strings("initiators", &[]);
}

fn write_target(t: &mut Toml, target: &ImportedTarget) {
    t.section("target");
    t.string("iqn", target.iqn.as_str());
    for lun in &target.luns {
        t.raw("\n[[target.lun]]");
        t.number("lun", lun.lun);
        t.string("path", &lun.path);
        for (key, value) in [
            ("scsi_id", &lun.scsi_id),
            ("scsi_sn", &lun.scsi_sn),
            ("vendor_id", &lun.vendor_id),
            ("product_id", &lun.product_id),
        ] {
            if let Some(v) = value {
                t.string(key, v);
            }
        }
        if lun.read_only {
            t.boolean("read_only", true);
        }
        if let Some(on) = lun.write_cache {
            t.boolean("write_cache", on);
        }
    }
    let access = &target.access;
    t.section("target.access");
    t.strings("initiators", &access.initiators);
    if !access.initiator_names.is_empty() {
        let names: Vec<String> = access
            .initiator_names
            .iter()
            .map(|n| n.as_str().to_string())
            .collect();
        t.strings("initiator_names", &names);
    }
    if access.allow_all {
        t.boolean("allow_all", true);
    }
    for (user, password) in &access.incoming {
        t.raw("\n[[target.access.incoming]]");
        t.string("user", user);
        t.string("password", password);
    }
    if let Some((user, password)) = &access.outgoing {
        t.section("target.access.outgoing");
        t.string("user", user);
        t.string("password", password);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_become_prefixes() {
        assert_eq!(mask_to_prefix("255.255.255.0"), Some(24));
        assert_eq!(mask_to_prefix("255.255.252.0"), Some(22));
        assert_eq!(mask_to_prefix("255.255.255.255"), Some(32));
        assert_eq!(mask_to_prefix("0.0.0.0"), Some(0));
        assert_eq!(mask_to_prefix("255.0.255.0"), None);
        assert_eq!(mask_to_prefix("24"), None);
    }

    #[test]
    fn bash_quoting_is_removed() {
        let (a, notes) = parse_assignments(
            "A=plain # comment\nB=\"two words\"\nC='single'\nexport D=x\nE='typo’\nF=\"open\n",
        );
        let values: Vec<(&str, &str)> = a
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("A", "plain"),
                ("B", "two words"),
                ("C", "single"),
                ("D", "x"),
                ("E", "typo"),
                ("F", "open")
            ]
        );
        assert_eq!(notes.len(), 2);
    }

    #[test]
    fn non_assignments_are_reported() {
        let (a, notes) = parse_assignments("echo hello\n1X=2\n");
        assert!(a.is_empty());
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].line, Some(1));
    }
}
