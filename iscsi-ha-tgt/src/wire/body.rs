//! The request body: tgtadm's `key=value` list, joined by `,`, sent with one trailing NUL.

use super::WireError;

/// Largest body tgtd reads (`MAX_MGT_BUFSIZE`), trailing NUL included. A larger one makes tgtd
/// drop the connection without a reply.
pub const MAX_BODY_LEN: usize = 8192;

/// A request body, checked: no NUL inside, and at most [`MAX_BODY_LEN`] bytes with its NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    /// `key=value` pairs joined by `,` (how tgtadm sends `path=`, `targetname=`, `user=`...).
    ///
    /// Keys must be non-empty and free of `,`, `=`, NUL and spaces; values free of `,` and NUL,
    /// since tgtd splits on `,` and the C side stops at NUL.
    pub fn params(pairs: &[(&str, &str)]) -> Result<Self, WireError> {
        let mut text = String::new();
        for (i, (key, value)) in pairs.iter().enumerate() {
            check_pair(key, value)?;
            if i > 0 {
                text.push(',');
            }
            text.push_str(key);
            text.push('=');
            text.push_str(value);
        }
        Self::raw(text)
    }

    /// tgtadm's `--params` form for logical-unit and target updates: `targetOps k=v,k=v,`.
    pub fn target_ops(pairs: &[(&str, &str)]) -> Result<Self, WireError> {
        let mut text = String::from("targetOps ");
        for (key, value) in pairs {
            check_pair(key, value)?;
            text.push_str(key);
            text.push('=');
            text.push_str(value);
            text.push(',');
        }
        Self::raw(text)
    }

    /// A body from its text, as decoded from the wire.
    pub fn raw(text: String) -> Result<Self, WireError> {
        if text.contains('\0') {
            return Err(WireError::Param {
                text,
                reason: "a NUL byte inside the body",
            });
        }
        if text.len() + 1 > MAX_BODY_LEN {
            return Err(WireError::BodyTooLong {
                len: text.len() + 1,
                max: MAX_BODY_LEN,
            });
        }
        Ok(Self(text))
    }

    /// The text, without the NUL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length on the wire: the text and its NUL.
    pub fn wire_len(&self) -> usize {
        self.0.len() + 1
    }
}

fn check_pair(key: &str, value: &str) -> Result<(), WireError> {
    let key_ok = !key.is_empty() && !key.contains([',', '=', '\0', ' ']);
    if !key_ok {
        return Err(WireError::Param {
            text: key.to_string(),
            reason: "a parameter name must be non-empty, without ',', '=', spaces or NUL",
        });
    }
    if value.contains([',', '\0']) {
        return Err(WireError::Param {
            text: format!("{key}={value}"),
            reason: "a parameter value cannot hold ',' or NUL: tgtd splits parameters on ','",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_tgtadm() {
        let body = Body::params(&[("path", "/p"), ("bstype", "rdwr")]);
        assert_eq!(body.map(|b| b.0), Ok("path=/p,bstype=rdwr".to_string()));
        let ops = Body::target_ops(&[("readonly", "1"), ("vendor_id", "ACME")]);
        assert_eq!(
            ops.map(|b| b.0),
            Ok("targetOps readonly=1,vendor_id=ACME,".to_string())
        );
    }

    #[test]
    fn refuses_commas_nul_and_oversize() {
        assert!(matches!(
            Body::params(&[("path", "/a,b")]),
            Err(WireError::Param { .. })
        ));
        assert!(matches!(
            Body::params(&[("pa=th", "/a")]),
            Err(WireError::Param { .. })
        ));
        assert!(matches!(
            Body::params(&[("path", "/a\0")]),
            Err(WireError::Param { .. })
        ));
        let big = "x".repeat(MAX_BODY_LEN);
        assert!(matches!(
            Body::params(&[("path", &big)]),
            Err(WireError::BodyTooLong { .. })
        ));
        let fits = "x".repeat(MAX_BODY_LEN - 1 - "path=".len());
        assert_eq!(
            Body::params(&[("path", &fits)]).map(|b| b.wire_len()),
            Ok(MAX_BODY_LEN)
        );
    }
}
