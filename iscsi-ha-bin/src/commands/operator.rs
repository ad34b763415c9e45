//! The operator's requests to the daemon (`iscsi-cfg manual-mode-enable`, `become-primary`, ...).

use super::EXIT_NOT_RUNNING;
use crate::control::{request, ClientError, Request, Response};
use std::path::Path;
use std::process::ExitCode;

/// How long an operator request may take (a become-primary runs a whole failover step).
pub const OPERATOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends `req` and prints the answer: 0 when done, 1 when refused or failed, 3 when the daemon
/// is not running.
pub fn send(socket: &Path, req: &Request) -> ExitCode {
    match request(socket, req, OPERATOR_TIMEOUT) {
        Ok(Response::Ok { message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(Response::Refused { reason, hint }) => {
            eprintln!("refused: {reason}");
            eprintln!("what to do: {hint}");
            ExitCode::FAILURE
        }
        Ok(Response::Error { message }) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Ok(Response::Status { .. }) => {
            eprintln!("unexpected status answer");
            ExitCode::FAILURE
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
