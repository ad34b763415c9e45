//! The fence-peer handler's witnesses (`[fence] witnesses`): configured, and answering now
//! through the VIP's interface, the same ping the handler sends.

use super::Finding;
use iscsi_ha_core::config::Config;
use iscsi_ha_core::fence::WitnessCheck;
use iscsi_ha_net::witness::check_witnesses;

const CHECK: &str = "fence.witnesses";

/// One finding: no witness (warn: a cut-off master goes on writing), none answering (error:
/// a master that loses its peer keeps its I/O frozen), or the one that answered.
pub fn check(config: &Config) -> Finding {
    let fence = &config.file.fence;
    let answer = check_witnesses(
        config.file.vip.interface.as_str(),
        &fence.witnesses,
        fence.witness_timeout.get(),
    );
    verdict(&answer)
}

/// The finding for a witness check's answer.
pub fn verdict(answer: &WitnessCheck) -> Finding {
    match answer {
        WitnessCheck::NotConfigured => Finding::warn(
            CHECK,
            "no witnesses: a master whose own link is cut cannot tell that from a dead peer, so its fence-peer handler lets it go on writing, and writes it acknowledges when the link returns, before it yields to the host that took over, are lost",
            "name one or two always-up addresses on the initiators' network that are neither host (the gateway, a switch) in [fence] witnesses, on both hosts",
        ),
        WitnessCheck::Answered(w) => Finding::ok(
            CHECK,
            format!("witness {w} answers a ping through the VIP's interface"),
        ),
        WitnessCheck::NoneAnswered { asked, why } => Finding::error(
            CHECK,
            format!(
                "none of the witnesses ({}) answers a ping through the VIP's interface{}: if the peer is lost now, this host keeps its I/O frozen and is not promoted",
                asked.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
            ),
            "name addresses that answer pings from this host's VIP interface in [fence] witnesses, or fix the link",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    #[test]
    fn no_witness_warns_silence_is_an_error_and_an_answer_is_fine() {
        let w = "10.0.0.254".parse().unwrap();
        assert_eq!(verdict(&WitnessCheck::NotConfigured).level, Level::Warn);
        let ok = verdict(&WitnessCheck::Answered(w));
        assert_eq!(ok.level, Level::Ok);
        let silent = verdict(&WitnessCheck::NoneAnswered {
            asked: vec![w],
            why: Some("10.0.0.254: Operation not permitted".into()),
        });
        assert_eq!(silent.level, Level::Error);
        assert!(silent.what.contains("10.0.0.254") && silent.what.contains("not permitted"));
    }
}
