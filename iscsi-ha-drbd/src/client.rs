//! Requests to the kernel over the `drbd` family: status dumps, role changes, disconnect.

use std::time::{Duration, Instant};

use crate::family::{self, FamilyError, FamilyInfo};
use crate::netconf::{connect_message, NetConfig};
use crate::retcode::{ErrCode, ReplyCode, StateRv};
use crate::socket::{GenlSocket, RecvError};
use crate::state::Dialect;
use crate::status::{group_replies, DrbdResource, StatusError, StatusReply};
use crate::wire::sets::{CfgContext, DisconnectParms, SetRoleParms};
use crate::wire::{
    decode_datagram, encode_request, DrbdAttrs, DrbdCommand, DrbdHeader, DrbdMessage, Frame,
    RequestFlags, WireError, MINOR_NONE,
};

/// How long to wait for the kernel's answer. Role changes wait for the peer, bounded by
/// DRBD's own timeouts (a few seconds), so this is generous.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a DRBD request failed.
#[derive(Debug, thiserror::Error)]
pub enum DrbdError {
    /// The family could not be resolved (module not loaded, nlctrl failure).
    #[error(transparent)]
    Family(#[from] FamilyError),
    /// The kernel speaks DRBD 9, which this operation does not support yet.
    #[error("DRBD 9 not supported yet: {0}")]
    Drbd9Unsupported(&'static str),
    /// No resource of that name is configured.
    #[error("no DRBD resource named {0:?}")]
    NoSuchResource(String),
    /// No such minor.
    #[error("no DRBD minor {0}")]
    NoSuchMinor(u32),
    /// A state change was refused.
    #[error("{op} on minor {minor} refused: {rv}{}", info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default())]
    StateRefused {
        /// The operation.
        op: &'static str,
        /// The minor.
        minor: u32,
        /// DRBD's reason.
        rv: StateRv,
        /// The kernel's explanation, if it sent one.
        info: Option<String>,
    },
    /// A configuration error.
    #[error("{op} failed: {code}{}", info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default())]
    Config {
        /// The operation.
        op: &'static str,
        /// DRBD's error code.
        code: ErrCode,
        /// The kernel's explanation, if it sent one.
        info: Option<String>,
    },
    /// The kernel refused for lack of privilege (needs CAP_NET_ADMIN; DRBD 9: CAP_SYS_ADMIN).
    #[error("{op}: permission denied (needs CAP_NET_ADMIN)")]
    PermissionDenied {
        /// The operation.
        op: &'static str,
    },
    /// The kernel answered with another errno.
    #[error("{op}: kernel error {}", std::io::Error::from_raw_os_error(*errno))]
    Errno {
        /// The operation.
        op: &'static str,
        /// The positive errno.
        errno: i32,
    },
    /// The kernel's answer could not be understood.
    #[error("malformed reply to {op}: {reason}")]
    Malformed {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The socket failed or the kernel did not answer in time.
    #[error("{op}: {source}")]
    Recv {
        /// The operation.
        op: &'static str,
        /// The failure.
        source: RecvError,
    },
}

impl DrbdError {
    fn malformed(op: &'static str, reason: impl ToString) -> Self {
        DrbdError::Malformed {
            op,
            reason: reason.to_string(),
        }
    }

    fn errno(op: &'static str, code: i32) -> Self {
        let errno = code.saturating_neg();
        if errno == libc::EPERM || errno == libc::EACCES {
            DrbdError::PermissionDenied { op }
        } else {
            DrbdError::Errno { op, errno }
        }
    }
}

/// A role to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRequest {
    /// Primary; `force` is drbdsetup's `primary --force` (assume the local disk up to date).
    Primary {
        /// Operator-only override.
        force: bool,
    },
    /// Secondary.
    Secondary,
}

/// The GET_STATUS dump request (8.4): every resource, or one (`CFG_CONTEXT` with its name).
pub fn status_dump_message(resource: Option<&str>) -> DrbdMessage {
    DrbdMessage {
        cmd: DrbdCommand::GetStatus,
        version: Dialect::V84.family_version(),
        header: DrbdHeader {
            minor: MINOR_NONE,
            ret_code: 0,
        },
        attrs: DrbdAttrs {
            cfg_context: resource.map(|name| CfgContext {
                resource_name: Some(name.to_string()),
                ..CfgContext::default()
            }),
            ..DrbdAttrs::default()
        },
    }
}

/// The PRIMARY/SECONDARY request for one minor (8.4), as drbdsetup sends it: no option set
/// unless forced, then `SET_ROLE_PARMS{assume_uptodate}`.
pub fn role_message(minor: u32, role: RoleRequest) -> DrbdMessage {
    let (cmd, set_role_parms) = match role {
        RoleRequest::Primary { force } => (
            DrbdCommand::Primary,
            force.then(|| SetRoleParms {
                assume_uptodate: Some(true),
                ..SetRoleParms::default()
            }),
        ),
        RoleRequest::Secondary => (DrbdCommand::Secondary, None),
    };
    DrbdMessage {
        cmd,
        version: Dialect::V84.family_version(),
        header: DrbdHeader { minor, ret_code: 0 },
        attrs: DrbdAttrs {
            set_role_parms,
            ..DrbdAttrs::default()
        },
    }
}

/// The RESUME_IO request for one minor (8.4), as drbdsetup's `resume-io <minor>` sends it:
/// the minor in the DRBD header and no attribute.
pub fn resume_io_message(minor: u32) -> DrbdMessage {
    DrbdMessage {
        cmd: DrbdCommand::ResumeIo,
        version: Dialect::V84.family_version(),
        header: DrbdHeader { minor, ret_code: 0 },
        attrs: DrbdAttrs::default(),
    }
}

/// A connection to the DRBD kernel module's generic netlink family.
#[derive(Debug)]
pub struct DrbdNetlink {
    sock: GenlSocket,
    family: FamilyInfo,
    dialect: Dialect,
    timeout: Duration,
}

impl DrbdNetlink {
    /// Opens a socket and resolves the family. Fails with
    /// [`FamilyError::ModuleNotLoaded`] when the module is not loaded.
    pub fn connect() -> Result<Self, DrbdError> {
        let mut sock = GenlSocket::open().map_err(|e| DrbdError::Recv {
            op: "open netlink socket",
            source: RecvError::Io(e),
        })?;
        let family = family::resolve(&mut sock, Duration::from_secs(5))?;
        let dialect = family.dialect()?;
        Ok(DrbdNetlink {
            sock,
            family,
            dialect,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The dialect the kernel speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// What nlctrl said about the family.
    pub fn family(&self) -> &FamilyInfo {
        &self.family
    }

    /// Changes how long to wait for answers.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn require_84(&self, what: &'static str) -> Result<(), DrbdError> {
        match self.dialect {
            Dialect::V84 => Ok(()),
            Dialect::V9 => Err(DrbdError::Drbd9Unsupported(what)),
        }
    }

    fn message(&self, cmd: DrbdCommand, minor: u32, attrs: DrbdAttrs) -> DrbdMessage {
        DrbdMessage {
            cmd,
            version: self.dialect.family_version(),
            header: DrbdHeader { minor, ret_code: 0 },
            attrs,
        }
    }

    fn send(
        &mut self,
        op: &'static str,
        flags: RequestFlags,
        msg: &DrbdMessage,
    ) -> Result<u32, DrbdError> {
        let seq = self.sock.next_seq();
        let bytes = encode_request(self.family.id, seq, flags, msg)
            .map_err(|e| DrbdError::malformed(op, e))?;
        self.sock.send(&bytes).map_err(|e| DrbdError::Recv {
            op,
            source: RecvError::Io(e),
        })?;
        Ok(seq)
    }

    /// Receives the frames answering `seq`, until `done` says the answer is complete.
    fn collect(
        &mut self,
        op: &'static str,
        seq: u32,
        mut done: impl FnMut(&Frame) -> bool,
    ) -> Result<Vec<Frame>, DrbdError> {
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = self
                .sock
                .recv(left)
                .map_err(|source| DrbdError::Recv { op, source })?;
            let frames = decode_datagram(bytes, self.family.id)
                .map_err(|e: WireError| DrbdError::malformed(op, e))?;
            for frame in frames {
                let frame_seq = match &frame {
                    Frame::Drbd { seq, .. }
                    | Frame::Done { seq, .. }
                    | Frame::Error { seq, .. }
                    | Frame::Other { seq, .. } => *seq,
                };
                if frame_seq != seq {
                    continue; // a stale answer to an earlier, timed-out request
                }
                let finished = done(&frame);
                out.push(frame);
                if finished {
                    return Ok(out);
                }
            }
        }
    }

    /// The raw GET_STATUS dump messages, for every resource or one (8.4 only): each carries
    /// the minor's STATE_INFO and, while configured, the resource's NET_CONF.
    pub fn status_messages(
        &mut self,
        resource: Option<&str>,
    ) -> Result<Vec<DrbdMessage>, DrbdError> {
        self.require_84("status through GET_STATUS")?;
        self.dump("GET_STATUS dump", &status_dump_message(resource), resource)
    }

    /// Runs one dump and returns its messages (those of the request's command).
    fn dump(
        &mut self,
        op: &'static str,
        msg: &DrbdMessage,
        resource: Option<&str>,
    ) -> Result<Vec<DrbdMessage>, DrbdError> {
        let seq = self.send(op, RequestFlags::Dump, msg)?;
        let frames = self.collect(op, seq, |f| {
            matches!(f, Frame::Done { .. } | Frame::Error { .. })
        })?;
        let mut out = Vec::new();
        for frame in frames {
            match frame {
                Frame::Drbd { message, .. } if message.cmd == msg.cmd => out.push(*message),
                Frame::Drbd { message, .. } => {
                    return Err(DrbdError::malformed(
                        op,
                        format!("unexpected {:?} in dump", message.cmd),
                    ))
                }
                Frame::Done { code, .. } | Frame::Error { code, .. } if code != 0 => {
                    return Err(match (code.saturating_neg(), resource) {
                        (libc::ENODEV, Some(name)) => DrbdError::NoSuchResource(name.to_string()),
                        _ => DrbdError::errno(op, code),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Status of every resource (or of one): GET_STATUS on 8.4, the events2-era dumps on
    /// DRBD 9.
    pub fn status(&mut self, resource: Option<&str>) -> Result<Vec<DrbdResource>, DrbdError> {
        match self.dialect {
            Dialect::V84 => self.status_get_status(resource),
            Dialect::V9 => self.status_via_dumps(resource),
        }
    }

    /// Status through GET_RESOURCES/DEVICES/CONNECTIONS/PEER_DEVICES (DRBD 9's way; 8.4
    /// kernels with the events2 backport answer them too).
    pub fn status_via_dumps(
        &mut self,
        resource: Option<&str>,
    ) -> Result<Vec<DrbdResource>, DrbdError> {
        const OP: &str = "events2 status dumps";
        let mut messages = Vec::new();
        for cmd in crate::dumps::DUMP_COMMANDS {
            if !self.family.offers(cmd) {
                return Err(DrbdError::Config {
                    op: OP,
                    code: ErrCode::Other(0),
                    info: Some(format!("the kernel does not offer {cmd:?}")),
                });
            }
            let mut msg = status_dump_message(resource);
            msg.cmd = cmd;
            msg.version = self.dialect.family_version();
            messages.extend(self.dump(OP, &msg, resource)?);
        }
        let resources = crate::dumps::resources_from_dumps(self.dialect, &messages);
        if let Some(name) = resource {
            if !resources.iter().any(|r| r.name == name) {
                return Err(DrbdError::NoSuchResource(name.to_string()));
            }
        }
        Ok(resources)
    }

    /// The running options of one resource (8.4 GET_STATUS dump): protocol, fencing,
    /// after-split-brain policies, backing disks.
    pub fn resource_options(
        &mut self,
        resource: &str,
    ) -> Result<crate::options::ResourceOptions, DrbdError> {
        let messages = self.status_messages(Some(resource))?;
        crate::options::resource_options(resource, &messages)
            .ok_or_else(|| DrbdError::NoSuchResource(resource.to_string()))
    }

    /// Status through the 8.4 GET_STATUS dump.
    pub fn status_get_status(
        &mut self,
        resource: Option<&str>,
    ) -> Result<Vec<DrbdResource>, DrbdError> {
        let messages = self.status_messages(resource)?;
        resources_from_status_messages(&messages, resource)
    }

    /// Connects a resource to its peer again with a known configuration (8.4 CONNECT);
    /// `discard_my_data` makes this side the split-brain victim.
    pub fn connect_peer(
        &mut self,
        config: &NetConfig,
        discard_my_data: bool,
    ) -> Result<(), DrbdError> {
        const OP: &str = "connect";
        self.require_84("connect")?;
        let msg =
            connect_message(config, discard_my_data).map_err(|e| DrbdError::malformed(OP, e))?;
        self.request(OP, &msg).map(|_| ())
    }
}

/// Groups GET_STATUS dump messages into resources; with `resource`, it must be among them.
pub fn resources_from_status_messages(
    messages: &[DrbdMessage],
    resource: Option<&str>,
) -> Result<Vec<DrbdResource>, DrbdError> {
    {
        let replies = messages
            .iter()
            .map(StatusReply::from_message)
            .collect::<Result<Vec<_>, StatusError>>()
            .map_err(|e| DrbdError::malformed("GET_STATUS dump", e))?;
        let resources = group_replies(replies);
        if let Some(name) = resource {
            if !resources.iter().any(|r| r.name == name) {
                return Err(DrbdError::NoSuchResource(name.to_string()));
            }
        }
        Ok(resources)
    }
}

impl DrbdNetlink {
    /// Status of one minor (GET_STATUS doit).
    pub fn status_minor(&mut self, minor: u32) -> Result<StatusReply, DrbdError> {
        const OP: &str = "GET_STATUS";
        self.require_84("status through GET_STATUS")?;
        let msg = self.message(DrbdCommand::GetStatus, minor, DrbdAttrs::default());
        let message = self.request(OP, &msg)?;
        StatusReply::from_message(&message).map_err(|e| DrbdError::malformed(OP, e))
    }

    /// Sends a doit request and checks the reply's return code.
    fn request(&mut self, op: &'static str, msg: &DrbdMessage) -> Result<DrbdMessage, DrbdError> {
        let seq = self.send(op, RequestFlags::Request, msg)?;
        let frames = self.collect(op, seq, |f| {
            matches!(
                f,
                Frame::Drbd { .. } | Frame::Error { .. } | Frame::Done { .. }
            )
        })?;
        let Some(frame) = frames.into_iter().last() else {
            return Err(DrbdError::malformed(op, "no reply"));
        };
        let message = match frame {
            Frame::Drbd { message, .. } => *message,
            Frame::Error { code, .. } | Frame::Done { code, .. } => {
                return Err(if code == 0 {
                    DrbdError::malformed(op, "acknowledged without a reply")
                } else {
                    DrbdError::errno(op, code)
                })
            }
            Frame::Other { .. } => return Err(DrbdError::malformed(op, "unexpected frame")),
        };
        let info = message
            .attrs
            .cfg_reply
            .as_ref()
            .and_then(|r| r.info_text.clone())
            .filter(|t| !t.is_empty());
        match ReplyCode::classify(message.header.ret_code, self.dialect) {
            ReplyCode::Success(_) => Ok(message),
            ReplyCode::StateRefused(rv) => Err(DrbdError::StateRefused {
                op,
                minor: msg.header.minor,
                rv,
                info,
            }),
            ReplyCode::Error(ErrCode::MinorInvalid) => {
                Err(DrbdError::NoSuchMinor(msg.header.minor))
            }
            ReplyCode::Error(code) => Err(DrbdError::Config { op, code, info }),
        }
    }

    /// Changes the role of one minor (8.4: roles are set per device).
    pub fn set_role(&mut self, minor: u32, role: RoleRequest) -> Result<(), DrbdError> {
        self.require_84("role changes")?;
        let op = match role {
            RoleRequest::Primary { .. } => "primary",
            RoleRequest::Secondary => "secondary",
        };
        let msg = role_message(minor, role);
        self.request(op, &msg).map(|_| ())
    }

    /// Changes the role of every volume of a resource, in minor order, stopping at the first
    /// refusal.
    pub fn set_resource_role(
        &mut self,
        resource: &str,
        role: RoleRequest,
    ) -> Result<(), DrbdError> {
        for minor in self.minors_of(resource)? {
            self.set_role(minor, role)?;
        }
        Ok(())
    }

    /// The minors of a resource, in order; a resource without volumes is no such resource
    /// (there is nothing to act on).
    fn minors_of(&mut self, resource: &str) -> Result<Vec<u32>, DrbdError> {
        let minors: Vec<u32> = self
            .status(Some(resource))?
            .into_iter()
            .filter(|r| r.name == resource)
            .flat_map(|r| r.volumes.into_iter().map(|v| v.minor))
            .collect();
        if minors.is_empty() {
            return Err(DrbdError::NoSuchResource(resource.to_string()));
        }
        Ok(minors)
    }

    /// Resumes the I/O of one minor (8.4 RESUME_IO), whatever froze it: `suspend-io`, no
    /// accessible data, or fencing waiting for the fence-peer handler. Held writes then
    /// complete on the local disk only (the peer is marked out of sync for them), and the
    /// kernel starts a new current UUID first if the freeze left one pending. A minor that is
    /// not suspended succeeds (nothing to do).
    pub fn resume_io(&mut self, minor: u32) -> Result<(), DrbdError> {
        self.require_84("resume-io")?;
        self.request("resume-io", &resume_io_message(minor))
            .map(|_| ())
    }

    /// Resumes the I/O of every volume of a resource, in minor order, stopping at the first
    /// failure.
    pub fn resume_resource_io(&mut self, resource: &str) -> Result<(), DrbdError> {
        self.require_84("resume-io")?;
        for minor in self.minors_of(resource)? {
            self.resume_io(minor)?;
        }
        Ok(())
    }

    /// Disconnects a resource from its peer. 8.4 addresses a connection by its two
    /// addresses, which the status dump's context carries; this looks them up first, as
    /// `drbdadm disconnect` does from the configuration.
    pub fn disconnect(&mut self, resource: &str, force: bool) -> Result<(), DrbdError> {
        let ctx = self
            .status_messages(Some(resource))?
            .into_iter()
            .find_map(|m| m.attrs.cfg_context)
            .ok_or_else(|| DrbdError::NoSuchResource(resource.to_string()))?;
        let (Some(my_addr), Some(peer_addr)) = (ctx.my_addr, ctx.peer_addr) else {
            return Err(DrbdError::Config {
                op: "disconnect",
                code: ErrCode::InvalidRequest,
                info: Some(format!("resource {resource} has no connection configured")),
            });
        };
        let attrs = DrbdAttrs {
            cfg_context: Some(CfgContext {
                my_addr: Some(my_addr),
                peer_addr: Some(peer_addr),
                ..CfgContext::default()
            }),
            disconnect_parms: Some(DisconnectParms {
                force_disconnect: force.then_some(true),
                ..DisconnectParms::default()
            }),
            ..DrbdAttrs::default()
        };
        let msg = self.message(DrbdCommand::Disconnect, MINOR_NONE, attrs);
        self.request("disconnect", &msg).map(|_| ())
    }
}
