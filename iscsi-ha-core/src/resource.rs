//! Names of replicated resources.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest resource name DRBD accepts (its netlink `resource_name` field holds 128 bytes with
/// the terminating NUL).
pub const MAX_RESOURCE_NAME_LEN: usize = 127;

/// A replicated resource's name, checked to be one DRBD would accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceName(String);

/// Why a string is not a usable resource name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceNameError {
    /// The name is empty.
    #[error("resource name is empty")]
    Empty,
    /// The name is longer than DRBD allows.
    #[error("resource name {name:?} is {len} bytes long; at most {MAX_RESOURCE_NAME_LEN} allowed")]
    TooLong {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character drbdadm's parser or the kernel would refuse.
    #[error("resource name {name:?} holds {found:?}; use letters, digits, '_', '-', '.' and '+' only, not starting with '-'")]
    BadCharacter {
        /// The offending name.
        name: String,
        /// The first refused character.
        found: char,
    },
}

impl ResourceName {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, ResourceNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(ResourceNameError::Empty);
        }
        if name.len() > MAX_RESOURCE_NAME_LEN {
            let len = name.len();
            return Err(ResourceNameError::TooLong { name, len });
        }
        let refused = name.char_indices().find(|&(i, c)| {
            let allowed = c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+');
            !allowed || (i == 0 && c == '-')
        });
        if let Some((_, found)) = refused {
            return Err(ResourceNameError::BadCharacter { name, found });
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceName {
    type Error = ResourceNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ResourceName> for String {
    fn from(value: ResourceName) -> Self {
        value.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for name in ["iscsi1", "r0", "data.vol-2", "a_b+c"] {
            assert_eq!(
                ResourceName::new(name).map(|n| n.to_string()),
                Ok(name.to_string())
            );
        }
    }

    #[test]
    fn refuses_what_drbd_refuses() {
        assert_eq!(ResourceName::new(""), Err(ResourceNameError::Empty));
        assert!(matches!(
            ResourceName::new("a/b"),
            Err(ResourceNameError::BadCharacter { found: '/', .. })
        ));
        assert!(matches!(
            ResourceName::new("has space"),
            Err(ResourceNameError::BadCharacter { found: ' ', .. })
        ));
        assert!(matches!(
            ResourceName::new("-x"),
            Err(ResourceNameError::BadCharacter { found: '-', .. })
        ));
        assert!(matches!(
            ResourceName::new("x".repeat(128)),
            Err(ResourceNameError::TooLong { len: 128, .. })
        ));
    }
}
