//! How a transaction ended, in two characters: the ISO 8583 response code
//! (field 39) the issuer or the acquirer gave, or a Tallybox reason code
//! (`X…`, `N…`) for what was decided before the issuer was asked. Both travel
//! in one `response_code` field on the wire and in the store, so they are one
//! type; the ISO codes are constants here, Tallybox's own in
//! [`crate::reason`]. Outside the codecs nobody spells a code as a string.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A response or reason code: two ASCII letters or digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct ResponseCode([u8; 2]);

/// Tallybox's own codes are the same kind of value (see [`crate::reason`]).
pub type ReasonCode = ResponseCode;

impl ResponseCode {
    pub const APPROVED: Self = Self(*b"00");
    pub const DO_NOT_HONOUR: Self = Self(*b"05");
    /// Not a transaction this card or terminal may make.
    pub const INVALID_TRANSACTION: Self = Self(*b"12");
    pub const INVALID_CARD: Self = Self(*b"14");
    /// The original of a reversal is not on record (taken as reversed).
    pub const NO_ORIGINAL: Self = Self(*b"25");
    pub const FORMAT_ERROR: Self = Self(*b"30");
    pub const LOST_CARD: Self = Self(*b"41");
    pub const STOLEN_CARD: Self = Self(*b"43");
    pub const INSUFFICIENT_FUNDS: Self = Self(*b"51");
    pub const EXPIRED_CARD: Self = Self(*b"54");
    pub const WRONG_PIN: Self = Self(*b"55");
    pub const OVER_LIMIT: Self = Self(*b"61");
    /// Settlement totals do not agree.
    pub const OUT_OF_BALANCE: Self = Self(*b"95");
    pub const ISSUER_UNAVAILABLE: Self = Self(*b"91");
    pub const SYSTEM_MALFUNCTION: Self = Self(*b"96");
    /// The message's MAC did not verify (China UnionPay's `A0`).
    pub const MAC_ERROR: Self = Self(*b"A0");
    /// China UnionPay's "sign in again": the host holds another batch (or
    /// other keys) for the terminal than the request named.
    pub const SIGN_IN_AGAIN: Self = Self(*b"77");

    /// A code of Tallybox's own; for the constants in [`crate::reason`].
    pub const fn local(code: [u8; 2]) -> Self {
        Self(code)
    }

    /// Two ASCII letters or digits, as field 39 or a stored row has them.
    pub fn parse(text: &str) -> Option<Self> {
        let code: [u8; 2] = text.as_bytes().try_into().ok()?;
        code.iter().all(u8::is_ascii_alphanumeric).then_some(Self(code))
    }

    pub fn as_str(&self) -> &str {
        // Checked ASCII at construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    pub fn is_approved(self) -> bool {
        self == Self::APPROVED
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseCode({})", self.as_str())
    }
}

impl From<ResponseCode> for String {
    fn from(code: ResponseCode) -> String {
        code.as_str().to_string()
    }
}

impl<'de> Deserialize<'de> for ResponseCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ResponseCode::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("'{text}' is not a response code: two letters or digits"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_letters_or_digits_and_travel_as_text() {
        assert_eq!(ResponseCode::parse("51"), Some(ResponseCode::INSUFFICIENT_FUNDS));
        assert_eq!(
            ResponseCode::parse("XZ").map(|c| c.to_string()).as_deref(),
            Some("XZ")
        );
        for bad in ["", "5", "510", "5 ", "é1"] {
            assert_eq!(ResponseCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&ResponseCode::APPROVED).unwrap(), "\"00\"");
        assert_eq!(
            serde_json::from_str::<ResponseCode>("\"55\"").unwrap(),
            ResponseCode::WRONG_PIN
        );
        assert!(serde_json::from_str::<ResponseCode>("\"555\"").is_err());
        assert!(ResponseCode::APPROVED.is_approved() && !ResponseCode::WRONG_PIN.is_approved());
    }
}
