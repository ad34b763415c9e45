//! Any bytes through the netlink decoders: datagram framing, DRBD messages, events in both
//! dialects, and nlctrl replies. They may return errors; they must not panic.
#![no_main]

use iscsi_ha_drbd::events::events_from_datagram;
use iscsi_ha_drbd::family::parse_getfamily_reply;
use iscsi_ha_drbd::state::Dialect;
use iscsi_ha_drbd::wire::{decode_datagram, encode_request, Frame, RequestFlags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The family id the lab's kernel used, and the one in the first message's type field.
    for family in [
        32u16,
        data.get(4..6)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]])),
    ] {
        if let Ok(frames) = decode_datagram(data, family) {
            for frame in frames {
                if let Frame::Drbd { seq, message, .. } = frame {
                    // What decodes must re-encode and decode to the same value.
                    let bytes = encode_request(family, seq, RequestFlags::Request, &message)
                        .expect("a decoded message re-encodes");
                    let again = decode_datagram(&bytes, family).expect("re-encoded bytes decode");
                    assert!(matches!(&again[0], Frame::Drbd { message: m, .. } if *m == message));
                }
            }
        }
        let _ = events_from_datagram(data, family, Dialect::V84);
        let _ = events_from_datagram(data, family, Dialect::V9);
    }
    let _ = parse_getfamily_reply(data);
});
