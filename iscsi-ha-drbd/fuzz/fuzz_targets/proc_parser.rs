//! Any text through the /proc/drbd parser: errors allowed, panics not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = iscsi_ha_drbd::procfs::parse(text);
    }
});
