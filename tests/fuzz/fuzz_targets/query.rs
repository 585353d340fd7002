//! The receipts API's query string (`/api/v1/transactions?…`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallybox::store::query::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = serde_urlencoded::from_str::<Filter>(text) {
        let _ = filter.check();
    }
});
