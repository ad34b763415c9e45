//! A real DRBD split brain in the two-VM lab, end to end (issue 9): the link between the nodes
//! is cut, the operator forces the isolated node Primary and writes to it while the master
//! keeps serving and the initiator writes through the VIP, the link comes back and DRBD
//! refuses to resynchronise. Then: detection on both nodes, the status and its recovery
//! advice, one error alert, nothing promoted and the VIP unmoved, the refusal on the serving
//! host, and the guided recovery after which both sides are Connected UpToDate/UpToDate with
//! the survivor's data, read back through the VIP. Needs root and the lab.

#![allow(clippy::unwrap_used)]

use iscsi_ha_lab::cluster::{Binaries, Cluster};
use iscsi_ha_lab::Lab;
use std::path::PathBuf;
use std::time::Duration;

const SURVIVOR: u8 = 0x5e;
const VICTIM: u8 = 0x71;
const LONG: Duration = Duration::from_secs(60);

fn binaries() -> Binaries {
    Binaries {
        iscsi_ha: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-ha")),
        iscsi_cfg: PathBuf::from(env!("CARGO_BIN_EXE_iscsi-cfg")),
    }
}

fn cfg_ok(c: &Cluster<'_>, id: u8, args: &str) -> String {
    c.iscsi_cfg_ok(id, args)
        .unwrap_or_else(|e| panic!("node{id}: {e}"))
}

fn split_brain_seen(c: &Cluster<'_>, id: u8) -> bool {
    c.status(id).unwrap()["resources"][0]["split_brain"].is_object()
}

#[test]
fn split_brain_is_detected_held_and_resolved_with_the_survivors_data() {
    let lab = Lab::up(iscsi_ha_lab::cluster::lab_options())
        .unwrap_or_else(|e| panic!("the lab did not come up: {e}"));
    let c = Cluster::deploy(&lab, &binaries(), "").unwrap();
    c.set_role(1, "master").unwrap();
    c.wait_serving(1, LONG).unwrap();

    // Isolate node2 and let the operator force it Primary, then write there.
    lab.node(2).cut_link().unwrap();
    c.wait(2, "the peer lost", LONG, |c| {
        Ok(c.status(2)?["resources"][0]["peer_role"] == "Unknown")
    })
    .unwrap();
    cfg_ok(&c, 2, "manual-mode-enable");
    cfg_ok(&c, 2, "become-primary --force");
    lab.node(2)
        .run(&format!(
            "dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\\000' '\\{VICTIM:03o}' | dd of=/dev/drbd1 bs=4096 count=1 conv=fsync 2>/dev/null"
        ))
        .unwrap();
    cfg_ok(&c, 2, "become-secondary");
    // Meanwhile the master keeps serving: the initiator writes the survivor's data.
    c.write_pattern(SURVIVOR, 0, 4096).unwrap();

    lab.node(2).restore_link().unwrap();
    c.wait(1, "the split brain seen on node1", LONG, |c| {
        Ok(split_brain_seen(c, 1))
    })
    .unwrap();
    c.wait(2, "the split brain seen on node2", LONG, |c| {
        Ok(split_brain_seen(c, 2))
    })
    .unwrap();

    let s1 = c.status(1).unwrap();
    let sb1 = &s1["resources"][0]["split_brain"];
    assert_eq!(sb1["serving_here"], true, "{s1}");
    assert!(
        sb1["recovery"].as_str().unwrap().contains("OTHER host"),
        "{s1}"
    );
    assert!(
        s1["holds"][0].as_str().unwrap().contains("split brain"),
        "{s1}"
    );
    assert_eq!(s1["vip"]["here"], true, "the VIP stays where it is");
    assert_eq!(
        s1["target"]["running"], true,
        "the serving host keeps serving"
    );
    let errors = s1["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["severity"] == "error" && a["message"].as_str().unwrap().contains("split brain")
        })
        .count();
    assert_eq!(errors, 1, "{s1}");
    assert!(
        sb1["local_last_primary"].is_string(),
        "node1 is Primary now: {s1}"
    );
    let s2 = c.status(2).unwrap();
    let sb2 = &s2["resources"][0]["split_brain"];
    assert!(
        sb2["peer_last_primary"].is_string(),
        "node2 saw node1 Primary before the cut: {s2}"
    );
    assert!(
        sb2["local_last_primary"].is_string(),
        "node2 was forced Primary: {s2}"
    );
    let shown = cfg_ok(&c, 2, "split-brain");
    assert!(shown.contains("last Primary: node2 "), "{shown}");
    assert!(
        shown.contains("SPLIT BRAIN on r0")
            && shown.contains("split-brain resolve --discard-local-data --yes"),
        "{shown}"
    );

    // The serving host refuses to throw its data away; without both flags nobody does.
    let out = c
        .iscsi_cfg(1, "split-brain resolve --discard-local-data --yes")
        .unwrap();
    assert!(
        !out.success()
            && out
                .stderr_text()
                .contains("this host still serves the target"),
        "{}",
        out.stderr_text()
    );
    let out = c.iscsi_cfg(2, "split-brain resolve --yes").unwrap();
    assert!(
        !out.success() && out.stderr_text().contains("--discard-local-data"),
        "{}",
        out.stderr_text()
    );

    cfg_ok(&c, 2, "split-brain resolve --discard-local-data --yes");
    cfg_ok(&c, 1, "split-brain reconnect");
    for id in [1, 2] {
        lab.node(id)
            .wait_drbd(
                "Connected UpToDate/UpToDate after the recovery",
                LONG,
                |m| m.first().is_some_and(|m| m.is_healthy()),
            )
            .unwrap();
        c.wait(id, "the split brain cleared", LONG, |c| {
            Ok(!split_brain_seen(c, id))
        })
        .unwrap();
    }
    assert!(
        c.read_pattern(SURVIVOR, 0, 4096, LONG).unwrap(),
        "node1 still serves its data"
    );

    // node2 now holds the survivor's data: make it serve and read it back through the VIP.
    c.set_role(1, "slave").unwrap();
    c.wait(1, "node1 demoted", LONG, |c| {
        Ok(c.status(1)?["resources"][0]["role"] == "Secondary")
    })
    .unwrap();
    c.set_role(2, "master").unwrap();
    cfg_ok(&c, 2, "become-primary");
    c.wait_serving(2, LONG).unwrap();
    assert!(
        c.read_pattern(SURVIVOR, 0, 4096, LONG).unwrap(),
        "node2 serves the survivor's data, not its own discarded write"
    );
    cfg_ok(&c, 2, "manual-mode-disable");
}
