//! Benchmark in the lab (16 resources, one boot): status through netlink versus one
//! `drbdsetup status` process, and a peer's role change to our event. Prints JSON figures.
//!
//! Run by hand, as root: `cargo bench -p iscsi-ha-drbd --bench lab_status`.

use iscsi_ha_lab::{DrbdOptions, Lab, LabOptions, Node, ResourceSpec};

const RESOURCES: u32 = 16;
const RUNS: u32 = 100;

/// Mean wall time per run of `cmd` over `RUNS` runs, from /proc/uptime (10 ms ticks).
fn per_run_ms(node: &Node, cmd: &str) -> f64 {
    let out = node
        .run(&format!(
            "read a _ </proc/uptime; i=0; while [ $i -lt {RUNS} ]; do {cmd} >/dev/null; i=$((i+1)); done; \
             read b _ </proc/uptime; echo $a $b"
        ))
        .expect("timing loop");
    let v: Vec<f64> = out
        .split_whitespace()
        .map(|s| s.parse().expect("uptime"))
        .collect();
    (v[1] - v[0]) * 1000.0 / f64::from(RUNS)
}

fn main() {
    let lab = Lab::up(LabOptions {
        resources: (0..RESOURCES)
            .map(|i| ResourceSpec::new(format!("r{i}"), i + 1, 4))
            .collect(),
        drbd: Some(DrbdOptions {
            primary: Some(1),
            ..DrbdOptions::default()
        }),
        ..LabOptions::default()
    })
    .expect("the lab comes up (run as root)");
    let bin = lab
        .copy_in(env!("CARGO_BIN_EXE_iha-drbd").as_ref())
        .expect("copy iha-drbd");
    let (n1, n2) = (lab.node(1), lab.node(2));
    // Run from the guest's RAM like drbdsetup (in the initramfs): the 9p share has no page
    // cache, so every exec from /host would re-read the whole binary through qemu.
    n1.run(&format!("cp {bin} /tmp/iha-drbd"))
        .expect("copy to tmpfs");
    let local = "/tmp/iha-drbd";
    let size = n1.run(&format!("wc -c < {local}")).expect("size");
    let in_process = n1
        .run(&format!("{bin} bench-status --iterations 200"))
        .expect("bench-status");
    let drbdsetup_ms = per_run_ms(n1, "drbdsetup status");
    let ours_ms = per_run_ms(n1, &format!("{local} status"));
    let ours_from_share_ms = per_run_ms(n1, &format!("{bin} status"));
    // The release profile keeps line tables (19 MB); a stripped copy shows what startup costs
    // without them (binutils' strip on the host, which the Rust toolchain's linker brings).
    let stripped = lab.share_dir().join("bin/iha-drbd-stripped");
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(env!("CARGO_BIN_EXE_iha-drbd"))
        .status()
        .expect("run strip");
    assert!(status.success(), "strip failed");
    n1.run("cp /host/bin/iha-drbd-stripped /tmp/iha-drbd-stripped")
        .expect("copy stripped to tmpfs");
    let stripped_ms = per_run_ms(n1, "/tmp/iha-drbd-stripped status");
    // Process start alone (argument parsing, no netlink), to separate it from the dump.
    let startup_ms = per_run_ms(n1, "/tmp/iha-drbd-stripped --version");
    let c_startup_ms = per_run_ms(n1, "drbdsetup --version");
    let proc_ms = per_run_ms(n1, "cat /proc/drbd");
    n1.run(&format!("{bin} secondary r0")).expect("free r0");
    n1.run(&format!(
        "{bin} role-server --listen 10.99.0.1:7999 >/tmp/rs.log 2>&1 &"
    ))
    .expect("role-server");
    n1.run("i=0; while ! grep -q listening /tmp/rs.log; do sleep 0.1; i=$((i+1)); [ $i -lt 100 ] || exit 1; done")
        .expect("role-server up");
    let latency = n2
        .run(&format!(
            "{bin} peer-latency --peer 10.99.0.1:7999 --resource r0 --rounds 10"
        ))
        .expect("peer-latency");
    println!(
        "{}",
        serde_json::json!({
            "accel": format!("{:?}", lab.accel()),
            "resources": RESOURCES,
            "iha_drbd_bytes": size.trim(),
            "in_process_netlink_status_dump": serde_json::from_str::<serde_json::Value>(&in_process).expect("json"),
            "process_per_run_ms": {
                "drbdsetup status": drbdsetup_ms,
                "iha-drbd status (binary in tmpfs)": ours_ms,
                "iha-drbd status (binary on the 9p share)": ours_from_share_ms,
                "iha-drbd status (stripped, tmpfs)": stripped_ms,
                "iha-drbd --version (stripped, tmpfs)": startup_ms,
                "drbdsetup --version": c_startup_ms,
                "cat /proc/drbd": proc_ms,
            },
            "peer_role_change_to_event": serde_json::from_str::<serde_json::Value>(&latency).expect("json"),
        })
    );
}
