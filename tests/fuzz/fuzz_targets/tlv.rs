//! BER-TLV and DOLs from a contactless card's answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallybox_terminal::devices::contactless::tlv;

fuzz_target!(|data: &[u8]| {
    if let Ok(items) = tlv::parse(data) {
        for item in items {
            let _ = tlv::parse(item.value);
        }
    }
    let _ = tlv::parse_dol(data);
});
