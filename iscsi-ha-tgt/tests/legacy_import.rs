//! `import-legacy` as the binary runs it — the core's importer of iscsi-ha.conf with this
//! crate's reader of targets.conf — on the how-to's sample and on variants (fixtures/legacy):
//! the TOML and the notes match the golden files, and an import with its targets.conf is a
//! valid configuration.
//! Regenerate the golden files with `BLESS=1 cargo test -p iscsi-ha-tgt --test legacy_import`.

#![allow(clippy::unwrap_used)]

use iscsi_ha_core::config::legacy::{self, ImportNote, LegacyImport};
use iscsi_ha_core::config::{Config, Source};
use iscsi_ha_tgt::targets_conf::{self, ImportRefused};
use std::fs;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/legacy")
}

/// A note as the golden files hold it: the file's name, the line, the key.
fn note_line(n: &ImportNote) -> String {
    match n.line {
        Some(l) => format!("{}:{l}: {}: {}\n", n.file.name(), n.key, n.note),
        None => format!("{}: {}: {}\n", n.file.name(), n.key, n.note),
    }
}

/// Imports `conf` with the target `pick` names in targets.conf's `targets` text, as
/// `import-legacy` does.
fn import(
    conf: &str,
    targets: Option<&str>,
    pick: Option<&str>,
) -> Result<LegacyImport, ImportRefused> {
    let target = targets
        .map(|text| targets_conf::read(text, pick))
        .transpose()?;
    Ok(legacy::import(conf, target))
}

/// Imports `conf` (and `targets`), compares with `<name>.expected.toml` and `<name>.notes`,
/// and returns the TOML.
fn golden(name: &str, conf: &str, targets: Option<&str>) -> String {
    golden_picking(name, conf, targets, None)
}

/// [`golden`] with `--target pick`.
fn golden_picking(name: &str, conf: &str, targets: Option<&str>, pick: Option<&str>) -> String {
    let d = dir();
    let conf_text = fs::read_to_string(d.join(conf)).unwrap();
    let targets_text = targets.map(|t| fs::read_to_string(d.join(t)).unwrap());
    let result = import(&conf_text, targets_text.as_deref(), pick)
        .unwrap_or_else(|e| panic!("{name}: refused: {e}"));
    let notes: String = result.notes.iter().map(note_line).collect();
    let toml_path = d.join(format!("{name}.expected.toml"));
    let notes_path = d.join(format!("{name}.notes"));
    if std::env::var_os("BLESS").is_some() {
        fs::write(&toml_path, &result.toml).unwrap();
        fs::write(&notes_path, &notes).unwrap();
    }
    assert_eq!(
        result.toml,
        fs::read_to_string(&toml_path).unwrap(),
        "{name}: TOML differs"
    );
    assert_eq!(
        notes,
        fs::read_to_string(&notes_path).unwrap(),
        "{name}: notes differ"
    );
    result.toml
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(
        Source {
            text,
            origin: "imported.toml",
        },
        None,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn howto_sample_with_its_targets_conf_is_a_valid_configuration() {
    let toml = golden("howto", "howto-sample.conf", Some("howto-targets.conf"));
    let config = parse(&toml).unwrap();
    assert_eq!(config.vip.to_string(), "10.10.10.3/24 on xapi0");
    assert_eq!(config.resources[0].as_str(), "iscsi1");
    assert_eq!(config.target.luns[0].lun.get(), 10);
    assert_eq!(config.target.luns[0].identity.scsi_sn, "0000000001");
    assert!(
        config.target.access.allow_all,
        "tgt allowed everyone without initiator-address"
    );
    assert!(
        !config.file.alerts.mail.enabled,
        "no valid recipient: mail stays off"
    );
    assert_eq!(config.file.monitor.retry_delay.to_string(), "10s");
}

#[test]
fn howto_sample_alone_asks_for_the_target() {
    let toml = golden("howto-no-targets", "howto-sample.conf", None);
    let err = parse(&toml).unwrap_err();
    assert!(
        err.contains("target.access: no initiator may log in"),
        "{err}"
    );
}

#[test]
fn version_2_3_0_defaults() {
    let toml = golden("v2.3.0-defaults", "v2.3.0-defaults.conf", None);
    assert!(toml.contains("screen = \"30m\""));
    assert!(toml.contains("subject = \"HA-Lizard noSAN SYSTEM ALERT - FROM HOST: {host}\""));
}

#[test]
fn multiple_resources_masks_smtps_and_chap() {
    let toml = golden(
        "multi",
        "multi-resource-smtp.conf",
        Some("targets-chap.conf"),
    );
    let config = parse(&toml).unwrap();
    assert_eq!(config.resources.len(), 2);
    assert_eq!(config.vip.prefix(), 22);
    assert_eq!(config.file.alerts.mail.to.len(), 2);
    assert_eq!(
        config.smtp_password.as_ref().unwrap().expose(),
        "s3cret with space"
    );
    assert_eq!(
        config.target.access.incoming[0].password.expose(),
        "chap-secret-1"
    );
    assert_eq!(
        config.target.access.outgoing.as_ref().unwrap().user,
        "target"
    );
    assert_eq!(config.target.luns.len(), 2);
    assert!(config.holds_inline_secrets());
}

#[test]
fn broken_values_are_reported_not_guessed_silently() {
    let toml = golden("broken", "broken-values.conf", None);
    assert!(toml.contains("address = \"10.10.10.3/24\""));
    assert!(toml.contains("enabled = false"));
}

#[test]
fn write_cache_is_carried_per_lun() {
    let toml = golden(
        "write-cache",
        "howto-sample.conf",
        Some("write-cache-targets.conf"),
    );
    let config = parse(&toml).unwrap();
    let luns = &config.target.luns;
    assert_eq!(luns.len(), 3);
    // off (target level): stable. An unknown value in LUN 3's block kept the target's off
    // from applying, so tgt's default (on) held there: iscsi-ha's default (stable) is imported,
    // with a note saying so.
    for i in [0, 2] {
        assert!(luns[i].stable_writes && !luns[i].volatile_cache_reported);
    }
    let notes = fs::read_to_string(dir().join("write-cache.notes")).unwrap();
    assert!(notes.contains("targets.conf:14: write-cache: write-cache \"maybe\" is neither on nor off: tgt-admin skipped it and, being in the LUN's block, it kept the target's write-cache from applying"), "{notes}");
    assert!(
        notes.contains(": LUN 3: tgt reported a volatile write cache"),
        "{notes}"
    );
    // on in its block: the risk kept, and said.
    assert!(!luns[1].stable_writes && luns[1].volatile_cache_reported);
    // tgt's default (nothing said) becomes iscsi-ha's safe default, with a note.
    let howto = golden("howto", "howto-sample.conf", Some("howto-targets.conf"));
    let config = parse(&howto).unwrap();
    assert!(config.target.luns[0].stable_writes);
}

#[test]
fn shell_expansions_are_flagged_with_their_lines() {
    golden("shell-expansions", "shell-expansions.conf", None);
    let text = fs::read_to_string(dir().join("shell-expansions.conf")).unwrap();
    let notes = import(&text, None, None).unwrap().notes;
    let flagged = |key: &str| {
        notes
            .iter()
            .find(|n| n.key == key && n.note.contains("bash expanded"))
            .map(|n| (n.line, n.note.clone()))
    };
    let (line, note) = flagged("DRBD_VIRTUAL_IP").unwrap();
    assert_eq!(line, Some(2));
    assert!(note.contains("a command substitution ($(...))"), "{note}");
    assert!(flagged("DRBD_INTERFACE").unwrap().1.contains("(`...`)"));
    assert!(flagged("MAIL_FROM").unwrap().1.contains("(${...})"));
    assert_eq!(flagged("MAIL_TO").unwrap().0, Some(8));
    // The host name becomes {host}; single quotes expand nothing.
    assert_eq!(flagged("MAIL_SUBJECT"), None);
    assert_eq!(flagged("SMTP_SERVER"), None);
}

fn read(name: &str) -> String {
    fs::read_to_string(dir().join(name)).unwrap()
}

/// What the noSAN installer wrote (its iscsi-ha.conf and its targets.conf block, tabs and
/// all) imports to a configuration that passes the checks with the RFC warnings, and the
/// target keeps its exact name: the SRs log in with it.
#[test]
fn the_nosan_installation_imports_with_its_exact_target_name() {
    let toml = golden("nosan", "nosan-iscsi-ha.conf", Some("nosan-targets.conf"));
    let config = parse(&toml).unwrap();
    assert_eq!(config.target.iqn.as_str(), "iqn.2015.com.halizard:noSAN");
    assert_eq!(config.target.luns.len(), 1);
    assert_eq!(config.target.luns[0].lun.get(), 10);
    assert_eq!(config.target.luns[0].path, "/dev/drbd1");
    assert!(config.target.access.allow_all);
    let warned: Vec<&str> = config.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].contains("RFC 3720 §3.2.6.2"), "{warned:?}");
    assert!(warned[1].contains("RFC 3720 §3.2.6.3.1"), "{warned:?}");
    let notes = read("nosan.notes");
    for rule in ["RFC 3720 §3.2.6.2", "RFC 3720 §3.2.6.3.1"] {
        assert!(
            notes.contains(&format!(
                "targets.conf:5: target iqn.2015.com.halizard:noSAN: the name breaks {rule}"
            )),
            "{notes}"
        );
    }
    assert!(notes.contains("targets.conf:3: include: /etc/tgt/conf.d/*.conf was not read"));
}

/// Identity, read-only and write cache: a target-level value applies to every LUN unless the
/// LUN's block sets its own (tgt-admin's precedence); `readonly yes` is 0 to tgtd.
#[test]
fn lun_identity_follows_tgt_admins_precedence() {
    let toml = golden(
        "identity",
        "howto-sample.conf",
        Some("identity-targets.conf"),
    );
    let config = parse(&toml).unwrap();
    let luns = &config.target.luns;
    assert_eq!(luns.len(), 2);
    let (one, two) = (&luns[0].identity, &luns[1].identity);
    assert_eq!(
        (one.scsi_id.as_str(), one.scsi_sn.as_str()),
        ("0011223344", "beaf11")
    );
    assert_eq!(
        (two.scsi_id.as_str(), two.scsi_sn.as_str()),
        ("0011223355", "beaf10")
    );
    assert_eq!(one.vendor_id.as_deref(), Some("HALIZARD"));
    assert_eq!(two.vendor_id.as_deref(), Some("HALIZARD"));
    assert_eq!(one.product_id.as_deref(), Some("noSAN-disk"));
    assert_eq!(two.product_id.as_deref(), Some("other-disk"));
    assert!(!luns[0].read_only, "readonly yes is atoi 0 to tgtd");
    assert!(luns[1].read_only);
    assert!(
        luns.iter().all(|l| l.stable_writes),
        "write-cache off at target level"
    );
    assert!(read("identity.notes")
        .contains("targets.conf:7: readonly: readonly \"yes\" is read by tgtd as the number 0"));
    // The initiator name is kept as the initiator sends it, with the RFC warning.
    assert_eq!(
        config.target.access.initiator_names[0].as_str(),
        "iqn.1991-05.com.microsoft:HOST-1"
    );
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].key, "target.access.initiator_names[0]");
}

/// Several targets are never imported silently: without --target the import is refused, naming
/// each target and what to do; with it, the others are named as not imported.
#[test]
fn several_targets_need_a_choice_and_the_others_are_named() {
    let conf = read("howto-sample.conf");
    let targets = read("several-targets.conf");
    let refused = import(&conf, Some(&targets), None).unwrap_err().to_string();
    if std::env::var_os("BLESS").is_some() {
        fs::write(
            dir().join("several-targets.refused"),
            format!("{refused}\n"),
        )
        .unwrap();
    }
    assert_eq!(format!("{refused}\n"), read("several-targets.refused"));
    for wanted in [
        "line 2: iqn.2024-01.com.example:vm-store (LUNs: /dev/drbd1)",
        "line 7: iqn.2024-01.com.example:iso-store (LUNs: /srv/iso.img)",
        "--target NAME",
    ] {
        assert!(refused.contains(wanted), "{wanted}: {refused}");
    }

    let wrong = import(
        &conf,
        Some(&targets),
        Some("iqn.2024-01.com.example:VM-store"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        wrong.contains("no target \"iqn.2024-01.com.example:VM-store\""),
        "{wrong}"
    );

    let toml = golden_picking(
        "several-targets-iso",
        "howto-sample.conf",
        Some("several-targets.conf"),
        Some("iqn.2024-01.com.example:iso-store"),
    );
    let config = parse(&toml).unwrap();
    assert_eq!(
        config.target.iqn.as_str(),
        "iqn.2024-01.com.example:iso-store"
    );
    assert_eq!(config.target.luns[0].lun.get(), 3);
    assert!(config.target.luns[0].read_only);
    assert!(read("several-targets-iso.notes").contains(
        "targets.conf:2: target iqn.2024-01.com.example:vm-store: not imported (--target chose iqn.2024-01.com.example:iso-store): its LUNs (/dev/drbd1) are no longer exported"
    ));
}

/// A target name tgtd refuses could not have been served: the import stops, naming the line.
#[test]
fn a_target_name_tgtd_refuses_stops_the_import() {
    let conf = read("howto-sample.conf");
    let text = "\n<target iqn.2024-01.com.example:disk_1>\n  backing-store /dev/drbd1\n</target>\n";
    let err = import(&conf, Some(text), None).unwrap_err().to_string();
    assert!(
        err.starts_with("targets.conf:2: target \"iqn.2024-01.com.example:disk_1\" cannot be imported: only ASCII letters"),
        "{err}"
    );
}
