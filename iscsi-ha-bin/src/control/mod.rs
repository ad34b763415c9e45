//! The control socket: line-delimited JSON between the operator's commands and the daemon.
//! One request per connection; the socket is root's only (mode 0600, peer uid checked).

mod client;
mod protocol;
mod server;

pub use client::{request, ClientError};
pub use protocol::{Request, Response};
pub use server::{ControlServer, PeerRequest};

/// Default directory of the control socket.
pub const DEFAULT_RUN_DIR: &str = "/run/iscsi-ha";

/// The socket's file name in the run directory.
pub const SOCKET_NAME: &str = "control.sock";
