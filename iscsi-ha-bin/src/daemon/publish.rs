//! The daemon's side of the fingerprint in the pool database ([`crate::xapi::PublishRun`]):
//! with the XAPI role source it publishes its fingerprint once at start and again after a
//! reload that changed what it would publish (or when the last publication failed), its `xe`
//! polled beside the loop. A failure is logged once, with what to do; nothing is retried on its
//! own and nothing waits for it: the fingerprint is for operators, not for failover.

use super::Daemon;
use crate::xapi::{PoolDbError, PublishRun, PublishSpec, Xe};
use iscsi_ha_core::config::schema::RoleSourceKind;
use iscsi_ha_core::config::Config;
use std::path::PathBuf;

/// What `config` has the daemon publish: nothing unless its role source is XAPI (another
/// source may not run on XenServer at all, and has no pool database to share).
pub(super) fn publication(config: &Config) -> Option<PublishSpec> {
    if config.file.role.source != RoleSourceKind::Xapi {
        return None;
    }
    let xapi = &config.file.xapi;
    Some(PublishSpec {
        xe: Xe::new(&xapi.xe, xapi.timeout.get()),
        inventory: PathBuf::from(&xapi.inventory),
        fingerprint: iscsi_ha_core::config::fingerprint(config),
    })
}

/// The daemon's publication: the one under way and the last that worked.
#[derive(Debug, Default)]
pub(super) struct Publisher {
    /// Under way (dropping it kills its `xe`).
    pub(super) run: Option<PublishRun>,
    /// The last spec published successfully, so a reload that changes nothing writes nothing.
    published: Option<PublishSpec>,
}

impl Daemon {
    /// Starts publishing what the configuration asks for, unless that is what was last
    /// published; a publication still under way is replaced (its `xe` killed).
    pub(super) fn publish_fingerprint(&mut self) {
        let Some(spec) = publication(&self.config) else {
            return;
        };
        if self.publisher.published.as_ref() == Some(&spec) {
            return;
        }
        tracing::info!(
            fingerprint = spec.fingerprint,
            "publishing the configuration fingerprint in the pool database for the peer's `iscsi-ha doctor`"
        );
        self.publisher.run = None;
        match PublishRun::start(spec.clone()) {
            Ok(run) => {
                self.publisher.run = Some(run);
                // An xe that exits at once is read now rather than at the next wake-up.
                self.poll_publish();
            }
            Err(e) => failed(&spec, &e),
        }
    }

    /// Reads the running `xe` without blocking; logs the outcome once it is there.
    pub(super) fn poll_publish(&mut self) {
        let Some(run) = self.publisher.run.as_mut() else {
            return;
        };
        let Some(outcome) = run.advance() else {
            return;
        };
        let spec = run.spec().clone();
        self.publisher.run = None;
        match outcome {
            Ok(done) => {
                tracing::info!(
                    pool = done.pool,
                    "configuration fingerprint {} published in the pool database as other-config:{}",
                    spec.fingerprint,
                    done.key
                );
                self.publisher.published = Some(spec);
            }
            Err(e) => failed(&spec, &e),
        }
    }
}

/// Logs a failed publication once, as a warning: it costs the peer's comparison only.
fn failed(spec: &PublishSpec, e: &PoolDbError) {
    tracing::warn!(
        "cannot publish the configuration fingerprint {} in the pool database: {e}. The peer's `iscsi-ha doctor` cannot compare the two configurations until it is; check that XAPI answers here (xe pool-list params=uuid --minimal, [xapi] xe and inventory in the configuration), then reload iscsi-ha (systemctl reload iscsi-ha) to publish again; meanwhile compare `iscsi-ha status` on both hosts by hand",
        spec.fingerprint
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(
            iscsi_ha_core::config::Source {
                text,
                origin: "c.toml",
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn only_the_xapi_role_source_publishes_and_the_spec_follows_the_xapi_section() {
        let minimal = include_str!("../../../fixtures/config/good/minimal.toml");
        let xapi = config(minimal);
        let spec = publication(&xapi).unwrap();
        assert_eq!(spec.fingerprint, iscsi_ha_core::config::fingerprint(&xapi));
        assert_eq!(spec.inventory, PathBuf::from("/etc/xensource-inventory"));
        assert_eq!(
            spec.xe,
            Xe::new("/usr/bin/xe", std::time::Duration::from_secs(13))
        );
        for other in [
            "source = \"static\"\nrole = \"master\"",
            "source = \"file\"\npath = \"/run/iscsi-ha-role\"",
            "source = \"command\"\ncommand = [\"/bin/true\"]",
        ] {
            let text = minimal.replace("source = \"xapi\"", other);
            assert_eq!(publication(&config(&text)), None, "{other}");
        }
        // The role source is out of the fingerprint, so a reload that only changes the `xe`
        // program publishes again with the same fingerprint: the spec tells them apart.
        let moved = config(&format!("{minimal}\n[xapi]\nxe = \"/opt/xe\"\n"));
        assert_ne!(publication(&moved), Some(spec));
    }
}
