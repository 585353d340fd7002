//! F2F (Aiken biphase), how bits sit on a magnetic stripe: a flux reversal at
//! every bit boundary, and one more in the middle of a `1`. A hand swipe is
//! never at constant speed, so the decoder learns the bit period from the
//! clocking zeros before the data and keeps tracking it bit by bit.

/// Decodes the times between successive flux reversals (any unit) into bits.
/// Returns the bits read before the pattern broke down.
pub fn decode(intervals: &[u32]) -> Vec<bool> {
    // Learn the period from the first few intervals: the card starts with zeros.
    let lead = intervals.iter().take(8).copied().collect::<Vec<_>>();
    if lead.len() < 4 {
        return Vec::new();
    }
    let mut sorted = lead.clone();
    sorted.sort_unstable();
    let mut period = sorted[sorted.len() / 2] as f64;
    let mut bits = Vec::with_capacity(intervals.len());
    let mut i = 0;
    while i < intervals.len() {
        let t = intervals[i] as f64;
        if t > period * 0.75 {
            // A whole cell without a middle reversal: 0.
            bits.push(false);
            period = period * 0.75 + t * 0.25;
            i += 1;
        } else {
            // Two half cells: 1.
            let Some(&next) = intervals.get(i + 1) else { break };
            let cell = t + next as f64;
            if next as f64 > period * 0.75 {
                break; // a half cell not followed by a half cell: noise
            }
            bits.push(true);
            period = period * 0.75 + cell * 0.25;
            i += 2;
        }
    }
    bits
}
