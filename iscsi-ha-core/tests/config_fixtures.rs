//! Every configuration under fixtures/config: good ones parse, each bad one fails with exactly
//! the error in its `.expected` file (regenerate with `BLESS=1 cargo test -p iscsi-ha-core`).

#![allow(clippy::unwrap_used)]

use iscsi_ha_core::config::{Config, Source};
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/config")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

/// Every good configuration parses; its warnings are exactly those in `<name>.warnings` (none
/// when that file is absent).
#[test]
fn good_configs_parse_with_exactly_their_warnings() {
    let files = toml_files(&fixtures().join("good"));
    assert!(files.len() >= 3);
    let bless = std::env::var_os("BLESS").is_some();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let origin = format!("good/{name}");
        let config = match Config::parse(
            Source {
                text: &text,
                origin: &origin,
            },
            None,
        ) {
            Ok(config) => config,
            Err(e) => panic!("{origin} should parse:\n{e}"),
        };
        let got: String = config.warnings.iter().map(|w| format!("{w}\n")).collect();
        let warnings_path = file.with_extension("warnings");
        if bless && !got.is_empty() {
            fs::write(&warnings_path, &got).unwrap();
        }
        let expected = fs::read_to_string(&warnings_path).unwrap_or_default();
        assert_eq!(got, expected, "{origin}: warnings differ");
    }
}

/// The noSAN installer's name is taken exactly, with a warning for each RFC rule it breaks.
#[test]
fn the_nosan_target_name_is_kept_exactly_and_warned_about() {
    let text = fs::read_to_string(fixtures().join("good/nosan-iqn.toml")).unwrap();
    let config = Config::parse(
        Source {
            text: &text,
            origin: "nosan-iqn.toml",
        },
        None,
    )
    .unwrap();
    assert_eq!(config.target.iqn.as_str(), "iqn.2015.com.halizard:noSAN");
    assert!(config
        .to_effective_toml()
        .contains("iqn = \"iqn.2015.com.halizard:noSAN\""));
    let rules: Vec<&str> = config.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(rules, ["target.iqn", "target.iqn"]);
    assert!(config.warnings[0].message.contains("RFC 3720 §3.2.6.2"));
    assert!(config.warnings[1].message.contains("RFC 3720 §3.2.6.3.1"));
    assert_eq!(config.warnings[0].line, Some(9));
}

#[test]
fn the_documented_example_parses_as_shipped_and_with_its_secrets() {
    let dir = fixtures();
    let text = fs::read_to_string(dir.join("example.toml")).unwrap();
    let shipped = Config::parse(
        Source {
            text: &text,
            origin: "example.toml",
        },
        None,
    );
    if let Err(e) = &shipped {
        panic!("example.toml as shipped:\n{e}");
    }

    // Its commented CHAP account, SMTP user and secrets file, turned on.
    let mut with_secrets = text.clone();
    for (commented, on) in [
        (
            "# [[target.access.incoming]]\n# user = \"xen\"",
            "[[target.access.incoming]]\nuser = \"xen\"",
        ),
        ("# user = \"alerts\"", "user = \"alerts\""),
        ("# [secrets]\n# file = ", "[secrets]\nfile = "),
    ] {
        assert!(with_secrets.contains(commented), "{commented}");
        with_secrets = with_secrets.replace(commented, on);
    }
    let secrets = fs::read_to_string(dir.join("example.secrets.toml")).unwrap();
    let config = Config::parse(
        Source {
            text: &with_secrets,
            origin: "example.toml",
        },
        Some(Source {
            text: &secrets,
            origin: "example.secrets.toml",
        }),
    )
    .unwrap();
    assert_eq!(
        config.target.access.incoming[0].password.expose(),
        "chap-secret-123"
    );
    assert_eq!(
        config.smtp_password.as_ref().map(|s| s.expose()),
        Some("mail-secret")
    );
    assert!(!config.holds_inline_secrets());
    let effective = config.to_effective_toml();
    assert!(!effective.contains("chap-secret-123") && !effective.contains("mail-secret"));
}

#[test]
fn bad_configs_fail_with_the_expected_error() {
    let dir = fixtures().join("bad");
    let files = toml_files(&dir);
    assert!(files.len() >= 15);
    let bless = std::env::var_os("BLESS").is_some();
    let mut mismatches = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&file).unwrap();
        let origin = format!("bad/{name}");
        let got = match Config::parse(
            Source {
                text: &text,
                origin: &origin,
            },
            None,
        ) {
            Ok(_) => "parsed without error".to_string(),
            Err(e) => e.to_string(),
        };
        let expected_path = file.with_extension("expected");
        if bless {
            fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
        if expected.trim_end() != got {
            mismatches.push(format!(
                "{name}:\n  expected: {}\n  got:      {got}",
                expected.trim_end()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let text = "[role]\nsource = \"xapi\n";
    let err = Config::parse(
        Source {
            text,
            origin: "x.toml",
        },
        None,
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].line, Some(2));
}

#[test]
fn inline_secrets_are_detected_and_never_printed() {
    let text = fs::read_to_string(fixtures().join("good/minimal.toml"))
        .unwrap()
        .replace(
            "[vip]",
            "[[target.access.incoming]]\nuser = \"xen\"\npassword = \"inline-secret-9\"\n\n[vip]",
        );
    let config = Config::parse(
        Source {
            text: &text,
            origin: "inline.toml",
        },
        None,
    )
    .unwrap();
    assert!(config.holds_inline_secrets());
    assert!(!config.to_effective_toml().contains("inline-secret-9"));
    assert!(!format!("{config:?}").contains("inline-secret-9"));
}

/// `[target.daemon]`, tgtd's table before backends could be chosen, is read as `[target.tgt]`.
#[test]
fn the_old_daemon_table_reads_as_the_tgt_table() {
    let new = fs::read_to_string(fixtures().join("good/tgt-table.toml")).unwrap();
    let old = new.replace("[target.tgt]", "[target.daemon]");
    assert_ne!(old, new);
    let parse = |text: &str| {
        Config::parse(
            Source {
                text,
                origin: "tgt-table.toml",
            },
            None,
        )
        .unwrap()
    };
    let (old, new) = (parse(&old), parse(&new));
    assert_eq!(old.file.target.tgt_daemon().control_port, 7);
    assert!(!old.file.target.tgt_daemon().managed);
    assert_eq!(old.file.target.tgt_daemon(), new.file.target.tgt_daemon());
    assert_eq!(
        (old.file.target.tgt_key(), new.file.target.tgt_key()),
        ("target.daemon", "target.tgt")
    );
    assert_eq!(old.target, new.target);
}

/// Every configuration fixture still loads, with the backend it names: those written before
/// `backend` existed (and `[target.daemon]`) are tgt's, the default.
#[test]
fn every_fixture_configuration_loads_with_its_backend() {
    let mut files = toml_files(&fixtures().join("good"));
    files.push(fixtures().join("example.toml"));
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let origin = file.display().to_string();
        let config = Config::parse(
            Source {
                text: &text,
                origin: &origin,
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{origin}:\n{e}"));
        let lio = text.contains("\nbackend = \"lio\"");
        assert_eq!(
            config.file.target.backend.name(),
            if lio { "lio" } else { "tgt" },
            "{origin}"
        );
    }
}
