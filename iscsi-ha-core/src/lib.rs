//! The pure core of iscsi-ha.
//!
//! It holds the domain types, the configuration schema, the ports (traits the adapters
//! implement), the planner and the reconciler, and the status model. It does no I/O: no
//! sockets, files, clocks, threads or processes. Everything it needs arrives as values (an
//! [`observation::Observation`], an `Instant`) or through a port.
//!
//! | module | holds |
//! | --- | --- |
//! | [`role`] | the pool role an external manager decides |
//! | [`resource`], [`volume`] | replicated resources and their neutral status |
//! | [`iqn`], [`target`], [`subnet`], [`secret`] | the iSCSI target we export and what the daemon reports |
//! | [`vip`] | the floating address |
//! | [`ports`] | the traits adapters implement, with typed errors |
//! | [`alert`] | alerts and the duplicate screen |
//! | [`config`] | the TOML configuration, its checks, and the legacy importer |
//! | [`observation`], [`plan`] | what was seen, and the pure planner |
//! | [`fence`] | the answer to the replication layer's question "may this host go on alone?" |
//! | [`history`], [`standing`] | what the host remembers of serving; who may serve, which split-brain side to keep |
//! | [`refresh`] | whether the VIP is due for its periodic announcement while this host serves |
//! | [`operator`] | the operator's requests checked against the observation |
//! | [`reconcile`], [`budget`] | executing plans through the ports, restart budgets, alert policy |
//! | [`engine`] | one wake-up: observe, plan and act, repeated while steps succeed; the host's ports and what wakes the loop |
//! | [`status`], [`time`] | the status model the CLI prints |

pub mod alert;
pub mod budget;
pub mod config;
pub mod engine;
pub mod fence;
pub mod history;
pub mod iqn;
pub mod observation;
pub mod operator;
pub mod plan;
pub mod ports;
pub mod reconcile;
pub mod refresh;
pub mod resource;
pub mod role;
pub mod secret;
pub mod standing;
pub mod status;
pub mod subnet;
pub mod target;
pub mod time;
pub mod vip;
pub mod volume;

#[cfg(test)]
mod tests;
