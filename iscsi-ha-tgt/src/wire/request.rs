//! The 120-byte request header (`struct tgtadm_req`) and its body.
//!
//! ```text
//! off size field        off size field
//!   0    4 mode          88    8 lun (u64::MAX = none)
//!   4    4 op            96    4 cid
//!   8   64 lld (NUL-pad) 100   4 host_no
//!  72    4 len (120+body) 104  4 device_type
//!  76    4 tid (-1 = all) 108  4 ac_dir (1 = outgoing)
//!  80    8 sid           112   4 pack (unused)   116  4 force
//! ```
//! Host byte order; tgtd and this adapter run on the same machine.

use super::body::{Body, MAX_BODY_LEN};
use super::code::{Mode, Op};
use super::WireError;

/// Size of the request header.
pub const REQUEST_HEADER_LEN: usize = 120;
/// Size of the `lld` field, its NUL included.
pub const LLD_LEN: usize = 64;
/// `tid` meaning "not given" (all targets for show; the global target for account binds).
pub const NO_TID: i32 = -1;
/// `lun` meaning "not given".
pub const NO_LUN: u64 = u64::MAX;

/// Which way a CHAP account is bound (`ac_dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountDirection {
    /// The initiator authenticates to the target.
    Incoming,
    /// The target authenticates to the initiator (mutual CHAP).
    Outgoing,
}

/// One management request, header fields and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the request is about.
    pub mode: Mode,
    /// What to do.
    pub op: Op,
    /// The low-level driver name, e.g. `iscsi`; empty means driver 0 (iscsi on Debian).
    pub lld: Lld,
    /// Target id, [`NO_TID`] if not given.
    pub tid: i32,
    /// Session id (the iSCSI TSIH for connection requests).
    pub sid: u64,
    /// Logical unit, [`NO_LUN`] if not given.
    pub lun: u64,
    /// Connection id.
    pub cid: u32,
    /// SCSI host number (only for host binding, which this adapter never uses).
    pub host_no: u32,
    /// SCSI device type; 0 is a disk.
    pub device_type: u32,
    /// Account direction for account binds.
    pub ac_dir: AccountDirection,
    /// The `pack` field: unused by tgtd, sent as 0.
    pub pack: u32,
    /// `--force`.
    pub force: bool,
    /// The parameters, if any. `None` sends `len = 120`.
    pub body: Option<Body>,
}

/// A driver name of at most 63 bytes without NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lld(String);

impl Lld {
    /// The iSCSI driver.
    pub fn iscsi() -> Self {
        Self("iscsi".to_string())
    }

    /// No name: tgtd uses driver 0 (what tgtadm sends for system requests).
    pub fn none() -> Self {
        Self(String::new())
    }

    /// A checked driver name.
    pub fn new(name: &str) -> Result<Self, WireError> {
        if name.len() >= LLD_LEN || name.contains('\0') {
            return Err(WireError::Param {
                text: name.to_string(),
                reason: "a driver name has at most 63 bytes and no NUL",
            });
        }
        Ok(Self(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Request {
    /// A request with tgtadm's defaults: driver `iscsi`, no tid, no LUN, no body.
    pub fn new(mode: Mode, op: Op) -> Self {
        Self {
            mode,
            op,
            lld: Lld::iscsi(),
            tid: NO_TID,
            sid: 0,
            lun: NO_LUN,
            cid: 0,
            host_no: 0,
            device_type: 0,
            ac_dir: AccountDirection::Incoming,
            pack: 0,
            force: false,
            body: None,
        }
    }

    /// The request's bytes: header and body with its NUL.
    pub fn encode(&self) -> Vec<u8> {
        let body_len = self.body.as_ref().map_or(0, Body::wire_len);
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + body_len);
        out.extend_from_slice(&self.mode.code().to_ne_bytes());
        out.extend_from_slice(&self.op.code().to_ne_bytes());
        let mut lld = [0_u8; LLD_LEN];
        let name = self.lld.as_str().as_bytes();
        lld[..name.len()].copy_from_slice(name);
        out.extend_from_slice(&lld);
        // A body is at most MAX_BODY_LEN, so the total always fits in u32.
        let len = u32::try_from(REQUEST_HEADER_LEN + body_len).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.tid.to_ne_bytes());
        out.extend_from_slice(&self.sid.to_ne_bytes());
        out.extend_from_slice(&self.lun.to_ne_bytes());
        out.extend_from_slice(&self.cid.to_ne_bytes());
        out.extend_from_slice(&self.host_no.to_ne_bytes());
        out.extend_from_slice(&self.device_type.to_ne_bytes());
        let ac_dir: u32 = match self.ac_dir {
            AccountDirection::Incoming => 0,
            AccountDirection::Outgoing => 1,
        };
        out.extend_from_slice(&ac_dir.to_ne_bytes());
        out.extend_from_slice(&self.pack.to_ne_bytes());
        out.extend_from_slice(&u32::from(self.force).to_ne_bytes());
        if let Some(body) = &self.body {
            out.extend_from_slice(body.as_str().as_bytes());
            out.push(0);
        }
        out
    }

    /// Reads a request back from its bytes (what tgtd would see). The buffer must hold exactly
    /// one request.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let header = bytes
            .get(..REQUEST_HEADER_LEN)
            .ok_or(WireError::Truncated {
                what: "request header",
                need: REQUEST_HEADER_LEN,
                have: bytes.len(),
            })?;
        let u32_at = |off: usize| -> u32 {
            let mut b = [0_u8; 4];
            b.copy_from_slice(&header[off..off + 4]);
            u32::from_ne_bytes(b)
        };
        let u64_at = |off: usize| -> u64 {
            let mut b = [0_u8; 8];
            b.copy_from_slice(&header[off..off + 8]);
            u64::from_ne_bytes(b)
        };
        let lld_bytes = &header[8..8 + LLD_LEN];
        let lld_end = lld_bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Malformed("lld field without NUL"))?;
        if lld_bytes[lld_end..].iter().any(|&b| b != 0) {
            return Err(WireError::Malformed("lld field not NUL-padded"));
        }
        let lld = std::str::from_utf8(&lld_bytes[..lld_end])
            .map_err(|_| WireError::Malformed("lld field is not text"))
            .and_then(Lld::new)?;
        let len = u32_at(72);
        let len = usize::try_from(len).map_err(|_| WireError::Length(len))?;
        if len < REQUEST_HEADER_LEN || len - REQUEST_HEADER_LEN > MAX_BODY_LEN {
            return Err(WireError::Length(u32_at(72)));
        }
        if bytes.len() != len {
            return Err(WireError::Truncated {
                what: "request (len field vs bytes)",
                need: len,
                have: bytes.len(),
            });
        }
        let body = if len == REQUEST_HEADER_LEN {
            None
        } else {
            let raw = &bytes[REQUEST_HEADER_LEN..];
            let (last, text) = raw.split_last().ok_or(WireError::Malformed("empty body"))?;
            if *last != 0 {
                return Err(WireError::Malformed("body without its trailing NUL"));
            }
            let text =
                std::str::from_utf8(text).map_err(|_| WireError::Malformed("body is not text"))?;
            Some(Body::raw(text.to_string())?)
        };
        let ac_dir = match u32_at(108) {
            0 => AccountDirection::Incoming,
            1 => AccountDirection::Outgoing,
            _ => return Err(WireError::Malformed("ac_dir is neither 0 nor 1")),
        };
        let force = match u32_at(116) {
            0 => false,
            1 => true,
            _ => return Err(WireError::Malformed("force is neither 0 nor 1")),
        };
        Ok(Self {
            mode: Mode::from_code(u32_at(0)),
            op: Op::from_code(u32_at(4)),
            lld,
            tid: i32::from_ne_bytes(u32_at(76).to_ne_bytes()),
            sid: u64_at(80),
            lun: u64_at(88),
            cid: u32_at(96),
            host_no: u32_at(100),
            device_type: u32_at(104),
            ac_dir,
            pack: u32_at(112),
            force,
            body,
        })
    }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    /// strace of `tgtadm --lld iscsi --op new --mode target --tid 1
    /// -T iqn.2024-01.com.example:disk1` (tgt 1.0.85, Debian 12).
    #[rustfmt::skip]
    fn captured_target_new() -> Vec<u8> {
        let mut v = vec![
            0x01, 0, 0, 0,                      // mode = target
            0x00, 0, 0, 0,                      // op = new
            b'i', b's', b'c', b's', b'i', 0, 0, 0, // lld "iscsi"
        ];
        v.extend_from_slice(&[0; 56]);          // rest of lld
        v.extend_from_slice(&[
            0xa1, 0, 0, 0,                      // len = 161
            0x01, 0, 0, 0,                      // tid = 1
            0, 0, 0, 0, 0, 0, 0, 0,             // sid = 0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // lun = none
        ]);
        v.extend_from_slice(&[0; 24]);          // cid .. force
        v.extend_from_slice(b"targetname=iqn.2024-01.com.example:disk1\0");
        v
    }

    #[test]
    fn encodes_the_captured_target_new() {
        let mut req = Request::new(Mode::Target, Op::New);
        req.tid = 1;
        req.body = Body::params(&[("targetname", "iqn.2024-01.com.example:disk1")]).ok();
        assert_eq!(req.encode(), captured_target_new());
        assert_eq!(Request::decode(&captured_target_new()), Ok(req));
    }

    #[test]
    fn show_all_targets_has_no_body() {
        let req = Request::new(Mode::Target, Op::Show);
        let bytes = req.encode();
        assert_eq!(bytes.len(), 120);
        assert_eq!(&bytes[72..80], &[0x78, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Request::decode(&bytes), Ok(req));
    }

    #[test]
    fn decode_refuses_bad_lengths() {
        let mut bytes = captured_target_new();
        bytes.pop();
        assert!(matches!(
            Request::decode(&bytes),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Request::decode(&bytes[..50]),
            Err(WireError::Truncated { .. })
        ));
        let mut no_nul = captured_target_new();
        if let Some(last) = no_nul.last_mut() {
            *last = b'x';
        }
        assert!(matches!(
            Request::decode(&no_nul),
            Err(WireError::Malformed(_))
        ));
    }
}
