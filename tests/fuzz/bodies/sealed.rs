//! A sealed message in a paired terminal's name: whatever the bytes, it opens
//! only if sealed with the key, and a sealed message opens to what was sealed.

use tallybox_core::seal::{open, seal, Direction, Key};

const KEY: Key = [7; 32];

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    if let Ok((_, inner)) = open(&KEY, Direction::ToHub, "T1", data) {
        // Only a message sealed with the key can open; no forgery by chance.
        let again = seal(&KEY, Direction::ToHub, "T1", 1, &inner);
        assert!(open(&KEY, Direction::ToHub, "T1", &again).is_ok());
    }
    let sealed = seal(&KEY, Direction::ToTerminal, "T1", 42, data);
    assert_eq!(
        open(&KEY, Direction::ToTerminal, "T1", &sealed).unwrap(),
        (42, data.to_vec())
    );
    assert!(open(&KEY, Direction::ToHub, "T1", &sealed).is_err(), "reflected");
}
