//! One module per command; each has a clap `Args` struct and a `run` function.

pub mod check_config;
pub mod import_legacy;
