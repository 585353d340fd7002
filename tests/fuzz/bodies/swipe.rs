//! What the magnetic reader's GPIO lines do (noise, half swipes, reversed
//! swipes, a card left in the slot), through the swipe decoder: F2F, then
//! ABA, then track 2. Each input byte is one line event: `00dddddd` the data
//! line reversed `d` × 25 µs after the last event, `01xxxxxb` a strobed bit
//! `b`, `10xxxxxp` the card-present line went to `p`, `11tttttt` the clock
//! ticked `t` × 100 ms later (a card left in the slot).

use std::time::Duration;

use tallybox_terminal::devices::magstripe::swipe::{LineEvent, SwipeDecoder};
use tallybox_terminal::devices::magstripe::{aba, f2f, read_card};

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let mut decoder = SwipeDecoder::new(Duration::from_secs(3));
    let mut at = Duration::ZERO;
    let mut intervals = Vec::new();
    for &b in data {
        let event = match b >> 6 {
            0 => {
                let step = u32::from(b & 0x3F) * 25;
                intervals.push(step);
                at += Duration::from_micros(step.into());
                LineEvent::Edge(at)
            }
            1 => LineEvent::Bit(b & 1 == 1),
            2 => LineEvent::Present(b & 1 == 1, at),
            _ => {
                at += Duration::from_millis(u64::from(b & 0x3F) * 100);
                LineEvent::Tick(at)
            }
        };
        let _ = decoder.feed(event);
    }
    // The decoding steps on their own as well.
    let _ = read_card(aba::decode(&f2f::decode(&intervals)));
}
