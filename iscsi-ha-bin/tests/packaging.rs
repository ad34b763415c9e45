//! What the packages are made of, checked without building them (scripts/suites.d/40-ops
//! builds the .deb and .rpm and inspects them): every asset the package metadata names exists
//! or is produced by `iscsi-ha generate-assets`, both packages ship the same files, the example
//! configuration is valid, the man pages and completions cover every command, and each
//! package carries the units of its platform (the .rpm: systemd 219's unit and EL's
//! tgtd.service drop-in).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn metadata() -> toml::Table {
    let text = fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    table["package"]["metadata"].as_table().unwrap().clone()
}

/// (source, destination) of the .deb's assets, destinations absolute.
fn deb_assets() -> Vec<(String, String)> {
    metadata()["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            let src = a[0].as_str().unwrap().to_string();
            let mut dest = format!("/{}", a[1].as_str().unwrap());
            if dest.ends_with('/') {
                let name = Path::new(&src).file_name().unwrap().to_string_lossy();
                dest.push_str(&name);
            }
            (src, dest)
        })
        .collect()
}

fn rpm_assets() -> Vec<(String, String)> {
    metadata()["generate-rpm"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let src = a["source"].as_str().unwrap().to_string();
            let mut dest = a["dest"].as_str().unwrap().to_string();
            if dest.ends_with('/') {
                let name = Path::new(&src).file_name().unwrap().to_string_lossy();
                dest.push_str(&name);
            }
            (src, dest)
        })
        .collect()
}

#[test]
fn every_asset_exists_or_is_generated() {
    let generated = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("generate-assets")
        .arg(generated.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for (src, _) in deb_assets().into_iter().chain(rpm_assets()) {
        if let Some(rest) = src.strip_prefix("target/release/") {
            if let Some(binary) = rest.strip_prefix("assets/bin/") {
                // Copied without debug sections by the suite script.
                assert!(
                    ["iscsi-ha", "iscsi-cfg"].contains(&binary),
                    "unknown binary {binary}"
                );
            } else if let Some(asset) = rest.strip_prefix("assets/") {
                // Man pages are gzipped by the suite script.
                let asset = asset.replace("*.1.gz", "iscsi-ha.1");
                assert!(
                    generated.path().join(&asset).exists(),
                    "generate-assets does not write {asset}"
                );
            } else {
                assert!(
                    ["iscsi-ha", "iscsi-cfg"].contains(&rest),
                    "unknown binary {rest}"
                );
            }
        } else {
            assert!(crate_dir().join(&src).exists(), "{src} is missing");
        }
    }
    // The unit comes from systemd-units in the .deb.
    let units = &metadata()["deb"]["systemd-units"];
    let dir = crate_dir().join(units["unit-scripts"].as_str().unwrap());
    assert!(dir.join("iscsi-ha.service").exists());
}

#[test]
fn iscsi_cfg_is_where_ha_lizard_looks_for_it() {
    // HA-Lizard's `ha-cfg cluster-status` and `initialize_cluster_services` test for
    // /usr/bin/iscsi-cfg (where the original installed it) and otherwise say the pool is "not
    // part of an HA-Lizard cluster".
    for (kind, assets) in [("deb", deb_assets()), ("rpm", rpm_assets())] {
        assert!(
            assets.iter().any(|(_, d)| d == "/usr/bin/iscsi-cfg"),
            "the {kind} no longer installs /usr/bin/iscsi-cfg"
        );
    }
}

#[test]
fn both_packages_ship_the_same_files() {
    // The distributions' own places: zsh's directory, and the tgt unit's name (Debian's
    // tgt.service, EL's tgtd.service).
    let norm = |d: &str| {
        d.replace("/zsh/site-functions/", "/zsh/vendor-completions/")
            .replace("/tgtd.service.d/", "/tgt.service.d/")
    };
    let deb: BTreeSet<String> = deb_assets()
        .into_iter()
        .map(|(_, d)| norm(&d))
        .chain(["/usr/lib/systemd/system/iscsi-ha.service".to_string()])
        .collect();
    let rpm: BTreeSet<String> = rpm_assets().into_iter().map(|(_, d)| norm(&d)).collect();
    assert_eq!(deb, rpm);
}

#[test]
fn the_packaged_example_configuration_is_valid() {
    let example = crate_dir().join("../packaging/iscsi-ha.toml.example");
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_pages_and_completions_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("generate-assets")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<String> = fs::read_dir(dir.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "iscsi-cfg-become-primary.1",
            "iscsi-cfg-become-secondary.1",
            "iscsi-cfg-get.1",
            "iscsi-cfg-log.1",
            "iscsi-cfg-manual-mode-disable.1",
            "iscsi-cfg-manual-mode-enable.1",
            "iscsi-cfg-reload.1",
            "iscsi-cfg-reset.1",
            "iscsi-cfg-split-brain-reconnect.1",
            "iscsi-cfg-split-brain-resolve.1",
            "iscsi-cfg-split-brain.1",
            "iscsi-cfg-status.1",
            "iscsi-cfg.1",
            "iscsi-ha-check-config.1",
            "iscsi-ha-doctor.1",
            "iscsi-ha-fence-peer.1",
            "iscsi-ha-import-legacy.1",
            "iscsi-ha-log.1",
            "iscsi-ha-replug-pbds.1",
            "iscsi-ha-run.1",
            "iscsi-ha-status.1",
            "iscsi-ha.1"
        ]
    );
    let run = fs::read_to_string(dir.path().join("man/iscsi-ha-run.1")).unwrap();
    assert!(run.contains("metrics\\-listen"), "{run}");
    let top = fs::read_to_string(dir.path().join("man/iscsi-ha.1")).unwrap();
    assert!(!top.contains("generate"), "the packaging command is hidden");
    let bash = fs::read_to_string(dir.path().join("completions/iscsi-ha.bash")).unwrap();
    for word in [
        "check-config",
        "doctor",
        "import-legacy",
        "--metrics-listen",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let fish = fs::read_to_string(dir.path().join("completions/iscsi-ha.fish")).unwrap();
    assert!(fish.contains("metrics-listen"));
    let zsh = fs::read_to_string(dir.path().join("completions/_iscsi-ha")).unwrap();
    assert!(zsh.starts_with("#compdef iscsi-ha"));
    let cfg = fs::read_to_string(dir.path().join("man/iscsi-cfg-become-primary.1")).unwrap();
    assert!(cfg.contains("\\-\\-force"), "{cfg}");
    let bash = fs::read_to_string(dir.path().join("completions/iscsi-cfg.bash")).unwrap();
    for word in [
        "manual-mode-enable",
        "become-primary",
        "split-brain",
        "--discard-local-data",
    ] {
        assert!(
            bash.contains(word),
            "iscsi-cfg bash completion lacks {word}"
        );
    }
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .arg("--version")
        .output()
        .unwrap();
    let v = String::from_utf8(out.stdout).unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate_dir())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string());
    assert!(
        v.starts_with(&format!("iscsi-ha {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    if let Some(c) = commit {
        // Built from this checkout (the build script records HEAD at build time, which may be
        // an older commit while one is being made): a 12-digit hash, not "unknown commit".
        let inner = v
            .split('(')
            .nth(1)
            .unwrap()
            .trim_end()
            .trim_end_matches(')');
        assert_eq!(inner.len(), c.len(), "{v}");
        assert!(inner.chars().all(|ch| ch.is_ascii_hexdigit()), "{v}");
    }
}

#[test]
fn each_package_carries_the_units_of_its_platform() {
    let source_of = |assets: &[(String, String)], dest: &str| -> Option<String> {
        assets
            .iter()
            .find(|(_, d)| d == dest)
            .map(|(s, _)| s.clone())
    };
    let deb = deb_assets();
    let rpm = rpm_assets();
    // The .deb's unit comes from systemd-units (systemd/iscsi-ha.service).
    let units = &metadata()["deb"]["systemd-units"];
    assert_eq!(units["unit-scripts"].as_str(), Some("../systemd"));
    assert_eq!(units["unit-name"].as_str(), Some("iscsi-ha"));
    assert_eq!(
        source_of(&deb, "/usr/lib/systemd/system/tgt.service.d/iscsi-ha.conf").as_deref(),
        Some("../systemd/tgt-iscsi-ha.conf")
    );
    assert_eq!(
        source_of(&rpm, "/usr/lib/systemd/system/iscsi-ha.service").as_deref(),
        Some("../systemd/el7/iscsi-ha.service")
    );
    assert_eq!(
        source_of(&rpm, "/usr/lib/systemd/system/tgtd.service.d/iscsi-ha.conf").as_deref(),
        Some("../systemd/el7/tgtd-iscsi-ha.conf")
    );
    assert!(
        source_of(&rpm, "/usr/lib/systemd/system/tgt.service.d/iscsi-ha.conf").is_none(),
        "EL has no tgt.service"
    );
}

#[test]
fn the_rpm_scriptlets_use_only_what_systemd_219_has() {
    for script in ["post_install", "pre_uninstall", "post_uninstall"] {
        let key = format!("{script}_script");
        let path = metadata()["generate-rpm"][key.as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("no {key}"))
            .to_string();
        let text = fs::read_to_string(crate_dir().join(&path)).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            // systemctl's --now is 220+; 219 fails the whole command on it.
            assert!(!line.contains("--now"), "{path}: {line}");
        }
    }
    let pre = fs::read_to_string(crate_dir().join("../packaging/rpm/pre_uninstall.sh")).unwrap();
    assert!(pre.contains("systemctl --no-reload disable iscsi-ha.service"));
    assert!(pre.contains("systemctl stop iscsi-ha.service"));
}
