//! The target backend a configuration chooses (`[target] backend`): what the core cannot check
//! because it knows no backend's words. The adapter crate owns its table's meaning and its
//! limits; this module only reports them at their place in the file, so `check-config`, the
//! daemon's start and a reload all refuse a configuration the backend could not serve as
//! written (an access rule LIO would lose, an identity tgtd would cut or split).

use iscsi_ha_core::config::schema::TargetBackend;
use iscsi_ha_core::config::{key_position, Config, ConfigError, KeyPath, Segment, SettingProblem};
use iscsi_ha_lio::LioConfig;

/// The LIO adapter's settings for a configuration with `backend = "lio"`, or its problems.
pub fn lio_config(config: &Config) -> Result<LioConfig, Vec<SettingProblem>> {
    iscsi_ha_lio::settings::lio_config(config.file.target.lio.as_ref(), config.vip.address())
}

/// Every problem of the chosen backend with `config`, each at its key in `text` (the file the
/// configuration came from, named `origin`).
pub fn check(config: &Config, text: &str, origin: &str) -> Vec<ConfigError> {
    let problems = match config.file.target.backend {
        TargetBackend::Tgt => iscsi_ha_tgt::settings::unsupported(&config.target),
        TargetBackend::Lio => {
            let mut found = iscsi_ha_lio::settings::unsupported(&config.target);
            if let Err(more) = lio_config(config) {
                found.extend(more);
            }
            found
        }
    };
    problems
        .into_iter()
        .map(|p| at(text, origin, &in_file(config, p.at), p.message))
        .collect()
}

/// The key as the file writes it. A backend names a LUN by its place among the target's LUNs,
/// which are in LUN order (`target.lun[i]`); the file may list them in any order.
fn in_file(config: &Config, key: KeyPath) -> KeyPath {
    let KeyPath(mut segments) = key;
    if let [Segment::Key(target), Segment::Key(lun), Segment::Index(i), ..] =
        segments.as_mut_slice()
    {
        if target == "target" && lun == "lun" {
            let number = config.target.luns.get(*i).map(|l| l.lun.get());
            if let Some(place) = config
                .file
                .target
                .luns
                .iter()
                .position(|s| Some(s.lun) == number)
            {
                *i = place;
            }
        }
    }
    KeyPath(segments)
}

fn at(text: &str, origin: &str, key: &KeyPath, message: String) -> ConfigError {
    let position = key_position(text, key);
    ConfigError {
        origin: origin.to_string(),
        key: key.to_string(),
        line: position.map(|(l, _)| l),
        column: position.map(|(_, c)| c),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::config::Source;

    const BASE: &str = r#"
[role]
source = "static"
role = "master"
[replication]
resources = ["r0", "r1"]
[target]
iqn = "iqn.2024-01.com.example:storage"
[[target.lun]]
lun = 2
path = "/dev/drbd2"
scsi_sn = "SN,2"
[[target.lun]]
lun = 1
path = "/dev/drbd1"
[target.access]
initiator_names = ["iqn.1994-05.com.redhat:a"]
[vip]
address = "10.10.10.3/24"
interface = "xenbr1"
"#;

    fn errors(text: &str) -> Vec<String> {
        let config = Config::parse(
            Source {
                text,
                origin: "t.toml",
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        check(&config, text, "t.toml")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_backends_problem_with_a_lun_is_placed_at_that_luns_table_in_the_file() {
        // LUN 2 is the spec's second LUN but the file's first.
        assert_eq!(
            errors(BASE),
            vec!["t.toml:12:11: target.lun[0].scsi_sn: \"SN,2\" holds ',' or '=', on which tgtd splits its requests: write scsi_sn without them"]
        );
        let lio = BASE.replace(
            "iqn = \"iqn.2024-01.com.example:storage\"",
            "iqn = \"iqn.2024-01.com.example:storage\"\nbackend = \"lio\"",
        );
        assert_eq!(errors(&lio), Vec::<String>::new());
        let spaced = lio.replace("scsi_sn = \"SN,2\"", "scsi_sn = \"SN 2 \"");
        let found = errors(&spaced);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "t.toml:13:11: target.lun[0].scsi_sn: \"SN 2 \" starts or ends with a space"
            ),
            "{found:?}"
        );
    }
}
