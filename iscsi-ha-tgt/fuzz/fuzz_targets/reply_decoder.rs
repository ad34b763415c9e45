//! tgtd's reply as the client reads it: header, then the text its length announces.
#![no_main]

use iscsi_ha_tgt::wire::{Reply, ReplyHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = ReplyHeader::decode(data) {
        let _ = header.text_len();
    }
    if let Ok(reply) = Reply::decode(data) {
        // A decoded reply encodes back to the same bytes, but for the text's NUL handling.
        let again = Reply::decode(&reply.encode());
        assert_eq!(again.as_ref().map(|r| &r.text), Ok(&reply.text));
    }
});
