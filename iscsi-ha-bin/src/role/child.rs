//! A program run without waiting for it: the daemon polls its standard output next to its other
//! descriptors and reads the answer when it is complete, so a program that hangs costs the loop
//! nothing until its timeout, when its whole process group is killed.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The most of a program's standard output that is kept.
const OUTPUT_CAP: usize = 64 * 1024;

/// The most of a program's standard error that is kept: enough for the reason it gives.
const ERROR_CAP: u64 = 4096;

/// After end of file, how soon to look again for an exit that has not happened yet (a program
/// that closed its output and lingers), doubling up to [`LINGER_RECHECK_MAX`].
const LINGER_RECHECK: Duration = Duration::from_millis(5);
const LINGER_RECHECK_MAX: Duration = Duration::from_millis(500);

/// What a bounded run of a program gave.
#[derive(Debug)]
pub struct CommandOutput {
    /// Exited 0.
    pub success: bool,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Standard output (first 64 KiB).
    pub stdout: String,
    /// Standard error (first 4 KiB), e.g. the reason `xe` gives for failing.
    pub stderr: String,
}

impl CommandOutput {
    /// The first non-empty line of standard error, for a one-line message.
    pub fn reason(&self) -> Option<&str> {
        self.stderr.lines().map(str::trim).find(|l| !l.is_empty())
    }
}

/// Why a run gave no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("cannot start {program}: {reason}")]
    Start {
        /// The program.
        program: String,
        /// The spawn error.
        reason: String,
    },
    /// The program was killed at its timeout.
    #[error("{program} did not answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The program.
        program: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// Waiting for it failed.
    #[error("waiting for {program}: {reason}")]
    Wait {
        /// The program.
        program: String,
        /// The wait error.
        reason: String,
    },
}

/// A running program. Dropping it kills the program's process group.
#[derive(Debug)]
pub struct ChildRun {
    program: String,
    child: Option<Child>,
    stdout: Option<ChildStdout>,
    /// Standard error goes to an anonymous memory file, read once the program has exited: a
    /// program that writes much there never blocks on a pipe nobody reads.
    stderr: File,
    out: Vec<u8>,
    timeout: Duration,
    deadline: Instant,
    recheck: Option<(Instant, Duration)>,
}

impl ChildRun {
    /// Starts `program` with `args` in a process group of its own (so a timeout kills what it
    /// started too), standard input from /dev/null, its output on a non-blocking pipe, its
    /// standard error into memory.
    pub fn spawn(program: &str, args: &[&str], timeout: Duration) -> Result<Self, RunError> {
        let start_error = |reason: String| RunError::Start {
            program: program.to_string(),
            reason,
        };
        let stderr = anonymous_file()
            .map_err(|e| start_error(format!("memory file for standard error: {e}")))?;
        let child_stderr = stderr
            .try_clone()
            .map_err(|e| start_error(format!("memfd for standard error: {e}")))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(child_stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| start_error(e.to_string()))?;
        let stdout = child.stdout.take();
        let run = Self {
            program: program.to_string(),
            child: Some(child),
            stdout,
            stderr,
            out: Vec::new(),
            timeout,
            deadline: Instant::now() + timeout,
            recheck: None,
        };
        if let Some(out) = &run.stdout {
            let flags = fcntl(out.as_raw_fd(), FcntlArg::F_GETFL)
                .map_err(|e| start_error(format!("pipe flags: {e}")))?;
            let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
            fcntl(out.as_raw_fd(), FcntlArg::F_SETFL(flags))
                .map_err(|e| start_error(format!("pipe flags: {e}")))?;
        }
        Ok(run)
    }

    /// The descriptor to poll: the output pipe until end of file, then none (the loop comes
    /// back at [`ChildRun::due`]).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdout.as_ref().map(AsFd::as_fd)
    }

    /// When the loop must call [`ChildRun::advance`] even if nothing is readable: the timeout,
    /// or sooner to see the exit of a program whose output has ended.
    pub fn due(&self) -> Instant {
        self.recheck
            .map_or(self.deadline, |(at, _)| at.min(self.deadline))
    }

    /// Reads what is there without blocking; the result once the program has exited (or was
    /// killed at its timeout), `None` while it runs.
    pub fn advance(&mut self) -> Option<Result<CommandOutput, RunError>> {
        self.read_available();
        let child = self.child.as_mut()?;
        if self.stdout.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    let stdout = String::from_utf8_lossy(&self.out).into_owned();
                    return Some(Ok(CommandOutput {
                        success: status.success(),
                        code: status.code(),
                        stdout,
                        stderr: self.read_stderr(),
                    }));
                }
                Ok(None) => {
                    let next = self.recheck.map_or(LINGER_RECHECK, |(_, d)| {
                        d.saturating_mul(2).min(LINGER_RECHECK_MAX)
                    });
                    self.recheck = Some((Instant::now() + next, next));
                }
                Err(e) => {
                    self.kill();
                    return Some(Err(RunError::Wait {
                        program: self.program.clone(),
                        reason: e.to_string(),
                    }));
                }
            }
        }
        if Instant::now() >= self.deadline {
            self.kill();
            return Some(Err(RunError::Timeout {
                program: self.program.clone(),
                timeout: self.timeout,
            }));
        }
        None
    }

    /// Waits for the result, blocking at most until the timeout (for one-shot commands such as
    /// `iscsi-ha fence-peer`, never in the daemon's loop).
    pub fn wait(mut self) -> Result<CommandOutput, RunError> {
        loop {
            if let Some(result) = self.advance() {
                return result;
            }
            self.block_until_due();
        }
    }

    /// Blocks until the output is readable or [`ChildRun::due`] (one-shot callers only).
    pub fn block_until_due(&self) {
        let left = self.due().saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        match self.fd() {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(left),
        }
    }

    fn read_available(&mut self) {
        let Some(pipe) = self.stdout.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.stdout = None;
                    return;
                }
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.out.len());
                    self.out.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.stdout = None;
                    return;
                }
            }
        }
    }

    /// The start of what the program wrote to standard error (it has exited: nothing is
    /// writing any more).
    fn read_stderr(&mut self) -> String {
        let mut bytes = Vec::new();
        let _ = self.stderr.seek(SeekFrom::Start(0));
        let _ = (&mut self.stderr).take(ERROR_CAP).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Kills the program's process group and reaps the program (SIGKILL: it cannot linger).
    fn kill(&mut self) {
        self.stdout = None;
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A file in memory with no name (`memfd_create`, Linux 3.17). The system call is made
/// directly: glibc has a wrapper only since 2.27, and the binaries run on glibc 2.17.
fn anonymous_file() -> std::io::Result<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new descriptor
    // or -1; the name outlives the call and the result is checked before it is owned.
    let fd = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_memfd_create,
            c"child-stderr".as_ptr(),
            nix::libc::MFD_CLOEXEC,
        )
    };
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(nix::libc::EINVAL))?;
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
}

/// Runs a program and waits for it, killing it (and what it started) at `timeout`.
pub fn run_with_timeout(
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<CommandOutput, RunError> {
    ChildRun::spawn(program, args, timeout)?.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program that writes far more to standard error than a pipe holds never blocks on it
    /// (it goes to memory), and only the start of it is kept.
    #[test]
    fn standard_error_is_kept_bounded_and_never_blocks_the_program() {
        let out = run_with_timeout(
            "sh",
            &[
                "-c",
                "echo 'first reason' >&2; head -c 1048576 /dev/zero | tr '\\0' x >&2; echo done; exit 3",
            ],
            Duration::from_secs(20),
        )
        .expect("the program finishes without a reader of its standard error");
        assert_eq!((out.success, out.code), (false, Some(3)));
        assert_eq!(out.stdout, "done\n");
        assert_eq!(out.reason(), Some("first reason"));
        assert_eq!(out.stderr.len(), usize::try_from(ERROR_CAP).unwrap_or(0));
    }
}
