//! One `xe` call: a [`ChildRun`] whose exit status is checked, so callers get either what `xe`
//! printed on success or why there is nothing.

use crate::role::{ChildRun, RunError};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// The `xe` program and how long each call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xe {
    program: String,
    timeout: Duration,
}

/// Why an `xe` call gave no usable output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XeError {
    /// It could not be started, was killed at its timeout, or could not be waited for.
    #[error("{command}: {run}")]
    Run {
        /// The command line.
        command: String,
        /// What went wrong.
        run: RunError,
    },
    /// It exited with an error.
    #[error("{command} exited {}{}", code.map_or("by a signal".to_string(), |c| c.to_string()), reason.as_ref().map_or(String::new(), |r| format!(": {r}")))]
    Failed {
        /// The command line.
        command: String,
        /// Its exit code.
        code: Option<i32>,
        /// XAPI's reason: the first line `xe` wrote to its standard error.
        reason: Option<String>,
    },
}

impl Xe {
    /// `program` (a path, or a name looked up in PATH), each call killed after `timeout`.
    pub fn new(program: &str, timeout: Duration) -> Self {
        Self {
            program: program.to_string(),
            timeout,
        }
    }

    /// How long each call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts `xe args...` without waiting for it.
    pub fn start(&self, args: &[String]) -> Result<XeCall, XeError> {
        let command = format!("{} {}", self.program, args.join(" "));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match ChildRun::spawn(&self.program, &argv, self.timeout) {
            Ok(run) => Ok(XeCall { command, run }),
            Err(run) => Err(XeError::Run { command, run }),
        }
    }

    /// Runs `xe args...` and waits for it, at most the timeout (one-shot commands only).
    pub fn run(&self, args: &[String]) -> Result<String, XeError> {
        let mut call = self.start(args)?;
        loop {
            if let Some(result) = call.advance() {
                return result;
            }
            call.run.block_until_due();
        }
    }
}

/// An `xe` call under way.
#[derive(Debug)]
pub struct XeCall {
    command: String,
    run: ChildRun,
}

impl XeCall {
    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The descriptor to poll while `xe` writes.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.run.fd()
    }

    /// When [`XeCall::advance`] must be called even if nothing is readable.
    pub fn due(&self) -> Instant {
        self.run.due()
    }

    /// Reads without blocking; once `xe` has exited (or was killed), its standard output when
    /// it exited 0, else why not.
    pub fn advance(&mut self) -> Option<Result<String, XeError>> {
        let result = self.run.advance()?;
        Some(match result {
            Ok(out) if out.success => Ok(out.stdout),
            Ok(out) => Err(XeError::Failed {
                command: self.command.clone(),
                code: out.code,
                reason: out.reason().map(str::to_string),
            }),
            Err(run) => Err(XeError::Run {
                command: self.command.clone(),
                run,
            }),
        })
    }

    /// Blocks until there may be progress (one-shot callers only).
    pub fn block_until_due(&self) {
        self.run.block_until_due();
    }
}
