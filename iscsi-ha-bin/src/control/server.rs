//! The daemon's side of the control socket. Every connection is non-blocking and polled by the
//! daemon's loop next to its other descriptors: a request is gathered as it arrives, the answer
//! written as the peer takes it, so no peer (slow, idle, or sending too much) holds the loop.

use super::protocol::{Request, Response};
use nix::poll::PollFlags;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::geteuid;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest request accepted, newline included (a request is one short JSON line).
pub const MAX_REQUEST: usize = 4096;

/// How long a connection has to send its whole request, and then to take the answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// Connections served at once; one more is refused at once and closed.
pub const MAX_CONNECTIONS: usize = 32;

/// A listening control socket and its open connections.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    conns: Vec<Conn>,
    next_id: u64,
}

/// A complete request read from connection `id`; answer it with [`ControlServer::respond`].
#[derive(Debug)]
pub struct PeerRequest {
    /// The connection it came on.
    pub id: u64,
    /// The request, or why it could not be read.
    pub request: Result<Request, String>,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    stream: UnixStream,
    /// The request so far, then the answer being written.
    state: ConnState,
    deadline: Instant,
}

#[derive(Debug)]
enum ConnState {
    Reading(Vec<u8>),
    /// A complete request handed to the daemon, not answered yet.
    Answering,
    Writing {
        out: Vec<u8>,
        sent: usize,
    },
}

/// What a step on a connection left it as.
enum Step {
    Open,
    Request(Result<Request, String>),
    Close,
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
            conns: Vec::new(),
            next_id: 0,
        })
    }

    /// The open connections' descriptors with what to poll them for, by connection id.
    pub fn connections(&self) -> impl Iterator<Item = (u64, BorrowedFd<'_>, PollFlags)> {
        self.conns.iter().filter_map(|c| {
            let flags = match c.state {
                ConnState::Reading(_) => PollFlags::POLLIN,
                ConnState::Writing { .. } => PollFlags::POLLOUT,
                ConnState::Answering => return None,
            };
            Some((c.id, c.stream.as_fd(), flags))
        })
    }

    /// When the earliest open connection runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|c| c.deadline).min()
    }

    /// Does what can be done without blocking: reads from and writes to the connections in
    /// `ready`, closes those past their deadline, then accepts pending connections (when
    /// `listener_ready`). Returns the requests now complete.
    pub fn service(&mut self, listener_ready: bool, ready: &[u64]) -> Vec<PeerRequest> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut closed = Vec::new();
        for conn in self.conns.iter_mut().filter(|c| ready.contains(&c.id)) {
            match conn.step() {
                Step::Open => {}
                Step::Request(request) => out.push(PeerRequest {
                    id: conn.id,
                    request,
                }),
                Step::Close => closed.push(conn.id),
            }
        }
        for conn in self.conns.iter_mut().filter(|c| c.deadline <= now) {
            if matches!(conn.state, ConnState::Reading(_)) {
                // Best effort: the peer learns why, if it reads at all.
                conn.answer(&Response::Error {
                    message: format!(
                        "no complete request within {} s; closing",
                        REQUEST_DEADLINE.as_secs()
                    ),
                });
                let _ = conn.write();
            }
            closed.push(conn.id);
        }
        self.conns.retain(|c| !closed.contains(&c.id));
        // After the closes: the places they free are taken by those waiting.
        if listener_ready {
            out.extend(self.accept(now));
        }
        out
    }

    /// Answers the request that came on connection `id`; the answer is written as the peer
    /// takes it, and the connection then closed.
    pub fn respond(&mut self, id: u64, response: &Response) {
        let Some(i) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        let conn = &mut self.conns[i];
        conn.answer(response);
        conn.deadline = Instant::now() + REQUEST_DEADLINE;
        if !matches!(conn.write(), Step::Open) {
            self.conns.remove(i);
        }
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    fn accept(&mut self, now: Instant) -> Vec<PeerRequest> {
        let mut out = Vec::new();
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.next_id = self.next_id.wrapping_add(1);
            let mut conn = Conn {
                id: self.next_id,
                stream,
                state: ConnState::Reading(Vec::new()),
                deadline: now + REQUEST_DEADLINE,
            };
            let refusal = if self.conns.len() >= MAX_CONNECTIONS {
                Some(format!(
                    "too many connections to the daemon ({MAX_CONNECTIONS} open); try again"
                ))
            } else {
                match getsockopt(&conn.stream, PeerCredentials) {
                    Ok(cred) if cred.uid() == 0 || cred.uid() == geteuid().as_raw() => None,
                    Ok(cred) => Some(format!("uid {} may not use the control socket", cred.uid())),
                    Err(e) => Some(format!("cannot read peer credentials: {e}")),
                }
            };
            if let Some(message) = refusal {
                // A fresh socket's buffer takes a short answer at once; whatever is not taken
                // is dropped with the connection (it was refused).
                conn.answer(&Response::Error { message });
                let _ = conn.write();
                continue;
            }
            // The request may already be there.
            match conn.step() {
                Step::Open => self.conns.push(conn),
                Step::Request(request) => {
                    out.push(PeerRequest {
                        id: conn.id,
                        request,
                    });
                    self.conns.push(conn);
                }
                Step::Close => {}
            }
        }
        out
    }
}

impl Conn {
    /// Reads (or writes) what can be, without blocking.
    fn step(&mut self) -> Step {
        match self.state {
            ConnState::Reading(_) => self.read(),
            ConnState::Writing { .. } => self.write(),
            ConnState::Answering => Step::Open,
        }
    }

    fn read(&mut self) -> Step {
        let ConnState::Reading(buf) = &mut self.state else {
            return Step::Open;
        };
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) if buf.is_empty() => return Step::Close,
                // A peer may end its request by shutting down its side instead of a newline.
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.contains(&b'\n') {
                        break;
                    }
                    if buf.len() > MAX_REQUEST {
                        let message = format!("request longer than {MAX_REQUEST} bytes refused");
                        self.answer(&Response::Error { message });
                        return self.write();
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Open,
                Err(_) => return Step::Close,
            }
        }
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        let request = if line.len() > MAX_REQUEST {
            Err(format!("request longer than {MAX_REQUEST} bytes refused"))
        } else {
            let text = String::from_utf8_lossy(line);
            serde_json::from_str(text.trim())
                .map_err(|e| format!("bad request {:?}: {e}", text.trim()))
        };
        self.state = ConnState::Answering;
        Step::Request(request)
    }

    fn answer(&mut self, response: &Response) {
        let mut out = serde_json::to_vec(response).unwrap_or_default();
        out.push(b'\n');
        self.state = ConnState::Writing { out, sent: 0 };
    }

    fn write(&mut self) -> Step {
        let ConnState::Writing { out, sent } = &mut self.state else {
            return Step::Open;
        };
        while *sent < out.len() {
            match self.stream.write(&out[*sent..]) {
                Ok(0) => return Step::Close,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Open,
                Err(_) => return Step::Close,
            }
        }
        Step::Close
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
