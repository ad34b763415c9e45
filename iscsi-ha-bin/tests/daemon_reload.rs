//! `iscsi-cfg reload` is honest: a new `[role]` is followed at once, a changed VIP, resource
//! list or target backend is refused (naming it) and the running configuration kept, and the
//! sections that wait for a restart are named. Real daemon in a network namespace. Needs root.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::time::Duration;
use support::{config, require_root, Daemon, Netns, VIP};

fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn reload_follows_a_new_role_source_and_refuses_a_new_vip_or_resource_list() {
    require_root();
    let ns = Netns::new("l");
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "");
    let d = Daemon::start_in(&ns, dir, "slave\n", &text, &[]);
    let path = d.dir.path().join("c.toml");
    let good = fs::read_to_string(&path).unwrap();

    fs::write(&path, good.replace(&format!("{VIP}/24"), "10.79.0.101/24")).unwrap();
    let out = d.cfg(&["reload"]);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("[vip] address, prefix or interface changed"),
        "{}",
        said(&out)
    );
    assert_eq!(
        d.status()["vip"]["address"],
        format!("{VIP}/24"),
        "the old VIP is kept"
    );

    fs::write(
        &path,
        good.replace("resources = [\"r0\"]", "resources = [\"r0\", \"r1\"]"),
    )
    .unwrap();
    let out = d.cfg(&["reload"]);
    assert!(
        said(&out).contains("[replication] resources changed"),
        "{}",
        said(&out)
    );

    // A new backend would not know the old one's target, which would stay exported.
    let lio = good
        .replace(
            "iqn = \"iqn.2024-01.com.example:ops\"",
            "iqn = \"iqn.2024-01.com.example:ops\"\nbackend = \"lio\"",
        )
        .replace("[target.daemon]\nmanaged = false\ncontrol_port = 43\n", "");
    assert!(lio.contains("backend = \"lio\"") && !lio.contains("[target.daemon]"));
    fs::write(&path, lio).unwrap();
    let out = d.cfg(&["reload"]);
    assert!(
        !out.status.success() && said(&out).contains("[target] backend changed"),
        "{}",
        said(&out)
    );

    let other = d.dir.path().join("other-role");
    fs::write(&other, "master\n").unwrap();
    let old_role = d.dir.path().join("role");
    fs::write(
        &path,
        good.replace(
            &old_role.display().to_string(),
            &other.display().to_string(),
        )
        .replace("[logging]\n", "[logging]\nlevel = \"debug\"\n"),
    )
    .unwrap();
    let out = d.cfg(&["reload"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("[logging] changed and take effect only at the next start"),
        "{}",
        said(&out)
    );
    d.wait_for(
        Duration::from_secs(3),
        "the new role file to be followed",
        |d| d.status()["host_role"] == "master",
    );
    fs::write(&old_role, "slave\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.status()["host_role"],
        "master",
        "the old role file is not followed any more"
    );
    fs::write(&other, "slave\n").unwrap();
    d.wait_for(
        Duration::from_secs(3),
        "a change of the new role file",
        |d| d.status()["host_role"] == "slave",
    );
}
