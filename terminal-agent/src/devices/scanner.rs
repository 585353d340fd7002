//! Barcode / QR scanners that read the customer's payment code. Two kinds:
//!
//! - **USB keyboard-mode** (HID): the scanner types what it read as key
//!   presses, then Enter. What a key press *means* depends on the keyboard
//!   layout the scanner was set to (a scanner set to French AZERTY sends the
//!   digit 1 as Shift and the key that is `1` on a US keyboard), a common
//!   way such scanners type garbage into other POS systems. This decoder
//!   reads physical key codes, never characters: a digit is the key in the
//!   digits row or on the numeric keypad, whatever modifier the scanner
//!   holds with it, so a payment code (digits only) reads the same under
//!   every layout. The checkout grabs the device so its typing reaches no
//!   console.
//! - **Serial** (UART or USB-CDC): the scanner sends the code as ASCII,
//!   ended by CR and/or LF.
//!
//! Both yield [`Scan`]; the glue to evdev and the tty is in the hardware
//! backend (`hw.rs`).

/// What a scanner read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Digits: a payment code (or a product's barcode: the hub tells).
    Code(String),
    /// Something that is not digits (a QR code with a URL, a misread): its
    /// length only, never its content.
    NotDigits(usize),
}

/// A scan longer than this without its end is not a code.
const MAX_SCAN: usize = 128;

/// Linux input key codes (linux/input-event-codes.h).
mod key {
    pub const K1: u16 = 2;
    pub const K0: u16 = 11;
    pub const TAB: u16 = 15;
    pub const ENTER: u16 = 28;
    pub const LEFTCTRL: u16 = 29;
    pub const LEFTSHIFT: u16 = 42;
    pub const RIGHTSHIFT: u16 = 54;
    pub const LEFTALT: u16 = 56;
    pub const CAPSLOCK: u16 = 58;
    pub const NUMLOCK: u16 = 69;
    pub const KP7: u16 = 71;
    pub const KP8: u16 = 72;
    pub const KP9: u16 = 73;
    pub const KP4: u16 = 75;
    pub const KP5: u16 = 76;
    pub const KP6: u16 = 77;
    pub const KP1: u16 = 79;
    pub const KP2: u16 = 80;
    pub const KP3: u16 = 81;
    pub const KP0: u16 = 82;
    pub const KPENTER: u16 = 96;
    pub const RIGHTCTRL: u16 = 97;
    pub const RIGHTALT: u16 = 100;
}

/// The digit a key stands for, by where the key is: the digits row or the
/// numeric keypad.
fn digit_of(code: u16) -> Option<char> {
    let d = match code {
        key::K1..=10 => code - key::K1 + 1,
        key::K0 => 0,
        key::KP0 => 0,
        key::KP1 => 1,
        key::KP2 => 2,
        key::KP3 => 3,
        key::KP4 => 4,
        key::KP5 => 5,
        key::KP6 => 6,
        key::KP7 => 7,
        key::KP8 => 8,
        key::KP9 => 9,
        _ => return None,
    };
    char::from_digit(u32::from(d), 10)
}

/// Key presses of a keyboard-mode scanner, turned into scans.
#[derive(Default)]
pub struct KeyDecoder {
    digits: String,
    /// Keys that were not digits since the last scan.
    other: usize,
}

impl KeyDecoder {
    /// One key event (`down`: pressed); a scan when it ends one.
    pub fn key(&mut self, code: u16, down: bool) -> Option<Scan> {
        let modifier = matches!(
            code,
            key::LEFTSHIFT
                | key::RIGHTSHIFT
                | key::LEFTCTRL
                | key::RIGHTCTRL
                | key::LEFTALT
                | key::RIGHTALT
                | key::CAPSLOCK
                | key::NUMLOCK
        );
        if !down || modifier {
            return None;
        }
        if matches!(code, key::ENTER | key::KPENTER | key::TAB) {
            return self.end();
        }
        match digit_of(code) {
            Some(d) if self.digits.len() < MAX_SCAN => self.digits.push(d),
            _ => self.other += 1,
        }
        None
    }

    fn end(&mut self) -> Option<Scan> {
        let (digits, other) = (std::mem::take(&mut self.digits), std::mem::take(&mut self.other));
        match (digits.len(), other) {
            (0, 0) => None,
            (_, 0) => Some(Scan::Code(digits)),
            (n, other) => Some(Scan::NotDigits(n + other)),
        }
    }
}

/// Bytes from a serial scanner, turned into scans at each CR or LF.
#[derive(Default)]
pub struct LineDecoder {
    line: Vec<u8>,
}

impl LineDecoder {
    /// The scans the bytes ended.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Scan> {
        let mut scans = Vec::new();
        for &b in bytes {
            match b {
                b'\r' | b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    scans.push(match text.bytes().all(|b| b.is_ascii_digit()) {
                        true => Scan::Code(text.to_string()),
                        false => Scan::NotDigits(text.chars().count()),
                    });
                }
                _ if self.line.len() < MAX_SCAN => self.line.push(b),
                _ => {}
            }
        }
        scans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scanner typing `code` then Enter, as a keyboard set to `layout`
    /// types each digit: US QWERTY presses the digit key; French AZERTY
    /// holds Shift with it; a scanner in "keypad" mode uses the numeric pad.
    fn typed(code: &str, layout: &str) -> Vec<(u16, bool)> {
        let mut events = Vec::new();
        for c in code.chars() {
            let d = c.to_digit(10).unwrap() as u16;
            let k = match (layout, d) {
                ("keypad", 0) => key::KP0,
                ("keypad", d) => [
                    key::KP1,
                    key::KP2,
                    key::KP3,
                    key::KP4,
                    key::KP5,
                    key::KP6,
                    key::KP7,
                    key::KP8,
                    key::KP9,
                ][d as usize - 1],
                (_, 0) => key::K0,
                (_, d) => key::K1 + d - 1,
            };
            let shift = layout == "azerty";
            if shift {
                events.push((key::LEFTSHIFT, true));
            }
            events.extend([(k, true), (k, false)]);
            if shift {
                events.push((key::LEFTSHIFT, false));
            }
        }
        events.extend([(key::ENTER, true), (key::ENTER, false)]);
        events
    }

    fn decode(events: &[(u16, bool)]) -> Vec<Scan> {
        let mut d = KeyDecoder::default();
        events.iter().filter_map(|&(k, down)| d.key(k, down)).collect()
    }

    #[test]
    fn a_payment_code_reads_the_same_whatever_layout_the_scanner_types_in() {
        let code = "281234567890120000";
        for layout in ["us", "azerty", "keypad"] {
            assert_eq!(
                decode(&typed(code, layout)),
                vec![Scan::Code(code.into())],
                "{layout}"
            );
        }
    }

    #[test]
    fn two_scans_in_a_row_are_two_codes_and_letters_are_not_a_code() {
        let mut events = typed("131234567890120000", "us");
        events.extend(typed("6212345678901234567", "azerty"));
        // A QR code with a web address: letters (key A is 30).
        events.extend([
            (30, true),
            (30, false),
            (key::K1, true),
            (key::K1, false),
            (key::ENTER, true),
        ]);
        assert_eq!(
            decode(&events),
            vec![
                Scan::Code("131234567890120000".into()),
                Scan::Code("6212345678901234567".into()),
                Scan::NotDigits(2),
            ]
        );
        // A lone Enter is no scan.
        assert_eq!(decode(&[(key::ENTER, true)]), vec![]);
    }

    /// A serial scanner behind a pseudo-terminal: the driver opens the
    /// tty raw at its baud rate, as on the Pi, and the scan reaches the
    /// session as the code.
    #[test]
    fn a_serial_scanner_on_a_tty_hands_the_session_the_code() {
        use std::io::Write;
        let (mut master, _slave, tty) = crate::devices::model::pty::open_pty().unwrap();
        let mut config = crate::config::DeviceConfig::default();
        config.scanner = crate::config::ScannerConfig {
            kind: crate::config::ScannerKind::Serial,
            device: Some(tty),
            baud: 9600,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let health = crate::devices::SharedHealth::default();
        crate::hw::scanner(&config, health.clone(), move |input| tx.send(input).is_ok())
            .unwrap()
            .unwrap();
        master
            .write_all(b"https://example\r281234567890120000\r\n")
            .unwrap();
        // The web address first: the session is told it is not a code.
        let read = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(matches!(read, crate::session::Input::NotACode), "{read:?}");
        let read = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        match read {
            crate::session::Input::Scanned(code) => assert_eq!(code.expose(), "281234567890120000"),
            other => panic!("not a scan: {other:?}"),
        }
        // Unplugged: the owner's page hears of it with the heartbeats.
        drop(master);
        let gone = (0..50).find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            health.snapshot().not_started.first().cloned()
        });
        assert!(
            gone.as_deref().is_some_and(|g| g.starts_with("scanner: gone")),
            "{gone:?}"
        );
        let mut missing = config.scanner.clone();
        missing.device = None;
        config.scanner = missing;
        let refused = crate::hw::scanner(&config, health.clone(), |_| true)
            .unwrap()
            .unwrap_err();
        assert!(refused.contains("scanner.device"), "{refused}");
    }

    #[test]
    fn a_serial_scanner_ends_each_code_with_cr_or_lf() {
        let mut d = LineDecoder::default();
        assert_eq!(d.feed(b"2812345678901"), vec![]);
        assert_eq!(
            d.feed(b"20000\r\n131234567890120000\nhttps://x\r"),
            vec![
                Scan::Code("281234567890120000".into()),
                Scan::Code("131234567890120000".into()),
                Scan::NotDigits(9),
            ]
        );
    }
}
