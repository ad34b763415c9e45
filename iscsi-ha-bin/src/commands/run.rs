//! `iscsi-ha run`: the daemon.

use crate::config_file::load;
use crate::control::{ControlServer, SOCKET_NAME};
use crate::daemon::{block_signals, Daemon, DaemonParts};
use crate::mail::{build_alerts, AlertStats};
use crate::manual_state::{ManualState, DEFAULT_STATE_DIR};
use crate::metrics::Metrics;
use crate::serving_history::HistoryFile;
use crate::wiring::build_host;
use anyhow::{Context, Result};
use clap::Args;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Where the control socket goes.
    #[arg(long, default_value = crate::control::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// The host-wide lock: one daemon per host, whatever its run directory.
    #[arg(long, value_name = "FILE", default_value = crate::run_dir::DEFAULT_LOCK_FILE)]
    pub lock_file: PathBuf,
    /// Where manual mode is kept across restarts.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// This host's name in status and alerts (default: the kernel's host name).
    #[arg(long)]
    pub host_name: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (overrides `[metrics]`; keep it on
    /// loopback, e.g. 127.0.0.1:9725).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Loads the configuration (refusing to start on any error), wires the adapters and runs the
/// loop until SIGTERM.
pub fn run(args: &RunArgs) -> Result<()> {
    // Before the mail and metrics threads exist, so that they inherit the blocked mask.
    block_signals().context("cannot block the daemon's signals")?;
    let config = load(&args.config).map_err(|e| anyhow::anyhow!("{e}\nrefusing to start"))?;
    let sink = crate::logging::init(&config.file.logging);
    tracing::debug!("logging to {sink}");
    // What check-config prints as warnings (e.g. a target name tgtd takes but RFC 3720 does
    // not) reaches the journal too, where an admin who never ran check-config looks.
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", args.config.display());
    }
    let host_name = match &args.host_name {
        Some(h) => h.clone(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into()),
    };
    if let Some(finding) = crate::host_check::role_source_watchable(&config) {
        anyhow::bail!(
            "{}: {}: {}: {}\nrefusing to start",
            args.config.display(),
            finding.key,
            finding.message,
            finding.advice
        );
    }
    let _lock = crate::run_dir::lock(&args.lock_file)
        .with_context(|| "cannot take the host-wide lock (--lock-file)".to_string())?;
    let socket = args.run_dir.join(SOCKET_NAME);
    let control = ControlServer::bind(&socket).with_context(|| {
        format!(
            "cannot open the control socket {} (--run-dir)",
            socket.display()
        )
    })?;
    let alert_stats = Arc::new(AlertStats::default());
    let alerts = build_alerts(&config, &host_name, alert_stats.clone())
        .map_err(|e| anyhow::anyhow!("{e}\nrefusing to start"))?;
    let host = build_host(&config, alerts, &args.state_dir)?;
    let metrics = &config.file.metrics;
    if let Some(addr) = args
        .metrics_listen
        .or(metrics.enabled.then_some(metrics.listen))
    {
        let metrics = Arc::new(Metrics::new(alert_stats));
        let bound = metrics.serve(addr).with_context(|| {
            format!(
                "cannot serve metrics on {addr} (metrics.listen in {}, or --metrics-listen)",
                args.config.display()
            )
        })?;
        crate::metrics::install(metrics);
        if bound.ip().is_loopback() {
            tracing::info!("metrics at http://{bound}/metrics");
        } else {
            tracing::warn!(
                "metrics at http://{bound}/metrics, reachable from the network without authentication"
            );
        }
    }
    let mut daemon = Daemon::new(DaemonParts {
        config,
        config_path: args.config.clone(),
        host_name,
        host,
        control,
        manual: ManualState::new(&args.state_dir),
        history: HistoryFile::load_for_this_boot(&args.state_dir),
    })?;
    daemon.run()
}
