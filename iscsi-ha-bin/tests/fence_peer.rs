//! `iscsi-ha fence-peer`, DRBD's fence-peer handler, against the real network: two network
//! namespaces joined by a veth pair, this host in one, the "peer" in the other. It exits 7
//! (go on alone) only when this host is the master and no other host answers for the VIP, and
//! 1 (I/O stays frozen, promotion refused) otherwise, saying why; with `[fence] witnesses`,
//! also only when one of them answers (a master whose own link is cut must not go on). Needs
//! root.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;
use support::{config, require_root, sh, VIP};

/// Two namespaces: `here` holds d0 (10.79.0.1), `peer` holds d0p (10.79.0.2).
struct Pair {
    here: String,
    peer: String,
}

impl Pair {
    fn new() -> Self {
        // Tests run in parallel in one process: each pair needs names of its own.
        static PAIRS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = PAIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let (here, peer) = (format!("ihf{id}a"), format!("ihf{id}b"));
        let out = sh(&format!(
            "set -e; ip netns del {here} 2>/dev/null || true; ip netns del {peer} 2>/dev/null || true; \
             ip netns add {here}; ip netns add {peer}; \
             ip -n {here} link set lo up; ip -n {peer} link set lo up; \
             ip -n {here} link add d0 type veth peer name d0p netns {peer}; \
             ip -n {here} link set d0 up; ip -n {peer} link set d0p up; \
             ip -n {here} addr add 10.79.0.1/24 dev d0; ip -n {peer} addr add 10.79.0.2/24 dev d0p"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { here, peer }
    }

    fn fence_peer(&self, dir: &std::path::Path, role: &str) -> Output {
        self.fence_peer_with(dir, role, "")
    }

    fn fence_peer_with(&self, dir: &std::path::Path, role: &str, extra: &str) -> Output {
        std::fs::write(dir.join("role"), role).unwrap();
        let cfg = dir.join("iscsi-ha.toml");
        std::fs::write(&cfg, config(dir, extra)).unwrap();
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.here,
                env!("CARGO_BIN_EXE_iscsi-ha"),
                "fence-peer",
            ])
            .arg("--config")
            .arg(&cfg)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("DRBD_RESOURCE", "r0")
            .output()
            .unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip netns del {}; ip netns del {}",
            self.here, self.peer
        ));
    }
}

fn said(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn goes_on_alone_only_as_the_master_that_nobody_contradicts() {
    require_root();
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();

    let alone = pair.fence_peer(dir.path(), "master\n");
    assert_eq!(alone.status.code(), Some(7), "{}", said(&alone));
    assert!(
        said(&alone).contains("fence-peer r0: go on alone"),
        "{}",
        said(&alone)
    );

    // This host holds the VIP itself (a Primary that lost its peer): still alone.
    assert!(sh(&format!("ip -n {} addr add {VIP}/24 dev d0", pair.here))
        .status
        .success());
    let holding = pair.fence_peer(dir.path(), "master\n");
    assert_eq!(holding.status.code(), Some(7), "{}", said(&holding));

    // The peer took over: it answers for the VIP too.
    assert!(
        sh(&format!("ip -n {} addr add {VIP}/24 dev d0p", pair.peer))
            .status
            .success()
    );
    let stale = pair.fence_peer(dir.path(), "master\n");
    assert_eq!(stale.status.code(), Some(1), "{}", said(&stale));
    assert!(
        said(&stale).contains("another host answers for the VIP"),
        "{}",
        said(&stale)
    );

    assert!(
        sh(&format!("ip -n {} addr del {VIP}/24 dev d0p", pair.peer))
            .status
            .success()
    );
    let slave = pair.fence_peer(dir.path(), "slave\n");
    assert_eq!(slave.status.code(), Some(1), "{}", said(&slave));
    assert!(
        said(&slave).contains("not the one to serve"),
        "{}",
        said(&slave)
    );

    let unknown = pair.fence_peer(dir.path(), "broken\n");
    assert_eq!(unknown.status.code(), Some(1), "{}", said(&unknown));
}

/// The cut-off master (chaos seed 33, fault 4): its link down, it sees no VIP owner, exactly
/// as a master whose peer died. A witness tells them apart.
#[test]
fn with_witnesses_a_master_goes_on_alone_only_while_one_answers() {
    require_root();
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let witness =
        "[fence]\nwitnesses = [\"10.79.0.9\", \"10.79.0.2\"]\nwitness_timeout = \"300ms\"\n";

    let reached = pair.fence_peer_with(dir.path(), "master\n", witness);
    assert_eq!(reached.status.code(), Some(7), "{}", said(&reached));
    assert!(
        said(&reached).contains("witness 10.79.0.2 answers"),
        "{}",
        said(&reached)
    );

    // This host's link is cut past its switch port (no carrier change, as in the lab): nothing
    // answers, not the VIP's owner, not the witnesses.
    assert!(sh(&format!("ip -n {} addr flush dev d0p", pair.peer))
        .status
        .success());
    let cut = pair.fence_peer_with(dir.path(), "master\n", witness);
    assert_eq!(cut.status.code(), Some(1), "{}", said(&cut));
    assert!(
        said(&cut).contains("none of the witnesses (10.79.0.9, 10.79.0.2) answers"),
        "{}",
        said(&cut)
    );
    // Without witnesses the same cut cannot be told from a dead peer (the documented price).
    let blind = pair.fence_peer(dir.path(), "master\n");
    assert_eq!(blind.status.code(), Some(7), "{}", said(&blind));
    assert!(
        said(&blind).contains("no [fence] witnesses are configured"),
        "{}",
        said(&blind)
    );
}

#[test]
fn a_configuration_that_cannot_be_read_keeps_io_frozen() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["fence-peer", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains("configuration cannot be read"),
        "{}",
        said(&out)
    );
}
