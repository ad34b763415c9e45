//! Every `show` parser on any text: total, never a panic.
#![no_main]

use iscsi_ha_tgt::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = iscsi_ha_tgt::wire::decode_text(data);
    let (targets, _) = show::parse_targets(&text);
    for t in &targets {
        let _ = iscsi_ha_tgt::adapter::observe(t);
    }
    let _ = show::parse_system(&text);
    let _ = show::parse_accounts(&text);
    let _ = show::parse_connections(&text);
    let _ = show::parse_params(&text);
    let _ = show::parse_portals(&text);
});
