//! Values that must never reach a log, a panic message or a screen: PINs,
//! keys, passwords, tokens. A [`Secret`] prints as `Secret(***)`, is reached
//! only through an explicit [`Secret::expose`], and wipes its memory when it
//! is dropped (`zeroize`), so a core dump or a reused allocation does not
//! carry it either.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value whose `Debug` prints nothing of it and whose memory is wiped on drop.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself: every use is a place to review.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret::new(value.to_string())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The digits of a PIN (a cardholder's, a cashier's or the supervisor's) as
/// they are keyed, 0 to 12 of them. It prints as `Pin(****)`, one star a
/// digit, which is all a screen may show; the digits are wiped on drop.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

/// The most digits a PIN may have (ISO 9564).
pub const PIN_MAX: usize = 12;

impl Pin {
    pub fn new() -> Self {
        Pin(String::with_capacity(PIN_MAX))
    }

    /// Adds a keyed digit; false (and unchanged) when full or not a digit.
    pub fn push(&mut self, digit: char) -> bool {
        if self.0.len() >= PIN_MAX || !digit.is_ascii_digit() {
            return false;
        }
        self.0.push(digit);
        true
    }

    /// Takes back the last digit (the keypad's `*`).
    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The digits: for the PIN block and for checking against a hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digits as a [`Secret`] for a request; this PIN is wiped when dropped.
    pub fn to_secret(&self) -> Secret<String> {
        Secret::new(self.0.clone())
    }
}

impl From<&str> for Pin {
    fn from(digits: &str) -> Self {
        Pin(digits.to_string())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({})", "*".repeat(self.0.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let key = Secret::new(*b"0123456789abcdef");
        let pin = Secret::new("4321".to_string());
        assert_eq!(format!("{key:?} {pin:?}"), "Secret(***) Secret(***)");
        assert_eq!(pin.expose(), "4321");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            supervisor: Secret<String>,
        }
        let shown = format!("{:?}", Config { supervisor: pin });
        assert!(!shown.contains("4321"), "{shown}");
    }

    #[test]
    fn a_pin_shows_one_star_a_digit_and_takes_only_digits() {
        let mut pin = Pin::new();
        for d in "12x34".chars() {
            pin.push(d);
        }
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        assert_eq!(pin.expose(), "1234");
        pin.pop();
        assert_eq!(pin.len(), 3);
        for _ in 0..20 {
            pin.push('9');
        }
        assert_eq!(pin.len(), PIN_MAX);
    }

    #[test]
    fn a_secret_round_trips_as_its_plain_value_in_config() {
        let s: Secret<String> = serde_json::from_str("\"1234\"").unwrap();
        assert_eq!(s.expose(), "1234");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"1234\"");
    }
}
