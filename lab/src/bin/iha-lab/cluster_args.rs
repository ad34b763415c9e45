//! Options shared by the verbs that run iscsi-ha in the lab (`demo`, `bench failover`).

use std::path::PathBuf;
use std::time::Duration;

use iscsi_ha_lab::cluster::Binaries;
use iscsi_ha_lab::LabOptions;

/// Where our binaries are and how long to wait for the lab.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Directory holding `iscsi-ha` and `iscsi-cfg` (default: the workspace's
    /// `$CARGO_TARGET_DIR/release` or `target/release`; build with
    /// `cargo build --release -p iscsi-ha-bin`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Seconds to wait for another lab user to finish.
    #[arg(long, default_value_t = 600)]
    pub wait: u64,
}

impl ClusterArgs {
    /// The binaries to deploy.
    pub fn binaries(&self) -> Binaries {
        let dir = self.bin_dir.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("release")
        });
        Binaries::in_dir(&dir)
    }

    /// A lab of one resource fenced by our handler, owned by this process (gone when it exits).
    pub fn lab_options(&self) -> LabOptions {
        self.lab_options_for(1)
    }

    /// As [`ClusterArgs::lab_options`], with `resources` resources, each fenced.
    pub fn lab_options_for(&self, resources: usize) -> LabOptions {
        LabOptions {
            lock_wait: Duration::from_secs(self.wait),
            ..iscsi_ha_lab::cluster::lab_options_for(resources)
        }
    }
}
