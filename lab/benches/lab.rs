//! Lab timings, printed (a bench binary, not a timed test). Needs root and the lab's packages:
//!
//! ```sh
//! cargo bench -p iscsi-ha-lab --bench lab
//! ```
//! Prints: warm `Lab::up` (boot both + DRBD to UpToDate/UpToDate), the command channel's and
//! the initiator namespace's round trips, and how long the peer takes to see each fault.

use std::error::Error;
use std::time::{Duration, Instant};

use iscsi_ha_lab::{DrbdOptions, Lab, LabOptions};

type BoxResult<T> = Result<T, Box<dyn Error>>;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// min / mean / max of `n` runs of `f`.
fn sample(n: u32, mut f: impl FnMut() -> BoxResult<()>) -> BoxResult<String> {
    let mut all = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        all.push(t.elapsed());
    }
    let min = all.iter().min().copied().unwrap_or_default();
    let max = all.iter().max().copied().unwrap_or_default();
    let mean = all.iter().sum::<Duration>() / n.max(1);
    Ok(format!(
        "min {:.3} s  mean {:.3} s  max {:.3} s  (n={n})",
        secs(min),
        secs(mean),
        secs(max)
    ))
}

/// Time until `observer` no longer shows minor 1 Connected.
fn detection(lab: &Lab, observer: u8) -> BoxResult<Duration> {
    let t = Instant::now();
    lab.node(observer)
        .wait_drbd("peer lost", Duration::from_secs(30), |m| {
            m.iter().any(|r| r.minor == 1 && r.cs != "Connected")
        })?;
    Ok(t.elapsed())
}

fn main() -> BoxResult<()> {
    let t = Instant::now();
    let lab = Lab::up(LabOptions {
        drbd: Some(DrbdOptions {
            primary: Some(1),
            ..DrbdOptions::default()
        }),
        ..LabOptions::default()
    })?;
    println!(
        "lab up (warm cache, {}): {:.2} s",
        lab.accel(),
        secs(t.elapsed())
    );
    let node1 = lab.node(1);
    println!(
        "exec round trip (node1 `true`):    {}",
        sample(30, || Ok(node1.run("true").map(|_| ())?))?
    );
    println!(
        "exec round trip (cat /proc/drbd):  {}",
        sample(30, || Ok(node1.run("cat /proc/drbd").map(|_| ())?))?
    );
    println!(
        "initiator round trip (`true`):     {}",
        sample(10, || Ok(lab.initiator("true").map(|_| ())?))?
    );

    lab.node(2).pause()?;
    println!(
        "node2 paused   -> node1 sees it after {:.2} s",
        secs(detection(&lab, 1)?)
    );
    lab.node(2).resume()?;
    let t = Instant::now();
    lab.wait_healthy(Duration::from_secs(60))?;
    println!(
        "node2 resumed  -> healthy again after {:.2} s",
        secs(t.elapsed())
    );

    lab.node(2).cut_link()?;
    println!(
        "node2 link cut -> node1 sees it after {:.2} s",
        secs(detection(&lab, 1)?)
    );
    lab.node(2).restore_link()?;
    let t = Instant::now();
    lab.wait_healthy(Duration::from_secs(60))?;
    println!(
        "node2 link up  -> healthy again after {:.2} s",
        secs(t.elapsed())
    );

    lab.node(1).kill()?;
    println!(
        "node1 (Primary) killed -> node2 sees it after {:.2} s",
        secs(detection(&lab, 2)?)
    );
    let t = Instant::now();
    lab.reboot_node(1)?;
    println!(
        "node1 power-cycled + drbdadm up: {:.2} s",
        secs(t.elapsed())
    );
    let t = Instant::now();
    lab.wait_healthy(Duration::from_secs(60))?;
    println!(
        "node1 back     -> healthy again after {:.2} s",
        secs(t.elapsed())
    );
    Ok(())
}
