//! The pieces behind the `iscsi-ha` and `iscsi-cfg` binaries: reading the configuration files
//! safely, and one module per command.

pub mod commands;
pub mod config_file;
