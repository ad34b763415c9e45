//! The reply: an 8-byte header (`struct tgtadm_rsp { u32 err; u32 len; }`) and `len - 8` bytes
//! of text, NUL-terminated when there is any.

use super::code::ReplyCode;
use super::WireError;

/// Size of the reply header.
pub const REPLY_HEADER_LEN: usize = 8;
/// Largest reply text accepted. A `show` of hundreds of targets stays far below; anything
/// larger is a corrupt length, and refusing it keeps a bad reply from allocating gigabytes.
pub const MAX_REPLY_TEXT_LEN: usize = 64 << 20;

/// The reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// tgtd's answer.
    pub code: ReplyCode,
    /// Total length, header included.
    pub len: u32,
}

impl ReplyHeader {
    /// Reads the header from its 8 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let header = bytes.get(..REPLY_HEADER_LEN).ok_or(WireError::Truncated {
            what: "reply header",
            need: REPLY_HEADER_LEN,
            have: bytes.len(),
        })?;
        let err = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let len = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
        let parsed = Self {
            code: ReplyCode::from_code(err),
            len,
        };
        parsed.text_len()?;
        Ok(parsed)
    }

    /// How many bytes of text follow the header.
    pub fn text_len(&self) -> Result<usize, WireError> {
        usize::try_from(self.len)
            .ok()
            .and_then(|len| len.checked_sub(REPLY_HEADER_LEN))
            .filter(|&n| n <= MAX_REPLY_TEXT_LEN)
            .ok_or(WireError::Length(self.len))
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; REPLY_HEADER_LEN] {
        let mut out = [0_u8; REPLY_HEADER_LEN];
        out[..4].copy_from_slice(&self.code.code().to_ne_bytes());
        out[4..].copy_from_slice(&self.len.to_ne_bytes());
        out
    }
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// tgtd's answer.
    pub code: ReplyCode,
    /// The text (`show` output), without the trailing NUL. Empty when tgtd sent none.
    pub text: String,
}

/// The text of a reply body: the trailing NUL removed, invalid UTF-8 replaced (a backing path
/// may hold any bytes; it then compares unequal instead of failing the whole `show`).
pub fn decode_text(body: &[u8]) -> String {
    let text = body.strip_suffix(&[0]).unwrap_or(body);
    String::from_utf8_lossy(text).into_owned()
}

impl Reply {
    /// Reads a whole reply: header, then exactly the text its length announces.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let header = ReplyHeader::decode(bytes)?;
        let text_len = header.text_len()?;
        let rest = &bytes[REPLY_HEADER_LEN..];
        if rest.len() != text_len {
            return Err(WireError::Truncated {
                what: "reply text (len field vs bytes)",
                need: text_len,
                have: rest.len(),
            });
        }
        Ok(Self {
            code: header.code,
            text: decode_text(rest),
        })
    }

    /// The reply's bytes as tgtd sends them: text with a NUL when there is text.
    pub fn encode(&self) -> Vec<u8> {
        let text_len = if self.text.is_empty() {
            0
        } else {
            self.text.len() + 1
        };
        let len = u32::try_from(REPLY_HEADER_LEN + text_len).unwrap_or(u32::MAX);
        let mut out = ReplyHeader {
            code: self.code,
            len,
        }
        .encode()
        .to_vec();
        if text_len > 0 {
            out.extend_from_slice(self.text.as_bytes());
            out.push(0);
        }
        out
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_bare_success() {
        // recvfrom(3, "\0\0\0\0\x08\0\0\0", 8, MSG_WAITALL) after `target new`.
        let reply = Reply::decode(&[0, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(
            reply,
            Ok(Reply {
                code: ReplyCode::Success,
                text: String::new()
            })
        );
    }

    #[test]
    fn decodes_an_error_code() {
        let reply = Reply::decode(&[19, 0, 0, 0, 8, 0, 0, 0]).map(|r| r.code);
        assert_eq!(reply, Ok(ReplyCode::TargetActive));
    }

    #[test]
    fn decodes_text_and_strips_the_nul() {
        let mut bytes = vec![0, 0, 0, 0, 30, 0, 0, 0];
        bytes.extend_from_slice(b"Account list:\n    al\n\0");
        assert_eq!(
            Reply::decode(&bytes).map(|r| r.text),
            Ok("Account list:\n    al\n".to_string())
        );
        assert_eq!(Reply::decode(&bytes).map(|r| r.encode()), Ok(bytes.clone()));
    }

    #[test]
    fn refuses_impossible_lengths() {
        assert_eq!(
            ReplyHeader::decode(&[0, 0, 0, 0, 7, 0, 0, 0]),
            Err(WireError::Length(7))
        );
        assert_eq!(
            ReplyHeader::decode(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(WireError::Length(u32::MAX))
        );
        assert!(matches!(
            Reply::decode(&[0, 0, 0, 0, 12, 0, 0, 0, b'a']),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Reply::decode(&[0, 0, 0]),
            Err(WireError::Truncated { .. })
        ));
    }
}
