//! Card data as a checkout point sees it: the PAN with its Luhn check, the
//! expiry, the brand by BIN, and the masked form that is the only one ever
//! stored, logged or shown (first 6 / last 4).
//!
//! A full PAN lives in a [`Pan`] only long enough to be sent to the hub; its
//! `Debug` and `Display` print the masked form, so a stray log line cannot leak it.

pub mod pin_block;
pub mod test_cards;
pub mod tlv;
pub mod track2;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use track2::Track2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("card number must be 13 to 19 digits")]
    PanLength,
    #[error("card number has a character that is not a digit")]
    PanNotDigits,
    #[error("card number fails its check digit: misread or mistyped, swipe again")]
    PanLuhn,
    #[error("expiry must be four digits YYMM with a month 01-12")]
    BadExpiry,
    #[error("card is expired (valid until {0})")]
    Expired(Expiry),
    #[error("track 2 is unreadable: {0}")]
    BadTrack2(&'static str),
}

/// A primary account number that passed the Luhn check.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pan(String);

impl Pan {
    pub fn parse(digits: &str) -> Result<Self, CardError> {
        if !(13..=19).contains(&digits.len()) {
            return Err(CardError::PanLength);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::PanNotDigits);
        }
        if !luhn_ok(digits) {
            return Err(CardError::PanLuhn);
        }
        Ok(Pan(digits.to_string()))
    }

    /// The full number, for the one place that needs it: the request to the hub.
    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> MaskedPan {
        MaskedPan::of(&self.0)
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    pub fn brand(&self) -> Brand {
        Brand::of(&self.0)
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

impl TryFrom<String> for Pan {
    type Error = CardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Pan::parse(&s)
    }
}

impl From<Pan> for String {
    fn from(p: Pan) -> String {
        p.0
    }
}

/// The Luhn (mod 10) check every payment card number carries.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// First six and last four digits with the middle starred: `622202******0005`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedPan(String);

impl MaskedPan {
    fn of(digits: &str) -> Self {
        let n = digits.len();
        let stars = "*".repeat(n.saturating_sub(10));
        MaskedPan(format!("{}{}{}", &digits[..6], stars, &digits[n - 4..]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes a stored masked PAN back; refuses anything that shows more than 6+4.
    pub fn from_stored(s: &str) -> Option<Self> {
        let n = s.len();
        let ok = (13..=19).contains(&n)
            && s[..6].bytes().all(|b| b.is_ascii_digit())
            && s[6..n - 4].bytes().all(|b| b == b'*')
            && s[n - 4..].bytes().all(|b| b.is_ascii_digit());
        ok.then(|| MaskedPan(s.to_string()))
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Card scheme, told by the leading digits (BIN ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Brand {
    UnionPay,
    Visa,
    Mastercard,
    Amex,
    Jcb,
    Discover,
    Other,
}

impl Brand {
    pub fn of(pan: &str) -> Brand {
        let prefix = |n: usize| pan.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        match (prefix(1), prefix(2), prefix(4)) {
            (4, _, _) => Brand::Visa,
            (_, 62 | 81, _) => Brand::UnionPay,
            (_, 51..=55, _) | (_, _, 2221..=2720) => Brand::Mastercard,
            (_, 34 | 37, _) => Brand::Amex,
            (_, _, 3528..=3589) => Brand::Jcb,
            (_, 65, _) | (_, _, 6011) => Brand::Discover,
            _ => Brand::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Brand::UnionPay => "UnionPay",
            Brand::Visa => "Visa",
            Brand::Mastercard => "Mastercard",
            Brand::Amex => "Amex",
            Brand::Jcb => "JCB",
            Brand::Discover => "Discover",
            Brand::Other => "Card",
        }
    }
}

/// Card expiry as printed: year and month, valid through the month's last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Expiry {
    year: u16,
    month: u8,
}

impl Expiry {
    /// Parses the `YYMM` form of track 2 and ISO 8583 field 14.
    pub fn parse_yymm(s: &str) -> Result<Self, CardError> {
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::BadExpiry);
        }
        let yy: u16 = s[..2].parse().map_err(|_| CardError::BadExpiry)?;
        let month: u8 = s[2..].parse().map_err(|_| CardError::BadExpiry)?;
        if !(1..=12).contains(&month) {
            return Err(CardError::BadExpiry);
        }
        Ok(Expiry {
            year: 2000 + yy,
            month,
        })
    }

    pub fn yymm(self) -> String {
        format!("{:02}{:02}", self.year % 100, self.month)
    }

    /// Whether the card is past its expiry in the month `(year, month)`.
    pub fn is_expired_at(self, year: u16, month: u8) -> bool {
        (self.year, self.month) < (year, month)
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}", self.month, self.year % 100)
    }
}

impl TryFrom<String> for Expiry {
    type Error = CardError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Expiry::parse_yymm(&s)
    }
}

impl From<Expiry> for String {
    fn from(e: Expiry) -> String {
        e.yymm()
    }
}

/// How the card reached the terminal (ISO 8583 field 22 in spirit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    Swipe,
    Tap,
    Manual,
}

impl EntryMode {
    pub fn label(self) -> &'static str {
        match self {
            EntryMode::Swipe => "S",
            EntryMode::Tap => "C",
            EntryMode::Manual => "M",
        }
    }
}

/// Track 2's discretionary data: the digits after the service code, where
/// issuers put the card's verification value. It goes to the acquirer in
/// field 35 and nowhere else: it shows as its length, is wiped when dropped
/// and is never stored.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Discretionary(zeroize::Zeroizing<String>);

impl Discretionary {
    /// At most 28 digits (track 2 holds 37 characters; a PAN, its
    /// separator, expiry and service code take at least 9).
    pub fn new(digits: &str) -> Result<Discretionary, CardError> {
        if digits.len() > 28 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::BadTrack2("discretionary data is not up to 28 digits"));
        }
        Ok(Discretionary(zeroize::Zeroizing::new(digits.to_string())))
    }

    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Discretionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} digits>", self.0.len())
    }
}

impl TryFrom<String> for Discretionary {
    type Error = CardError;
    fn try_from(digits: String) -> Result<Discretionary, CardError> {
        let digits = zeroize::Zeroizing::new(digits);
        Discretionary::new(&digits)
    }
}

impl From<Discretionary> for String {
    fn from(d: Discretionary) -> String {
        d.0.to_string()
    }
}

/// What a reader hands to the checkout session: one checked card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRead {
    pub pan: Pan,
    pub expiry: Expiry,
    /// The three-digit service code from track 2, when the card has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    pub entry_mode: EntryMode,
    /// For a tapped chip card: the EMV data for the authorization (ISO 8583
    /// field 55) as hex BER-TLV. Never holds the card number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icc_data: Option<String>,
    /// Track 2's discretionary data, from a swiped card (for field 35).
    #[serde(default, skip_serializing_if = "Discretionary::is_empty")]
    pub discretionary: Discretionary,
}

impl CardRead {
    pub fn from_track2(track: &Track2, entry_mode: EntryMode) -> Self {
        CardRead {
            pan: track.pan.clone(),
            expiry: track.expiry,
            service_code: Some(track.service_code.clone()),
            entry_mode,
            icc_data: None,
            discretionary: track.discretionary.clone(),
        }
    }

    /// Service code digit 3 values 0, 3, 5 ask for a PIN; 6 and 7 ask when a PIN pad
    /// is present, which a Tallybox keypad is.
    pub fn needs_pin(&self) -> bool {
        self.service_code
            .as_deref()
            .and_then(|s| s.as_bytes().get(2).copied())
            .is_some_and(|d| matches!(d, b'0' | b'3' | b'5' | b'6' | b'7'))
    }

    /// Checks done at the terminal before anything leaves it.
    pub fn check_at(&self, year: u16, month: u8) -> Result<(), CardError> {
        if self.expiry.is_expired_at(year, month) {
            return Err(CardError::Expired(self.expiry));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_numbers_and_rejects_typos() {
        assert!(Pan::parse("4111111111111111").is_ok());
        assert_eq!(Pan::parse("4111111111111112"), Err(CardError::PanLuhn));
        assert_eq!(Pan::parse("41111"), Err(CardError::PanLength));
        assert_eq!(Pan::parse("41111111111x1111"), Err(CardError::PanNotDigits));
    }

    #[test]
    fn masks_six_and_four_and_never_prints_the_pan() {
        let pan = Pan::parse("6222021000000005").unwrap();
        assert_eq!(pan.masked().as_str(), "622202******0005");
        assert!(!format!("{pan:?}").contains("6222021000000005"));
        let short = Pan::parse("4222222222222").unwrap();
        assert_eq!(short.masked().as_str(), "422222***2222");
        assert!(MaskedPan::from_stored("622202******0005").is_some());
        assert!(MaskedPan::from_stored("6222021000000005").is_none());
    }

    #[test]
    fn brand_by_bin() {
        assert_eq!(Brand::of("6222021000000005"), Brand::UnionPay);
        assert_eq!(Brand::of("4111111111111111"), Brand::Visa);
        assert_eq!(Brand::of("5555555555554444"), Brand::Mastercard);
        assert_eq!(Brand::of("2221000000000009"), Brand::Mastercard);
        assert_eq!(Brand::of("378282246310005"), Brand::Amex);
        assert_eq!(Brand::of("3530111333300000"), Brand::Jcb);
        assert_eq!(Brand::of("6011111111111117"), Brand::Discover);
        assert_eq!(Brand::of("9999999999999995"), Brand::Other);
    }

    #[test]
    fn expiry_is_valid_through_its_month() {
        let e = Expiry::parse_yymm("2611").unwrap();
        assert!(!e.is_expired_at(2026, 11));
        assert!(e.is_expired_at(2026, 12));
        assert_eq!(e.to_string(), "11/26");
        assert_eq!(Expiry::parse_yymm("2613"), Err(CardError::BadExpiry));
        assert_eq!(Expiry::parse_yymm("26a1"), Err(CardError::BadExpiry));
    }

    #[test]
    fn discretionary_data_travels_but_never_shows() {
        let track = track2::Track2::parse(";6222021000000005=30122019876543210?").unwrap();
        let card = CardRead::from_track2(&track, EntryMode::Swipe);
        assert_eq!(card.discretionary.digits(), "9876543210");
        assert!(!format!("{card:?}").contains("9876543210"), "{card:?}");
        let json = serde_json::to_string(&card).unwrap();
        assert!(json.contains("\"discretionary\":\"9876543210\""), "{json}");
        assert_eq!(serde_json::from_str::<CardRead>(&json).unwrap(), card);
        let forged = json.replace("9876543210", "98765X");
        assert!(serde_json::from_str::<CardRead>(&forged).is_err());
        let none = CardRead::from_track2(
            &track2::Track2::parse("6222021000000005=3012201").unwrap(),
            EntryMode::Swipe,
        );
        assert!(!serde_json::to_string(&none).unwrap().contains("discretionary"));
    }

    #[test]
    fn service_code_decides_pin() {
        let mut card = CardRead {
            pan: Pan::parse("4111111111111111").unwrap(),
            expiry: Expiry::parse_yymm("3012").unwrap(),
            service_code: Some("201".into()),
            entry_mode: EntryMode::Swipe,
            icc_data: None,
            discretionary: Discretionary::default(),
        };
        assert!(!card.needs_pin());
        card.service_code = Some("220".into());
        assert!(card.needs_pin());
        card.service_code = None;
        assert!(!card.needs_pin());
    }
}
