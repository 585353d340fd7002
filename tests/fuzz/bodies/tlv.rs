//! BER-TLV and DOLs from a contactless card's answers.

use tallybox_terminal::devices::contactless::tlv;

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    if let Ok(items) = tlv::parse(data) {
        for item in items {
            let _ = tlv::parse(item.value);
        }
    }
    let _ = tlv::parse_dol(data);
}
