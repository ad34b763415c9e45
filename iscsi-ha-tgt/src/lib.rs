//! tgt adapter for iscsi-ha: implements the core's
//! [`IscsiTarget`](iscsi_ha_core::ports::IscsiTarget) port by speaking tgtd's management
//! protocol over its UNIX socket — the bytes `tgtadm` sends — with no `tgtadm` process.
//!
//! | module | holds | tgtadm equivalent |
//! | --- | --- | --- |
//! | [`wire`] | the 120-byte request header, `key=value` body, 8-byte reply | the bytes on the socket |
//! | [`client`] | one request per connection, timeouts, "not running" vs "refused" | `ipc_mgmt_connect` |
//! | [`guard`] | checks tgtd lacks (it crashes or misbehaves without them) | tgtadm's client-side checks |
//! | [`ops`] | typed operations: system, target, logical unit, ACL, account, connection | `--mode ... --op ...` |
//! | [`show`] | total parsers for the `show` replies | reading `tgtadm --op show` |
//! | [`durability`] | stable writes and the reported write cache: tgt's facts, the mapping | `write-cache`, `--bsoflags` |
//! | [`plan`] | the pure diff of a target spec against what tgtd holds | — |
//! | [`settings`] | what of the configuration's `[target]` tgtd cannot take, at its key | — |
//! | [`daemon`] | tgtd as a supervised child (`tgtd -f -C N`) | `systemctl start tgt` |
//! | [`exit_watch`] | noticing a tgtd's exit: a pidfd, or a periodic look on kernels before 5.3 | — |
//! | [`config`] | [`TgtConfig`]: socket, lifecycle, timeouts, backing | `/etc/tgt` |
//! | [`adapter`] | [`TgtTarget`]: serve / stop / status | — |
//! | [`targets_conf`] | the one target `import-legacy` carries over from tgt-admin's file | `tgt-admin` |
//!
//! ```no_run
//! use iscsi_ha_core::ports::IscsiTarget;
//! use iscsi_ha_tgt::{ManagedDaemon, TgtConfig, TgtTarget};
//!
//! let daemon = ManagedDaemon::new(vec!["--iscsi".into(), "portal=0.0.0.0:3260".into()]);
//! let mut target = TgtTarget::new(TgtConfig::managed(0, daemon));
//! let status = target.status()?;
//! assert!(!status.daemon_running); // nothing started until the first serve
//! # Ok::<(), iscsi_ha_core::ports::TargetError>(())
//! ```

pub mod adapter;
pub mod client;
pub mod config;
pub mod daemon;
pub mod durability;
pub mod error;
pub mod exit_watch;
pub mod guard;
pub mod ops;
pub mod plan;
pub mod restart;
pub mod settings;
pub mod show;
pub mod targets_conf;
pub mod wire;

pub use adapter::TgtTarget;
pub use config::{BackingDefaults, Lifecycle, ManagedDaemon, TgtConfig};
pub use daemon::{DaemonError, ManagedTgtd};
pub use error::TgtError;
pub use guard::GuardError;
