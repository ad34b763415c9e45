//! The chaos run's short form in the two-VM lab: ten seeded faults in a row (seed
//! [`SEED`]) against both daemons, an initiator writing and reading through the VIP the whole
//! time, an ARP monitor and a sampler per node; the history is checked at the end (no
//! acknowledged write lost, never two hosts answering for the VIP, never two Primaries
//! outside a partition, no stale read, both daemons alive, no panic). The long form is
//! `iha-lab chaos --faults 100` (README). Needs root and the lab's prerequisites; fails with the
//! lab's message when they are missing (never skips).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use iscsi_ha_lab::chaos::{self, ChaosOptions};
use iscsi_ha_lab::cluster::{lab_config, Binaries, Cluster};
use iscsi_ha_lab::Lab;

/// Chosen for a mix that fits the suite's budget (see scripts/suites.d/74-chaos-lab) and
/// holds every kind that moves the role: a master killed, paused 30 s, cut off 16 s, both
/// links cut, a planned switch, and a reboot of each side in the middle of a resync.
const SEED: u64 = 33;

#[test]
fn ten_seeded_faults_in_a_row_break_nothing() {
    let started = Instant::now();
    let lab = Lab::up(iscsi_ha_lab::cluster::lab_options())
        .unwrap_or_else(|e| panic!("the lab did not come up: {e}"));
    let binaries = Binaries {
        iscsi_ha: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-ha")),
        iscsi_cfg: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-cfg")),
    };
    let c = Cluster::deploy_with(&lab, &binaries, &lab_config(chaos::run::CONFIG_EXTRA))
        .unwrap_or_else(|e| panic!("iscsi-ha did not start: {e}"));
    let verdict = chaos::run(
        &c,
        &ChaosOptions {
            faults: 10,
            seed: SEED,
            settle_timeout: Duration::from_secs(120),
        },
        &mut |l| eprintln!("{l}"),
    )
    .unwrap_or_else(|e| panic!("the chaos run could not run: {e}"));
    eprintln!("chaos short form: {:.0} s", started.elapsed().as_secs_f64());
    assert_eq!(verdict.faults, 10, "{}", verdict.summary());
    assert!(
        verdict.passed(),
        "{}\n{}",
        verdict.summary(),
        verdict.violations.join("\n")
    );
}
