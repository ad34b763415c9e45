//! Times the adapter against the same work done by a sequence of `tgtadm` processes, on a real
//! tgtd: serve of a 64-LUN target from empty, a no-op serve, and status. Needs root and
//! Debian's `tgt`. Run: `cargo bench -p iscsi-ha-tgt --bench serve`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_core::secret::Secret;
use iscsi_ha_core::target::{Access, ChapCredentials, LunId, LunIdentity, LunSpec, TargetSpec};
use iscsi_ha_tgt::{ManagedDaemon, TgtConfig, TgtTarget};

const LUNS: u64 = 64;
const FROM_EMPTY_RUNS: usize = 7;
const REPEAT_RUNS: usize = 100;
const INITIATOR: &str = "iqn.2024-01.com.example:bench-init";

fn main() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/tgtadm").exists() {
        return Err("the serve bench needs root and Debian's tgt (tgtd, tgtadm)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let control_port = 30_000 + std::process::id() % 2_000;
    let iscsi_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let spec = spec(dir.path(), "bench")?;
    let mut target = TgtTarget::new(TgtConfig::managed(
        control_port,
        ManagedDaemon::new(vec![
            "--iscsi".into(),
            format!("portal=127.0.0.1:{iscsi_port}"),
        ]),
    ));
    target.ensure_daemon().map_err(|e| e.to_string())?;

    let mut native_empty = Vec::new();
    let mut tgtadm_empty = Vec::new();
    for _ in 0..FROM_EMPTY_RUNS {
        let start = Instant::now();
        target.serve(&spec).map_err(|e| e.to_string())?;
        native_empty.push(start.elapsed());
        if !spec.is_served_by(&target.status().map_err(|e| e.to_string())?) {
            return Err("the native serve did not converge".into());
        }
        clear(control_port)?;
        let start = Instant::now();
        tgtadm_serve(control_port, &spec)?;
        tgtadm_empty.push(start.elapsed());
        if !spec.is_served_by(&target.status().map_err(|e| e.to_string())?) {
            return Err("the tgtadm sequence did not converge".into());
        }
        clear(control_port)?;
    }

    target.serve(&spec).map_err(|e| e.to_string())?;
    let mut native_noop = Vec::new();
    let mut tgtadm_noop = Vec::new();
    let mut native_status = Vec::new();
    let mut tgtadm_status = Vec::new();
    for _ in 0..REPEAT_RUNS {
        let start = Instant::now();
        target.serve(&spec).map_err(|e| e.to_string())?;
        native_noop.push(start.elapsed());
        let start = Instant::now();
        // What tgtadm needs to learn there is nothing to do: the targets and the accounts.
        tgtadm(control_port, &["--op", "show", "--mode", "target"])?;
        tgtadm(control_port, &["--mode", "account", "--op", "show"])?;
        tgtadm_noop.push(start.elapsed());
        let start = Instant::now();
        let status = target.status().map_err(|e| e.to_string())?;
        native_status.push(start.elapsed());
        if status.targets.len() != 1 {
            return Err("status lost the target".into());
        }
        let start = Instant::now();
        tgtadm(control_port, &["--op", "show", "--mode", "target"])?;
        tgtadm_status.push(start.elapsed());
    }
    target.stop(&spec).map_err(|e| e.to_string())?;

    println!("tgt adapter vs tgtadm processes, one tgtd, {LUNS}-LUN target (medians)");
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "operation", "adapter", "tgtadm", "ratio"
    );
    report(
        &format!("serve from empty ({FROM_EMPTY_RUNS} runs)"),
        &mut native_empty,
        &mut tgtadm_empty,
    );
    report(
        &format!("no-op serve ({REPEAT_RUNS} runs)"),
        &mut native_noop,
        &mut tgtadm_noop,
    );
    report(
        &format!("status ({REPEAT_RUNS} runs)"),
        &mut native_status,
        &mut tgtadm_status,
    );
    Ok(())
}

fn spec(dir: &Path, name: &str) -> Result<TargetSpec, String> {
    let iqn = Iqn::new(format!("iqn.2024-01.com.example:{name}")).map_err(|e| e.to_string())?;
    let mut luns = Vec::new();
    for n in 1..=LUNS {
        let path = dir.join(format!("lun{n}.img"));
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(1 << 20))
            .map_err(|e| e.to_string())?;
        let lun = LunId::new(n).map_err(|e| e.to_string())?;
        luns.push(LunSpec {
            lun,
            path: path.to_string_lossy().into_owned(),
            identity: LunIdentity::derived(&iqn, lun),
            read_only: false,
            volatile_cache_reported: false,
            stable_writes: true,
        });
    }
    Ok(TargetSpec {
        iqn,
        luns,
        access: Access {
            initiator_names: vec![Iqn::new(INITIATOR).map_err(|e| e.to_string())?],
            incoming: vec![ChapCredentials {
                user: "benchuser".into(),
                password: Secret::new("benchsecret12"),
            }],
            ..Access::default()
        },
    })
}

fn tgtadm(control_port: u32, args: &[&str]) -> Result<(), String> {
    let out = Command::new("/usr/sbin/tgtadm")
        .arg("-C")
        .arg(control_port.to_string())
        .arg("--lld")
        .arg("iscsi")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tgtadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The same requests the adapter sends from empty, one tgtadm process each.
fn tgtadm_serve(port: u32, spec: &TargetSpec) -> Result<(), String> {
    let iqn = spec.iqn.to_string();
    tgtadm(port, &["--op", "show", "--mode", "target"])?;
    tgtadm(port, &["--mode", "account", "--op", "show"])?;
    tgtadm(
        port,
        &["--op", "new", "--mode", "target", "--tid", "1", "-T", &iqn],
    )?;
    let state = |v: &str| -> Result<(), String> {
        tgtadm(
            port,
            &[
                "--op", "update", "--mode", "target", "--tid", "1", "-n", "state", "-v", v,
            ],
        )
    };
    state("offline")?;
    for l in &spec.luns {
        let lun = l.lun.to_string();
        tgtadm(
            port,
            &[
                "--op",
                "new",
                "--mode",
                "logicalunit",
                "--tid",
                "1",
                "--lun",
                &lun,
                "-b",
                &l.path,
                "--bstype",
                "rdwr",
            ],
        )?;
        let params = format!(
            "scsi_id={},scsi_sn={},readonly=0",
            l.identity.scsi_id, l.identity.scsi_sn
        );
        tgtadm(
            port,
            &[
                "--op",
                "update",
                "--mode",
                "logicalunit",
                "--tid",
                "1",
                "--lun",
                &lun,
                "--params",
                &params,
            ],
        )?;
    }
    for name in &spec.access.initiator_names {
        tgtadm(
            port,
            &[
                "--op",
                "bind",
                "--mode",
                "target",
                "--tid",
                "1",
                "-Q",
                name.as_str(),
            ],
        )?;
    }
    for c in &spec.access.incoming {
        tgtadm(
            port,
            &[
                "--mode",
                "account",
                "--op",
                "new",
                "--user",
                &c.user,
                "--password",
                c.password.expose(),
            ],
        )?;
        tgtadm(
            port,
            &[
                "--mode", "account", "--op", "bind", "--tid", "1", "--user", &c.user,
            ],
        )?;
    }
    state("ready")
}

/// Back to an empty tgtd (untimed).
fn clear(port: u32) -> Result<(), String> {
    tgtadm(
        port,
        &[
            "--op", "delete", "--mode", "target", "--tid", "1", "--force",
        ],
    )?;
    tgtadm(
        port,
        &["--mode", "account", "--op", "delete", "--user", "benchuser"],
    )
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn report(name: &str, native: &mut [Duration], tgtadm: &mut [Duration]) {
    let n = median(native);
    let t = median(tgtadm);
    let ratio = t.as_secs_f64() / n.as_secs_f64().max(1e-9);
    println!(
        "{name:<34} {:>10.3}ms {:>10.3}ms {:>7.1}x",
        n.as_secs_f64() * 1e3,
        t.as_secs_f64() * 1e3,
        ratio
    );
}
