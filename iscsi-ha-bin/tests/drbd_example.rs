//! The shipped DRBD resource example (`fixtures/drbd/iscsi-ha.res.example`) is what the
//! stale-master design relies on: DRBD 8.4's own parser (drbd-utils' drbdadm-84) reads it, and
//! it keeps protocol C, `fencing resource-and-stonith`, our fence-peer handler at the path the
//! packages install it to, no automatic split-brain recovery, and a shared secret
//! (docs/install-xcp-ng.md step 2).

#![allow(clippy::unwrap_used)]

use std::process::Command;

const DRBDADM_84: &str = "/usr/lib/drbd/drbdadm-84";

#[test]
fn the_drbd_example_parses_and_keeps_the_fencing_the_design_relies_on() {
    assert!(
        std::path::Path::new(DRBDADM_84).exists(),
        "{DRBDADM_84} is missing: install drbd-utils (scripts/install-packages)"
    );
    let example = include_str!("../../fixtures/drbd/iscsi-ha.res.example");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("iscsi1.res");
    std::fs::write(&file, example.replace("on xcp1", &format!("on {host}"))).unwrap();
    let out = Command::new(DRBDADM_84)
        .arg("-c")
        .arg(&file)
        .args(["dump", "iscsi1"])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drbdadm-84 refuses the example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "protocol           C;",
        "fencing          resource-and-stonith;",
        "fence-peer       \"/usr/sbin/iscsi-ha fence-peer\";",
        "after-sb-0pri    disconnect;",
        "after-sb-1pri    disconnect;",
        "after-sb-2pri    disconnect;",
        "cram-hmac-alg    sha1;",
        "shared-secret    change-this-secret-on-both-hosts;",
    ] {
        assert!(
            dump.contains(needle),
            "the example lost `{needle}`:\n{dump}"
        );
    }
    let cargo = include_str!("../Cargo.toml");
    assert!(
        cargo.contains("dest = \"/usr/sbin/iscsi-ha\""),
        "the packages no longer install /usr/sbin/iscsi-ha, which the example's handler names"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["fence-peer", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success(), "iscsi-ha has no fence-peer command");
}
