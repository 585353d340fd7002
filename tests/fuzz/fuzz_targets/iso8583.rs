//! Bytes from the acquirer's TCP link: cut into frames, each decoded; a
//! message that decodes encodes back to a message with the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallybox::acquirer::iso8583::codec::{FrameReader, Message};

fuzz_target!(|data: &[u8]| {
    let mut frames = FrameReader::default();
    // Split anywhere: the reader must not care how reads cut the stream.
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    frames.push(&data[..cut]);
    frames.push(&data[cut..]);
    while let Ok(Some(frame)) = frames.next_frame() {
        check(&frame);
    }
    check(data);
});

fn check(bytes: &[u8]) {
    if let Ok(message) = Message::decode(bytes) {
        let again = Message::decode(&message.encode()).expect("an encoded message decodes");
        assert_eq!(again.mti, message.mti);
        assert!(again.fields().eq(message.fields()));
        for n in message.fields() {
            assert_eq!(again.get(n), message.get(n));
        }
    }
}
