//! USB magstripe readers that type like a keyboard (HID): a swipe arrives as
//! key presses — usually track 1 `%B…^…?`, then track 2 `;…=…?`, then Enter.
//! This turns Linux input key codes into the track 2 text; the evdev glue
//! lives in the hardware backend.

/// Linux input key codes (linux/input-event-codes.h) the readers send.
pub mod key {
    pub const K1: u16 = 2;
    pub const K0: u16 = 11;
    pub const MINUS: u16 = 12;
    pub const EQUAL: u16 = 13;
    pub const ENTER: u16 = 28;
    pub const SEMICOLON: u16 = 39;
    pub const LEFTSHIFT: u16 = 42;
    pub const SLASH: u16 = 53;
    pub const RIGHTSHIFT: u16 = 54;
    pub const KPENTER: u16 = 96;
}

/// A swipe longer than this without Enter is not a card.
const MAX_TYPED: usize = 256;

#[derive(Default)]
pub struct HidDecoder {
    shift: bool,
    typed: String,
}

impl HidDecoder {
    /// One key event (`down`: pressed). On Enter, the track 2 text found in
    /// what was typed, or `Err` with nothing usable.
    pub fn key(&mut self, code: u16, down: bool) -> Option<Result<String, super::aba::SwipeError>> {
        if matches!(code, key::LEFTSHIFT | key::RIGHTSHIFT) {
            self.shift = down;
            return None;
        }
        if !down {
            return None;
        }
        if matches!(code, key::ENTER | key::KPENTER) {
            let typed = std::mem::take(&mut self.typed);
            return Some(track2_in(&typed));
        }
        if let Some(c) = self.char_of(code) {
            if self.typed.len() < MAX_TYPED {
                self.typed.push(c);
            }
        }
        None
    }

    fn char_of(&self, code: u16) -> Option<char> {
        Some(match (code, self.shift) {
            (key::K0, false) => '0',
            (c @ key::K1..=10, false) => (b'0' + (c - key::K1 + 1) as u8) as char,
            (key::SEMICOLON, false) => ';',
            (key::EQUAL, false) => '=',
            (key::SLASH, true) => '?',
            (6, true) => '%',
            (7, true) => '^',
            _ => '#', // a character track 2 never holds (track 1 letters)
        })
    }
}

fn track2_in(typed: &str) -> Result<String, super::aba::SwipeError> {
    use super::aba::SwipeError;
    let start = typed.find(';').ok_or(if typed.is_empty() {
        SwipeError::Blank
    } else {
        SwipeError::NoStart
    })?;
    let rest = &typed[start..];
    let end = rest.find('?').ok_or(SwipeError::NoEnd)?;
    Ok(rest[..=end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_text(d: &mut HidDecoder, text: &str) -> Option<Result<String, super::super::aba::SwipeError>> {
        let mut out = None;
        for c in text.chars() {
            let (code, shift) = match c {
                '0' => (key::K0, false),
                '1'..='9' => (key::K1 + (c as u16 - '1' as u16), false),
                ';' => (key::SEMICOLON, false),
                '=' => (key::EQUAL, false),
                '?' => (key::SLASH, true),
                '%' => (6, true),
                '^' => (7, true),
                '\n' => (key::ENTER, false),
                _ => (30, c.is_ascii_uppercase()), // a letter key
            };
            if shift {
                d.key(key::LEFTSHIFT, true);
            }
            out = d.key(code, true).or(out);
            d.key(code, false);
            if shift {
                d.key(key::LEFTSHIFT, false);
            }
        }
        out
    }

    #[test]
    fn track_2_is_picked_out_of_a_two_track_swipe() {
        let mut d = HidDecoder::default();
        let out = type_text(
            &mut d,
            "%B6222021000000005^ZHANG/SAN^2812101?;6222021000000005=2812101000001?\n",
        );
        assert_eq!(out, Some(Ok(";6222021000000005=2812101000001?".into())));
    }

    #[test]
    fn a_swipe_without_track_2_is_an_error_not_a_card() {
        let mut d = HidDecoder::default();
        assert!(matches!(type_text(&mut d, "%BNAME^?\n"), Some(Err(_))));
        assert!(matches!(type_text(&mut d, ";6222\n"), Some(Err(_))));
    }
}
