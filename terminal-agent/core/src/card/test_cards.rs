//! The simulated issuer's test cards, shared by the simulated card reader (which
//! "presents" them by name) and the hub's simulated acquirer (which decides on
//! them). `tallybox test-cards` prints this table.

use serde::Serialize;

use super::{EntryMode, Track2};
use crate::card::CardRead;
use crate::code::ResponseCode;

/// What the simulated issuer does with a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behaviour {
    /// Approves any amount (a PIN, when the card has one, must be right: else 55).
    Approve,
    /// Approves while the amount fits the balance; answers 51 above it.
    Balance { minor: u64 },
    /// Always declines with this ISO 8583 response code.
    Decline { code: ResponseCode },
    /// The acquirer answers after `ms` milliseconds, approving.
    Slow { ms: u64 },
    /// The acquirer never answers: the hub times out and reverses.
    NoAnswer,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestCard {
    pub name: &'static str,
    pub pan: &'static str,
    /// `YYMM`.
    pub expiry: &'static str,
    pub service_code: &'static str,
    pub pin: Option<&'static str>,
    pub behaviour: Behaviour,
    /// One line for a person reading the table.
    pub description: &'static str,
}

/// The discretionary data every test card's track 2 carries (as issuers
/// put a verification value there).
pub const DISCRETIONARY: &str = "2468013579";

impl TestCard {
    pub fn track2(&self) -> String {
        format!(
            ";{}={}{}{DISCRETIONARY}?",
            self.pan, self.expiry, self.service_code
        )
    }

    /// The card as a reader would hand it over.
    pub fn read(&self, entry_mode: EntryMode) -> CardRead {
        let track = Track2::parse(&self.track2()).expect("test cards are valid track 2");
        CardRead::from_track2(&track, entry_mode)
    }
}

pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        name: "approved",
        pan: "6222021000000005",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Approve,
        description: "UnionPay debit card, approves any amount",
    },
    TestCard {
        name: "visa",
        pan: "4111111111111111",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Approve,
        description: "Visa credit card, approves any amount",
    },
    TestCard {
        name: "mastercard",
        pan: "5555555555554444",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Approve,
        description: "Mastercard credit card, approves any amount",
    },
    TestCard {
        name: "low-balance",
        pan: "6222021000000013",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Balance { minor: 10_000 },
        description: "balance 100.00: approves up to it, insufficient funds (51) above",
    },
    TestCard {
        name: "expired",
        pan: "6222021000000021",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Decline {
            code: ResponseCode::EXPIRED_CARD,
        },
        description: "issuer says expired (54): the card was replaced",
    },
    TestCard {
        name: "lost",
        pan: "6222021000000039",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Decline {
            code: ResponseCode::LOST_CARD,
        },
        description: "reported lost (41)",
    },
    TestCard {
        name: "frozen",
        pan: "6222021000000047",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Decline {
            code: ResponseCode::STOLEN_CARD,
        },
        description: "account frozen / stolen card (43)",
    },
    TestCard {
        name: "pin",
        pan: "6222021000000054",
        expiry: "3012",
        service_code: "220",
        pin: Some("1234"),
        behaviour: Behaviour::Approve,
        description: "needs PIN 1234; any other PIN is declined (55)",
    },
    TestCard {
        name: "invalid",
        pan: "6222021000000062",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Decline {
            code: ResponseCode::INVALID_CARD,
        },
        description: "number unknown to the issuer (14)",
    },
    TestCard {
        name: "slow",
        pan: "6222021000000070",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Slow { ms: 3_000 },
        description: "acquirer takes 3 s, then approves",
    },
    TestCard {
        name: "no-answer",
        pan: "6222021000000088",
        expiry: "3012",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::NoAnswer,
        description: "acquirer never answers: time-out, reversal, not charged",
    },
    TestCard {
        name: "past-expiry",
        pan: "6228480000000007",
        expiry: "2401",
        service_code: "201",
        pin: None,
        behaviour: Behaviour::Approve,
        description: "expired 01/24: refused at the terminal, never sent",
    },
];

pub fn by_name(name: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|c| c.name == name)
}

pub fn by_pan(pan: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|c| c.pan == pan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_card_reads_as_a_valid_card() {
        for card in TEST_CARDS {
            let read = card.read(EntryMode::Swipe);
            assert_eq!(read.pan.digits(), card.pan, "{}", card.name);
            assert_eq!(read.needs_pin(), card.pin.is_some(), "{}", card.name);
        }
    }

    #[test]
    fn names_and_numbers_are_unique() {
        for (i, a) in TEST_CARDS.iter().enumerate() {
            for b in &TEST_CARDS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.pan, b.pan);
            }
        }
    }
}
