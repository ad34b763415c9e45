//! `iscsi-ha doctor` against real files: the binary runs in a private mount namespace
//! (`unshare -m`) whose `/etc` is an overlay of the host's (so drbd.conf, drbd.d, lvm.conf,
//! multipath.conf and systemd's `*.wants/` links are written there, never on the host) and
//! whose `/proc` is a tmpfs holding the `/proc/drbd` under test; a network namespace of its
//! own holds the VIP's interface. This kernel has no DRBD, so
//! the kernel's view is proven in the lab (`lab_failover`); here drbd.conf is the fallback.
//! Also: `iscsi-ha status` shows the fingerprint doctor prints. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use support::{require_root, Daemon, Netns};

enum F {
    Text(&'static str),
    Fifo,
    Link(&'static str),
    Gone,
}

const PROC_84: &str = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 1A2B3C4D5E6F7A8B9C0D1E2\n";

const CONFIG: &str = r#"
[role]
source = "static"
role = "master"
[replication]
resources = ["r0"]
[target]
iqn = "iqn.2024-01.com.example:doctor"
[[target.lun]]
lun = 1
path = "/dev/drbd7"
[target.access]
initiators = ["10.79.9.0/24"]
[vip]
address = "10.79.9.100/24"
interface = "d0"
"#;

const GOOD_DRBD: &str = r#"# as fixtures/drbd/iscsi-ha.res.example
include "drbd.d/global_common.conf";
include "drbd.d/*.res";
"#;
const GOOD_COMMON: &str = "global { usage-count no; }\ncommon {\n  handlers { fence-peer \"/usr/sbin/iscsi-ha fence-peer\"; } # ours\n}\n";
const GOOD_RES: &str = r#"
resource r0 {
    protocol C;
    disk { fencing resource-and-stonith; }
    net { after-sb-0pri discard-zero-changes; after-sb-1pri disconnect; after-sb-2pri disconnect; }
    device /dev/drbd7;
    disk /dev/doctor-backing;
    meta-disk internal;
    on node1 { address 10.0.0.1:7789; }
    on node2 { address 10.0.0.2:7789; }
}
"#;
const GOOD_LVM: &str = r#"
devices {
    dir = "/dev"
    global_filter = [ "r|^/dev/doctor-backing$|",   # DRBD's backing disk
                      "r|^/dev/drbd|",
                      "a|.*|" ]
    write_cache_state = 0
}
"#;
const GOOD_MULTIPATH: &str =
    "defaults { user_friendly_names yes }\nblacklist {\n    devnode \"^drbd[0-9]+\"\n}\n";

/// Runs doctor with `files` placed under the namespace's `/etc` and `/proc/drbd` holding
/// `proc_drbd` (absent when `None`); returns the exit code and standard output.
fn doctor(files: &[(&str, F)], proc_drbd: Option<&str>, json: bool) -> (i32, String) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["upper", "work", "files"] {
        fs::create_dir(d.join(sub)).unwrap();
    }
    let config = d.join("c.toml");
    fs::write(&config, CONFIG).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let mut script = format!(
        "set -e\nip link add d0 type veth peer name d1\nip link set d1 up\nip addr add 10.79.9.1/24 dev d0\nip link set d0 up\n\
         mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/upper,workdir={0}/work /etc\n\
         rm -f /etc/systemd/system/*.wants/tgt.service /etc/systemd/system/*.wants/tgtd.service\n\
         mount -t tmpfs doctor-proc /proc\n",
        d.display()
    );
    if let Some(text) = proc_drbd {
        fs::write(d.join("proc_drbd"), text).unwrap();
        script.push_str(&format!("cp {}/proc_drbd /proc/drbd\n", d.display()));
    }
    for (i, (path, spec)) in files.iter().enumerate() {
        let parent = Path::new(path).parent().unwrap().display().to_string();
        script.push_str(&format!("mkdir -p {parent}\nrm -rf {path}\n"));
        match spec {
            F::Text(t) => {
                let src = d.join("files").join(i.to_string());
                fs::write(&src, t).unwrap();
                script.push_str(&format!("cp {} {path}\n", src.display()));
            }
            F::Fifo => script.push_str(&format!("mkfifo {path}\n")),
            F::Link(target) => script.push_str(&format!("ln -s {target} {path}\n")),
            F::Gone => {}
        }
    }
    script.push_str(&format!(
        "exec {} doctor {}{}\n",
        env!("CARGO_BIN_EXE_iscsi-ha"),
        config.display(),
        if json { " --json" } else { "" }
    ));
    // `timeout`: a FIFO must not hang doctor; if it does, the test fails instead of hanging.
    let out = Command::new("timeout")
        .args(["30", "unshare", "-m", "-n", "sh", "-c", &script])
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        124,
        "doctor hung:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.stdout.is_empty(),
        "no report (exit {code}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn findings(stdout: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["findings"].as_array().unwrap().clone()
}

/// The findings of `check`, as (level, what, todo).
fn of(all: &[serde_json::Value], check: &str) -> Vec<(String, String, String)> {
    all.iter()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_string(),
                f["what"].as_str().unwrap().to_string(),
                f["todo"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn level(all: &[serde_json::Value], check: &str) -> String {
    let found = of(all, check);
    assert_eq!(found.len(), 1, "{check}: {found:?}\n{all:#?}");
    found[0].0.clone()
}

fn good_files() -> Vec<(&'static str, F)> {
    vec![
        ("/etc/drbd.conf", F::Text(GOOD_DRBD)),
        ("/etc/drbd.d/global_common.conf", F::Text(GOOD_COMMON)),
        ("/etc/drbd.d/r0.res", F::Text(GOOD_RES)),
        ("/etc/lvm/lvm.conf", F::Text(GOOD_LVM)),
        ("/etc/multipath.conf", F::Text(GOOD_MULTIPATH)),
    ]
}

#[test]
fn a_host_set_up_as_the_design_needs_is_ok_in_every_file_check() {
    let (code, out) = doctor(&good_files(), Some(PROC_84), true);
    let all = findings(&out);
    for check in [
        "drbd.module",
        "drbd.r0.protocol",
        "drbd.r0.fencing",
        "drbd.r0.fence-peer",
        "drbd.r0.after-sb-0pri",
        "drbd.r0.after-sb-1pri",
        "drbd.r0.after-sb-2pri",
        "multipath.blacklist",
        "lvm.filter",
        "lvm.write_cache_state",
        "tgt.boot",
        "role.source",
        "vip.interface",
        "fingerprint",
    ] {
        assert_eq!(level(&all, check), "ok", "{check}: {:?}", of(&all, check));
    }
    assert!(of(&all, "drbd.module")[0].1.contains("DRBD 8.4.11"));
    assert!(of(&all, "multipath.blacklist")[0].1.contains("drbd7"));
    assert!(of(&all, "lvm.filter")[0].1.contains("/dev/doctor-backing"));
    // This kernel has no DRBD: the kernel's view is an error here (the lab proves it ok).
    assert_eq!(level(&all, "drbd.netlink"), "error");
    assert_eq!(code, 2);

    // The text form: one line per finding, then the summary.
    let (code, text) = doctor(&good_files(), Some(PROC_84), false);
    assert_eq!(code, 2);
    assert!(
        text.contains("\nok lvm.write_cache_state: write_cache_state = 0\n"),
        "{text}"
    );
    assert!(text.contains("\nerror drbd.netlink: "), "{text}");
    assert!(text.contains(" — load it (modprobe drbd)"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("error(s): do not trust this host with failover"),
        "{last}"
    );
}

#[test]
fn each_departure_in_the_files_is_a_finding_that_says_what_to_do() {
    let res = r#"
resource r0 {
    net { protocol A; after-sb-1pri discard-secondary; }
    disk { fencing resource-only; }
    handlers { fence-peer "/usr/lib/drbd/crm-fence-peer.sh"; }
    device /dev/drbd7;
    disk /dev/doctor-backing;
}
"#;
    let files = vec![
        ("/etc/drbd.conf", F::Text("include \"drbd.d/*.res\";\n")),
        ("/etc/drbd.d/r0.res", F::Text(res)),
        (
            "/etc/lvm/lvm.conf",
            F::Text("devices {\n  filter = [ \"a|.*|\" ]\n  write_cache_state = 1\n}\n"),
        ),
        (
            "/etc/multipath.conf",
            F::Text("blacklist {\n  devnode \"^loop\"\n}\n"),
        ),
        (
            "/etc/systemd/system/multi-user.target.wants/tgt.service",
            F::Link("/lib/systemd/system/tgt.service"),
        ),
    ];
    let (code, out) = doctor(&files, Some("version: 9.1.7 (api:2/proto:86-121)\n"), true);
    assert_eq!(code, 2);
    let all = findings(&out);
    let expect = [
        ("drbd.module", "warn", "DRBD 9.1.7", "8.4"),
        ("drbd.r0.protocol", "error", "protocol A", "protocol C;"),
        (
            "drbd.r0.fencing",
            "error",
            "fencing resource-only",
            "resource-and-stonith",
        ),
        (
            "drbd.r0.fence-peer",
            "error",
            "crm-fence-peer.sh",
            "iscsi-ha fence-peer",
        ),
        (
            "drbd.r0.after-sb-1pri",
            "error",
            "acknowledged writes are lost",
            "disconnect",
        ),
        (
            "multipath.blacklist",
            "error",
            "may claim drbd7",
            "^drbd[0-9]+",
        ),
        (
            "lvm.filter",
            "error",
            "accepted by \"a|.*|\"",
            "global_filter",
        ),
        (
            "lvm.write_cache_state",
            "error",
            "\"1\"",
            "write_cache_state = 0",
        ),
        (
            "tgt.boot",
            "error",
            "tgt.service is enabled at boot",
            "systemctl disable tgt.service",
        ),
    ];
    for (check, lvl, what, todo) in expect {
        let f = of(&all, check);
        assert_eq!(f.len(), 1, "{check}: {f:?}");
        let (l, w, t) = &f[0];
        assert_eq!(l, lvl, "{check}: {f:?}");
        assert!(w.contains(what), "{check}: {w}");
        assert!(t.contains(todo), "{check}: {t}");
    }
    // The defaults drbd.conf leaves alone are still the design's.
    assert_eq!(level(&all, "drbd.r0.after-sb-0pri"), "ok");

    // A resource drbd.conf does not define, and warnings only: exit 1.
    let files = vec![
        ("/etc/drbd.conf", F::Text(GOOD_DRBD)),
        ("/etc/drbd.d/global_common.conf", F::Text(GOOD_COMMON)),
        (
            "/etc/drbd.d/r0.res",
            F::Text("resource r9 { protocol C; }\n"),
        ),
    ];
    let (_, out) = doctor(&files, Some(PROC_84), true);
    let all = findings(&out);
    assert_eq!(level(&all, "drbd.r0.conf"), "error");
}

#[test]
fn files_that_cannot_be_read_are_findings_never_a_hang() {
    let files = vec![
        ("/etc/drbd.conf", F::Text("include \"drbd.d/*.res\";\n")),
        ("/etc/drbd.d/r0.res", F::Fifo),
        ("/etc/lvm/lvm.conf", F::Fifo),
        (
            "/etc/multipath.conf",
            F::Text("blacklist {\n devnode \"^drbd\"\n"),
        ),
    ];
    let (code, out) = doctor(&files, None, true);
    assert_eq!(code, 2);
    let all = findings(&out);
    let one = |check: &str| {
        let f = of(&all, check);
        assert_eq!(f.len(), 1, "{check}: {f:?}");
        f[0].clone()
    };
    let (l, w, t) = one("drbd.module");
    assert_eq!(l, "error");
    assert!(
        w.contains("not loaded") && t.contains("modprobe drbd"),
        "{w} {t}"
    );
    let (l, w, _) = one("drbd.conf");
    assert_eq!(l, "error");
    assert!(w.contains("could not read") && w.contains("FIFO"), "{w}");
    let (l, w, t) = one("lvm.filter");
    assert_eq!(l, "error");
    assert!(w.contains("FIFO") && t.contains("regular file"), "{w} {t}");
    let (l, w, _) = one("multipath.blacklist");
    assert_eq!(l, "error");
    assert!(w.contains("not closed"), "{w}");

    // Gone files: no drbd.conf is a finding with what to do.
    let (_, out) = doctor(&[("/etc/drbd.conf", F::Gone)], Some(PROC_84), true);
    let all = findings(&out);
    let f = of(&all, "drbd.conf");
    assert_eq!(f.len(), 1, "{all:#?}");
    assert!(
        f[0].1.contains("/etc/drbd.conf") && !f[0].2.is_empty(),
        "{f:?}"
    );
}

#[test]
fn status_shows_the_fingerprint_doctor_prints() {
    require_root();
    let ns = Netns::new("doc");
    let dir = tempfile::tempdir().unwrap();
    let text = support::config(dir.path(), "");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    d.wait_for(std::time::Duration::from_secs(10), "a status", |d| {
        d.cfg(&["status"]).status.success()
    });
    let status = d.status();
    let fp = status["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp.len(), 16, "{status}");
    let text = String::from_utf8(d.cfg(&["status"]).stdout).unwrap();
    assert!(
        text.contains(&format!("CONFIG:         fingerprint {fp}\n")),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-ha"))
        .args(["doctor", "--json"])
        .arg(d.dir.path().join("c.toml"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["fingerprint"], fp.as_str());
    let line = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "fingerprint")
        .unwrap();
    assert!(line["what"].as_str().unwrap().contains(&fp));
}
