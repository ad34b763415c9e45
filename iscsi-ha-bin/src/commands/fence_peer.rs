//! `iscsi-ha fence-peer`: DRBD's `fence-peer` handler.
//!
//! With `fencing resource-and-stonith`, DRBD 8.4 freezes a Primary's I/O when it loses its
//! peer, and asks this handler before a Secondary is promoted without its peer. The exit code
//! is DRBD's protocol (drbd_nl.c, `conn_try_outdate_peer`): 7 ("the peer is fenced") marks the
//! peer's disk Outdated and lets I/O resume or the promotion go on; any code DRBD does not
//! know as a success (we use 1) leaves I/O frozen and refuses the promotion. The decision is
//! the core's [`fence_verdict`]; this command only gathers the facts, within the configured
//! role timeout, one VIP probe and one round of pings to the `[fence] witnesses`, so DRBD is
//! not kept waiting long.
//!
//! drbd.conf: `disk { fencing resource-and-stonith; }` and
//! `handlers { fence-peer "/usr/sbin/iscsi-ha fence-peer"; }`.

use crate::config_file::load;
use crate::manual_state::{ManualState, DEFAULT_STATE_DIR};
use clap::Args;
use iscsi_ha_core::config::DEFAULT_CONFIG_PATH;
use iscsi_ha_core::fence::{fence_verdict, FenceVerdict};
use iscsi_ha_core::ports::FloatingIp;
use iscsi_ha_core::role::Role;
use iscsi_ha_net::witness::check_witnesses;
use iscsi_ha_net::NetFloatingIp;
use std::path::PathBuf;
use std::process::ExitCode;

/// DRBD's fence-peer exit code for "the peer was fenced": its disk counts as Outdated.
pub const EXIT_PEER_FENCED: u8 = 7;
/// An exit code DRBD does not count as a success: I/O stays frozen, promotion is refused.
pub const EXIT_REFUSED: u8 = 1;

/// Arguments of `fence-peer` (DRBD passes the resource in `DRBD_RESOURCE`).
#[derive(Debug, Args)]
pub struct FencePeerArgs {
    /// The configuration file.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Where the daemon keeps manual mode.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Answers DRBD: exit 7 when this host may go on alone, 1 otherwise; the reason goes to the
/// log and to stderr.
pub fn run(args: &FencePeerArgs) -> ExitCode {
    let resource = std::env::var("DRBD_RESOURCE").unwrap_or_else(|_| "(no DRBD_RESOURCE)".into());
    let verdict = decide(args);
    let line = format!("fence-peer {resource}: {verdict}");
    match &verdict {
        FenceVerdict::PeerCannotServe { .. } => tracing::warn!("{line}"),
        FenceVerdict::Refuse { .. } => tracing::error!("{line}"),
    }
    eprintln!("{line}");
    ExitCode::from(match verdict {
        FenceVerdict::PeerCannotServe { .. } => EXIT_PEER_FENCED,
        FenceVerdict::Refuse { .. } => EXIT_REFUSED,
    })
}

fn decide(args: &FencePeerArgs) -> FenceVerdict {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            return FenceVerdict::Refuse {
                why: format!("the configuration cannot be read, so nothing can be checked: {e}"),
            }
        }
    };
    let _ = crate::logging::init(&config.file.logging);
    let manual = match ManualState::new(&args.state_dir).load() {
        Ok(m) => m,
        Err(e) => {
            return FenceVerdict::Refuse {
                why: format!("the manual mode cannot be read: {e}"),
            }
        }
    };
    let role = match crate::role::from_config(&config.file.role, &config.file.xapi) {
        Ok(mut source) => source
            .role()
            .unwrap_or_else(|e| Role::Unknown(e.to_string())),
        Err(e) => Role::Unknown(format!("cannot open the role source: {e}")),
    };
    let probe = NetFloatingIp::new(crate::wiring::net_config(&config))
        .map_err(|e| e.to_string())
        .and_then(|mut net| net.probe(&config.vip).map_err(|e| e.to_string()));
    let fence = &config.file.fence;
    fence_verdict(manual, &role, &probe, || {
        check_witnesses(
            config.file.vip.interface.as_str(),
            &fence.witnesses,
            fence.witness_timeout.get(),
        )
    })
}
