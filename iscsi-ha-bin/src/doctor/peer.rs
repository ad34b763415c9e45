//! The peer's configuration, compared through the pool database: with the XAPI role source
//! each daemon publishes its fingerprint there ([`crate::xapi::PublishRun`]); doctor reads
//! them back (read-only: it never writes the pool database) and compares every other host's
//! with its own. Other role sources have no shared database, so the comparison is left to the
//! operator.

use super::Finding;
use crate::xapi::{host_uuid, read_published, PoolDbError, Xe};
use iscsi_ha_core::config::schema::RoleSourceKind;
use iscsi_ha_core::config::{fingerprint, Config, FINGERPRINT_HEX_LEN};
use std::collections::BTreeMap;
use std::path::Path;

/// The check's name in doctor's findings.
pub const CHECK: &str = "fingerprint.peer";

/// What to do when the pool database cannot help.
const BY_HAND: &str = "compare the fingerprints by hand: `iscsi-ha status` shows it on each host";

/// Compares the peers' published fingerprints with this configuration's.
pub fn check(config: &Config) -> Vec<Finding> {
    if config.file.role.source != RoleSourceKind::Xapi {
        return vec![Finding::ok(
            CHECK,
            format!(
                "the peer comparison needs the pool database ([role] source = \"xapi\"): {BY_HAND}"
            ),
        )];
    }
    let xapi = &config.file.xapi;
    let me = match host_uuid(Path::new(&xapi.inventory)) {
        Ok(me) => me,
        Err(e) => return vec![unusable(&e, "fix [xapi] inventory")],
    };
    match read_published(&Xe::new(&xapi.xe, xapi.timeout.get())) {
        Ok(published) => compare(&published, &me, &fingerprint(config)),
        Err(e) => vec![unusable(
            &e,
            &format!(
                "check that XAPI answers here ({} pool-list params=uuid --minimal; [xapi] xe)",
                xapi.xe
            ),
        )],
    }
}

fn unusable(e: &PoolDbError, fix: &str) -> Finding {
    Finding::warn(
        CHECK,
        format!("cannot read the fingerprints in the pool database: {e}"),
        format!("{fix}; or {BY_HAND}"),
    )
}

/// The findings for what the pool database holds (`published`, by host UUID): one per other
/// host, a warning when none published, and a warning when the daemon here published another
/// fingerprint than `ours` (it runs an older file).
pub fn compare(published: &BTreeMap<String, String>, me: &str, ours: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(mine) = published.get(me).filter(|mine| *mine != ours) {
        out.push(Finding::warn(
            CHECK,
            format!("the daemon here published fingerprint {mine}, but this file's is {ours}: it runs another configuration"),
            "reload it (systemctl reload iscsi-ha) so it runs this file and publishes its fingerprint",
        ));
    }
    for (host, theirs) in published.iter().filter(|(host, _)| *host != me) {
        out.push(if !is_fingerprint(theirs) {
            Finding::warn(
                CHECK,
                format!("host {host} published something that is not a fingerprint in the pool database"),
                format!("restart iscsi-ha on host {host} so its daemon publishes it again; or {BY_HAND}"),
            )
        } else if theirs == ours {
            Finding::ok(
                CHECK,
                format!("host {host}'s configuration fingerprint is ours ({ours})"),
            )
        } else {
            Finding::error(
                CHECK,
                format!("the peer's configuration differs: host {host}'s fingerprint is {theirs}, ours {ours}"),
                "compare /etc/iscsi-ha/iscsi-ha.toml on both hosts (iscsi-ha check-config prints the effective one)",
            )
        });
    }
    if !published.keys().any(|host| host != me) {
        out.push(Finding::warn(
            CHECK,
            "no other host has published its configuration fingerprint in the pool database",
            format!("the peer's daemon publishes it when it starts with the xapi role source ([role] source = \"xapi\"): start iscsi-ha there; or {BY_HAND}"),
        ));
    }
    out
}

/// What a daemon publishes: [`FINGERPRINT_HEX_LEN`] lowercase hex digits.
fn is_fingerprint(text: &str) -> bool {
    text.len() == FINGERPRINT_HEX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    const ME: &str = "11111111-0000-4000-8000-000000000001";
    const PEER: &str = "22222222-0000-4000-8000-000000000002";
    const OURS: &str = "0123456789abcdef";
    const THEIRS: &str = "fedcba9876543210";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn levels(findings: &[Finding]) -> Vec<Level> {
        findings.iter().map(|f| f.level).collect()
    }

    #[test]
    fn an_equal_peer_is_ok_and_named() {
        let f = compare(&map(&[(ME, OURS), (PEER, OURS)]), ME, OURS);
        assert_eq!(levels(&f), [Level::Ok]);
        assert_eq!(
            f[0].what,
            format!("host {PEER}'s configuration fingerprint is ours ({OURS})")
        );
    }

    #[test]
    fn a_different_peer_is_an_error_saying_what_to_compare() {
        let f = compare(&map(&[(PEER, THEIRS)]), ME, OURS);
        assert_eq!(levels(&f), [Level::Error]);
        assert!(f[0].what.contains(&format!(
            "the peer's configuration differs: host {PEER}'s fingerprint is {THEIRS}, ours {OURS}"
        )));
        assert!(f[0]
            .todo
            .contains("iscsi-ha check-config prints the effective one"));
    }

    #[test]
    fn no_peer_published_is_a_warning_naming_the_xapi_role_source() {
        for published in [map(&[]), map(&[(ME, OURS)])] {
            let f = compare(&published, ME, OURS);
            assert_eq!(levels(&f), [Level::Warn]);
            assert!(f[0].todo.contains("[role] source = \"xapi\""), "{:?}", f[0]);
        }
    }

    #[test]
    fn a_stale_own_entry_and_a_peer_value_that_is_no_fingerprint_are_warnings() {
        let f = compare(&map(&[(ME, THEIRS), (PEER, "x; rm -rf")]), ME, OURS);
        assert_eq!(levels(&f), [Level::Warn, Level::Warn]);
        assert!(f[0].what.contains(&format!(
            "published fingerprint {THEIRS}, but this file's is {OURS}"
        )));
        assert!(f[1].what.contains("not a fingerprint"), "{:?}", f[1]);
        assert!(
            !f[1].what.contains("rm -rf"),
            "the value itself is not repeated"
        );
        assert!(is_fingerprint(OURS));
        assert!(!is_fingerprint("0123456789ABCDEF"));
        assert!(!is_fingerprint("0123"));
    }
}
