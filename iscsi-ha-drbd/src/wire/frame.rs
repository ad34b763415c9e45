//! Netlink framing: one datagram from the kernel into typed frames, one request into bytes.

use netlink_packet_core::{
    DoneBuffer, ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlHeader, GenlMessage};

use super::attr::Field;
use super::{DrbdMessage, WireError};

const NLMSG_ALIGNTO: usize = 4;

/// One netlink message out of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message of the `drbd` family.
    Drbd {
        /// `nlmsg_seq` (the request's for replies, a global counter for broadcasts).
        seq: u32,
        /// `nlmsg_pid` (0 for kernel broadcasts).
        port: u32,
        /// `nlmsg_flags` (`NLM_F_MULTI` in dumps).
        flags: u16,
        /// The message (boxed: it is much larger than the other frames).
        message: Box<DrbdMessage>,
    },
    /// `NLMSG_DONE`: the end of a dump, with the dump's error code (0 or `-errno`).
    Done {
        /// `nlmsg_seq`.
        seq: u32,
        /// 0, or a negative errno the dump ended with.
        code: i32,
    },
    /// `NLMSG_ERROR`: 0 is an acknowledgement, a negative value an errno.
    Error {
        /// `nlmsg_seq`.
        seq: u32,
        /// 0 or `-errno`.
        code: i32,
    },
    /// A message of another type (another family such as nlctrl, `NLMSG_NOOP`, ...).
    Other {
        /// `nlmsg_seq`.
        seq: u32,
        /// `nlmsg_type`.
        message_type: u16,
        /// The whole message, header included, for a caller that knows the family.
        bytes: Vec<u8>,
    },
}

fn framing(reason: impl ToString) -> WireError {
    WireError::Framing {
        set: "netlink",
        reason: reason.to_string(),
    }
}

/// Splits a datagram into frames, decoding messages of family `drbd_family` as DRBD messages.
pub fn decode_datagram(bytes: &[u8], drbd_family: u16) -> Result<Vec<Frame>, WireError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let nl = NetlinkBuffer::new_checked(rest).map_err(framing)?;
        let len = nl.length() as usize;
        let seq = nl.sequence_number();
        let payload = nl.payload();
        let frame = match nl.message_type() {
            NLMSG_DONE => {
                // The kernel may send a DONE without the error code.
                let code = if payload.is_empty() {
                    0
                } else {
                    DoneBuffer::new_checked(payload).map_err(framing)?.code()
                };
                Frame::Done { seq, code }
            }
            NLMSG_ERROR => {
                let err = ErrorBuffer::new_checked(payload).map_err(framing)?;
                Frame::Error {
                    seq,
                    code: err.code().map_or(0, |c| c.get()),
                }
            }
            t if t == drbd_family => {
                let genl = GenlHeader::parse(payload).map_err(framing)?;
                let message = DrbdMessage::decode(genl, payload.get(4..).unwrap_or_default())?;
                Frame::Drbd {
                    seq,
                    port: nl.port_number(),
                    flags: nl.flags(),
                    message: Box::new(message),
                }
            }
            message_type => Frame::Other {
                seq,
                message_type,
                bytes: rest.get(..len).unwrap_or(rest).to_vec(),
            },
        };
        out.push(frame);
        // Messages are aligned to 4 bytes; a length of 16..=len was checked above.
        offset = offset.saturating_add(len.div_ceil(NLMSG_ALIGNTO) * NLMSG_ALIGNTO);
    }
    Ok(out)
}

/// How a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFlags {
    /// A plain request (`NLM_F_REQUEST`), as drbdsetup sends configuration commands: the
    /// kernel answers with one reply carrying the return code.
    Request,
    /// A request that also asks for an `NLMSG_ERROR` acknowledgement.
    RequestAck,
    /// A dump (`NLM_F_REQUEST | NLM_F_DUMP`), ended by `NLMSG_DONE`.
    Dump,
}

impl RequestFlags {
    fn bits(self) -> u16 {
        match self {
            RequestFlags::Request => NLM_F_REQUEST,
            RequestFlags::RequestAck => NLM_F_REQUEST | NLM_F_ACK,
            RequestFlags::Dump => NLM_F_REQUEST | NLM_F_DUMP,
        }
    }
}

/// Encodes `message` as one netlink request to family `family`.
pub fn encode_request(
    family: u16,
    seq: u32,
    flags: RequestFlags,
    message: &DrbdMessage,
) -> Result<Vec<u8>, WireError> {
    if !message.attrs.fields().iter().all(Field::fits) {
        return Err(WireError::TooLarge);
    }
    let genl = GenlMessage::new(
        GenlHeader {
            cmd: message.cmd.number(),
            version: message.version,
        },
        message.clone(),
        family,
    );
    let mut header = NetlinkHeader::default();
    header.flags = flags.bits();
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    nl.finalize();
    if nl.buffer_len() > u32::MAX as usize {
        return Err(WireError::TooLarge);
    }
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    Ok(buf)
}
