//! The 4×4 membrane keypad on eight GPIO lines: rows driven low one at a
//! time, columns read with pull-ups (a pressed key pulls its column low).
//! [`Keypad::scan`] is called every few milliseconds; a key counts once it
//! reads the same for [`DEBOUNCE_SCANS`] scans in a row, is reported once per
//! press however long it is held, and a reading that a diode-less matrix
//! cannot tell apart from a phantom ("ghost") key is ignored.
//!
//! ```text
//!        C0  C1  C2  C3
//!   R0    1   2   3   A
//!   R1    4   5   6   B
//!   R2    7   8   9   C
//!   R3    *   0   #   D
//! ```

use std::time::Duration;

use embedded_hal::digital::{InputPin, OutputPin};

/// One key of the 4×4 keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Digit(u8),
    /// Backspace.
    Star,
    /// Enter.
    Hash,
    /// Sale.
    A,
    /// Supervisor menu: void, refund.
    B,
    /// Cancel.
    C,
    /// Menu.
    D,
}

impl Key {
    /// The key's label, as printed on the keypad.
    pub fn to_char(self) -> char {
        match self {
            Key::Digit(d) => (b'0' + d) as char,
            Key::Star => '*',
            Key::Hash => '#',
            Key::A => 'A',
            Key::B => 'B',
            Key::C => 'C',
            Key::D => 'D',
        }
    }

    pub fn from_char(c: char) -> Option<Key> {
        Some(match c {
            '0'..='9' => Key::Digit(c as u8 - b'0'),
            '*' => Key::Star,
            '#' => Key::Hash,
            'A' | 'a' => Key::A,
            'B' | 'b' => Key::B,
            'C' | 'c' => Key::C,
            'D' | 'd' => Key::D,
            _ => return None,
        })
    }
}

pub const LAYOUT: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Scans a reading must hold before it counts (at a 5 ms scan: 20 ms).
pub const DEBOUNCE_SCANS: u8 = 4;
pub const SCAN_EVERY: Duration = Duration::from_millis(5);

/// Where `c` sits on the keypad: `(row, column)`.
pub fn position(c: char) -> Option<(usize, usize)> {
    let c = c.to_ascii_uppercase();
    LAYOUT
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&k| k == c).map(|col| (r, col)))
}

#[derive(Debug, thiserror::Error)]
#[error("keypad GPIO line failed: {0}")]
pub struct KeypadError(String);

pub struct Keypad<R, C> {
    rows: [R; 4],
    cols: [C; 4],
    /// Wait after driving a row before reading (lines need a moment to settle,
    /// and a column the kernel debounces its debounce period).
    settle: Duration,
    /// Scans a reading must hold before it counts.
    hold: u8,
    /// Bit `row * 4 + col` per key.
    stable: u16,
    last: u16,
    same_for: u8,
}

/// True when two rows share two or more pressed columns: the matrix then
/// shows a fourth key at the rectangle's corner that may not be pressed.
fn ambiguous(bits: u16) -> bool {
    let rows: Vec<u16> = (0..4).map(|r| (bits >> (r * 4)) & 0xF).collect();
    (0..4).any(|a| (a + 1..4).any(|b| (rows[a] & rows[b]).count_ones() >= 2))
}

impl<R: OutputPin, C: InputPin> Keypad<R, C> {
    /// `hold`: scans a reading must hold ([`DEBOUNCE_SCANS`] where nothing
    /// else debounces the columns).
    pub fn new(
        mut rows: [R; 4],
        cols: [C; 4],
        settle: Duration,
        hold: u8,
    ) -> Result<Keypad<R, C>, KeypadError> {
        for row in &mut rows {
            row.set_high().map_err(|e| KeypadError(format!("{e:?}")))?;
        }
        Ok(Keypad {
            rows,
            cols,
            settle,
            hold,
            stable: 0,
            last: 0,
            same_for: 0,
        })
    }

    fn read(&mut self) -> Result<u16, KeypadError> {
        let fail = |e: &dyn std::fmt::Debug| KeypadError(format!("{e:?}"));
        let mut bits = 0u16;
        for r in 0..4 {
            self.rows[r].set_low().map_err(|e| fail(&e))?;
            if !self.settle.is_zero() {
                std::thread::sleep(self.settle);
            }
            for c in 0..4 {
                if self.cols[c].is_low().map_err(|e| fail(&e))? {
                    bits |= 1 << (r * 4 + c);
                }
            }
            self.rows[r].set_high().map_err(|e| fail(&e))?;
        }
        Ok(bits)
    }

    /// One scan; the keys newly pressed, in layout order.
    pub fn scan(&mut self) -> Result<Vec<Key>, KeypadError> {
        let bits = self.read()?;
        if bits == self.last {
            self.same_for = self.same_for.saturating_add(1);
        } else {
            self.last = bits;
            self.same_for = 1;
        }
        if self.same_for < self.hold || bits == self.stable || ambiguous(bits) {
            return Ok(Vec::new());
        }
        let pressed = bits & !self.stable;
        self.stable = bits;
        Ok((0..16)
            .filter(|i| pressed & (1 << i) != 0)
            .filter_map(|i| Key::from_char(LAYOUT[i / 4][i % 4]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::model::keypad::{ColumnPin, KeypadMatrix, RowPin};

    fn keypad(bounce: u8) -> (Keypad<RowPin, ColumnPin>, KeypadMatrix) {
        let m = KeypadMatrix::with_bounce(bounce);
        let (rows, cols) = m.pins();
        (
            Keypad::new(rows, cols, Duration::ZERO, DEBOUNCE_SCANS).unwrap(),
            m,
        )
    }

    fn press(m: &KeypadMatrix, c: char, down: bool) {
        let (r, col) = position(c).unwrap();
        m.set(r, col, down);
    }

    fn scans(k: &mut Keypad<RowPin, ColumnPin>, n: usize) -> String {
        let mut out = String::new();
        for _ in 0..n {
            out.extend(k.scan().unwrap().into_iter().map(Key::to_char));
        }
        out
    }

    #[test]
    fn every_key_is_read_once_through_the_bounce() {
        let (mut k, m) = keypad(5);
        let mut typed = String::new();
        for c in "123A456B789C*0#D".chars() {
            press(&m, c, true);
            typed += &scans(&mut k, 30);
            press(&m, c, false);
            typed += &scans(&mut k, 30);
        }
        assert_eq!(typed, "123A456B789C*0#D");
    }

    #[test]
    fn a_held_key_does_not_repeat() {
        let (mut k, m) = keypad(3);
        press(&m, '5', true);
        assert_eq!(scans(&mut k, 500), "5");
    }

    #[test]
    fn a_blip_shorter_than_the_debounce_is_ignored() {
        let (mut k, m) = keypad(0);
        press(&m, '7', true);
        assert_eq!(scans(&mut k, (DEBOUNCE_SCANS - 1) as usize), "");
        press(&m, '7', false);
        assert_eq!(scans(&mut k, 20), "");
    }

    #[test]
    fn rolling_two_keys_gives_both_in_order() {
        let (mut k, m) = keypad(2);
        press(&m, '1', true);
        let mut typed = scans(&mut k, 10);
        press(&m, '9', true);
        typed += &scans(&mut k, 10);
        press(&m, '1', false);
        press(&m, '9', false);
        typed += &scans(&mut k, 10);
        assert_eq!(typed, "19");
    }

    #[test]
    fn three_keys_in_a_rectangle_give_no_ghost_fourth() {
        let (mut k, m) = keypad(0);
        // 1 (R0C0), 2 (R0C1) and 4 (R1C0) make 5 (R1C1) read as pressed too.
        press(&m, '1', true);
        let mut typed = scans(&mut k, 10);
        press(&m, '2', true);
        typed += &scans(&mut k, 10);
        press(&m, '4', true);
        typed += &scans(&mut k, 10);
        assert_eq!(typed, "12", "the ambiguous reading is not taken");
        assert!(!typed.contains('5'));
    }
}
