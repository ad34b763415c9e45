//! `iscsi-ha run`: the daemon.

use crate::config_file::load;
use crate::control::{ControlServer, SOCKET_NAME};
use crate::daemon::{Daemon, DaemonParts};
use crate::manual_state::{ManualState, DEFAULT_STATE_DIR};
use crate::wiring::build_host;
use anyhow::{Context, Result};
use clap::Args;
use iscsi_ha_core::config::schema::LogLevel;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::path::PathBuf;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Where the control socket goes.
    #[arg(long, default_value = crate::control::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Where manual mode is kept across restarts.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// This host's name in status and alerts (default: the kernel's host name).
    #[arg(long)]
    pub host_name: Option<String>,
}

/// Loads the configuration (refusing to start on any error), wires the adapters and runs the
/// loop until SIGTERM.
pub fn run(args: &RunArgs) -> Result<()> {
    let config = load(&args.config).map_err(|e| anyhow::anyhow!("{e}\nrefusing to start"))?;
    init_logging(config.file.logging.level);
    let host_name = match &args.host_name {
        Some(h) => h.clone(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into()),
    };
    let control = ControlServer::bind(&args.run_dir.join(SOCKET_NAME))
        .context("cannot open the control socket")?;
    let host = build_host(&config)?;
    let mut daemon = Daemon::new(DaemonParts {
        config,
        config_path: args.config.clone(),
        host_name,
        host,
        control,
        manual: ManualState::new(&args.state_dir),
    })?;
    daemon.run()
}

fn init_logging(level: LogLevel) {
    let default = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
