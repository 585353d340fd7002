//! Money as an integer count of minor units (fen for CNY). Never floats.
//!
//! Amounts come from the keypad, the wire and the web; each path parses
//! strictly, so "1.234", "-1" or "12,50" is an error a person can act on rather
//! than a rounding surprise on a customer's card.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The largest amount a single transaction may carry: ¥9,999,999.99.
/// It keeps every amount inside the 12 digits of ISO 8583 field 4.
pub const MAX_MINOR: u64 = 999_999_999;

/// A positive or zero amount of money in minor units (1 = ¥0.01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Amount(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty: key in an amount such as 12.50")]
    Empty,
    #[error("'{0}' is not an amount: use digits and at most one '.', such as 12.50")]
    NotANumber(String),
    #[error("'{0}' has more than two digits after the point")]
    TooManyDecimals(String),
    #[error("the amount is larger than the limit of 9999999.99")]
    TooLarge,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// An amount of `minor` units, or `TooLarge` past [`MAX_MINOR`].
    pub fn from_minor(minor: u64) -> Result<Self, AmountError> {
        if minor > MAX_MINOR {
            return Err(AmountError::TooLarge);
        }
        Ok(Amount(minor))
    }

    pub fn minor(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses "12", "12.3", "12.30", "0.01". Rejects signs, spaces, exponents,
    /// separators and a third decimal: those are mistakes, not money.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) {
            return Err(AmountError::NotANumber(text.to_string()));
        }
        let fraction = fraction.unwrap_or("");
        if !all_digits(fraction) || (text.contains('.') && fraction.is_empty()) {
            return Err(AmountError::NotANumber(text.to_string()));
        }
        if fraction.len() > 2 {
            return Err(AmountError::TooManyDecimals(text.to_string()));
        }
        let whole: u64 = whole.parse().map_err(|_| AmountError::TooLarge)?;
        let cents: u64 = match fraction.len() {
            0 => 0,
            1 => u64::from(fraction.as_bytes()[0] - b'0') * 10,
            _ => fraction
                .parse()
                .map_err(|_| AmountError::NotANumber(text.to_string()))?,
        };
        let minor = whole
            .checked_mul(100)
            .and_then(|m| m.checked_add(cents))
            .ok_or(AmountError::TooLarge)?;
        Amount::from_minor(minor)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl TryFrom<u64> for Amount {
    type Error = AmountError;
    fn try_from(minor: u64) -> Result<Self, Self::Error> {
        Amount::from_minor(minor)
    }
}

impl From<Amount> for u64 {
    fn from(amount: Amount) -> u64 {
        amount.0
    }
}

/// ISO 4217 alphabetic code; Tallybox ships with CNY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency(String);

impl Currency {
    pub fn cny() -> Self {
        Currency("CNY".into())
    }

    pub fn parse(code: &str) -> Option<Self> {
        (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then(|| Currency(code.to_string()))
    }

    pub fn code(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_a_cashier_types() {
        assert_eq!("12.3".parse::<Amount>().unwrap().minor(), 1230);
        assert_eq!("12.30".parse::<Amount>().unwrap().minor(), 1230);
        assert_eq!("0.01".parse::<Amount>().unwrap().minor(), 1);
        assert_eq!("12".parse::<Amount>().unwrap().minor(), 1200);
        assert_eq!("9999999.99".parse::<Amount>().unwrap().minor(), MAX_MINOR);
    }

    #[test]
    fn rejects_mistakes() {
        for bad in [
            "-1", "1.234", "", "abc", "1.", ".5", "1,00", " 1", "1e3", "+1", "1.2.3",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} must be rejected");
        }
        assert_eq!("10000000".parse::<Amount>(), Err(AmountError::TooLarge));
        assert_eq!(
            "99999999999999999999999".parse::<Amount>(),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Amount::from_minor(1250).unwrap().to_string(), "12.50");
        assert_eq!(Amount::from_minor(7).unwrap().to_string(), "0.07");
    }

    #[test]
    fn wire_form_is_minor_units_and_checked() {
        let a: Amount = serde_json::from_str("1250").unwrap();
        assert_eq!(a.minor(), 1250);
        assert!(serde_json::from_str::<Amount>("1000000000").is_err());
        assert!(serde_json::from_str::<Amount>("-5").is_err());
        assert!(serde_json::from_str::<Amount>("12.5").is_err());
    }
}
