//! Money as an integer count of minor units, and the currency that says how
//! many minor units make one unit (its ISO 4217 exponent: 2 for CNY and HKD,
//! 0 for JPY). Never floats.
//!
//! An [`Amount`] has no decimal point of its own: it is shown and parsed only
//! through a [`Currency`], so "1250" is HKD 12.50 in Hong Kong and JPY 1250 in
//! Tokyo, and "1.234" or "-1" is an error a person can act on rather than a
//! rounding surprise on a customer's card.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest amount a single transaction may carry, in minor units.
/// It keeps every amount inside the 12 digits of ISO 8583 field 4.
pub const MAX_MINOR: u64 = 999_999_999;

/// A positive or zero amount of money in minor units (1 = ¥0.01 in CNY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Amount(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty: key in an amount such as 12.50")]
    Empty,
    #[error("'{0}' is not an amount: use digits and at most one '.', such as 12.50")]
    NotANumber(String),
    #[error("'{text}' has more digits after the point than {currency} has ({digits})")]
    TooManyDecimals {
        text: String,
        currency: String,
        digits: u8,
    },
    #[error("the amount is larger than the limit of {MAX_MINOR} minor units")]
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

/// A currency Tallybox can take: its ISO 4217 code and exponent. On the
/// wire and in files it is its code (`"HKD"`); a code Tallybox does not know
/// is refused there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Currency {
    /// Three ASCII capital letters.
    code: [u8; 3],
    exponent: u8,
    /// ISO 4217 numeric code (ISO 8583 field 49), when Tallybox knows it.
    numeric: Option<u16>,
}

/// ISO 4217 codes, exponents and numeric codes of the currencies a shop in the region (and
/// a visitor's card) is likely to settle in. A code not here is refused in
/// the configuration with this list, rather than guessed at.
const KNOWN: &[(&str, u8, u16)] = &[
    ("CNY", 2, 156),
    ("HKD", 2, 344),
    ("MOP", 2, 446),
    ("TWD", 2, 901),
    ("SGD", 2, 702),
    ("MYR", 2, 458),
    ("THB", 2, 764),
    ("PHP", 2, 608),
    ("IDR", 2, 360),
    ("INR", 2, 356),
    ("USD", 2, 840),
    ("EUR", 2, 978),
    ("GBP", 2, 826),
    ("AUD", 2, 36),
    ("NZD", 2, 554),
    ("CAD", 2, 124),
    ("CHF", 2, 756),
    ("JPY", 0, 392),
    ("KRW", 0, 410),
    ("VND", 0, 704),
    ("KWD", 3, 414),
    ("BHD", 3, 48),
    ("OMR", 3, 512),
    ("JOD", 3, 400),
];

impl Default for Currency {
    /// Renminbi, what Tallybox ships with.
    fn default() -> Self {
        Currency::CNY
    }
}

impl Currency {
    pub const CNY: Currency = Currency {
        code: *b"CNY",
        exponent: 2,
        numeric: Some(156),
    };

    /// The currency of an ISO 4217 alphabetic code Tallybox knows.
    pub fn from_code(code: &str) -> Option<Currency> {
        let &(_, exponent, numeric) = KNOWN.iter().find(|(c, _, _)| *c == code)?;
        Currency::new(code, exponent).map(|c| Currency {
            numeric: Some(numeric),
            ..c
        })
    }

    /// A currency told by the other side (the hub's sign-in answer): any
    /// three capital letters with an exponent of at most 4, so a checkout
    /// older than its hub still shows a code it has no entry for.
    pub fn new(code: &str, exponent: u8) -> Option<Currency> {
        let code: [u8; 3] = code.as_bytes().try_into().ok()?;
        (code.iter().all(u8::is_ascii_uppercase) && exponent <= 4).then_some(Currency {
            code,
            exponent,
            numeric: None,
        })
    }

    /// Every code [`Currency::from_code`] takes, for error messages.
    pub fn known_codes() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().map(|(c, _, _)| *c)
    }

    pub fn code(&self) -> &str {
        // Checked ASCII at construction.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// The ISO 4217 numeric code, three digits as ISO 8583 field 49 carries
    /// it ("156" for CNY, "344" for HKD); none for a code Tallybox does not know.
    pub fn numeric(self) -> Option<String> {
        self.numeric.map(|n| format!("{n:03}"))
    }

    /// Digits after the point: 2 for CNY, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// The amount's digits with this currency's point: "12.50", "1250".
    pub fn format(self, amount: Amount) -> String {
        self.format_minor(amount.minor())
    }

    /// As [`Currency::format`] for a count of minor units that need not be
    /// one transaction's (a day's total).
    pub fn format_minor(self, minor: u64) -> String {
        if self.exponent == 0 {
            return minor.to_string();
        }
        let unit = 10u64.pow(u32::from(self.exponent));
        format!(
            "{}.{:0width$}",
            minor / unit,
            minor % unit,
            width = usize::from(self.exponent)
        )
    }

    /// A signed count of minor units (a net total), with `-` when below zero.
    pub fn format_signed(self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        format!("{sign}{}", self.format_minor(minor.unsigned_abs()))
    }

    /// What a person reads: "HKD 12.50", "JPY 1250".
    pub fn show(self, amount: Amount) -> String {
        format!("{} {}", self.code(), self.format(amount))
    }

    /// Parses what a person types: for CNY "12", "12.3", "12.30", "0.01";
    /// for JPY "1250" only. Rejects signs, spaces, exponents, separators and
    /// more decimals than the currency has: those are mistakes, not money.
    pub fn parse(self, text: &str) -> Result<Amount, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let not_a_number = || AmountError::NotANumber(text.to_string());
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) {
            return Err(not_a_number());
        }
        let fraction = match fraction {
            Some("") => return Err(not_a_number()),
            Some(f) if !all_digits(f) => return Err(not_a_number()),
            Some(f) => f,
            None => "",
        };
        let digits = usize::from(self.exponent);
        if fraction.len() > digits {
            return Err(AmountError::TooManyDecimals {
                text: text.to_string(),
                currency: self.code().to_string(),
                digits: self.exponent,
            });
        }
        let unit = 10u64.pow(u32::from(self.exponent));
        let whole: u64 = whole.parse().map_err(|_| AmountError::TooLarge)?;
        let padded = format!("{fraction:0<digits$}");
        let fraction: u64 = if padded.is_empty() {
            0
        } else {
            padded.parse().map_err(|_| not_a_number())?
        };
        let minor = whole
            .checked_mul(unit)
            .and_then(|m| m.checked_add(fraction))
            .ok_or(AmountError::TooLarge)?;
        Amount::from_minor(minor)
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::from_code(&code).ok_or_else(|| {
            let known: Vec<&str> = Currency::known_codes().collect();
            format!(
                "'{code}' is not a currency Tallybox knows: use one of {}",
                known.join(", ")
            )
        })
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Currency::try_from(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HKD: &str = "HKD";

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn parses_what_a_cashier_types() {
        let cny = Currency::CNY;
        assert_eq!(cny.parse("12.3").unwrap().minor(), 1230);
        assert_eq!(cny.parse("12.30").unwrap().minor(), 1230);
        assert_eq!(cny.parse("0.01").unwrap().minor(), 1);
        assert_eq!(cny.parse("12").unwrap().minor(), 1200);
        assert_eq!(cny.parse("9999999.99").unwrap().minor(), MAX_MINOR);
        assert_eq!(cur("JPY").parse("1250").unwrap().minor(), 1250);
        assert_eq!(cur("KWD").parse("1.5").unwrap().minor(), 1500);
    }

    #[test]
    fn rejects_mistakes() {
        for bad in [
            "-1", "1.234", "", "abc", "1.", ".5", "1,00", " 1", "1e3", "+1", "1.2.3",
        ] {
            assert!(Currency::CNY.parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(Currency::CNY.parse("10000000"), Err(AmountError::TooLarge));
        assert_eq!(
            Currency::CNY.parse("99999999999999999999999"),
            Err(AmountError::TooLarge)
        );
        let yen = cur("JPY").parse("12.5").unwrap_err();
        assert!(yen.to_string().contains("JPY has (0)"), "{yen}");
    }

    #[test]
    fn displays_the_currencys_own_decimals() {
        let a = Amount::from_minor(1250).unwrap();
        assert_eq!(Currency::CNY.format(Amount::from_minor(7).unwrap()), "0.07");
        assert_eq!(cur(HKD).show(a), "HKD 12.50");
        assert_eq!(cur("JPY").show(a), "JPY 1250");
        assert_eq!(cur("KWD").show(a), "KWD 1.250");
        assert_eq!(cur(HKD).format_signed(-1250), "-12.50");
        assert_eq!(cur("JPY").format_signed(-7), "-7");
    }

    #[test]
    fn only_known_codes_are_currencies() {
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur(HKD).exponent(), 2);
        assert_eq!(cur(HKD).numeric().as_deref(), Some("344"));
        assert_eq!(Currency::CNY.numeric().as_deref(), Some("156"));
        assert_eq!(cur("BHD").numeric().as_deref(), Some("048"));
        assert_eq!(Currency::CNY, cur("CNY"));
        assert!(Currency::from_code("yuan").is_none());
        assert!(Currency::from_code("XYZ").is_none());
        assert!(Currency::known_codes().any(|c| c == "CNY"));
        assert_eq!(Currency::new("XAU", 0).unwrap().show(Amount::ZERO), "XAU 0");
        assert!(Currency::new("xau", 2).is_none());
        assert!(Currency::new("XAUX", 2).is_none());
        assert!(Currency::new("XAU", 9).is_none());
    }

    #[test]
    fn a_currency_travels_as_its_code() {
        assert_eq!(serde_json::to_string(&cur("JPY")).unwrap(), "\"JPY\"");
        assert_eq!(serde_json::from_str::<Currency>("\"HKD\"").unwrap(), cur(HKD));
        let e = serde_json::from_str::<Currency>("\"XYZ\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use one of CNY"), "{e}");
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
