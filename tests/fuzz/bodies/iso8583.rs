//! Bytes from the acquirer's TCP link: cut into frames, each decoded in
//! both layouts (China UnionPay's after its TPDU and header); a message that
//! decodes encodes back to a message with the same fields.

use tallybox::acquirer::iso8583::codec::{Dialect, FrameReader};

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let mut frames = FrameReader::default();
    // Split anywhere: the reader must not care how reads cut the stream.
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    frames.push(&data[..cut]);
    frames.push(&data[cut..]);
    while let Ok(Some(frame)) = frames.next_frame() {
        check(&frame);
    }
    check(data);
}

fn check(frame: &[u8]) {
    for d in [Dialect::Iso1987, Dialect::CupPos] {
        let Ok(bytes) = d.unwrap(frame) else {
            continue;
        };
        if let Ok(message) = d.decode(bytes) {
            let encoded = d.encode(&message).expect("a decoded message encodes");
            let again = d.decode(&encoded).expect("an encoded message decodes");
            assert_eq!(again, message, "{}", d.name());
        }
    }
}
