//! The daemon's side of the control socket.

use super::protocol::{Request, Response};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::geteuid;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest request line accepted.
const MAX_REQUEST: u64 = 4096;

/// A listening control socket.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

/// An accepted connection with its parsed request; answer it with [`PeerRequest::respond`].
#[derive(Debug)]
pub struct PeerRequest {
    stream: UnixStream,
    /// The request, or why it could not be read.
    pub request: Result<Request, String>,
}

impl ControlServer {
    /// Binds the socket at `path`, mode 0600, in a directory that [`crate::run_dir::prepare`]
    /// accepts (created 0700 when missing, never changed when present). A stale
    /// socket from a crashed daemon is replaced; a live one is an error.
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            crate::run_dir::prepare(dir).map_err(std::io::Error::other)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: is another iscsi-ha daemon running?",
                        path.display()
                    ),
                ));
            }
            fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Accepts the pending connections and reads each one's request. A peer that is neither
    /// root nor this daemon's user is answered with a refusal.
    pub fn accept(&self) -> Vec<PeerRequest> {
        let mut out = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let request = match getsockopt(&stream, PeerCredentials) {
                Ok(cred) if cred.uid() == 0 || cred.uid() == geteuid().as_raw() => {
                    read_request(&stream)
                }
                Ok(cred) => Err(format!("uid {} may not use the control socket", cred.uid())),
                Err(e) => Err(format!("cannot read peer credentials: {e}")),
            };
            out.push(PeerRequest { stream, request });
        }
        out
    }
}

fn read_request(stream: &UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_REQUEST));
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading request: {e}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request {:?}: {e}", line.trim()))
}

impl PeerRequest {
    /// Sends the response and closes the connection.
    pub fn respond(mut self, response: &Response) {
        if let Ok(mut line) = serde_json::to_string(response) {
            line.push('\n');
            let _ = self.stream.write_all(line.as_bytes());
        }
    }
}

impl AsFd for ControlServer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
