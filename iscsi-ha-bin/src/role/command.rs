//! The `command` role source: a program that prints `master` or `slave` and exits 0, within a
//! timeout. Only those words count: a script that crashes (a non-zero exit) or prints nothing
//! must not demote a master or promote a slave, so anything else makes the role unknown. The daemon runs it off its loop (see [`RoleSource`]): one
//! run at a time, its output polled, its last answer kept while the next is awaited.

use super::child::{ChildRun, CommandOutput, RunError};
use super::kept::KeptAnswer;
use super::{parse_role_word, RoleSource};
use iscsi_ha_core::ports::{Cause, PoolRole, RoleError};
use iscsi_ha_core::role::Role;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Asks a configured program for the role.
#[derive(Debug)]
pub struct CommandRole {
    argv: Vec<String>,
    timeout: Duration,
    run: Option<ChildRun>,
    kept: KeptAnswer,
}

impl CommandRole {
    /// Runs `argv` (program first) with `timeout`.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Self {
        let what = format!(
            "the role command {}",
            argv.first().map_or("(none)", String::as_str)
        );
        Self {
            argv,
            timeout,
            run: None,
            kept: KeptAnswer::new(what, timeout),
        }
    }

    fn spawn(&self) -> Result<ChildRun, RoleError> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(RoleError::Unreadable("no command configured".into()));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ChildRun::spawn(program, &args, self.timeout)
            .map_err(|e| RoleError::Unreadable(Cause::of(e)))
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// What a finished run says.
    fn interpret(&self, result: Result<CommandOutput, RunError>) -> Result<Role, RoleError> {
        let program = self.argv.first().map_or("", String::as_str);
        match result {
            Ok(out) => role_from_output(program, &out),
            Err(RunError::Timeout { .. }) => Err(RoleError::Timeout(self.timeout_ms())),
            Err(e) => Err(RoleError::Unreadable(Cause::of(e))),
        }
    }
}

/// Reads a role from a program's output: its first word, `master` or `slave`, with exit 0.
fn role_from_output(program: &str, out: &CommandOutput) -> Result<Role, RoleError> {
    let word = out
        .stdout
        .split_whitespace()
        .next()
        .and_then(parse_role_word);
    match (word, out.code) {
        (Some(role), Some(0)) => Ok(role),
        (_, code) => Err(RoleError::Malformed(format!(
            "{program} printed {:?} and exited {}; a role command must print master or slave and exit 0",
            out.stdout.trim(),
            code.map_or("by a signal".to_string(), |c| c.to_string())
        ))),
    }
}

impl PoolRole for CommandRole {
    /// Runs the program and waits for it (at most the timeout): for one-shot callers.
    fn role(&mut self) -> Result<Role, RoleError> {
        let run = self.spawn()?;
        let result = run.wait();
        self.interpret(result)
    }
}

impl RoleSource for CommandRole {
    fn change_fd(&self) -> Option<BorrowedFd<'_>> {
        self.run.as_ref().and_then(ChildRun::fd)
    }

    fn drain_changes(&mut self) -> bool {
        let Some(result) = self.run.as_mut().and_then(ChildRun::advance) else {
            return false;
        };
        self.run = None;
        if let Err(e @ RunError::Timeout { .. }) = &result {
            self.kept.unanswered(e.to_string());
            return true;
        }
        let role = self
            .interpret(result)
            .unwrap_or_else(|e| Role::Unknown(e.to_string()));
        self.kept.answered(role, Instant::now());
        true
    }

    fn refresh(&mut self) {
        self.drain_changes();
        if self.run.is_some() {
            return;
        }
        let now = Instant::now();
        match self.spawn() {
            Ok(run) => {
                self.kept.asked(now);
                self.run = Some(run);
            }
            Err(e) => self.kept.answered(Role::Unknown(e.to_string()), now),
        }
    }

    fn current(&mut self) -> Role {
        self.kept.role(Instant::now())
    }

    fn due(&self) -> Option<Instant> {
        self.run.as_ref().map(ChildRun::due)
    }

    fn starting(&self) -> bool {
        self.run.is_some() && self.kept.is_first_pending()
    }
}
