//! The Debian kernel, prepared for a fast boot: the ELF `vmlinux` (PVH entry, no in-guest
//! decompression) and the kernel modules in dependency order.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{LabError, Result};

/// The modules the guests load, by name; their dependencies are added from `modules.dep`.
///
/// `crc32c_generic` comes first so that libcrc32c (needed by DRBD) finds its transform: the
/// initramfs has no modprobe for the kernel to auto-load it.
pub const GUEST_MODULES: &[&str] = &[
    "crc32c_generic",
    "drbd",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "nlmon",
    // LIO, the kernel's own target (iscsi-ha-lio): the core, its iSCSI fabric and the two
    // backstores it uses (iblock for read-only LUNs, fileio for writable ones); configfs comes
    // with the core's dependencies.
    "target_core_mod",
    "iscsi_target_mod",
    "target_core_iblock",
    "target_core_file",
];

/// Extracts the ELF kernel from a bzImage whose payload is xz-compressed.
///
/// The payload starts at the xz magic and uses the x86 BCJ filter, so it is handed to
/// `xz --single-stream` (which ignores what follows the stream). The result must be an ELF file
/// (Debian's kernels carry a PVH note, so qemu `-kernel` boots it directly).
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
    let start = bzimage
        .windows(XZ_MAGIC.len())
        .position(|w| w == XZ_MAGIC)
        .ok_or_else(|| LabError::Cache("vmlinuz has no xz payload".into()))?;
    let mut child = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::Prerequisite(format!("cannot run xz (xz-utils): {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| LabError::Cache("xz has no stdin".into()))?;
    let payload = bzimage[start..].to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&payload));
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io("running xz", e))?;
    // A broken pipe is expected when xz stops at the end of the stream.
    let _ = feeder.join();
    if !out.status.success() {
        return Err(LabError::Cache(format!(
            "xz could not decompress the vmlinuz payload: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    if !out.stdout.starts_with(b"\x7fELF") {
        return Err(LabError::Cache(
            "the vmlinuz payload is not an ELF kernel".into(),
        ));
    }
    Ok(out.stdout)
}

/// `modules.dep`, indexed by module name (dashes folded to underscores).
#[derive(Debug, Default)]
pub struct ModuleIndex {
    /// name -> (path relative to the modules directory, dependencies' paths)
    entries: HashMap<String, (String, Vec<String>)>,
}

/// The module name of a path such as `kernel/drivers/block/drbd/drbd.ko`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".ko").unwrap_or(file);
    stem.replace('-', "_")
}

impl ModuleIndex {
    /// Parses the text of `modules.dep` (`path: dep-path dep-path ...` per line).
    pub fn parse(text: &str) -> Result<Self> {
        let mut entries = HashMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (path, deps) = line
                .split_once(':')
                .ok_or_else(|| LabError::Cache(format!("bad modules.dep line: {line}")))?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            entries.insert(module_name(path), (path.to_owned(), deps));
        }
        Ok(Self { entries })
    }

    /// The paths to load, dependencies first, for the `wanted` modules.
    pub fn load_order(&self, wanted: &[&str]) -> Result<Vec<String>> {
        let mut order: Vec<String> = Vec::new();
        for name in wanted {
            self.add(&name.replace('-', "_"), &mut order, 0)?;
        }
        Ok(order)
    }

    fn add(&self, name: &str, order: &mut Vec<String>, depth: usize) -> Result<()> {
        if depth > 64 {
            return Err(LabError::Cache(format!("module dependency loop at {name}")));
        }
        let (path, deps) = self
            .entries
            .get(name)
            .ok_or_else(|| LabError::Cache(format!("kernel module {name} not in modules.dep")))?;
        if order.contains(path) {
            return Ok(());
        }
        // modules.dep lists the dependency loaded last first.
        for dep in deps.iter().rev() {
            self.add(&module_name(dep), order, depth + 1)?;
        }
        order.push(path.clone());
        Ok(())
    }
}

/// The single kernel release under `<root>/lib/modules`.
pub fn kernel_release(root: &Path) -> Result<String> {
    let dir = root.join("lib/modules");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| LabError::io(format!("listing {}", dir.display()), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(LabError::Cache(format!(
            "expected one kernel under {}, found {names:?}",
            dir.display()
        ))),
    }
}

/// The modules directory of `release` under `root`.
pub fn modules_dir(root: &Path, release: &str) -> PathBuf {
    root.join("lib/modules").join(release)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/block/drbd/drbd.ko: kernel/lib/lru_cache.ko kernel/lib/libcrc32c.ko
kernel/lib/lru_cache.ko:
kernel/lib/libcrc32c.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/crypto/crc32c_generic.ko:
";

    #[test]
    fn dependencies_load_first_and_once() {
        let idx = ModuleIndex::parse(DEP).unwrap();
        let order = idx
            .load_order(&["crc32c_generic", "drbd", "virtio_pci"])
            .unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(
            names,
            [
                "crc32c_generic",
                "libcrc32c",
                "lru_cache",
                "drbd",
                "virtio_ring",
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_pci"
            ]
        );
    }

    #[test]
    fn unknown_module_is_an_error() {
        let idx = ModuleIndex::parse(DEP).unwrap();
        assert!(idx.load_order(&["nonexistent"]).is_err());
        assert!(ModuleIndex::parse("no colon here").is_err());
    }

    #[test]
    fn bzimage_without_xz_payload_is_rejected() {
        assert!(extract_vmlinux(b"MZ not a kernel").is_err());
    }
}
