//! Recording the netlink traffic of a command in a lab VM (nlmon + tcpdump, as `iha-lab
//! capture-drbd` does), shared by the lab tests that keep fixtures.

use std::path::PathBuf;

use iscsi_ha_drbd::wire::{decode_datagram, DrbdMessage, Frame};
use iscsi_ha_lab::capture::{drbd_family_id, parse_pcap, render_nlhex};
use iscsi_ha_lab::{Lab, Node};

/// Set to a directory (e.g. `fixtures/drbd/genl`) to keep the captures as fixtures.
pub const FIXTURES_OUT: &str = "IHA_DRBD_FIXTURES_OUT";

const START_CAPTURE: &str = "ip link show nlmon0 >/dev/null 2>&1 || ip link add nlmon0 type nlmon
ip link set nlmon0 up
rm -f /tmp/cap.pcap
(tcpdump -Z root -i nlmon0 --immediate-mode -U -s 0 -w /tmp/cap.pcap >/tmp/tcpdump.log 2>&1 &)
n=0; until [ -s /tmp/cap.pcap ]; do n=$((n+1)); [ $n -lt 200 ] || exit 1; sleep 0.05; done";

const STOP_CAPTURE: &str = "sleep 0.3
killall -INT tcpdump
while pidof tcpdump >/dev/null; do sleep 0.05; done
mkdir -p /host/capture && cp /tmp/cap.pcap /host/capture/cap.pcap";

/// Records the netlink traffic of `script` on `node` (nlmon + tcpdump, as `iha-lab
/// capture-drbd` does) and returns the drbd requests sent; keeps the capture as fixture
/// `name` when [`FIXTURES_OUT`] is set.
pub fn record(lab: &Lab, node: &Node, name: &str, title: &str, script: &str) -> Vec<DrbdMessage> {
    node.run(START_CAPTURE).expect("start the capture");
    let result = node.exec(script).expect("exec");
    node.run(STOP_CAPTURE).expect("stop the capture");
    assert!(
        result.success(),
        "{script}: {}{}",
        result.stdout_text(),
        result.stderr_text()
    );
    let pcap = std::fs::read(lab.share_dir().join("capture/cap.pcap")).expect("the pcap");
    let packets = parse_pcap(&pcap).expect("pcap parses");
    let family = drbd_family_id(&packets).expect("the drbd family in the capture");
    if let Some(dir) = std::env::var_os(FIXTURES_OUT).map(PathBuf::from) {
        let title = format!("{title} (captured on node{})", node.id());
        let txt = format!(
            "# {title}\n$ node{}: {script}\n{}{}[exit status {}]\n",
            node.id(),
            result.stdout_text(),
            result.stderr_text(),
            result.status
        );
        std::fs::write(dir.join(format!("{name}.pcap")), &pcap).expect("write pcap");
        std::fs::write(
            dir.join(format!("{name}.nlhex")),
            render_nlhex(&title, &packets, family),
        )
        .expect("write nlhex");
        std::fs::write(dir.join(format!("{name}.txt")), txt).expect("write txt");
    }
    const NLM_F_REQUEST: u16 = 1;
    packets
        .iter()
        .filter(|p| p.protocol == 16)
        .flat_map(|p| p.messages.iter())
        .filter(|m| m.len() >= 8 && u16::from_le_bytes([m[6], m[7]]) & NLM_F_REQUEST != 0)
        .flat_map(|m| decode_datagram(m, family).expect("captured request decodes"))
        .filter_map(|f| match f {
            Frame::Drbd { message, .. } => Some(*message),
            _ => None,
        })
        .collect()
}
