//! Netlink attributes the way DRBD lays them out: every top-level attribute is a nested set,
//! every set holds typed fields, and field types carry DRBD's "mandatory" bit.
//!
//! Framing (length, alignment, the type word) is read through `netlink-packet-core`'s checked
//! [`NlaBuffer`](netlink_packet_core::NlaBuffer) views and written through its [`Nla`] trait;
//! this module adds what DRBD needs on top: masking the flag bits off the type, skipping the
//! u64 pad attributes, and turning the value bytes into typed fields with an error, never a
//! panic, when they do not fit.

use netlink_packet_core::{Emitable, Nla, NlasIterator};

use super::WireError;

/// `DRBD_GENLA_F_MANDATORY`: set on a field's type when the receiver must understand it.
/// The same bit is `NLA_F_NET_BYTEORDER` in generic netlink; DRBD never means byte order.
pub const DRBD_GENLA_F_MANDATORY: u16 = 0x4000;
/// `NLA_F_NESTED`, which kernels since 5.2 may set on nests.
pub const NLA_F_NESTED: u16 = 0x8000;
/// The bits of `nla_type` that hold the attribute number.
pub const NLA_TYPE_MASK: u16 = 0x3FFF;
/// Attribute number 0: the pad attribute `nla_put_64bit` may insert before a u64.
pub const NLA_PAD: u16 = 0;

/// An attribute kept as it came: its number, its flag bits and its value bytes. Unknown fields
/// and sets travel as this, so they survive a decode/encode round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttr {
    /// The attribute number, flag bits masked off.
    pub number: u16,
    /// The flag bits as received (`DRBD_GENLA_F_MANDATORY`, `NLA_F_NESTED`).
    pub flags: u16,
    /// The value bytes, without padding.
    pub value: Vec<u8>,
}

/// One attribute to send: number, flag bits and a typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The attribute number (without flag bits).
    pub number: u16,
    /// Flag bits to set in the type word.
    pub flags: u16,
    /// The value.
    pub value: FieldValue,
}

/// The value of an attribute to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// One byte (DRBD's flag fields are `NLA_U8`).
    U8(u8),
    /// Four bytes, host order.
    U32(u32),
    /// Eight bytes, host order.
    U64(u64),
    /// Raw bytes (strings already carry their NUL).
    Bytes(Vec<u8>),
    /// A nested attribute sequence.
    Nested(Vec<Field>),
}

impl Nla for Field {
    fn value_len(&self) -> usize {
        match &self.value {
            FieldValue::U8(_) => 1,
            FieldValue::U32(_) => 4,
            FieldValue::U64(_) => 8,
            FieldValue::Bytes(b) => b.len(),
            FieldValue::Nested(fields) => fields.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        (self.number & NLA_TYPE_MASK) | self.flags
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match &self.value {
            FieldValue::U8(v) => buffer.copy_from_slice(&[*v]),
            FieldValue::U32(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            FieldValue::U64(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            FieldValue::Bytes(b) => buffer.copy_from_slice(b),
            FieldValue::Nested(fields) => fields.as_slice().emit(buffer),
        }
    }
}

impl Field {
    /// The encoded size including header and padding.
    pub fn encoded_len(&self) -> usize {
        self.buffer_len()
    }

    /// Whether every attribute (this one and all nested) fits the 16-bit length word.
    pub fn fits(&self) -> bool {
        let own = self.value_len() + 4 <= usize::from(u16::MAX);
        match &self.value {
            FieldValue::Nested(fields) => own && fields.iter().all(Field::fits),
            _ => own,
        }
    }
}

impl From<&RawAttr> for Field {
    fn from(raw: &RawAttr) -> Self {
        Field {
            number: raw.number,
            flags: raw.flags,
            value: FieldValue::Bytes(raw.value.clone()),
        }
    }
}

/// Splits `bytes` into attributes, masking flag bits off the type and skipping pad attributes.
pub fn parse_attrs(set: &'static str, bytes: &[u8]) -> Result<Vec<RawAttr>, WireError> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(bytes) {
        let nla = nla.map_err(|e| WireError::Framing {
            set,
            reason: e.to_string(),
        })?;
        let number = nla.kind();
        if number == NLA_PAD {
            continue;
        }
        let mut flags = 0;
        if nla.network_byte_order_flag() {
            flags |= DRBD_GENLA_F_MANDATORY;
        }
        if nla.nested_flag() {
            flags |= NLA_F_NESTED;
        }
        out.push(RawAttr {
            number,
            flags,
            value: nla.value().to_vec(),
        });
    }
    Ok(out)
}

/// Encodes a sequence of attributes into bytes.
pub fn emit_fields(fields: &[Field]) -> Vec<u8> {
    let mut buf = vec![0u8; fields.buffer_len()];
    fields.emit(&mut buf);
    buf
}

/// A Rust type a DRBD field decodes into and encodes from.
pub trait FieldType: Sized {
    /// Decodes the value bytes of field `field` in set `set`.
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError>;
    /// The value to encode.
    fn encode(&self) -> FieldValue;
}

fn fixed<const N: usize>(
    set: &'static str,
    field: &'static str,
    value: &[u8],
) -> Result<[u8; N], WireError> {
    value.try_into().map_err(|_| WireError::FieldLength {
        set,
        field,
        expected: N,
        got: value.len(),
    })
}

impl FieldType for bool {
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        // DRBD's __flg_field is NLA_U8 holding 0 or 1. A few yes/no fields are u32 in one
        // dialect and flags in the other (the peer device's resync-suspended reasons), so
        // four bytes are read as a flag too.
        match value.len() {
            4 => Ok(u32::decode(set, field, value)? != 0),
            _ => {
                let [b] = fixed::<1>(set, field, value)?;
                Ok(b != 0)
            }
        }
    }
    fn encode(&self) -> FieldValue {
        FieldValue::U8(u8::from(*self))
    }
}

impl FieldType for u32 {
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        Ok(u32::from_ne_bytes(fixed::<4>(set, field, value)?))
    }
    fn encode(&self) -> FieldValue {
        FieldValue::U32(*self)
    }
}

impl FieldType for i32 {
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        Ok(i32::from_ne_bytes(fixed::<4>(set, field, value)?))
    }
    fn encode(&self) -> FieldValue {
        FieldValue::U32(u32::from_ne_bytes(self.to_ne_bytes()))
    }
}

impl FieldType for u64 {
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        Ok(u64::from_ne_bytes(fixed::<8>(set, field, value)?))
    }
    fn encode(&self) -> FieldValue {
        FieldValue::U64(*self)
    }
}

impl FieldType for String {
    fn decode(set: &'static str, field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        // NLA_NUL_STRING: text up to the first NUL; tolerate a missing NUL like nla_strscpy.
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        String::from_utf8(value[..end].to_vec()).map_err(|_| WireError::BadString { set, field })
    }
    fn encode(&self) -> FieldValue {
        let mut bytes = self.as_bytes().to_vec();
        bytes.push(0);
        FieldValue::Bytes(bytes)
    }
}

impl FieldType for Vec<u8> {
    fn decode(_set: &'static str, _field: &'static str, value: &[u8]) -> Result<Self, WireError> {
        Ok(value.to_vec())
    }
    fn encode(&self) -> FieldValue {
        FieldValue::Bytes(self.clone())
    }
}

/// Declares a DRBD attribute set: a struct of optional typed fields plus the unknown ones,
/// with `decode` (from a nested attribute's value) and `fields` (to encode).
macro_rules! drbd_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $set_name:literal {
            $(
                $(#[$fmeta:meta])*
                $field:ident: $ty:ty = $number:literal, $flags:expr;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: Option<$ty>,
            )*
            /// Fields this version of the adapter does not know, kept as they came.
            pub unknown: Vec<$crate::wire::attr::RawAttr>,
        }

        impl $name {
            /// The set's name in DRBD's headers.
            pub const SET_NAME: &'static str = $set_name;

            /// Decodes the set from the value of its nested attribute.
            pub fn decode(bytes: &[u8]) -> Result<Self, $crate::wire::WireError> {
                use $crate::wire::attr::FieldType;
                let mut out = Self::default();
                for raw in $crate::wire::attr::parse_attrs($set_name, bytes)? {
                    match raw.number {
                        $(
                            $number => {
                                out.$field = Some(<$ty>::decode(
                                    $set_name,
                                    stringify!($field),
                                    &raw.value,
                                )?)
                            }
                        )*
                        _ => out.unknown.push(raw),
                    }
                }
                Ok(out)
            }

            /// The set's fields, ready to nest under its top-level attribute. Known fields
            /// carry the flag bits DRBD's headers declare for them.
            pub fn fields(&self) -> Vec<$crate::wire::attr::Field> {
                #[allow(unused_imports)]
                use $crate::wire::attr::FieldType;
                let mut out = Vec::new();
                $(
                    if let Some(v) = &self.$field {
                        out.push($crate::wire::attr::Field {
                            number: $number,
                            flags: $flags,
                            value: v.encode(),
                        });
                    }
                )*
                out.extend(self.unknown.iter().map($crate::wire::attr::Field::from));
                out
            }
        }
    };
}

pub(crate) use drbd_set;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_bits_are_masked_and_recorded() {
        // type 0xC002: nested + mandatory + number 2, value "r0\0", padded to 8.
        let bytes = [7, 0, 0x02, 0xC0, b'r', b'0', 0, 0];
        let attrs = parse_attrs("test", &bytes).unwrap();
        assert_eq!(
            attrs,
            vec![RawAttr {
                number: 2,
                flags: DRBD_GENLA_F_MANDATORY | NLA_F_NESTED,
                value: b"r0\0".to_vec()
            }]
        );
    }

    #[test]
    fn pad_attributes_are_skipped() {
        // pad (type 0, len 4) then u64 attribute 3 = 42.
        let mut bytes = vec![4, 0, 0, 0, 12, 0, 3, 0x40];
        bytes.extend_from_slice(&42u64.to_ne_bytes());
        let attrs = parse_attrs("test", &bytes).unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].number, 3);
        assert_eq!(u64::decode("t", "f", &attrs[0].value).unwrap(), 42);
    }

    #[test]
    fn a_length_beyond_the_buffer_is_an_error() {
        let bytes = [200, 0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            parse_attrs("test", &bytes),
            Err(WireError::Framing { .. })
        ));
    }

    #[test]
    fn a_wrong_sized_u32_is_an_error() {
        assert_eq!(
            u32::decode("S", "f", &[1, 2, 3]),
            Err(WireError::FieldLength {
                set: "S",
                field: "f",
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn emitted_fields_carry_flags_and_padding() {
        let f = Field {
            number: 2,
            flags: DRBD_GENLA_F_MANDATORY,
            value: "r0".to_string().encode(),
        };
        assert_eq!(emit_fields(&[f]), vec![7, 0, 0x02, 0x40, b'r', b'0', 0, 0]);
    }
}
