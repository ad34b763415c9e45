//! A request as tgtd would read it; whatever decodes must encode back to the same bytes.
#![no_main]

use iscsi_ha_tgt::wire::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        assert_eq!(request.encode(), data);
        let _ = iscsi_ha_tgt::guard::check_request(&request);
    }
});
