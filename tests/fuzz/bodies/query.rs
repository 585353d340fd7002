//! The receipts API's query string (`/api/v1/transactions?…`).

use tallybox::store::query::Filter;

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = serde_urlencoded::from_str::<Filter>(text) {
        let _ = filter.check();
    }
}
