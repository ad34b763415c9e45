//! The kernel's own iSCSI target (LIO), driven natively through configfs
//! (`/sys/kernel/config/target`), without `targetcli`.
//!
//! - [`fs`]: the few configfs operations we use (mkdir, rmdir, one-write attributes, symlinks),
//!   each tolerant of "already done", bounded on reads, with an optional injected failure.
//! - [`layout`]: pure naming — where each object of a [`TargetSpec`] lives in the tree and
//!   how the kernel's attribute texts are parsed.
//! - [`converge`]: builds and tears down the tree for a spec, idempotently and in an order that
//!   an interruption leaves finishable.
//! - [`observe`]: reads the tree back as the core's [`TargetStatus`].
//! - [`adapter`]: [`LioTarget`], the core's [`IscsiTarget`] port over all of it.
//! - [`settings`]: `[target.lio]` and what of a configuration LIO cannot do, at its key.
//!
//! [`TargetSpec`]: iscsi_ha_core::target::TargetSpec
//! [`TargetStatus`]: iscsi_ha_core::target::TargetStatus
//! [`IscsiTarget`]: iscsi_ha_core::ports::IscsiTarget

pub mod adapter;
pub mod converge;
pub mod error;
pub mod fs;
pub mod layout;
pub mod observe;
pub mod settings;

pub use adapter::{LioConfig, LioTarget};
pub use error::LioError;
