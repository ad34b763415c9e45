//! The configuration fingerprints in the pool database, so the two hosts can be compared
//! without logging in to both: each daemon whose role source is XAPI writes its own into the
//! pool's `other-config` under `iscsi-ha-fingerprint-<host uuid>` (where the original kept its
//! configuration backups), and `iscsi-ha doctor` reads the map back.
//!
//! Publishing is two `xe` calls, one at a time, each polled by the daemon's loop like the PBD
//! re-plug: `xe pool-list params=uuid --minimal`, then `xe pool-param-set uuid=<pool>
//! other-config:<key>=<fingerprint>`. Reading is `xe pool-list params=uuid --minimal`, then
//! `xe pool-param-get uuid=<pool> param-name=other-config`, whose `key: value; key: value`
//! reply is read by [`parse_map`].

use super::records::{is_uuid, parse_map, XeParseError, REPLY_CAP};
use super::xe::{Xe, XeCall, XeError};
use crate::role::installation_uuid;
use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What precedes the host's UUID in the pool's `other-config` key.
pub const KEY_PREFIX: &str = "iscsi-ha-fingerprint-";

/// The `other-config` key a host's fingerprint is kept under.
pub fn key(host: &str) -> String {
    format!("{KEY_PREFIX}{host}")
}

/// Why the pool database could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolDbError {
    /// This host's UUID could not be read from XenServer's inventory.
    #[error("cannot tell this host's UUID: {0}")]
    Host(String),
    /// `xe` could not run, was killed at its timeout, or failed.
    #[error(transparent)]
    Xe(#[from] XeError),
    /// `xe` printed something XAPI would not have.
    #[error("{command}: reply refused: {error}")]
    Refused {
        /// The command line.
        command: String,
        /// What was wrong with it.
        error: XeParseError,
    },
}

/// This host's UUID from `inventory`, checked to be one (it becomes part of a key).
pub fn host_uuid(inventory: &Path) -> Result<String, PoolDbError> {
    let uuid = installation_uuid(inventory).map_err(PoolDbError::Host)?;
    if is_uuid(&uuid) {
        Ok(uuid)
    } else {
        Err(PoolDbError::Host(format!(
            "INSTALLATION_UUID in {} is not a UUID",
            inventory.display()
        )))
    }
}

/// The arguments that print the pool's UUID.
fn pool_uuid_args() -> Vec<String> {
    vec!["pool-list".into(), "params=uuid".into(), "--minimal".into()]
}

/// Reads `xe pool-list params=uuid --minimal`: exactly one UUID (a host is in one pool).
pub fn parse_pool_uuid(text: &str) -> Result<String, XeParseError> {
    let uuid = text.trim();
    if is_uuid(uuid) {
        Ok(uuid.to_string())
    } else {
        Err(XeParseError::BadValue {
            what: "the pool list".into(),
            expected: "one pool UUID",
        })
    }
}

/// The fingerprints published in the pool's `other-config` (every other key left out), by
/// host UUID. `text` is `xe pool-param-get ... param-name=other-config`'s reply.
pub fn parse_published(text: &str) -> Result<BTreeMap<String, String>, XeParseError> {
    if text.len() >= REPLY_CAP {
        return Err(XeParseError::TooLong(REPLY_CAP));
    }
    let map = parse_map(text.trim_end_matches('\n'), "the pool's other-config")?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(KEY_PREFIX).map(|h| (h.to_string(), v)))
        .collect())
}

/// Reads every published fingerprint, waiting for `xe` (each call at most its timeout): for
/// one-shot commands (`iscsi-ha doctor`), never the daemon's loop.
pub fn read_published(xe: &Xe) -> Result<BTreeMap<String, String>, PoolDbError> {
    let pool = one_shot(xe, &pool_uuid_args(), parse_pool_uuid)?;
    let args = vec![
        "pool-param-get".into(),
        format!("uuid={pool}"),
        "param-name=other-config".into(),
    ];
    one_shot(xe, &args, parse_published)
}

fn one_shot<T>(
    xe: &Xe,
    args: &[String],
    parse: impl FnOnce(&str) -> Result<T, XeParseError>,
) -> Result<T, PoolDbError> {
    let text = xe.run(args)?;
    parse(&text).map_err(|error| PoolDbError::Refused {
        command: format!("xe {}", args.join(" ")),
        error,
    })
}

/// What the daemon publishes, and with which `xe`: two equal specs publish the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSpec {
    /// The `xe` program and its timeout.
    pub xe: Xe,
    /// XenServer's inventory (this host's UUID).
    pub inventory: PathBuf,
    /// This host's configuration fingerprint.
    pub fingerprint: String,
}

/// A fingerprint written to the pool database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The pool's UUID.
    pub pool: String,
    /// The `other-config` key written.
    pub key: String,
}

/// A publication under way: one `xe` call at a time, polled by the caller.
#[derive(Debug)]
pub struct PublishRun {
    spec: PublishSpec,
    key: String,
    /// The pool's UUID once known (the second call is under way).
    pool: Option<String>,
    call: XeCall,
}

impl PublishRun {
    /// Reads this host's UUID and starts the first call, without waiting; an error when
    /// nothing could be started.
    pub fn start(spec: PublishSpec) -> Result<Self, PoolDbError> {
        let key = key(&host_uuid(&spec.inventory)?);
        let call = spec.xe.start(&pool_uuid_args())?;
        Ok(Self {
            spec,
            key,
            pool: None,
            call,
        })
    }

    /// What is published.
    pub fn spec(&self) -> &PublishSpec {
        &self.spec
    }

    /// The running `xe`'s output, while it has one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.call.fd()
    }

    /// When [`PublishRun::advance`] must be called even if nothing is readable.
    pub fn due(&self) -> Instant {
        self.call.due()
    }

    /// Reads without blocking and starts the second call when the first ends; the outcome once
    /// the last call has ended, `None` while one runs.
    pub fn advance(&mut self) -> Option<Result<Published, PoolDbError>> {
        let text = match self.call.advance()? {
            Ok(text) => text,
            Err(e) => return Some(Err(e.into())),
        };
        if let Some(pool) = &self.pool {
            return Some(Ok(Published {
                pool: pool.clone(),
                key: self.key.clone(),
            }));
        }
        let pool = match parse_pool_uuid(&text) {
            Ok(pool) => pool,
            Err(error) => {
                return Some(Err(PoolDbError::Refused {
                    command: self.call.command().to_string(),
                    error,
                }))
            }
        };
        let args = vec![
            "pool-param-set".into(),
            format!("uuid={pool}"),
            format!("other-config:{}={}", self.key, self.spec.fingerprint),
        ];
        match self.spec.xe.start(&args) {
            Ok(call) => {
                self.call = call;
                self.pool = Some(pool);
                None
            }
            Err(e) => Some(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "0f0f0f0f-0000-4000-8000-0000000000f0";
    const ME: &str = "11111111-0000-4000-8000-000000000001";

    #[test]
    fn the_pool_uuid_is_one_uuid_and_nothing_else() {
        assert_eq!(parse_pool_uuid(&format!("{POOL}\n")).unwrap(), POOL);
        for bad in [
            "",
            "\n",
            "not-a-uuid",
            &format!("{POOL},{POOL}"),
            "Segmentation fault",
        ] {
            let e = parse_pool_uuid(bad).unwrap_err().to_string();
            assert_eq!(e, "the pool list is not one pool UUID", "{bad:?}");
        }
    }

    #[test]
    fn only_the_fingerprint_keys_of_other_config_are_kept_by_host() {
        let text = format!(
            "memory-ratio-hvm: 0.25; {KEY_PREFIX}{ME}: 0123456789abcdef; IHA_IHA_CONF: aGVsbG8=; {KEY_PREFIX}other: x\n"
        );
        let published = parse_published(&text).unwrap();
        assert_eq!(
            published.into_iter().collect::<Vec<_>>(),
            [
                (ME.to_string(), "0123456789abcdef".to_string()),
                ("other".to_string(), "x".to_string())
            ]
        );
        assert!(parse_published("\n").unwrap().is_empty());
        assert!(parse_published("").unwrap().is_empty());
    }

    #[test]
    fn a_reply_that_is_not_a_map_is_refused_naming_the_map() {
        for bad in ["garbage", "a: 1; a: 2", "two words: x"] {
            let e = parse_published(bad).unwrap_err().to_string();
            assert!(
                e.contains("of the pool's other-config is not key: value"),
                "{e}"
            );
        }
        assert!(matches!(
            parse_published(&"a".repeat(REPLY_CAP)),
            Err(XeParseError::TooLong(_))
        ));
    }

    #[test]
    fn the_key_names_the_host() {
        assert_eq!(key(ME), format!("iscsi-ha-fingerprint-{ME}"));
    }

    #[test]
    fn a_host_uuid_that_is_not_one_is_refused_naming_the_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inv");
        std::fs::write(&inventory, format!("INSTALLATION_UUID='{ME}'\n")).unwrap();
        assert_eq!(host_uuid(&inventory).unwrap(), ME);
        std::fs::write(&inventory, "INSTALLATION_UUID='x; y=z'\n").unwrap();
        let e = host_uuid(&inventory).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot tell this host's UUID: INSTALLATION_UUID in {} is not a UUID",
                inventory.display()
            )
        );
        let e = host_uuid(&dir.path().join("gone")).unwrap_err().to_string();
        assert!(e.starts_with("cannot tell this host's UUID: "), "{e}");
        assert!(e.contains("gone"), "{e}");
    }
}
