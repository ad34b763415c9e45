//! Write durability against a real tgtd, seen by a real initiator: libiscsi's MODE SENSE of
//! the caching page (tests/helpers/scsi_probe.py, through libiscsi.so.7) and tgtadm's
//! "Backing store flags" as witnesses. The throughput test prints numbers (run it with
//! `--nocapture`); it asserts nothing about speed.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use common::{run, spec, text, Bench, INITIATOR};

/// One test at a time: the throughput test saturates this 2-core machine, and an initiator
/// starved beside it can drop its session at the moment the in-use test checks for it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_core::target::{LunId, TargetSpec};
use iscsi_ha_tgt::show::parse_targets;

fn probe_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/scsi_probe.py")
}

/// Fails loudly unless python3 can load libiscsi (the probe is our MODE SENSE initiator).
fn require_probe() {
    let out = run(
        "python3",
        &[
            "-c",
            "import ctypes,ctypes.util; ctypes.CDLL(ctypes.util.find_library('iscsi') or 'libiscsi.so.7')",
        ],
    );
    assert!(
        out.status.success(),
        "python3 with libiscsi.so.7 (Debian libiscsi7, pulled in by libiscsi-bin) is needed: {}",
        text(&out)
    );
}

fn probe(bench: &Bench, spec: &TargetSpec, lun: u64, args: &[&str]) -> String {
    let script = probe_script();
    let portal = format!("127.0.0.1:{}", bench.iscsi_port);
    let lun = lun.to_string();
    let mut all = vec![
        script.to_str().unwrap_or_default(),
        args[0],
        &portal,
        spec.iqn.as_str(),
        &lun,
        INITIATOR,
    ];
    all.extend_from_slice(&args[1..]);
    let out = run("python3", &all);
    let t = text(&out);
    assert!(out.status.success(), "scsi_probe {args:?}: {t}");
    t.trim().to_string()
}

fn wce(bench: &Bench, spec: &TargetSpec, lun: u64) -> String {
    probe(bench, spec, lun, &["wce"])
}

/// tgtadm's "Backing store flags" of a LUN.
fn witness_flags(bench: &Bench, spec: &TargetSpec, lun: u64) -> Option<String> {
    let (targets, _) = parse_targets(&bench.tgtadm_show());
    targets
        .iter()
        .find(|t| t.name == spec.iqn.as_str())
        .and_then(|t| t.luns.iter().find(|l| l.lun == lun))
        .and_then(|l| l.backing_flags.clone())
}

fn cached(spec: &mut TargetSpec, index: usize) {
    spec.luns[index].volatile_cache_reported = true;
    spec.luns[index].stable_writes = false;
}

#[test]
fn default_lun_reports_no_volatile_cache_and_opens_sync() {
    let _serial = one_at_a_time();
    let bench = Bench::new();
    require_probe();
    let mut spec = spec(
        "durable",
        &[bench.disk("safe.img", 32), bench.disk("cached.img", 32)],
    );
    cached(&mut spec, 1);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));

    // The default: WCE=0, and the initiator cannot turn it on with MODE SELECT.
    assert_eq!(wce(&bench, &spec, 1), "WCE=0 WCE_CHANGEABLE=0");
    // write_cache = true: tgt's own WCE=1 (set explicitly, so not changeable either).
    assert_eq!(wce(&bench, &spec, 2), "WCE=1 WCE_CHANGEABLE=0");

    assert_eq!(witness_flags(&bench, &spec, 1).as_deref(), Some("sync"));
    assert_eq!(witness_flags(&bench, &spec, 2).as_deref(), Some(""));
    let status = target.status().unwrap_or_else(|e| panic!("status: {e}"));
    let luns = status
        .find(&spec.iqn)
        .map(|t| t.luns.clone())
        .unwrap_or_default();
    assert_eq!(
        luns.iter().map(|l| l.stable_writes).collect::<Vec<_>>(),
        vec![Some(true), Some(false)]
    );
    assert!(spec.is_served_by(&status));
    assert!(spec.durability_mismatches(&status).is_empty());

    // Nothing left to do on a second serve.
    target
        .serve(&spec)
        .unwrap_or_else(|e| panic!("serve again: {e}"));
    assert_eq!(wce(&bench, &spec, 1), "WCE=0 WCE_CHANGEABLE=0");
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}

#[test]
fn a_cached_lun_in_use_is_made_safe_in_place_then_recreated_when_idle() {
    let _serial = one_at_a_time();
    let bench = Bench::new();
    require_probe();
    // One disk for both specs: creating it again would truncate it under the reader.
    let disk = bench.disk("u.img", 64);
    let mut old = spec("upgrade", std::slice::from_ref(&disk));
    cached(&mut old, 0);
    let mut first = bench.managed_target();
    first.serve(&old).unwrap_or_else(|e| panic!("serve: {e}"));
    assert_eq!(wce(&bench, &old, 1), "WCE=1 WCE_CHANGEABLE=0");
    // The daemon restarts (tgtd keeps running) with the safe configuration.
    first.detach();
    drop(first);

    let iqn = old.iqn.to_string();
    let mut reader = bench.reader(&iqn, 1, None);
    assert!(
        reader.makes_progress(Duration::from_secs(20)),
        "{}",
        reader.output()
    );
    // The case under test is a LUN in use: the reader's session must be there when the new
    // daemon serves (seen in CI: a serve that ran while iscsi-perf was between sessions found
    // the LUN idle and, rightly, recreated it at once).
    let logged_in = || {
        bench
            .tgt()
            .targets()
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .any(|t| !t.nexuses.is_empty())
    };
    let start = std::time::Instant::now();
    while !(logged_in() && reader.makes_progress(Duration::from_secs(5)) && logged_in()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the reader holds no session: {}",
            reader.output()
        );
    }
    let safe = spec("upgrade", &[disk]);
    let mut second = bench.managed_target();
    second.serve(&safe).unwrap_or_else(|e| panic!("serve: {e}"));
    // WCE goes off at once (tgt now syncs every WRITE); the open flags wait for the reader.
    assert_eq!(wce(&bench, &safe, 1), "WCE=0 WCE_CHANGEABLE=0");
    assert_eq!(
        witness_flags(&bench, &safe, 1).as_deref(),
        Some(""),
        "recreated although in use? reader: {}",
        reader.output()
    );
    let status = second.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(safe.is_served_by(&status), "{status:#?}");
    assert_eq!(
        safe.durability_mismatches(&status),
        vec![LunId::new(1).unwrap_or_else(|e| panic!("{e}"))]
    );
    assert!(
        reader.makes_progress(Duration::from_secs(10)),
        "the reader was disturbed: {}",
        reader.output()
    );

    // Once no initiator is logged in, the LUN is created again with sync.
    drop(reader);
    let mut idle = false;
    for _ in 0..100 {
        let targets = bench.tgt().targets().unwrap_or_else(|e| panic!("{e}"));
        if targets.iter().all(|t| t.nexuses.is_empty()) {
            idle = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(idle, "the reader's session did not end");
    second
        .serve(&safe)
        .unwrap_or_else(|e| panic!("serve idle: {e}"));
    assert_eq!(witness_flags(&bench, &safe, 1).as_deref(), Some("sync"));
    assert_eq!(wce(&bench, &safe, 1), "WCE=0 WCE_CHANGEABLE=0");
    let status = second.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(safe.durability_mismatches(&status).is_empty());
    second.stop(&safe).unwrap_or_else(|e| panic!("stop: {e}"));
}

/// The last "iops average N (M MB/s)" iscsi-perf printed.
fn perf_average(output: &str) -> String {
    output
        .split(['\r', '\n'])
        .filter_map(|l| l.find("iops average").map(|i| l[i..].trim().to_string()))
        .next_back()
        .unwrap_or_else(|| format!("no average in {output:?}"))
}

#[test]
fn write_throughput_default_versus_write_cache() {
    let _serial = one_at_a_time();
    let bench = Bench::new();
    require_probe();
    let mut spec = spec(
        "bench",
        &[bench.disk("b1.img", 64), bench.disk("b2.img", 64)],
    );
    cached(&mut spec, 1);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    println!(
        "file-backed LUNs in {} (one WRITE(16) at a time, 3 s each)",
        bench.dir.path().display()
    );
    for blocks in ["8", "128"] {
        for (lun, name) in [
            (1, "write_cache = false (sync, WCE=0)"),
            (2, "write_cache = true (tgt default)"),
        ] {
            let out = probe(&bench, &spec, lun, &["write", "3", blocks]);
            println!(
                "{:>3} KiB writes, {name}: {out}",
                blocks.parse::<u32>().unwrap_or(0) / 2
            );
        }
    }
    let out = probe(&bench, &spec, 2, &["write", "3", "8", "32"]);
    println!("  4 KiB writes, write_cache = true, SYNCHRONIZE CACHE every 32 writes: {out}");
    let iqn = spec.iqn.to_string();
    for (lun, name) in [(1, "write_cache = false"), (2, "write_cache = true")] {
        let reader = bench.reader(&iqn, lun, None);
        thread::sleep(Duration::from_secs(3));
        println!(
            "iscsi-perf (reads only), {name}: {}",
            perf_average(&reader.output())
        );
    }
    target.stop(&spec).unwrap_or_else(|e| panic!("stop: {e}"));
}
