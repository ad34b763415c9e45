//! The `command` role source: a program that prints `master` or `slave`, or exits 0 (master)
//! or 1 (slave), within a timeout.

use super::{parse_role_word, RoleSource};
use iscsi_ha_core::ports::{PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Asks a configured program for the role.
#[derive(Debug, Clone)]
pub struct CommandRole {
    argv: Vec<String>,
    timeout: Duration,
}

impl CommandRole {
    /// Runs `argv` (program first) with `timeout`.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Self {
        Self { argv, timeout }
    }
}

/// What a bounded run of a program gave.
#[derive(Debug)]
pub struct CommandOutput {
    /// Exited 0.
    pub success: bool,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Standard output (first 64 KiB).
    pub stdout: String,
}

/// Runs a program, killing it if it has not finished within `timeout`.
pub fn run_with_timeout(
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<CommandOutput, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not answer within {}",
                    humantime::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let mut stdout = String::new();
    if let Some(out) = child.stdout.as_mut() {
        let _ = out.take(64 * 1024).read_to_string(&mut stdout);
    }
    Ok(CommandOutput {
        success: status.success(),
        code: status.code(),
        stdout,
    })
}

impl PoolRole for CommandRole {
    fn role(&mut self) -> Result<Role, RoleError> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(RoleError::Unreadable("no command configured".into()));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match run_with_timeout(program, &args, self.timeout) {
            Ok(out) => out,
            Err(e) if e.contains("did not answer") => {
                return Err(RoleError::Timeout(
                    u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                ))
            }
            Err(e) => return Err(RoleError::Unreadable(e)),
        };
        if let Some(role) = out
            .stdout
            .split_whitespace()
            .next()
            .and_then(parse_role_word)
        {
            return Ok(role);
        }
        match out.code {
            Some(0) => Ok(Role::Master),
            Some(1) => Ok(Role::Slave),
            other => Err(RoleError::Malformed(format!(
                "{program} printed {:?} and exited {}",
                out.stdout.trim(),
                other.map_or("by a signal".to_string(), |c| c.to_string())
            ))),
        }
    }
}

impl RoleSource for CommandRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn drain_changes(&mut self) {}
}
