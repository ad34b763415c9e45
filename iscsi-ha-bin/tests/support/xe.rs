//! The recorded stand-in for XAPI's `xe` (`fixtures/xapi/xe`; no real XAPI runs here): a copy
//! in a directory of its own, answering from the fixture pool's files, recording every call,
//! keeping the pool's other-config in a file so that set and get round-trip.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/xapi")
}

/// One stand-in `xe` with the fixture pool's answers.
pub struct XeStandIn {
    pub dir: tempfile::TempDir,
}

impl XeStandIn {
    /// The stand-in with every answer of `fixtures/xapi/pool/` and an inventory naming `host`.
    pub fn new(host: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(fixtures().join("xe"), dir.path().join("xe")).unwrap();
        fs::set_permissions(dir.path().join("xe"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(dir.path().join("answers")).unwrap();
        for entry in fs::read_dir(fixtures().join("pool")).unwrap() {
            let entry = entry.unwrap();
            fs::copy(
                entry.path(),
                dir.path().join("answers").join(entry.file_name()),
            )
            .unwrap();
        }
        fs::write(
            dir.path().join("inventory"),
            format!("PRIMARY_DISK='/dev/sda'\nINSTALLATION_UUID='{host}'\n"),
        )
        .unwrap();
        Self { dir }
    }

    /// The program to configure as `[xapi] xe`.
    pub fn xe(&self) -> String {
        self.dir.path().join("xe").display().to_string()
    }

    /// The inventory to configure as `[xapi] inventory`.
    pub fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory")
    }

    /// Every call so far, one line of arguments each.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Creates a control file the stand-in obeys (`hang`, `fail-pool`, ...: fixtures/xapi/README.md).
    pub fn touch(&self, name: &str) {
        fs::write(self.dir.path().join(name), "").unwrap();
    }

    /// Replaces one answer file.
    pub fn answer(&self, name: &str, text: &str) {
        fs::write(self.dir.path().join("answers").join(name), text).unwrap();
    }

    /// The pool's other-config as the stand-in keeps it, one `key: value` line each.
    pub fn other_config(&self) -> String {
        fs::read_to_string(self.dir.path().join("other-config")).unwrap_or_default()
    }

    /// Sets the pool's other-config.
    pub fn set_other_config(&self, lines: &[(&str, &str)]) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        fs::write(self.dir.path().join("other-config"), text).unwrap();
    }
}
