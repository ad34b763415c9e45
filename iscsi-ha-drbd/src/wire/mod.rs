//! The message layer: DRBD's generic netlink messages as typed values, encoded and decoded
//! without panics on any input.
//!
//! ```text
//! nlmsghdr (16) | genlmsghdr (4: cmd, version, reserved) |
//! drbd_genlmsghdr (8, host order: u32 minor, i32 flags/ret_code) |
//! top-level attributes, each a nested set of typed fields
//! ```

pub mod attr;
pub mod cmd;
mod frame;
mod message;
pub mod sets;

pub use cmd::DrbdCommand;
pub use frame::{decode_datagram, encode_request, Frame, RequestFlags};
pub use message::{DrbdAttrs, DrbdHeader, DrbdMessage, SibReason, DRBD_HEADER_LEN, MINOR_NONE};

/// Why bytes could not be decoded as DRBD netlink messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than a fixed header needs.
    #[error("{what} truncated: {len} bytes, need {need}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Attribute or message framing is broken (lengths that do not fit).
    #[error("bad framing in {set}: {reason}")]
    Framing {
        /// The set (or "netlink") being read.
        set: &'static str,
        /// What the framing layer said.
        reason: String,
    },
    /// A field's value has the wrong size for its type.
    #[error("{set}.{field}: expected {expected} bytes, got {got}")]
    FieldLength {
        /// The set.
        set: &'static str,
        /// The field.
        field: &'static str,
        /// Bytes its type has.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A string field is not UTF-8.
    #[error("{set}.{field}: string is not UTF-8")]
    BadString {
        /// The set.
        set: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A message to send does not fit netlink's 16-bit attribute lengths.
    #[error("request too large to encode")]
    TooLarge,
}
