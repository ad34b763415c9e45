//! `iscsi-ha import-legacy FILE [-o OUT]`: convert the original add-on's `iscsi-ha.conf`.

use crate::small_file::{self, CONFIG_FILE_CAP};
use anyhow::{bail, Context, Result};
use clap::Args;
use iscsi_ha_core::config::legacy::{import, LegacyFile};
use iscsi_ha_tgt::targets_conf;
use std::fs;
use std::path::{Path, PathBuf};

/// Arguments of `import-legacy`.
#[derive(Debug, Args)]
pub struct ImportLegacyArgs {
    /// The original `/etc/iscsi-ha/iscsi-ha.conf`.
    pub file: PathBuf,
    /// The tgt `targets.conf` holding the exported target (usually `/etc/tgt/targets.conf`).
    #[arg(long)]
    pub targets_conf: Option<PathBuf>,
    /// The target to import when targets.conf defines several (its name exactly as written):
    /// iscsi-ha exports one, so the others are listed as not imported.
    #[arg(long, value_name = "NAME", requires = "targets_conf")]
    pub target: Option<String>,
    /// Write the TOML here (mode 0600) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Converts the file; the TOML goes to OUTPUT or stdout, the notes to stderr, each naming the
/// file and line it is about. A targets.conf whose target cannot be carried over whole (several
/// targets and no --target, a name tgtd refuses) stops it before anything is written.
pub fn run(args: &ImportLegacyArgs) -> Result<()> {
    let conf = small_file::read(&args.file, CONFIG_FILE_CAP)?;
    let targets = match &args.targets_conf {
        Some(p) => Some(small_file::read(p, CONFIG_FILE_CAP)?),
        None => None,
    };
    let targets_path = args
        .targets_conf
        .as_deref()
        .unwrap_or(Path::new("targets.conf"));
    let target = targets
        .as_deref()
        .map(|text| targets_conf::read(text, args.target.as_deref()))
        .transpose()
        .map_err(|e| {
            // The refusal names targets.conf; name the file as given.
            let text = e.to_string();
            let text = text
                .strip_prefix("targets.conf")
                .map_or(text.clone(), |rest| {
                    format!("{}{rest}", targets_path.display())
                });
            anyhow::anyhow!("{text}\nnothing was written")
        })?;
    let result = import(&conf, target);
    match &args.output {
        None => print!("{}", result.toml),
        Some(out) => {
            write_private(out, result.toml.as_bytes(), args.force)?;
            eprintln!("wrote {} (mode 0600)", out.display());
        }
    }
    if result.notes.is_empty() {
        eprintln!("everything was carried over");
    } else {
        eprintln!(
            "notes ({}): what had no equivalent or was changed",
            result.notes.len()
        );
        for n in &result.notes {
            let file = match n.file {
                LegacyFile::IscsiHaConf => args.file.display(),
                LegacyFile::TargetsConf => targets_path.display(),
            };
            match n.line {
                Some(l) => eprintln!("  {file}:{l}: {}: {}", n.key, n.note),
                None => eprintln!("  {file}: {}: {}", n.key, n.note),
            }
        }
    }
    eprintln!("check the result with: iscsi-ha check-config <file>");
    Ok(())
}

/// Writes `bytes` to `out` as a new file of mode 0600, whatever was there: a temporary file
/// created exclusively (never through a symlink) in the same directory, synced, renamed over
/// `out`. A symlink at `out` is refused rather than followed or replaced, and so is anything
/// but a regular file; an existing file is replaced only with `force`.
fn write_private(out: &Path, bytes: &[u8], force: bool) -> Result<()> {
    match fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => bail!(
            "{} is a symbolic link; not writing through it: remove it or choose another -o",
            out.display()
        ),
        Ok(meta) if !meta.is_file() => bail!(
            "{} exists and is not a regular file; choose another -o",
            out.display()
        ),
        Ok(_) if !force => bail!(
            "{} exists; not overwriting it without --force",
            out.display()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", out.display())),
    }
    crate::state_file::write_atomically(out, bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}
