//! `bench-status`: GET_STATUS dumps timed in-process (the socket and family resolved once,
//! as the daemon keeps them), and once more with a fresh connection per dump.

use std::time::Instant;

use clap::Args;
use iscsi_ha_drbd::DrbdNetlink;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Dumps to time.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

fn summary(mut us: Vec<f64>) -> serde_json::Value {
    us.sort_by(f64::total_cmp);
    let n = us.len().max(1);
    #[allow(clippy::cast_precision_loss)]
    let mean = us.iter().sum::<f64>() / n as f64;
    let at = |q: f64| {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let i = ((n - 1) as f64 * q).round() as usize;
        us.get(i).copied().unwrap_or(0.0)
    };
    serde_json::json!({"n": us.len(), "mean_us": mean, "min_us": at(0.0), "p50_us": at(0.5), "p99_us": at(0.99)})
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut nl = DrbdNetlink::connect()?;
    let resources = nl.status(None)?.len();
    let mut kept = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        nl.status(None)?;
        kept.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut fresh = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        DrbdNetlink::connect()?.status(None)?;
        fresh.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "{}",
        serde_json::json!({
            "resources": resources,
            "status_dump_kept_socket": summary(kept),
            "status_dump_fresh_socket": summary(fresh),
        })
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct BenchSplitBrainArgs {
    /// The resource.
    resource: String,
    /// Calls to time.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// The adapter's state directory, as the daemon passes it: where a split-brain helper
    /// call seen by another process is kept (without it only calls seen live count).
    #[arg(long)]
    net_config_dir: Option<std::path::PathBuf>,
}

/// `bench-split-brain`: the port's `split_brain()` and `status()` timed in-process on one
/// adapter (as the daemon calls them every observation), events subscription included.
pub fn split_brain(args: BenchSplitBrainArgs) -> anyhow::Result<()> {
    use iscsi_ha_core::ports::ReplicatedVolume;
    let name = iscsi_ha_core::resource::ResourceName::new(args.resource)?;
    let mut volumes = match args.net_config_dir {
        Some(dir) => iscsi_ha_drbd::DrbdVolumes::new().keep_net_config_in(dir),
        None => iscsi_ha_drbd::DrbdVolumes::new(),
    };
    let found = volumes.split_brain(&name)?.is_some();
    let mut sb = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        volumes.split_brain(&name)?;
        sb.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut st = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        volumes.status(&name)?;
        st.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "{}",
        serde_json::json!({
            "split_brain_found": found,
            "split_brain_call": summary(sb),
            "status_call": summary(st),
        })
    );
    Ok(())
}
