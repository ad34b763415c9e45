//! Host-side helpers: running the host tools the lab is built from, and checking prerequisites.
//!
//! The lab is test scaffolding, not product code: it drives `apt-get`, `dpkg-deb`, `depmod`,
//! `ldd` and `ip` as an administrator would, because that is what those tools are for.

use std::path::Path;
use std::process::{Command, Output};

use crate::error::{LabError, Result};

/// Renders a command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs a host command to completion; a non-zero exit is a [`LabError::HostCommand`].
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::Prerequisite(format!(
                "`{}` is not installed (scripts/install-packages installs the lab's packages)",
                cmd.get_program().to_string_lossy()
            ))
        } else {
            LabError::io(format!("running `{line}`"), e)
        }
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::HostCommand {
            command: line,
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 2000),
        })
    }
}

/// Runs a host command and returns its standard output as text.
pub(crate) fn run_text(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `max` bytes of `text` (on a character boundary).
pub(crate) fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Fails unless the process runs as root and the devices the topology needs exist.
pub fn check_privileges() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(LabError::Prerequisite(
            "/dev/net/tun is missing: the VMs' tap devices need the tun driver".into(),
        ));
    }
    Ok(())
}

/// Fails with a clear message when one of `programs` is not on `PATH`.
pub(crate) fn require_programs(programs: &[&str]) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            if p.starts_with('/') {
                return !Path::new(p).exists();
            }
            !std::env::split_paths(&path).any(|dir| dir.join(p).is_file())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Prerequisite(format!(
            "missing host programs: {} (run scripts/install-packages; the list is \
             scripts/packages.d/lab.txt)",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
    }

    #[test]
    fn failing_command_reports_its_line_and_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn missing_program_is_a_prerequisite_error() {
        let err = run(&mut Command::new("iha-lab-no-such-tool")).unwrap_err();
        assert!(matches!(err, LabError::Prerequisite(_)), "{err}");
        assert!(require_programs(&["sh"]).is_ok());
        assert!(require_programs(&["iha-lab-no-such-tool"]).is_err());
    }
}
