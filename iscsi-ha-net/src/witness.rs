//! The fence-peer handler's witnesses: does any of them answer a ping through the VIP's
//! interface? A master that lost its peer and hears none of them may be the one cut off.

use std::net::IpAddr;
use std::time::Duration;

use iscsi_ha_core::fence::WitnessCheck;

use crate::icmp::echo_answered;

/// Pings every witness at once out of `interface` and waits at most `timeout` for them (one
/// thread each, so the wait does not grow with their number). The first witness in the list
/// that answered wins; errors (no such interface, no `CAP_NET_RAW`) count as silence and are
/// reported.
pub fn check_witnesses(interface: &str, witnesses: &[IpAddr], timeout: Duration) -> WitnessCheck {
    if witnesses.is_empty() {
        return WitnessCheck::NotConfigured;
    }
    let answers: Vec<std::io::Result<bool>> = std::thread::scope(|s| {
        let pings: Vec<_> = witnesses
            .iter()
            .map(|w| s.spawn(move || echo_answered(interface, *w, timeout)))
            .collect();
        pings
            .into_iter()
            .map(|p| {
                p.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the ping thread panicked")))
            })
            .collect()
    });
    if let Some((w, _)) = witnesses
        .iter()
        .zip(&answers)
        .find(|(_, a)| matches!(a, Ok(true)))
    {
        return WitnessCheck::Answered(*w);
    }
    let errors: Vec<String> = witnesses
        .iter()
        .zip(&answers)
        .filter_map(|(w, a)| a.as_ref().err().map(|e| format!("{w}: {e}")))
        .collect();
    WitnessCheck::NoneAnswered {
        asked: witnesses.to_vec(),
        why: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}
