//! Track 2 text as a reader (or a keyboard-wedge reader) delivers it.

use tallybox_core::card::track2::Track2;
use tallybox_core::card::{CardRead, EntryMode};

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(track) = Track2::parse(text) {
        let card = CardRead::from_track2(&track, EntryMode::Swipe);
        // Only the last four digits ever show.
        let shown = card.pan.masked().to_string();
        assert!(!shown.contains(card.pan.digits()), "{shown}");
    }
}
