//! The bytes of tgtd's management protocol, as plain functions over bytes (no I/O).
//!
//! A request is a 120-byte header ([`Request`]) and an optional `key=value` body ([`Body`])
//! with one trailing NUL; the reply is an 8-byte header ([`ReplyHeader`]) and text ([`Reply`]).

mod body;
mod code;
mod reply;
mod request;

pub use body::{Body, MAX_BODY_LEN};
pub use code::{Mode, Op, ReplyCode};
pub use reply::{decode_text, Reply, ReplyHeader, MAX_REPLY_TEXT_LEN, REPLY_HEADER_LEN};
pub use request::{AccountDirection, Lld, Request, LLD_LEN, NO_LUN, NO_TID, REQUEST_HEADER_LEN};

/// Why bytes are not a valid request or reply, or a value cannot be put in one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    #[error("{what} truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length field that cannot be right.
    #[error("impossible length field {0}")]
    Length(u32),
    /// A body over tgtd's limit (tgtd would drop the connection without a reply).
    #[error("request body of {len} bytes refused: tgtd reads at most {max} and drops a larger request without a reply")]
    BodyTooLong {
        /// The body's length with its NUL.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A parameter that cannot be carried in tgtd's `key=value,...` syntax.
    #[error("parameter {text:?} refused: {reason}")]
    Param {
        /// The refused text.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// Any other structural problem.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}
