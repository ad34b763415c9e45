//! One request per connection over tgtd's UNIX management socket.
//!
//! tgtd serves a connection as: read header and body, execute, write the reply, close. So each
//! request opens its own connection. "Not running" (no socket file, or a file left behind by a
//! stopped tgtd: `ENOENT`/`ECONNREFUSED`) is told apart from "running and refused" (a reply
//! with an error code).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::TgtError;
use crate::wire::{
    decode_text, Mode, Op, Reply, ReplyCode, ReplyHeader, Request, NO_LUN, NO_TID, REPLY_HEADER_LEN,
};

/// Default directory and base name of tgtd's socket (`TGT_IPC_NAMESPACE`).
pub const DEFAULT_SOCKET_BASE: &str = "/var/run/tgtd/socket";

/// The socket path of control port `n` under `base`: `<base>.<n>`.
pub fn socket_path(base: &Path, control_port: u32) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{control_port}"));
    PathBuf::from(name)
}

/// A client for one tgtd's management socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client for the socket at `socket` (e.g. `/var/run/tgtd/socket.0`); each request and
    /// each reply must pass within `timeout`.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            socket: socket.into(),
            timeout,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `request` and returns the reply text; an error code becomes
    /// [`TgtError::Refused`].
    pub fn send(&self, request: &Request) -> Result<String, TgtError> {
        let reply = self.exchange(request)?;
        if reply.code == ReplyCode::Success {
            Ok(reply.text)
        } else {
            Err(TgtError::Refused {
                request: describe(request),
                code: reply.code,
            })
        }
    }

    /// Sends `request` and returns tgtd's reply whatever its code. A request that would
    /// crash or mislead tgtd ([`crate::guard::check_request`]) is refused unsent.
    pub fn exchange(&self, request: &Request) -> Result<Reply, TgtError> {
        crate::guard::check_request(request)?;
        let what = describe(request);
        let mut stream = self.connect(&what)?;
        let io = |source: std::io::Error| self.io_error(&what, source);
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        stream
            .write_all(&request.encode())
            .map_err(|e| self.io_error(&what, e))?;
        let mut header = [0_u8; REPLY_HEADER_LEN];
        stream
            .read_exact(&mut header)
            .map_err(|e| self.read_error(&what, e))?;
        let header = ReplyHeader::decode(&header).map_err(|e| TgtError::Malformed {
            request: what.clone(),
            reason: e.to_string(),
        })?;
        let text_len = header.text_len().map_err(|e| TgtError::Malformed {
            request: what.clone(),
            reason: e.to_string(),
        })?;
        let mut body = vec![0_u8; text_len];
        stream
            .read_exact(&mut body)
            .map_err(|e| self.read_error(&what, e))?;
        Ok(Reply {
            code: header.code,
            text: decode_text(&body),
        })
    }

    /// Waits until tgtd answers `system show`, for at most `limit`. `still_worth_waiting` is
    /// asked between attempts (e.g. "has the child exited?") and can end the wait with its
    /// error. Used while a starting tgtd creates its socket and initialises its drivers.
    pub fn wait_until_answering(
        &self,
        limit: Duration,
        mut still_worth_waiting: impl FnMut() -> Result<(), TgtError>,
    ) -> Result<(), TgtError> {
        let start = Instant::now();
        loop {
            still_worth_waiting()?;
            match self.send(&Request::system_show()) {
                Ok(_) => return Ok(()),
                Err(e @ (TgtError::NotRunning { .. } | TgtError::Malformed { .. })) => {
                    if start.elapsed() >= limit {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The pid of the process listening on the socket, from the kernel's record of who
    /// listened (`SO_PEERCRED`), not from anything that process says. The connection is
    /// closed without a request; tgtd drops it.
    pub fn server_pid(&self) -> Result<u32, TgtError> {
        let what = "peer credentials";
        let stream = self.connect(what)?;
        let creds =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                .map_err(|e| self.io_error(what, e.into()))?;
        u32::try_from(creds.pid()).map_err(|_| TgtError::Malformed {
            request: what.to_string(),
            reason: format!("the kernel gave pid {}", creds.pid()),
        })
    }

    fn connect(&self, what: &str) -> Result<UnixStream, TgtError> {
        UnixStream::connect(&self.socket).map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => TgtError::NotRunning {
                socket: self.socket.clone(),
                reason: e.to_string(),
            },
            ErrorKind::PermissionDenied => TgtError::PermissionDenied {
                socket: self.socket.clone(),
                reason: e.to_string(),
            },
            _ => self.io_error(what, e),
        })
    }

    fn io_error(&self, what: &str, source: std::io::Error) -> TgtError {
        if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            return TgtError::Timeout {
                request: what.to_string(),
                timeout: self.timeout,
            };
        }
        TgtError::Io {
            socket: self.socket.clone(),
            request: what.to_string(),
            source,
        }
    }

    fn read_error(&self, what: &str, source: std::io::Error) -> TgtError {
        match source.kind() {
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
                TgtError::Malformed {
                    request: what.to_string(),
                    reason: "tgtd closed the connection without a complete reply (a peer \
                             uid/gid other than tgtd's, or a request tgtd could not read)"
                        .to_string(),
                }
            }
            _ => self.io_error(what, source),
        }
    }
}

/// A short description of a request for messages, e.g. `target delete tid 1 force`.
pub fn describe(request: &Request) -> String {
    let mode = match request.mode {
        Mode::System => "system".to_string(),
        Mode::Target => "target".to_string(),
        Mode::Device => "logicalunit".to_string(),
        Mode::Portal => "portal".to_string(),
        Mode::Lld => "lld".to_string(),
        Mode::Session => "session".to_string(),
        Mode::Connection => "connection".to_string(),
        Mode::Account => "account".to_string(),
        Mode::Other(n) => format!("mode {n}"),
    };
    let op = match request.op {
        Op::New => "new".to_string(),
        Op::Delete => "delete".to_string(),
        Op::Show => "show".to_string(),
        Op::Bind => "bind".to_string(),
        Op::Unbind => "unbind".to_string(),
        Op::Update => "update".to_string(),
        Op::Stats => "stats".to_string(),
        Op::Start => "start".to_string(),
        Op::Stop => "stop".to_string(),
        Op::Other(n) => format!("op {n}"),
    };
    let mut out = format!("{mode} {op}");
    if request.tid != NO_TID {
        out.push_str(&format!(" tid {}", request.tid));
    }
    if request.lun != NO_LUN {
        out.push_str(&format!(" lun {}", request.lun));
    }
    if request.force {
        out.push_str(" force");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp_socket(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("socket.0")
    }

    #[test]
    fn missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let client = Client::new(temp_socket(&dir), Duration::from_secs(1));
        let err = client.send(&Request::system_show());
        assert!(matches!(err, Err(TgtError::NotRunning { .. })), "{err:?}");
    }

    #[test]
    fn leftover_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = temp_socket(&dir);
        drop(UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}")));
        assert!(path.exists());
        let client = Client::new(path, Duration::from_secs(1));
        let err = client.send(&Request::system_show());
        assert!(matches!(err, Err(TgtError::NotRunning { .. })), "{err:?}");
    }

    #[test]
    fn a_close_without_reply_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = temp_socket(&dir);
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        // Stands in for tgtd's permission check, which closes without a reply.
        let server = thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0_u8; 120];
                let _ = s.read_exact(&mut buf);
            }
        });
        let client = Client::new(path, Duration::from_secs(2));
        let err = client.send(&Request::system_show());
        assert!(matches!(err, Err(TgtError::Malformed { .. })), "{err:?}");
        let _ = server.join();
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = temp_socket(&dir);
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let server = thread::spawn(move || {
            let conn = listener.accept();
            thread::sleep(Duration::from_millis(600));
            drop(conn);
        });
        let client = Client::new(path, Duration::from_millis(200));
        let err = client.send(&Request::system_show());
        assert!(matches!(err, Err(TgtError::Timeout { .. })), "{err:?}");
        let _ = server.join();
    }

    #[test]
    fn socket_path_appends_the_control_port() {
        assert_eq!(
            socket_path(Path::new(DEFAULT_SOCKET_BASE), 7),
            PathBuf::from("/var/run/tgtd/socket.7")
        );
    }

    #[test]
    fn describes_requests() {
        let mut req = Request::new(Mode::Target, Op::Delete);
        req.tid = 1;
        req.force = true;
        assert_eq!(describe(&req), "target delete tid 1 force");
    }
}
