//! What the operations features cost the daemon's loop, printed as numbers (no assertions on
//! time): `MailAlerts::deliver` while the mail server is mute (the worker stuck in a
//! conversation), publishing a wake's metrics, and a full scrape over loopback.
//!
//! `cargo bench -p iscsi-ha-bin --bench ops`

#![allow(clippy::unwrap_used)]

use iscsi_ha_bin::mail::{AlertStats, MailAlerts, MailSettings};
use iscsi_ha_bin::metrics::Metrics;
use iscsi_ha_core::alert::{Alert, Severity};
use iscsi_ha_core::config::schema::MailSection;
use iscsi_ha_core::plan::Step;
use iscsi_ha_core::ports::Alerts;
use iscsi_ha_core::reconcile::{ActionRecord, Outcome};
use iscsi_ha_core::time::Timestamp;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |percent: usize| v[(v.len() - 1) * percent / 100];
    format!(
        "n={} median {:?} p99 {:?} max {:?}",
        v.len(),
        at(50),
        at(99),
        v[v.len() - 1]
    )
}

fn deliver_with_a_mute_server() {
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let section = MailSection {
        enabled: true,
        to: vec!["ops@example.com".into()],
        port: mute.local_addr().unwrap().port(),
        ..MailSection::default()
    };
    let settings = MailSettings::from_config(&section, None, "bench")
        .unwrap()
        .with_timeout(Duration::from_secs(1));
    let stats = Arc::new(AlertStats::default());
    let mut alerts = MailAlerts::start(settings, stats.clone()).unwrap();
    let mut times = Vec::new();
    for i in 0..200 {
        let a = Alert::new(Severity::Error, format!("alert {i}"));
        let t0 = Instant::now();
        let _ = alerts.deliver(&a);
        times.push(t0.elapsed());
    }
    let c = stats.snapshot();
    println!(
        "deliver, mail server mute: {} (queued {}, dropped as queue full {})",
        percentiles(times),
        200 - c.queue_full,
        c.queue_full
    );
}

fn metrics_publish_and_scrape() {
    let m = Arc::new(Metrics::new(Arc::new(AlertStats::default())));
    let at = Timestamp::from_system_time(SystemTime::now());
    let actions = vec![
        ActionRecord {
            at,
            step: Step::ServeTarget,
            outcome: Outcome::Done,
        },
        ActionRecord {
            at,
            step: Step::AssignVip,
            outcome: Outcome::Done,
        },
    ];
    let mut times = Vec::new();
    for _ in 0..2000 {
        let t0 = Instant::now();
        m.record(None, &actions);
        times.push(t0.elapsed());
    }
    println!("metrics publish per wake: {}", percentiles(times));
    let addr = m.serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..300 {
        let t0 = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = Vec::new();
        s.read_to_end(&mut body).unwrap();
        times.push(t0.elapsed());
        size = body.len();
    }
    println!(
        "metrics scrape over loopback ({size} bytes): {}",
        percentiles(times)
    );
}

fn main() {
    deliver_with_a_mute_server();
    metrics_publish_and_scrape();
}
