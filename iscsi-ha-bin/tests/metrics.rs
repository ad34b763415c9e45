//! The Prometheus endpoint of the real daemon in a network namespace, scraped over HTTP from
//! inside the namespace and parsed by the reference Python client's parser (Debian's
//! python3-prometheus-client) as an independent check of the format. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::{config, require_root, sh, Daemon, Netns, VIP};

/// Scrapes `url` inside the namespace and prints `name{labels} value` per sample, sorted,
/// after the reference parser has accepted the whole text.
const SCRAPE: &str = r#"
import sys, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
except urllib.error.HTTPError as e:
    print("HTTP", e.code); sys.exit(0)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
text = r.read().decode()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %s" % (s.name, labels, s.value))
"#;

fn scrape(ns: &Netns, path: &str) -> Result<BTreeMap<String, f64>, String> {
    let out = ns
        .command("/usr/bin/python3")
        .args(["-c", SCRAPE, &format!("http://127.0.0.1:9725{path}")])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    if let Some(code) = text.strip_prefix("HTTP ") {
        return Err(format!("HTTP {}", code.trim()));
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect())
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

fn require_parser() {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs Debian's python3-prometheus-client (scripts/packages.d/ops.txt)"
    );
}

#[test]
fn scraping_shows_role_storage_actions_and_alerts() {
    require_root();
    require_parser();
    let ns = Netns::new("p");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    let d = Daemon::start_in(
        &ns,
        dir,
        "slave\n",
        &text,
        &["--metrics-listen", "127.0.0.1:9725"],
    );
    let m = scrape(&ns, "/metrics").unwrap();
    assert_eq!(value(&m, "iscsi_ha_role{role=\"slave\"}"), 1.0);
    assert_eq!(value(&m, "iscsi_ha_role{role=\"master\"}"), 0.0);
    assert_eq!(value(&m, "iscsi_ha_intent{intent=\"release\"}"), 1.0);
    assert_eq!(value(&m, "iscsi_ha_manual_mode{}"), 0.0);
    // No DRBD on this kernel: the resource is unobservable and its demotion fails.
    assert_eq!(value(&m, "iscsi_ha_drbd_observable{resource=\"r0\"}"), 0.0);
    assert!(
        value(
            &m,
            "iscsi_ha_actions_total{outcome=\"failed\",step=\"demote\"}"
        ) >= 1.0
    );
    assert_eq!(value(&m, "iscsi_ha_target_up{}"), 0.0);
    assert_eq!(
        value(&m, &format!("iscsi_ha_vip_here{{address=\"{VIP}/24\"}}")),
        0.0
    );
    assert_eq!(value(&m, "iscsi_ha_failovers_total{}"), 0.0);
    // A slave never announces the VIP it does not hold.
    for result in ["sent", "failed", "withheld"] {
        assert_eq!(
            value(
                &m,
                &format!("iscsi_ha_vip_refreshes_total{{result=\"{result}\"}}")
            ),
            0.0
        );
    }
    assert!(value(&m, "iscsi_ha_alerts_total{severity=\"error\"}") >= 1.0);
    assert_eq!(
        value(&m, "iscsi_ha_alert_mails_total{result=\"sent\"}"),
        0.0
    );
    assert!(value(&m, "iscsi_ha_wakes_total{}") >= 1.0);
    assert!(m.keys().any(|k| k.starts_with("iscsi_ha_info{version=")));

    // A VIP added by hand is released: the action is counted.
    let out = sh(&format!("ip -n {} addr add {VIP}/24 dev d0", ns.name));
    assert!(out.status.success());
    d.wait_for(Duration::from_secs(5), "the release in the metrics", |_| {
        scrape(&ns, "/metrics").is_ok_and(|m| {
            m.get("iscsi_ha_actions_total{outcome=\"done\",step=\"release_vip\"}") == Some(&1.0)
        })
    });

    d.set_role(None);
    d.wait_for(
        Duration::from_secs(5),
        "role unknown in the metrics",
        |_| {
            scrape(&ns, "/metrics").is_ok_and(|m| {
                m.get("iscsi_ha_role{role=\"unknown\"}") == Some(&1.0)
                    && m.get("iscsi_ha_intent{intent=\"hold\"}") == Some(&1.0)
                    && m.get("iscsi_ha_holds{}") == Some(&1.0)
            })
        },
    );
    assert_eq!(scrape(&ns, "/other").unwrap_err(), "HTTP 404");
}

#[test]
fn metrics_are_off_unless_asked_for() {
    require_root();
    require_parser();
    let ns = Netns::new("q");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    let _d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    let err = scrape(&ns, "/metrics").unwrap_err();
    assert!(err.contains("Connection refused"), "{err}");
}
