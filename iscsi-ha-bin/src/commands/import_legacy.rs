//! `iscsi-ha import-legacy FILE [-o OUT]`: convert the original add-on's `iscsi-ha.conf`.

use crate::small_file::{self, CONFIG_FILE_CAP};
use anyhow::{bail, Context, Result};
use clap::Args;
use iscsi_ha_core::config::legacy::import;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Arguments of `import-legacy`.
#[derive(Debug, Args)]
pub struct ImportLegacyArgs {
    /// The original `/etc/iscsi-ha/iscsi-ha.conf`.
    pub file: PathBuf,
    /// The tgt `targets.conf` holding the exported target (usually `/etc/tgt/targets.conf`).
    #[arg(long)]
    pub targets_conf: Option<PathBuf>,
    /// Write the TOML here (mode 0600) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Converts the file; the TOML goes to OUTPUT or stdout, the notes to stderr.
pub fn run(args: &ImportLegacyArgs) -> Result<()> {
    let conf = small_file::read(&args.file, CONFIG_FILE_CAP)?;
    let targets = match &args.targets_conf {
        Some(p) => Some(small_file::read(p, CONFIG_FILE_CAP)?),
        None => None,
    };
    let result = import(&conf, targets.as_deref());
    match &args.output {
        None => print!("{}", result.toml),
        Some(out) => {
            if out.exists() && !args.force {
                bail!(
                    "{} exists; not overwriting it without --force",
                    out.display()
                );
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            f.write_all(result.toml.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
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
            match n.line {
                Some(l) => eprintln!("  {}:{l}: {}: {}", args.file.display(), n.key, n.note),
                None => eprintln!("  {}: {}", n.key, n.note),
            }
        }
    }
    eprintln!("check the result with: iscsi-ha check-config <file>");
    Ok(())
}
