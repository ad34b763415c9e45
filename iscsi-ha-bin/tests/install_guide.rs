//! `docs/install-xcp-ng.md` stays true to the tools: every `iscsi-ha` and `iscsi-cfg` command
//! line in it is accepted by the command-line parser the binaries use, every repository file it
//! names as the check of a step exists, and the DRBD settings it explains are the shipped
//! example's.

#![allow(clippy::unwrap_used)]

use clap::Parser;
use iscsi_ha_bin::cfg_cli::CfgCli;
use iscsi_ha_bin::cli::Cli;
use std::path::Path;

const GUIDE: &str = include_str!("../../docs/install-xcp-ng.md");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The command lines of the guide's indented code blocks, split at `;` and `&&`, comments cut.
fn commands() -> Vec<Vec<String>> {
    GUIDE
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .flat_map(|l| {
            let l = l.split(" #").next().unwrap();
            l.split([';', '&'])
                .map(|c| c.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

#[test]
fn every_iscsi_ha_and_iscsi_cfg_line_of_the_guide_parses() {
    let mut seen = 0;
    for words in commands() {
        let result = match words[0].as_str() {
            "iscsi-ha" => Cli::try_parse_from(&words).map(drop),
            "iscsi-cfg" => CfgCli::try_parse_from(&words).map(drop),
            _ => continue,
        };
        seen += 1;
        if let Err(e) = result {
            panic!("the guide's `{}` is refused:\n{e}", words.join(" "));
        }
    }
    assert!(
        seen >= 8,
        "only {seen} iscsi-ha/iscsi-cfg lines found: did the guide's format change?"
    );
}

#[test]
fn every_file_the_guide_names_as_a_check_exists() {
    let mut named = 0;
    for piece in GUIDE.split('`').skip(1).step_by(2) {
        let path = piece.split_whitespace().next().unwrap_or("");
        let ours = [
            "iscsi-ha-bin/",
            "scripts/",
            "systemd/",
            "fixtures/",
            "packaging/",
        ];
        if ours.iter().any(|p| path.starts_with(p)) {
            named += 1;
            assert!(
                Path::new(REPO).join(path).exists(),
                "the guide names {path}, which does not exist"
            );
        }
    }
    assert!(named >= 5, "only {named} repository files named");
}

#[test]
fn the_drbd_settings_the_guide_explains_are_the_shipped_examples() {
    let example = include_str!("../../fixtures/drbd/iscsi-ha.res.example");
    for setting in [
        "protocol C",
        "fencing resource-and-stonith",
        "fence-peer \"/usr/sbin/iscsi-ha fence-peer\"",
        "cram-hmac-alg",
        "shared-secret",
    ] {
        assert!(
            GUIDE.contains(setting),
            "the guide no longer explains `{setting}`"
        );
        assert!(example.contains(setting), "the example lost `{setting}`");
    }
    for policy in ["after-sb-0pri", "after-sb-1pri", "after-sb-2pri"] {
        assert!(
            example.contains(&format!("{policy} disconnect;")),
            "the example's {policy} is no longer disconnect, as the guide says"
        );
    }
}
