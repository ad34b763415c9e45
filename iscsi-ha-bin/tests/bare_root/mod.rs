//! The .rpm's binaries, as packaged, run in a lab guest inside a root that holds nothing but
//! them, the shared objects their NEEDED entries name and the dynamic loader (packaging/README.md
//! says what this proves and what it cannot). A step of a lab test that boots anyway; the
//! .rpm comes from scripts/suites.d/40-ops, which CI runs before the lab suites.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use iscsi_ha_lab::Lab;

/// The loader glibc's x86_64 binaries name as their interpreter.
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn the_rpm() -> PathBuf {
    let dir = target_dir().join("packages");
    let rpms: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build the packages first (scripts/suites.d/40-ops)",
                dir.display()
            )
        })
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpm"))
        .collect();
    assert_eq!(
        rpms.len(),
        1,
        "expected one .rpm in {} (scripts/suites.d/40-ops): {rpms:?}",
        dir.display()
    );
    rpms.into_iter().next().unwrap_or_default()
}

fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-ec", script])
        .output()
        .unwrap_or_else(|e| panic!("sh: {e}"));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The NEEDED entries and the interpreter of an ELF file.
fn needed(binary: &Path) -> (Vec<String>, String) {
    let headers = sh(&format!("objdump -p '{}'", binary.display()));
    let libs = headers
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|l| l.trim().to_string())
        .collect();
    let interp = sh(&format!(
        "readelf -l '{}' | sed -n 's/.*Requesting program interpreter: \\(.*\\)]/\\1/p'",
        binary.display()
    ));
    (libs, interp.trim().to_string())
}

/// Unpacks the .rpm, lays out the bare root in the share and runs the binaries in it from
/// node `id`, chrooted: `--version`, `check-config` on the packaged example, `iscsi-cfg
/// --help`, and `status` with no daemon (exit 3).
pub fn packaged_binaries_run_in_a_bare_root(lab: &Lab, id: u8) {
    let rpm = the_rpm();
    let payload = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    sh(&format!(
        "rpm2archive -n < '{}' | tar -x -C '{}'",
        rpm.display(),
        payload.path().display()
    ));
    let root = lab.share_dir().join("bare-root");
    let _ = fs::remove_dir_all(&root);
    let mut files = Vec::new();
    let mut put = |from: &Path, inside: &str| {
        let dest = root.join(inside.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap_or(&root)).unwrap_or_else(|e| panic!("{e}"));
        fs::copy(from, &dest)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), dest.display()));
        files.push(inside.to_string());
    };
    let mut libs = std::collections::BTreeSet::new();
    // Where the packages install them (iscsi-cfg where HA-Lizard's ha-cfg looks for it).
    for installed in ["/usr/sbin/iscsi-ha", "/usr/bin/iscsi-cfg"] {
        let path = payload.path().join(installed.trim_start_matches('/'));
        let (needed, interp) = needed(&path);
        assert_eq!(interp, LOADER, "{installed}'s interpreter");
        libs.extend(needed);
        put(&path, installed);
    }
    // The guests' C library is this machine's (lab/src/image.rs copies it), so the shared
    // objects come from here; only those the binaries name, resolved to their files.
    for lib in &libs {
        let host = fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(lib))
            .unwrap_or_else(|e| panic!("{lib} (NEEDED) not on this machine: {e}"));
        put(&host, &format!("/lib/x86_64-linux-gnu/{lib}"));
    }
    let loader = fs::canonicalize(LOADER).unwrap_or_else(|e| panic!("{LOADER}: {e}"));
    put(&loader, LOADER);
    put(
        &payload.path().join("etc/iscsi-ha/iscsi-ha.toml.example"),
        "/etc/iscsi-ha/iscsi-ha.toml.example",
    );
    files.sort();
    eprintln!("bare root: {files:?}");

    let node = lab.node(id);
    // Nothing else is in the root: no /proc, /dev, /etc/ld.so.cache, CA store or other library.
    let listed = node
        .run("cd /host/bare-root && find . -type f -o -type l | sed 's|^\\.||' | sort")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.lines().collect::<Vec<_>>(), files);
    let ok = |cmd: &str| -> String {
        node.run(&format!("chroot /host/bare-root {cmd}"))
            .unwrap_or_else(|e| panic!("{cmd} in the bare root: {e}"))
    };
    let version = ok("/usr/sbin/iscsi-ha --version");
    assert!(version.starts_with("iscsi-ha "), "{version}");
    ok("/usr/sbin/iscsi-ha check-config /etc/iscsi-ha/iscsi-ha.toml.example");
    let help = ok("/usr/bin/iscsi-cfg --help");
    assert!(help.contains("manual-mode-enable"), "{help}");
    let status = node
        .exec("chroot /host/bare-root /usr/sbin/iscsi-ha status")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        status.status,
        3,
        "iscsi-ha status with no daemon: {}{}",
        status.stdout_text(),
        status.stderr_text()
    );
    eprintln!(
        "the .rpm's binaries ran in a root of {} files on node{id}: {}",
        files.len(),
        version.trim()
    );
    let _ = fs::remove_dir_all(&root);
}
