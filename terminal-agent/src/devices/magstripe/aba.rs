//! ABA track 2 (ISO/IEC 7811-2): 5-bit characters, four data bits least
//! significant first and an odd parity bit, between the start sentinel `;`
//! and the end sentinel `?`, followed by a longitudinal redundancy check
//! (LRC) character. A card can be swiped either way, so a stream that does
//! not start right is tried backwards.

/// Why a swipe could not be read. Each one is "swipe again" for the cashier;
/// they are told apart for the reader's health record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SwipeError {
    #[error("no data on the stripe (swiped too fast, or the stripe faces the wrong way)")]
    Blank,
    #[error("no start sentinel in either direction")]
    NoStart,
    #[error("parity error in character {0}")]
    Parity(usize),
    #[error("the stripe ended before the end sentinel")]
    NoEnd,
    #[error("LRC check failed")]
    Lrc,
    #[error("character {0} is not a track 2 character")]
    BadCharacter(usize),
}

const START: u8 = 0x0B;
const END: u8 = 0x0F;
/// Track 2 holds at most 40 characters, sentinels and LRC included.
const MAX_CHARS: usize = 40;

/// The five bits of `value` (0..16) with odd parity.
pub fn char_bits(value: u8) -> [bool; 5] {
    let mut bits = [false; 5];
    for (i, bit) in bits.iter_mut().take(4).enumerate() {
        *bit = value >> i & 1 == 1;
    }
    bits[4] = value.count_ones().is_multiple_of(2);
    bits
}

fn value_of(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        ':' => Some(0x0A),
        ';' => Some(START),
        '<' => Some(0x0C),
        '=' => Some(0x0D),
        '>' => Some(0x0E),
        '?' => Some(END),
        _ => None,
    }
}

/// The bits of a whole track, `;…?` plus LRC, as written on the stripe
/// (without the clocking zeros around it). `None` for a character track 2
/// cannot hold.
pub fn encode(track: &str) -> Option<Vec<bool>> {
    let mut values: Vec<u8> = track.chars().map(value_of).collect::<Option<_>>()?;
    if values.first() != Some(&START) || values.last() != Some(&END) {
        return None;
    }
    values.push(values.iter().fold(0, |lrc, v| lrc ^ v));
    Some(values.into_iter().flat_map(char_bits).collect())
}

/// Decodes a swipe's bits (clocking zeros included) in whichever direction
/// it was swiped, to the track text `;…?`.
pub fn decode(bits: &[bool]) -> Result<String, SwipeError> {
    if !bits.contains(&true) {
        return Err(SwipeError::Blank);
    }
    // Backwards, the LRC character can look like a start sentinel, so any
    // failure one way is worth a try the other way.
    decode_forward(bits).or_else(|forward| {
        let reversed: Vec<bool> = bits.iter().rev().copied().collect();
        match decode_forward(&reversed) {
            Ok(track) => Ok(track),
            Err(SwipeError::NoStart) => Err(forward),
            Err(backward) if forward == SwipeError::NoStart => Err(backward),
            Err(_) => Err(forward),
        }
    })
}

fn decode_forward(bits: &[bool]) -> Result<String, SwipeError> {
    let first_one = bits.iter().position(|&b| b).ok_or(SwipeError::Blank)?;
    let mut chars = bits[first_one..].chunks(5);
    let mut read = |index: usize| -> Result<u8, SwipeError> {
        let c = chars.next().filter(|c| c.len() == 5).ok_or(SwipeError::NoEnd)?;
        if c.iter().filter(|&&b| b).count() % 2 != 1 {
            return Err(SwipeError::Parity(index));
        }
        Ok(c[..4].iter().enumerate().map(|(i, &b)| (b as u8) << i).sum())
    };
    if read(0)? != START {
        return Err(SwipeError::NoStart);
    }
    let mut text = String::from(";");
    let mut lrc = START;
    for index in 1..MAX_CHARS {
        let value = read(index)?;
        lrc ^= value;
        match value {
            END => {
                text.push('?');
                return if read(index + 1)? == lrc {
                    Ok(text)
                } else {
                    Err(SwipeError::Lrc)
                };
            }
            0..=9 => text.push((b'0' + value) as char),
            0x0D => text.push('='),
            _ => return Err(SwipeError::BadCharacter(index)),
        }
    }
    Err(SwipeError::NoEnd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACK: &str = ";6222021000000005=28121010000012345678?";

    fn with_clocking(bits: Vec<bool>) -> Vec<bool> {
        let mut all = vec![false; 15];
        all.extend(bits);
        all.extend([false; 15]);
        all
    }

    #[test]
    fn a_track_reads_back_both_ways() {
        let bits = with_clocking(encode(TRACK).unwrap());
        assert_eq!(decode(&bits).unwrap(), TRACK);
        let reversed: Vec<bool> = bits.into_iter().rev().collect();
        assert_eq!(decode(&reversed).unwrap(), TRACK);
    }

    #[test]
    fn start_sentinel_is_the_standard_pattern() {
        // ';' = 1101 + parity 0, LSB first as on the card.
        assert_eq!(char_bits(START), [true, true, false, true, false]);
        assert_eq!(char_bits(END), [true, true, true, true, true]);
    }

    #[test]
    fn one_flipped_bit_is_caught_by_parity() {
        let mut bits = with_clocking(encode(TRACK).unwrap());
        bits[15 + 5 * 7 + 2] ^= true;
        assert_eq!(decode(&bits), Err(SwipeError::Parity(7)));
    }

    #[test]
    fn a_flipped_bit_with_its_parity_is_caught_by_the_lrc() {
        // Flip bit 0 of a digit and its parity bit: parity holds, LRC does not.
        let mut bits = with_clocking(encode(TRACK).unwrap());
        bits[15 + 5 * 3] ^= true;
        bits[15 + 5 * 3 + 4] ^= true;
        assert_eq!(decode(&bits), Err(SwipeError::Lrc));
    }

    #[test]
    fn blank_and_cut_short_swipes_say_so() {
        assert_eq!(decode(&[false; 60]), Err(SwipeError::Blank));
        let bits = with_clocking(encode(TRACK).unwrap());
        assert_eq!(decode(&bits[..15 + 5 * 10]), Err(SwipeError::NoEnd));
        assert!(encode(";12A4?").is_none());
    }
}
