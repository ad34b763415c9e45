//! tgt's `targets.conf` as tgt-admin reads it (tgt `scripts/tgt-admin`), reduced to the one
//! target iscsi-ha exports: every LUN with its identity, read-only flag and write cache, for
//! `iscsi-ha import-legacy` (the core writes the TOML from the [`ImportedTarget`] made here).
//!
//! tgt-admin's rules kept here: a key outside any `<backing-store>` block applies to every LUN
//! unless the LUN's block sets it (`add_backing_direct`: `params_added`, then the target's
//! values); a `write-cache` in a block, even one tgt-admin does not understand, keeps the
//! target's from applying; `readonly` is read by tgtd with `atoi`; blocks of the same target
//! are merged (Config::General `-MergeDuplicateBlocks`).

use iscsi_ha_core::config::legacy::{
    ImportNote, ImportedAccess, ImportedLun, ImportedTarget, LegacyFile, TargetImport,
};
use iscsi_ha_core::iqn::Iqn;

/// A `<target>` block: its name, where it starts, and what the importer understands of it.
#[derive(Debug, Default)]
struct TgtTarget {
    name: String,
    line: usize,
    luns: Vec<TgtLun>,
    /// Values set outside any `<backing-store>` block: every LUN's unless its block says otherwise.
    defaults: LunKeys,
    initiators: Vec<String>,
    /// `initiator-name` values with their lines.
    names: Vec<(String, usize)>,
    incoming: Vec<(String, String)>,
    outgoing: Option<(String, String)>,
}

#[derive(Debug, Default)]
struct TgtLun {
    path: String,
    keys: LunKeys,
}

/// The per-LUN keys, as set in one place (a block, or the target).
#[derive(Debug, Default, Clone)]
struct LunKeys {
    lun: Option<(u64, usize)>,
    scsi_id: Option<String>,
    scsi_sn: Option<String>,
    vendor_id: Option<String>,
    product_id: Option<String>,
    /// The raw value and its line: tgtd takes `atoi` of it.
    readonly: Option<(String, usize)>,
    write_cache: Option<Cache>,
}

/// A `write-cache` value as tgt-admin treats it (`add_params`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cache {
    On,
    Off,
    /// Anything else: tgt-admin prints a warning and sends nothing, so tgt's default (on) holds.
    Unknown(String, usize),
}

/// Why the import stops instead of writing a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportRefused {
    /// Several targets and no choice: iscsi-ha exports one.
    #[error("targets.conf defines {} targets; tgtd exported them all, iscsi-ha exports one:\n{}\nchoose the one on the replicated DRBD devices with --target NAME: the others are then no longer exported (their LUNs can be moved into that target, but initiators find them under its name, so their SRs must be attached again)", .0.len(), .0.join("\n"))]
    SeveralTargets(Vec<String>),
    /// `--target` names no target of the file.
    #[error("targets.conf has no target {wanted:?}; it defines:\n{}\nthe name must be written exactly, case included", .targets.join("\n"))]
    NoSuchTarget {
        /// The name asked for.
        wanted: String,
        /// Each target, described.
        targets: Vec<String>,
    },
    /// A name tgtd (or iscsi-ha) refuses, so the original could not have used it.
    #[error("targets.conf:{line}: {what} {name:?} cannot be imported: {reason}")]
    Name {
        /// `target` or `initiator-name`.
        what: &'static str,
        /// The text.
        name: String,
        /// 1-based line.
        line: usize,
        /// The rule broken.
        reason: &'static str,
    },
}

/// Reads the target of targets.conf's `text` that `pick` names (its name exactly as written),
/// or the only one. Refuses when it cannot be carried over whole: several targets and no
/// choice, a name that is not there, a name tgtd would refuse.
pub fn read(text: &str, pick: Option<&str>) -> Result<TargetImport, ImportRefused> {
    let mut notes = Vec::new();
    let target = read_into(text, pick, &mut notes)?;
    Ok(TargetImport { target, notes })
}

fn read_into(
    text: &str,
    pick: Option<&str>,
    notes: &mut Vec<ImportNote>,
) -> Result<Option<ImportedTarget>, ImportRefused> {
    let mut note = |key: &str, line: Option<usize>, text: String| {
        notes.push(ImportNote {
            file: LegacyFile::TargetsConf,
            key: key.to_string(),
            line,
            note: text,
        });
    };
    let targets = parse(text, &mut note);
    let chosen = match (pick, targets.len()) {
        (_, 0) => {
            note(
                "targets.conf",
                None,
                "no <target> block found (targets in files it includes were not read)".into(),
            );
            return Ok(None);
        }
        (None, 1) => 0,
        (None, _) => {
            return Err(ImportRefused::SeveralTargets(
                targets.iter().map(describe).collect(),
            ))
        }
        (Some(wanted), _) => match targets.iter().position(|t| t.name == wanted) {
            Some(i) => i,
            None => {
                return Err(ImportRefused::NoSuchTarget {
                    wanted: wanted.to_string(),
                    targets: targets.iter().map(describe).collect(),
                })
            }
        },
    };
    for (i, other) in targets.iter().enumerate() {
        if i != chosen {
            note(
                &format!("target {}", other.name),
                Some(other.line),
                format!(
                    "not imported (--target chose {}): its LUNs ({}) are no longer exported",
                    targets[chosen].name,
                    paths(other)
                ),
            );
        }
    }
    convert(&targets[chosen], &mut note).map(Some)
}

fn paths(t: &TgtTarget) -> String {
    if t.luns.is_empty() {
        return "none".to_string();
    }
    t.luns
        .iter()
        .map(|l| l.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(t: &TgtTarget) -> String {
    format!("  line {}: {} (LUNs: {})", t.line, t.name, paths(t))
}

/// tgtd's `atoi`: the leading number, 0 when there is none.
fn atoi(value: &str) -> i64 {
    let v = value.trim_start();
    let (sign, digits) = match v.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, v.strip_prefix('+').unwrap_or(v)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse::<i64>().map_or(0, |n| sign * n)
}

/// The chosen target in the core's words, with a note for every rule of tgt's that changed
/// its meaning on the way.
fn convert(
    target: &TgtTarget,
    note: &mut impl FnMut(&str, Option<usize>, String),
) -> Result<ImportedTarget, ImportRefused> {
    let here = format!("target {}", target.name);
    let iqn = Iqn::new(target.name.clone()).map_err(|e| ImportRefused::Name {
        what: "target",
        name: target.name.clone(),
        line: target.line,
        reason: e.reason,
    })?;
    for d in iqn.rfc_deviations() {
        note(
            &here,
            Some(target.line),
            format!("the name breaks {d}; tgtd accepts it, so it was kept exactly as written (the SRs bound to it log in with this name)"),
        );
    }
    let d = &target.defaults;
    let several = target.luns.len() > 1;
    let mut used = Vec::new();
    let mut cached = Vec::new();
    let mut tgt_default = Vec::new();
    let mut unknown_noted = Vec::new();
    let mut luns = Vec::new();
    for (i, lun) in target.luns.iter().enumerate() {
        let k = &lun.keys;
        // A number in the block is the LUN's; the target's applies to every LUN, and tgt-admin
        // then fails to add the second under the same number.
        let number = match (k.lun, d.lun) {
            (Some((n, _)), _) => n,
            (None, Some((n, line))) if i == 0 || !several => {
                if several {
                    note(
                        "lun",
                        Some(line),
                        format!("lun {n} outside a <backing-store> block gives every LUN that number; tgt-admin could add only the first ({}), the others were given the next free numbers: check them", lun.path),
                    );
                }
                n
            }
            _ => (1..).find(|n| !used.contains(n)).unwrap_or(1),
        };
        used.push(number);
        let either =
            |own: &Option<String>, all: &Option<String>| own.as_ref().or(all.as_ref()).cloned();
        let mut out = ImportedLun {
            lun: number,
            path: lun.path.clone(),
            scsi_id: either(&k.scsi_id, &d.scsi_id),
            scsi_sn: either(&k.scsi_sn, &d.scsi_sn),
            vendor_id: either(&k.vendor_id, &d.vendor_id),
            product_id: either(&k.product_id, &d.product_id),
            ..ImportedLun::default()
        };
        if let Some((v, line)) = k.readonly.as_ref().or(d.readonly.as_ref()) {
            let on = atoi(v) != 0;
            if v.trim().parse::<i64>().is_err() {
                note(
                    "readonly",
                    Some(*line),
                    format!("readonly {v:?} is read by tgtd as the number {} (atoi): imported as read_only = {on}", atoi(v)),
                );
            }
            out.read_only = on;
        }
        match k.write_cache.as_ref().or(d.write_cache.as_ref()) {
            Some(Cache::On) => {
                out.write_cache = Some(true);
                cached.push(number.to_string());
            }
            Some(Cache::Off) => out.write_cache = Some(false),
            Some(Cache::Unknown(v, line)) => {
                if !unknown_noted.contains(line) {
                    unknown_noted.push(*line);
                    note(
                    "write-cache",
                    Some(*line),
                    format!("write-cache {v:?} is neither on nor off: tgt-admin skipped it{}, so tgt's default (on) held", if k.write_cache.is_some() && d.write_cache.is_some() { " and, being in the LUN's block, it kept the target's write-cache from applying" } else { "" }),
                );
                }
                tgt_default.push(number.to_string());
            }
            None => tgt_default.push(number.to_string()),
        }
        luns.push(out);
    }
    if !cached.is_empty() {
        note(
            &here,
            Some(target.line),
            format!(
                "write-cache on kept as write_cache = true for LUN {}: a write acknowledged to the initiator may be lost when the master dies before it flushes; remove it unless every initiator sends SYNCHRONIZE CACHE and tolerates that",
                cached.join(", ")
            ),
        );
    }
    if !tgt_default.is_empty() {
        note(
            &here,
            Some(target.line),
            format!("LUN {}: tgt reported a volatile write cache (its default, on); iscsi-ha's default write_cache = false makes every acknowledged write stable on both disks, at a cost in write throughput", tgt_default.join(", ")),
        );
    }
    let access = access(target, &here, note)?;
    Ok(ImportedTarget { iqn, luns, access })
}

fn access(
    target: &TgtTarget,
    here: &str,
    note: &mut impl FnMut(&str, Option<usize>, String),
) -> Result<ImportedAccess, ImportRefused> {
    let all = target
        .initiators
        .iter()
        .any(|i| i.eq_ignore_ascii_case("ALL"));
    let addresses: Vec<String> = target
        .initiators
        .iter()
        .filter(|i| !i.eq_ignore_ascii_case("ALL"))
        .cloned()
        .collect();
    // tgt-admin allows everyone when there is no initiator-address, initiator-name or not.
    if target.initiators.is_empty() {
        note(here, Some(target.line), "the target had no initiator-address: tgt-admin allowed every initiator, so allow_all = true was set; consider listing initiators".into());
    }
    let mut names = Vec::new();
    for (name, line) in &target.names {
        let iqn = Iqn::new(name.clone()).map_err(|e| ImportRefused::Name {
            what: "initiator-name",
            name: name.clone(),
            line: *line,
            reason: e.reason,
        })?;
        for d in iqn.rfc_deviations() {
            note(
                "initiator-name",
                Some(*line),
                format!("{name:?} breaks {d}; kept exactly as written, as tgtd compares it with the name the initiator sends"),
            );
        }
        names.push(iqn);
    }
    if !target.incoming.is_empty() || target.outgoing.is_some() {
        note(
            here,
            Some(target.line),
            "CHAP passwords were copied: keep the file readable by root only (chmod 600)".into(),
        );
    }
    Ok(ImportedAccess {
        initiators: addresses,
        initiator_names: names,
        allow_all: all || target.initiators.is_empty(),
        incoming: target.incoming.clone(),
        outgoing: target.outgoing.clone(),
    })
}

fn parse(text: &str, note: &mut impl FnMut(&str, Option<usize>, String)) -> Vec<TgtTarget> {
    let mut targets: Vec<TgtTarget> = Vec::new();
    let mut current: Option<usize> = None;
    let mut block: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix("<target ") {
            let name = rest.trim_end_matches('>').trim().to_string();
            // Config::General merges blocks of the same name into one target.
            current = Some(match targets.iter().position(|t| t.name == name) {
                Some(i) => i,
                None => {
                    targets.push(TgtTarget {
                        name,
                        line,
                        ..TgtTarget::default()
                    });
                    targets.len() - 1
                }
            });
            block = None;
            continue;
        }
        if l == "</target>" {
            current = None;
            continue;
        }
        let Some(t) = current.map(|i| &mut targets[i]) else {
            let (key, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            let text = match key {
                "include" => format!("{} was not read: a target defined there is imported by passing its file as --targets-conf", rest.trim()),
                "default-driver" => format!("{}: iscsi-ha drives tgtd's iscsi driver only", rest.trim()),
                _ => format!("{l}: has no equivalent, ignored"),
            };
            note(key, Some(line), text);
            continue;
        };
        if l.starts_with("<backing-store") || l.starts_with("<direct-store") {
            let path = l
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches('>');
            t.luns.push(TgtLun {
                path: path.to_string(),
                ..TgtLun::default()
            });
            block = Some(t.luns.len() - 1);
            continue;
        }
        if l.starts_with("</backing-store") || l.starts_with("</direct-store") {
            block = None;
            continue;
        }
        let (key, value) = l
            .split_once(char::is_whitespace)
            .map_or((l, ""), |(k, v)| (k, v.trim()));
        let keys = match block {
            Some(i) => &mut t.luns[i].keys,
            None => &mut t.defaults,
        };
        match key {
            "backing-store" | "direct-store" => t.luns.push(TgtLun {
                path: value.to_string(),
                ..TgtLun::default()
            }),
            "lun" => match value.parse::<u64>() {
                Ok(n) => keys.lun = Some((n, line)),
                Err(_) => note(
                    "lun",
                    Some(line),
                    format!("lun {value:?} is not a number, ignored"),
                ),
            },
            "scsi_id" => keys.scsi_id = Some(value.to_string()),
            "scsi_sn" => keys.scsi_sn = Some(value.to_string()),
            "vendor_id" => keys.vendor_id = Some(value.to_string()),
            "product_id" => keys.product_id = Some(value.to_string()),
            "readonly" => keys.readonly = Some((value.to_string(), line)),
            "write-cache" => {
                keys.write_cache = Some(match value {
                    "on" => Cache::On,
                    "off" => Cache::Off,
                    _ => Cache::Unknown(value.to_string(), line),
                })
            }
            "initiator-address" => t
                .initiators
                .extend(value.split_whitespace().map(str::to_string)),
            "initiator-name" => t
                .names
                .extend(value.split_whitespace().map(|n| (n.to_string(), line))),
            "incominguser" | "outgoinguser" => {
                let mut parts = value.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some(u), Some(p)) if key == "incominguser" => {
                        t.incoming.push((u.into(), p.into()));
                    }
                    (Some(u), Some(p)) => t.outgoing = Some((u.into(), p.into())),
                    _ => note(
                        key,
                        Some(line),
                        format!("{key} needs a user and a password, ignored"),
                    ),
                }
            }
            other => note(
                other,
                Some(line),
                format!("{other} has no equivalent, ignored"),
            ),
        }
    }
    targets
}

/// The summary `describe` gives, for tests and messages.
#[cfg(test)]
fn summaries(text: &str) -> Vec<String> {
    let mut ignore = |_: &str, _: Option<usize>, _: String| {};
    parse(text, &mut ignore).iter().map(describe).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_reads_like_tgtd() {
        for (v, n) in [
            ("1", 1),
            ("0", 0),
            ("yes", 0),
            ("2x", 2),
            (" -3", -3),
            ("", 0),
        ] {
            assert_eq!(atoi(v), n, "{v:?}");
        }
    }

    #[test]
    fn blocks_of_the_same_target_are_merged() {
        let text = "<target iqn.2024-01.com.example:a>\nbacking-store /dev/drbd1\n</target>\n<target iqn.2024-01.com.example:a>\nbacking-store /dev/drbd2\n</target>\n";
        assert_eq!(
            summaries(text),
            vec!["  line 1: iqn.2024-01.com.example:a (LUNs: /dev/drbd1, /dev/drbd2)"]
        );
    }

    #[test]
    fn a_note_outside_the_target_names_its_line() {
        let text = "include /etc/tgt/conf.d/*.conf\n<target iqn.2024-01.com.example:a>\nbacking-store /dev/drbd1\n</target>\n";
        let import = read(text, None).unwrap();
        let notes = &import.notes;
        assert_eq!(notes[0].file, LegacyFile::TargetsConf);
        assert_eq!((notes[0].key.as_str(), notes[0].line), ("include", Some(1)));
        let target = import.target.unwrap();
        assert_eq!(target.iqn.as_str(), "iqn.2024-01.com.example:a");
        assert_eq!(target.luns[0].path, "/dev/drbd1");
    }
}
