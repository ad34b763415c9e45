//! The operator's side of the control socket.

use super::protocol::{Request, Response};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket cannot be reached: nobody listens on it, or (EACCES) the caller may not.
    #[error("{}", if source.kind() == std::io::ErrorKind::PermissionDenied { format!("permission denied on {path}: run as root") } else { format!("the iscsi-ha daemon is not running (no answer on {path}: {source})") })]
    NotRunning {
        /// The socket.
        path: String,
        /// The connect error.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("talking to the daemon on {path}: {message}")]
    Exchange {
        /// The socket.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Sends one request and waits (at most `timeout`) for the response.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let path = socket.display().to_string();
    let fail = |message: String| ClientError::Exchange {
        path: path.clone(),
        message,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::NotRunning {
        path: path.clone(),
        source,
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| fail(e.to_string()))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| fail(e.to_string()))?;
    // A socket timeout surfaces as EAGAIN ("Resource temporarily unavailable"): say what it
    // means instead.
    let io_fail = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => fail(format!(
            "the daemon did not answer within {} s",
            timeout.as_secs_f32()
        )),
        _ => fail(e.to_string()),
    };
    let mut line = serde_json::to_string(req).map_err(|e| fail(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io_fail)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(io_fail)?;
    if answer.is_empty() {
        return Err(fail(
            "the daemon closed the connection without answering".into(),
        ));
    }
    serde_json::from_str(answer.trim()).map_err(|e| fail(format!("unreadable answer: {e}")))
}
