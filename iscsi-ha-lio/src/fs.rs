//! The configfs operations the adapter uses, relative to the target root.
//!
//! Each change is tolerant of being already done (mkdir of an existing directory, rmdir or
//! unlink of a missing one), so a convergence interrupted half-way can simply be run again.
//! Reads are bounded: a configfs attribute is at most a page, anything longer is refused.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::LioError;

/// The longest attribute we read; configfs shows at most one page.
pub const MAX_ATTRIBUTE_BYTES: u64 = 16 * 1024;
/// The most entries we list in one directory (ACLs, LUNs, storage objects).
pub const MAX_ENTRIES: usize = 65_536;

/// The target root (`/sys/kernel/config/target`, or a test directory) and what we do in it.
#[derive(Debug)]
pub struct Configfs {
    root: PathBuf,
    /// Changes allowed before an injected failure; `None` never fails on purpose.
    budget: Cell<Option<u32>>,
}

/// The kind of a directory entry that matters in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A configfs group (a directory).
    Dir(String),
    /// A symbolic link (a LUN's storage object, a mapped LUN's TPG LUN).
    Link(String),
    /// An attribute (a regular file).
    Attribute(String),
}

impl Entry {
    /// The entry's name, whatever its kind.
    pub fn name(&self) -> &str {
        match self {
            Entry::Dir(n) | Entry::Link(n) | Entry::Attribute(n) => n,
        }
    }
}

impl Configfs {
    /// The tree rooted at `root` (the directory holding `core/` and the fabrics' directories).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            budget: Cell::new(None),
        }
    }

    /// Makes the change after the next `changes` ones fail with [`LioError::Injected`]
    /// (and every later one, until this is called again with `None`): how the lab proves
    /// that an interrupted build or teardown is finished by the next run.
    pub fn fail_after(&self, changes: Option<u32>) {
        self.budget.set(changes);
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether `rel` exists (a link counts even when its target is gone).
    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    fn spend(&self, what: &str) -> Result<(), LioError> {
        match self.budget.get() {
            Some(0) => Err(LioError::Injected(what.to_string())),
            Some(n) => {
                self.budget.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Reads an attribute, trailing newline and NULs removed.
    pub fn read(&self, rel: &str) -> Result<String, LioError> {
        let path = self.path(rel);
        let file = File::open(&path).map_err(|e| LioError::io("read", path.clone(), e))?;
        let mut bytes = Vec::new();
        file.take(MAX_ATTRIBUTE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| LioError::io("read", path.clone(), e))?;
        if bytes.len() as u64 > MAX_ATTRIBUTE_BYTES {
            return Err(LioError::Malformed {
                path,
                reason: format!("longer than {MAX_ATTRIBUTE_BYTES} bytes"),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| LioError::Malformed {
            path,
            reason: "not UTF-8".into(),
        })?;
        Ok(text.trim_end_matches(['\n', '\0']).to_string())
    }

    /// Writes an attribute in one `write(2)`: configfs parses each write on its own.
    pub fn write(&self, rel: &str, value: &str) -> Result<(), LioError> {
        let path = self.path(rel);
        self.spend(&format!("writing {}", path.display()))?;
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| LioError::io("open", path.clone(), e))?;
        let n = file
            .write(value.as_bytes())
            .map_err(|e| LioError::io("write", path.clone(), e))?;
        if n != value.len() {
            return Err(LioError::io(
                "write",
                path,
                std::io::Error::new(
                    ErrorKind::WriteZero,
                    format!("{n} of {} bytes", value.len()),
                ),
            ));
        }
        Ok(())
    }

    /// Writes an attribute unless it already reads `value` (a write can disturb: enabling an
    /// enabled TPG is refused, and some attributes are refused while exported).
    pub fn ensure(&self, rel: &str, value: &str) -> Result<(), LioError> {
        if self.read(rel)? == value {
            return Ok(());
        }
        self.write(rel, value)
    }

    /// Creates a group; an existing one is fine.
    pub fn mkdir(&self, rel: &str) -> Result<(), LioError> {
        if self.exists(rel) {
            return Ok(());
        }
        let path = self.path(rel);
        self.spend(&format!("creating {}", path.display()))?;
        match fs::create_dir(&path) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(LioError::io("mkdir", path, e)),
            _ => Ok(()),
        }
    }

    /// Removes a group; a missing one is fine.
    pub fn rmdir(&self, rel: &str) -> Result<(), LioError> {
        if !self.exists(rel) {
            return Ok(());
        }
        let path = self.path(rel);
        self.spend(&format!("removing {}", path.display()))?;
        match fs::remove_dir(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(LioError::io("rmdir", path, e)),
            _ => Ok(()),
        }
    }

    /// Links `link` (relative) to `target` (relative, made absolute); an existing link is fine.
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), LioError> {
        if self.exists(link) {
            return Ok(());
        }
        let path = self.path(link);
        self.spend(&format!("linking {}", path.display()))?;
        match std::os::unix::fs::symlink(self.path(target), &path) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(LioError::io("symlink", path, e)),
            _ => Ok(()),
        }
    }

    /// Removes a link; a missing one is fine.
    pub fn unlink(&self, rel: &str) -> Result<(), LioError> {
        if !self.exists(rel) {
            return Ok(());
        }
        let path = self.path(rel);
        self.spend(&format!("unlinking {}", path.display()))?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(LioError::io("unlink", path, e)),
            _ => Ok(()),
        }
    }

    /// Where a link points, as the kernel shows it.
    pub fn read_link(&self, rel: &str) -> Result<PathBuf, LioError> {
        let path = self.path(rel);
        fs::read_link(&path).map_err(|e| LioError::io("readlink", path, e))
    }

    /// The entries of a group, sorted by name; a missing group has none.
    pub fn list(&self, rel: &str) -> Result<Vec<Entry>, LioError> {
        let path = self.path(rel);
        let dir = match fs::read_dir(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LioError::io("list", path, e)),
        };
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| LioError::io("list", path.clone(), e))?;
            if out.len() >= MAX_ENTRIES {
                return Err(LioError::Malformed {
                    path,
                    reason: format!("more than {MAX_ENTRIES} entries"),
                });
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry
                .file_type()
                .map_err(|e| LioError::io("list", path.clone(), e))?;
            out.push(if kind.is_symlink() {
                Entry::Link(name)
            } else if kind.is_dir() {
                Entry::Dir(name)
            } else {
                Entry::Attribute(name)
            });
        }
        out.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(out)
    }

    /// The names of the sub-groups of `rel`.
    pub fn dirs(&self, rel: &str) -> Result<Vec<String>, LioError> {
        Ok(self
            .list(rel)?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Dir(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    /// The names of the links in `rel`.
    pub fn links(&self, rel: &str) -> Result<Vec<String>, LioError> {
        Ok(self
            .list(rel)?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Link(n) => Some(n),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_idempotent_and_the_budget_stops_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfs = Configfs::new(dir.path());
        cfs.mkdir("a").unwrap_or_else(|e| panic!("{e}"));
        cfs.mkdir("a").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("a/enable"), "0\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfs.read("a/enable").ok().as_deref(), Some("0"));
        cfs.symlink("a", "link").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfs.links("").ok(), Some(vec!["link".to_string()]));
        assert_eq!(cfs.dirs("").ok(), Some(vec!["a".to_string()]));
        cfs.fail_after(Some(1));
        cfs.unlink("link").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cfs.rmdir("a"), Err(LioError::Injected(_))));
        // Nothing left to do costs nothing, even with the budget spent.
        cfs.unlink("link").unwrap_or_else(|e| panic!("{e}"));
        cfs.fail_after(None);
        std::fs::remove_file(dir.path().join("a/enable")).unwrap_or_else(|e| panic!("{e}"));
        cfs.rmdir("a").unwrap_or_else(|e| panic!("{e}"));
        cfs.rmdir("a").unwrap_or_else(|e| panic!("{e}"));
        assert!(cfs.list("").map(|l| l.is_empty()).unwrap_or(false));
    }

    #[test]
    fn an_over_long_attribute_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let long = "x".repeat(usize::try_from(MAX_ATTRIBUTE_BYTES).unwrap_or(0) + 1);
        std::fs::write(dir.path().join("big"), long).unwrap_or_else(|e| panic!("{e}"));
        let cfs = Configfs::new(dir.path());
        assert!(matches!(cfs.read("big"), Err(LioError::Malformed { .. })));
        assert!(matches!(cfs.read("missing"), Err(LioError::Io { .. })));
    }
}
