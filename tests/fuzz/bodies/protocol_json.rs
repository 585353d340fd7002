//! MQTT payloads from terminals and from the hub: any bytes decode to a
//! message or a typed error, and a decoded message encodes to bytes that
//! decode to the same message.

use tallybox_core::protocol::{decode_request, decode_response, encode};

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    if let Ok(request) = decode_request(data) {
        let again = decode_request(&encode(&request).expect("a decoded request encodes"))
            .expect("an encoded request decodes");
        assert_eq!(again, request);
    }
    if let Ok(response) = decode_response(data) {
        let again = decode_response(&encode(&response).expect("a decoded response encodes"))
            .expect("an encoded response decodes");
        assert_eq!(again, response);
    }
}
