//! `iscsi-ha log [-f]`: the daemon's log, from the journal when there is one, else syslog.

use anyhow::{Context, Result};
use clap::Args;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Arguments of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
}

const SYSLOG_FILES: [&str; 3] = ["/var/log/syslog", "/var/log/messages", "/var/log/user.log"];

/// Shows the log.
pub fn run(args: &LogArgs) -> Result<()> {
    if Path::new("/run/systemd/journal").exists() {
        let mut cmd = Command::new("journalctl");
        cmd.args(["--no-pager", "-t", "iscsi-ha", "-u", "iscsi-ha.service"]);
        if args.follow {
            cmd.arg("-f");
        }
        let status = cmd.status().context("cannot run journalctl")?;
        anyhow::ensure!(status.success(), "journalctl failed: {status}");
        return Ok(());
    }
    let file = SYSLOG_FILES
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no journal and no syslog file (/var/log/syslog, /var/log/messages)")?;
    follow_syslog(Path::new(file), args.follow)
}

fn follow_syslog(path: &Path, follow: bool) -> Result<()> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::new(f.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            if !follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
            let pos = f.stream_position()?;
            f.seek(SeekFrom::Start(pos))?;
            continue;
        }
        if line.contains("iscsi-ha") {
            print!("{line}");
        }
    }
}
