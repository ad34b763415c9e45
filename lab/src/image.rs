//! The lab's cache: qemu and the kernel unpacked from Debian packages, and the guests' initramfs.
//!
//! Two stages, each rebuilt only when the hash of its inputs changes:
//! - **base** (`base/`): `apt-get download` of qemu 7.2 and the kernel that `linux-image-amd64`
//!   depends on, unpacked with `dpkg-deb -x` (nothing is installed: the backported qemu-utils
//!   on these machines breaks an apt install of qemu-system 7.2), `depmod -b`, and the ELF
//!   `vmlinux` cut out of `vmlinuz`. Inputs: the candidate versions of those packages and the
//!   module list.
//! - **initramfs** (`initramfs.cpio`): busybox, the DRBD 8.4 tools, tgt, libiscsi's tools,
//!   tcpdump, their shared libraries (and those every Rust binary of ours needs), the modules,
//!   the guest's `init` and agent. Inputs: the bytes of every file put in.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::cpio::CpioWriter;
use crate::dirs::LabDirs;
use crate::error::{LabError, Result};
use crate::host::{self, run, run_text};
use crate::kernel::{self, ModuleIndex, GUEST_MODULES};

/// Bumped when the way the base stage is built changes.
const BASE_FORMAT: &str = "base-v1";
/// Bumped when the layout of the initramfs changes.
const INITRAMFS_FORMAT: &str = "initramfs-v1";

/// qemu 7.2 and what it loads: firmware, the block-iscsi module for `qemu-io iscsi://`.
const QEMU_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-common",
    "qemu-system-data",
    "seabios",
    "ipxe-qemu",
    "qemu-utils",
    "qemu-block-extra",
];

/// The meta package whose dependency names the kernel to boot.
const KERNEL_META: &str = "linux-image-amd64";

/// PID 1 of the guests.
pub(crate) const GUEST_INIT: &str = include_str!("../guest/init");
/// The command agent on the virtio-serial port.
pub(crate) const GUEST_AGENT: &str = include_str!("../guest/agent");

/// Host programs copied into the initramfs: (host path, guest path).
const GUEST_PROGRAMS: &[(&str, &str)] = &[
    ("/lib/drbd/drbdsetup-84", "/sbin/drbdsetup-84"),
    ("/lib/drbd/drbdadm-84", "/sbin/drbdadm-84"),
    ("/usr/sbin/drbdmeta", "/sbin/drbdmeta"),
    ("/usr/sbin/tgtd", "/usr/sbin/tgtd"),
    ("/usr/sbin/tgtadm", "/usr/sbin/tgtadm"),
    ("/usr/bin/iscsi-ls", "/usr/bin/iscsi-ls"),
    ("/usr/bin/iscsi-inq", "/usr/bin/iscsi-inq"),
    (
        "/usr/bin/iscsi-readcapacity16",
        "/usr/bin/iscsi-readcapacity16",
    ),
    ("/usr/bin/tcpdump", "/usr/bin/tcpdump"),
];

/// Libraries `ldd` does not list but the guests need: tgtd's `pthread_cancel` dlopens
/// libgcc_s, and every Rust binary of ours links libgcc_s and libm.
const GUEST_EXTRA_LIBS: &[&str] = &[
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
];

/// Where busybox lives on Debian 12.
const BUSYBOX: &str = "/usr/bin/busybox";

/// Paths of a ready cache.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Image {
    /// The ELF kernel (PVH boot).
    pub vmlinux: PathBuf,
    /// The guests' initramfs.
    pub initramfs: PathBuf,
    /// `qemu-system-x86_64`.
    pub qemu_system: PathBuf,
    /// `qemu-io` 7.2 with the iscsi driver (run it with [`Image::qemu_env`]).
    pub qemu_io: PathBuf,
    /// Directories qemu searches for firmware (`-L`).
    pub firmware_dirs: Vec<PathBuf>,
    /// Directory of qemu's loadable modules (`QEMU_MODULE_DIR`).
    pub qemu_module_dir: PathBuf,
    /// The guest kernel's release, e.g. `6.1.0-56-amd64`.
    pub kernel_release: String,
    /// Hash of the base stage's inputs (part of the accelerator verdict's key).
    pub base_stamp: String,
}

impl Image {
    /// Environment for running the unpacked qemu binaries.
    pub fn qemu_env(&self) -> Vec<(String, String)> {
        vec![(
            "QEMU_MODULE_DIR".into(),
            self.qemu_module_dir.display().to_string(),
        )]
    }
}

/// Makes sure the cache is current, building what is stale; `progress` hears each step.
pub fn ensure(dirs: &LabDirs, progress: &mut dyn FnMut(&str)) -> Result<Image> {
    std::fs::create_dir_all(dirs.root())
        .map_err(|e| LabError::io(format!("creating {}", dirs.root().display()), e))?;
    let base_stamp = ensure_base(dirs, progress)?;
    let base = dirs.base();
    let kern = base.join("kern");
    let release = kernel::kernel_release(&kern)?;
    ensure_initramfs(dirs, &kern, &release, progress)?;
    let qemu = base.join("qemu");
    Ok(Image {
        vmlinux: base.join("vmlinux"),
        initramfs: dirs.initramfs(),
        qemu_system: qemu.join("usr/bin/qemu-system-x86_64"),
        qemu_io: qemu.join("usr/bin/qemu-io"),
        firmware_dirs: vec![
            qemu.join("usr/share/qemu"),
            qemu.join("usr/share/seabios"),
            qemu.join("usr/lib/ipxe/qemu"),
        ],
        qemu_module_dir: qemu.join("usr/lib/x86_64-linux-gnu/qemu"),
        kernel_release: release,
        base_stamp,
    })
}

/// Size in bytes of everything under `path`.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| disk_usage(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_stamp(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

/// `apt-cache policy`'s candidate version of each package.
fn candidate_versions(packages: &[String]) -> Result<BTreeMap<String, String>> {
    host::require_programs(&["apt-cache", "apt-get", "dpkg-deb", "depmod", "ldd"])?;
    let text = run_text(Command::new("apt-cache").arg("policy").args(packages))?;
    let mut versions = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            current = Some(line.trim_end_matches(':').to_owned());
        } else if let (Some(pkg), Some(v)) = (&current, line.trim().strip_prefix("Candidate: ")) {
            if v != "(none)" {
                versions.insert(pkg.clone(), v.to_owned());
            }
        }
    }
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| !versions.contains_key(*p))
        .collect();
    if !missing.is_empty() {
        return Err(LabError::Cache(format!(
            "apt knows no candidate for {missing:?}; run `apt-get update`"
        )));
    }
    Ok(versions)
}

/// The kernel package `linux-image-amd64` depends on.
fn kernel_package() -> Result<String> {
    let text = run_text(Command::new("apt-cache").args(["depends", KERNEL_META]))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| {
            p.strip_prefix("linux-image-")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            LabError::Cache(format!(
                "no kernel package in `apt-cache depends {KERNEL_META}`; run `apt-get update`"
            ))
        })
}

fn ensure_base(dirs: &LabDirs, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let kernel_pkg = kernel_package()?;
    let mut packages: Vec<String> = QEMU_PACKAGES.iter().map(|p| (*p).to_owned()).collect();
    packages.push(kernel_pkg.clone());
    let mut versions = candidate_versions(&packages)?;
    // qemu-utils' candidate can be an installed backport that no source offers (these machines
    // carry qemu-utils 10 from bookworm-backports): take the build qemu-system-x86 comes from,
    // which all of qemu's architecture-specific packages share.
    if let Some(system) = versions.get("qemu-system-x86").cloned() {
        for pkg in ["qemu-utils", "qemu-block-extra"] {
            versions.insert(pkg.to_owned(), system.clone());
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(BASE_FORMAT);
    for (pkg, v) in &versions {
        hasher.update(format!("{pkg}={v}\n"));
    }
    for m in GUEST_MODULES {
        hasher.update(format!("module {m}\n"));
    }
    let stamp = hex(&hasher.finalize());
    let base = dirs.base();
    if read_stamp(&base.join("stamp")).as_deref() == Some(stamp.as_str()) {
        return Ok(stamp);
    }
    progress("building the lab base: downloading qemu 7.2 and the Debian kernel");
    let fresh = dirs.root().join("base.new");
    remove_dir(&fresh)?;
    let debs = fresh.join("debs");
    let qemu = fresh.join("qemu");
    let kern = fresh.join("kern");
    for d in [&debs, &qemu, &kern] {
        std::fs::create_dir_all(d)
            .map_err(|e| LabError::io(format!("creating {}", d.display()), e))?;
    }
    let specs: Vec<String> = versions.iter().map(|(p, v)| format!("{p}={v}")).collect();
    let download = || {
        run(Command::new("apt-get")
            .args(["download", "-q"])
            .args(&specs)
            .current_dir(&debs))
    };
    if let Err(first) = download() {
        // Stale package lists name versions the mirror no longer has: refresh once, retry.
        progress(&format!(
            "apt-get download failed ({first}); refreshing the package lists"
        ));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        download()?;
    }
    progress("unpacking qemu and the kernel");
    let entries = std::fs::read_dir(&debs)
        .map_err(|e| LabError::io(format!("listing {}", debs.display()), e))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dest = if name.starts_with(&format!("{kernel_pkg}_")) {
            &kern
        } else {
            &qemu
        };
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(entry.path())
            .arg(dest))?;
    }
    let release = kernel::kernel_release(&kern)?;
    progress("depmod and vmlinux");
    // The .deb ships no modules.dep (its postinst makes it).
    run(Command::new("depmod").arg("-b").arg(&kern).arg(&release))?;
    let vmlinuz = kern.join(format!("boot/vmlinuz-{release}"));
    let bz = std::fs::read(&vmlinuz)
        .map_err(|e| LabError::io(format!("reading {}", vmlinuz.display()), e))?;
    write_file(&fresh.join("vmlinux"), &kernel::extract_vmlinux(&bz)?)?;
    prune_kernel(&kern, &release)?;
    remove_dir(&debs)?;
    check_qemu_libraries(&qemu)?;
    write_file(&fresh.join("stamp"), stamp.as_bytes())?;
    remove_dir(&base)?;
    std::fs::rename(&fresh, &base)
        .map_err(|e| LabError::io(format!("moving {} into place", fresh.display()), e))?;
    Ok(stamp)
}

/// Keeps only the modules the guests load (and modules.dep): the rest is ~400 MB.
fn prune_kernel(kern: &Path, release: &str) -> Result<()> {
    let mdir = kernel::modules_dir(kern, release);
    let dep = std::fs::read_to_string(mdir.join("modules.dep"))
        .map_err(|e| LabError::io("reading modules.dep", e))?;
    let keep: Vec<PathBuf> = ModuleIndex::parse(&dep)?
        .load_order(GUEST_MODULES)?
        .iter()
        .map(|p| mdir.join(p))
        .collect();
    for file in walk_files(&mdir.join("kernel")) {
        if !keep.contains(&file) {
            std::fs::remove_file(&file)
                .map_err(|e| LabError::io(format!("pruning {}", file.display()), e))?;
        }
    }
    remove_dir(&kern.join("usr"))?;
    Ok(())
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(walk_files(&path)),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::io(format!("removing {}", dir.display()), e)),
    }
}

fn check_qemu_libraries(qemu: &Path) -> Result<()> {
    for bin in [
        "usr/bin/qemu-system-x86_64",
        "usr/bin/qemu-io",
        "usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so",
        "usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so",
    ] {
        let out = run_text(Command::new("ldd").arg(qemu.join(bin)))?;
        let missing: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("not found"))
            .map(str::trim)
            .collect();
        if !missing.is_empty() {
            return Err(LabError::Prerequisite(format!(
                "the unpacked {bin} lacks libraries {missing:?}: run scripts/install-packages \
                 (scripts/packages.d/lab.txt lists qemu's runtime libraries)"
            )));
        }
    }
    Ok(())
}

/// The shared libraries `ldd` lists for `binary` (absolute paths).
pub(crate) fn shared_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = run_text(Command::new("ldd").arg(binary))?;
    Ok(parse_ldd(&out))
}

fn parse_ldd(text: &str) -> Vec<String> {
    let mut libs: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().find(|t| t.starts_with('/')))
        .map(str::to_owned)
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// One file of the initramfs.
#[derive(Debug)]
enum Content {
    Host(PathBuf),
    Bytes(Vec<u8>),
    Symlink(String),
}

/// The initramfs's files by guest path (without the leading slash), with permission bits.
#[derive(Debug, Default)]
struct Tree {
    files: BTreeMap<String, (u32, Content)>,
}

impl Tree {
    fn host(&mut self, guest: &str, host: &Path, perm: u32) {
        self.files.insert(
            guest.trim_start_matches('/').to_owned(),
            (perm, Content::Host(host.to_owned())),
        );
    }
    fn bytes(&mut self, guest: &str, perm: u32, bytes: impl Into<Vec<u8>>) {
        self.files.insert(
            guest.trim_start_matches('/').to_owned(),
            (perm, Content::Bytes(bytes.into())),
        );
    }
    fn symlink(&mut self, guest: &str, target: &str) {
        self.files
            .entry(guest.trim_start_matches('/').to_owned())
            .or_insert((0o777, Content::Symlink(target.to_owned())));
    }
    /// A program and its libraries (libraries keep their host path).
    fn program(&mut self, host: &str, guest: &str) -> Result<()> {
        let path = Path::new(host);
        if !path.exists() {
            return Err(LabError::Prerequisite(format!(
                "{host} is missing (run scripts/install-packages)"
            )));
        }
        self.host(guest, path, 0o755);
        for lib in shared_libraries(path)? {
            self.library(&lib);
        }
        Ok(())
    }
    fn library(&mut self, lib: &str) {
        let resolved = std::fs::canonicalize(lib).unwrap_or_else(|_| PathBuf::from(lib));
        self.host(lib, &resolved, 0o755);
    }
}

fn gather(kern: &Path, release: &str) -> Result<Tree> {
    let mut tree = Tree::default();
    if !Path::new(BUSYBOX).exists() {
        return Err(LabError::Prerequisite(format!(
            "{BUSYBOX} is missing: install busybox-static (scripts/install-packages)"
        )));
    }
    tree.host("/bin/busybox", Path::new(BUSYBOX), 0o755);
    let applets = run_text(Command::new(BUSYBOX).arg("--list-full"))?;
    for applet in applets.lines().filter(|a| !a.is_empty()) {
        tree.symlink(applet, "/bin/busybox");
    }
    for (host, guest) in GUEST_PROGRAMS {
        tree.program(host, guest)?;
    }
    for lib in GUEST_EXTRA_LIBS {
        tree.library(lib);
    }
    // drbdadm-84 runs "drbdsetup-84" and "drbdmeta"; admins type the unsuffixed names.
    tree.symlink("/sbin/drbdadm", "drbdadm-84");
    tree.symlink("/sbin/drbdsetup", "drbdsetup-84");
    let mdir = kernel::modules_dir(kern, release);
    let dep = std::fs::read_to_string(mdir.join("modules.dep"))
        .map_err(|e| LabError::io("reading modules.dep", e))?;
    let mut order = String::new();
    for rel in ModuleIndex::parse(&dep)?.load_order(GUEST_MODULES)? {
        let file = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
        tree.host(&format!("/lib/modules/{file}"), &mdir.join(&rel), 0o644);
        order.push_str(&file);
        order.push('\n');
    }
    tree.bytes("/lib/modules/load-order", 0o644, order);
    tree.bytes("/init", 0o755, GUEST_INIT);
    tree.bytes("/sbin/lab-agent", 0o755, GUEST_AGENT);
    tree.bytes("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n");
    tree.bytes("/etc/group", 0o644, "root:x:0:\n");
    tree.bytes(
        "/etc/hosts",
        0o644,
        "127.0.0.1 localhost\n10.99.0.1 node1\n10.99.0.2 node2\n",
    );
    Ok(tree)
}

fn ensure_initramfs(
    dirs: &LabDirs,
    kern: &Path,
    release: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let tree = gather(kern, release)?;
    let mut hasher = Sha256::new();
    hasher.update(INITRAMFS_FORMAT);
    for (path, (perm, content)) in &tree.files {
        hasher.update(format!("{path} {perm:o}\n"));
        match content {
            Content::Host(p) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| LabError::io(format!("reading {}", p.display()), e))?;
                hasher.update(&bytes);
            }
            Content::Bytes(b) => hasher.update(b),
            Content::Symlink(t) => hasher.update(t),
        }
    }
    let stamp = hex(&hasher.finalize());
    let stamp_file = dirs.root().join("initramfs.stamp");
    let target = dirs.initramfs();
    if target.exists() && read_stamp(&stamp_file).as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }
    progress("building the guests' initramfs");
    let tmp = target.with_extension("cpio.tmp");
    let file = std::fs::File::create(&tmp)
        .map_err(|e| LabError::io(format!("creating {}", tmp.display()), e))?;
    let mut w = CpioWriter::new(std::io::BufWriter::new(file));
    write_tree(&mut w, &tree).map_err(|e| LabError::io("writing the initramfs", e))?;
    let mut sink = w
        .finish()
        .map_err(|e| LabError::io("writing the initramfs", e))?;
    sink.flush()
        .map_err(|e| LabError::io("writing the initramfs", e))?;
    drop(sink);
    std::fs::rename(&tmp, &target)
        .map_err(|e| LabError::io(format!("moving {} into place", tmp.display()), e))?;
    write_file(&stamp_file, stamp.as_bytes())
}

fn write_tree<W: Write>(w: &mut CpioWriter<W>, tree: &Tree) -> std::io::Result<()> {
    let mut dirs: Vec<String> = [
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "host",
        "etc",
        "var",
        "var/lib",
        "var/run",
        "var/lib/drbd",
        "usr",
        "lib64",
    ]
    .iter()
    .map(|d| (*d).to_owned())
    .collect();
    for path in tree.files.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        w.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    for (path, (perm, content)) in &tree.files {
        match content {
            Content::Host(p) => w.file(path, *perm, &std::fs::read(p)?)?,
            Content::Bytes(b) => w.file(path, *perm, b)?,
            Content::Symlink(t) => w.symlink(path, t)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_yields_absolute_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }
}
