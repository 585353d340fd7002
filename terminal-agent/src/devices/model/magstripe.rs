//! A card swiped through a magstripe reader, as the lines see it: the track's
//! bits with clocking zeros before and after, written in F2F at a hand's
//! uneven speed (jitter, speeding up or slowing down), either way round, with
//! chosen bits damaged — or as the clocked bits a reader chip hands over.

use std::time::Duration;

use crate::devices::magstripe::aba;
use crate::devices::magstripe::swipe::LineEvent;

#[derive(Debug, Clone, Default)]
pub struct SwipeStyle {
    /// Swiped back to front.
    pub reversed: bool,
    /// Each interval varies by up to this fraction (0.0 – 0.3).
    pub jitter: f64,
    /// The speed changes by this fraction from start to end (-0.5 – 1.0).
    pub speed_change: f64,
    /// Bits (counted on the stripe, clocking zeros included) read wrong:
    /// a worn stripe, dirt on the head, a magnet nearby.
    pub flip_bits: Vec<usize>,
    pub seed: u64,
}

/// Clocking zeros on each side of the data, as on a real card.
const CLOCKING: usize = 20;

/// The stripe's bits for `track` (`;…?`), as read in `style`'s direction.
pub fn stripe_bits(track: &str, style: &SwipeStyle) -> Option<Vec<bool>> {
    let mut bits = vec![false; CLOCKING];
    bits.extend(aba::encode(track)?);
    bits.extend([false; CLOCKING]);
    for &i in &style.flip_bits {
        if let Some(b) = bits.get_mut(i) {
            *b = !*b;
        }
    }
    if style.reversed {
        bits.reverse();
    }
    Some(bits)
}

/// A small deterministic generator, so a failing swipe can be replayed.
struct XorShift(u64);

impl XorShift {
    /// A value in -1.0 ..= 1.0.
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 2001) as f64 / 1000.0 - 1.0
    }
}

/// The raw F2F swipe: card in, a reversal edge per half or whole cell, card out.
pub fn f2f_swipe(
    track: &str,
    style: &SwipeStyle,
    bit_period: Duration,
    start: Duration,
) -> Option<Vec<LineEvent>> {
    let bits = stripe_bits(track, style)?;
    let mut rng = XorShift(style.seed | 1);
    let mut events = vec![LineEvent::Present(true, start)];
    let mut t = start + Duration::from_millis(2);
    events.push(LineEvent::Edge(t));
    let n = bits.len() as f64;
    for (i, &bit) in bits.iter().enumerate() {
        let speed = 1.0 + style.speed_change * i as f64 / n;
        let cell = bit_period.as_secs_f64() / speed;
        let halves: &[f64] = if bit { &[0.5, 0.5] } else { &[1.0] };
        for h in halves {
            let jitter = 1.0 + style.jitter * rng.next();
            t += Duration::from_secs_f64(cell * h * jitter);
            events.push(LineEvent::Edge(t));
        }
    }
    events.push(LineEvent::Present(false, t + Duration::from_millis(2)));
    Some(events)
}

/// The clocked swipe a reader chip hands over on its strobe and data lines.
pub fn strobe_swipe(track: &str, style: &SwipeStyle, start: Duration) -> Option<Vec<LineEvent>> {
    let bits = stripe_bits(track, style)?;
    let mut events = vec![LineEvent::Present(true, start)];
    events.extend(bits.into_iter().map(LineEvent::Bit));
    events.push(LineEvent::Present(false, start + Duration::from_millis(150)));
    Some(events)
}
