//! ABA track 2 as the reader delivers it: `;PAN=YYMMSSS<discretionary>?`.
//!
//! Readers differ in whether they pass the start/end sentinels and the LRC
//! through; all of those forms are accepted. The discretionary data (where
//! issuers put the card's verification value) is kept in memory only, to go
//! to the acquirer in field 35: never stored, logged or shown.

use super::{CardError, Discretionary, Expiry, Pan};

/// The parts of track 2 a checkout needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track2 {
    pub pan: Pan,
    pub expiry: Expiry,
    pub service_code: String,
    /// What follows the service code (may be empty).
    pub discretionary: Discretionary,
}

impl Track2 {
    pub fn parse(raw: &str) -> Result<Self, CardError> {
        let mut body = raw.trim_end_matches(['\r', '\n']);
        if let Some(rest) = body.strip_prefix(';') {
            body = rest;
        }
        // An end sentinel may be followed by the LRC character the reader passed on.
        if let Some(end) = body.find('?') {
            if body.len() - end > 2 {
                return Err(CardError::BadTrack2("data after the end sentinel"));
            }
            body = &body[..end];
        }
        if body.len() > 37 {
            return Err(CardError::BadTrack2("longer than 37 characters"));
        }
        // 'D' is how EMV tag 57 writes the separator.
        let sep = body
            .find(['=', 'D', 'd'])
            .ok_or(CardError::BadTrack2("no field separator"))?;
        let pan = Pan::parse(&body[..sep])?;
        let after = &body[sep + 1..];
        if after.len() < 7 {
            return Err(CardError::BadTrack2("expiry or service code missing"));
        }
        if !after.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::BadTrack2("non-digit after the separator"));
        }
        let expiry = Expiry::parse_yymm(&after[..4])?;
        Ok(Track2 {
            pan,
            expiry,
            service_code: after[4..7].to_string(),
            discretionary: Discretionary::new(&after[7..])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_sentinels() {
        for raw in [
            ";6222021000000005=30122011234567890?",
            "6222021000000005=30122011234567890",
            ";6222021000000005=30122011234567890?:",
            "6222021000000005D30122011234567890",
        ] {
            let t = Track2::parse(raw).unwrap();
            assert_eq!(t.pan.digits(), "6222021000000005");
            assert_eq!(t.expiry.yymm(), "3012");
            assert_eq!(t.service_code, "201");
            assert_eq!(t.discretionary.digits(), "1234567890");
        }
    }

    #[test]
    fn rejects_damaged_tracks() {
        assert!(Track2::parse("6222021000000005").is_err());
        assert!(Track2::parse("6222021000000006=3012201").is_err()); // Luhn
        assert!(Track2::parse("6222021000000005=30").is_err());
        assert!(Track2::parse("6222021000000005=3013201").is_err());
        assert!(Track2::parse("6222021000000005=30122X1").is_err());
        assert!(Track2::parse(";6222021000000005=3012201?junkjunk").is_err());
    }
}
