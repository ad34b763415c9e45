//! The importer on the how-to's sample and on variants (fixtures/legacy): the TOML and the
//! notes match the golden files, and an import with its targets.conf is a valid configuration.
//! Regenerate the golden files with `BLESS=1 cargo test -p iscsi-ha-core --test legacy_import`.

#![allow(clippy::unwrap_used)]

use iscsi_ha_core::config::legacy::import;
use iscsi_ha_core::config::{Config, Source};
use std::fs;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/legacy")
}

/// Imports `conf` (and `targets`), compares with `<name>.expected.toml` and `<name>.notes`,
/// and returns the TOML.
fn golden(name: &str, conf: &str, targets: Option<&str>) -> String {
    let d = dir();
    let conf_text = fs::read_to_string(d.join(conf)).unwrap();
    let targets_text = targets.map(|t| fs::read_to_string(d.join(t)).unwrap());
    let result = import(&conf_text, targets_text.as_deref());
    let notes: String = result
        .notes
        .iter()
        .map(|n| match n.line {
            Some(l) => format!("{}:{l}: {}\n", n.key, n.note),
            None => format!("{}: {}\n", n.key, n.note),
        })
        .collect();
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
    // off (target level) and an unknown value (ignored, target level applies): stable.
    for i in [0, 2] {
        assert!(luns[i].stable_writes && !luns[i].volatile_cache_reported);
    }
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
    let notes = import(&text, None).notes;
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
