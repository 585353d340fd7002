//! EMV contactless cards at the APDU level, for the PN532 model: a UnionPay
//! card (qUICS: track 2 in a record read after GPO) and a Visa card (qVSDC:
//! track 2 in the GPO answer), built from a test card's track 2. A card can
//! carry a damaged record, as a worn or counterfeit chip does.

use crate::devices::contactless::emv::AIDS;
use crate::devices::contactless::tlv::{encode, parse_dol, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    UnionPay,
    Visa,
    Mastercard,
}

/// What an ISO 14443-4 card does with a command APDU.
pub trait ContactlessCard: Send {
    fn uid(&self) -> Vec<u8>;
    fn apdu(&mut self, command: &[u8]) -> Vec<u8>;
}

pub struct EmvCard {
    scheme: Scheme,
    /// Tag 57 value: packed BCD track 2.
    track2: Vec<u8>,
    expiry: String,
    pdol_len: usize,
    selected: bool,
    /// READ RECORD answers a TLV that runs past its end.
    pub broken_record: bool,
    /// Approves offline (a TC) whatever the terminal asks, as a faulty or
    /// forged card might.
    pub always_offline: bool,
}

/// Up to this amount (minor units) the card approves offline (a TC, no
/// bank asked) unless the terminal says it needs an online cryptogram, as
/// small-amount contactless payments allow.
const OFFLINE_FLOOR: u64 = 30_000;

const SW_OK: [u8; 2] = [0x90, 0x00];

fn tlvs(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

impl EmvCard {
    /// A card carrying `track` (`;PAN=YYMMSSS…?`), of the scheme its PAN says.
    pub fn from_track2(track: &str) -> Option<EmvCard> {
        let body = track.trim_start_matches(';').trim_end_matches('?');
        let (pan, rest) = body.split_once('=')?;
        let scheme = match pan.as_bytes().first()? {
            b'6' => Scheme::UnionPay,
            b'4' => Scheme::Visa,
            b'5' | b'2' => Scheme::Mastercard,
            _ => return None,
        };
        let mut nibbles = body.replace('=', "D");
        if nibbles.len() % 2 == 1 {
            nibbles.push('F');
        }
        let track2 = hex::decode(&nibbles).ok()?;
        Some(EmvCard {
            scheme,
            track2,
            expiry: rest.get(..4)?.to_string(),
            pdol_len: 0,
            selected: false,
            broken_record: false,
            always_offline: false,
        })
    }

    fn aid(&self) -> &'static [u8] {
        let name = match self.scheme {
            Scheme::UnionPay => "UnionPay Debit",
            Scheme::Visa => "Visa",
            Scheme::Mastercard => "Mastercard",
        };
        AIDS.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .unwrap_or_default()
    }

    fn pdol(&self) -> Vec<u8> {
        match self.scheme {
            Scheme::Visa => vec![0x9F, 0x66, 4, 0x9F, 0x02, 6, 0x9F, 0x37, 4, 0x5F, 0x2A, 2],
            _ => vec![
                0x9F, 0x66, 4, 0x9F, 0x02, 6, 0x9F, 0x03, 6, 0x9F, 0x1A, 2, 0x95, 5, 0x5F, 0x2A, 2, 0x9A, 3,
                0x9C, 1, 0x9F, 0x37, 4,
            ],
        }
    }

    fn cryptogram(&self, pdol_data: &[u8]) -> Vec<u8> {
        // Not a real MAC: a value that changes with the amount and the
        // unpredictable number, as an ARQC does.
        let mut c = [0u8; 8];
        for (i, b) in pdol_data.iter().chain(&self.track2).enumerate() {
            c[i % 8] = c[i % 8].rotate_left(3) ^ b;
        }
        c.to_vec()
    }

    fn gpo(&mut self, data: &[u8]) -> Vec<u8> {
        let [0x83, len, ref pdol_data @ ..] = data[..] else {
            return vec![0x67, 0x00];
        };
        if len as usize != pdol_data.len() || pdol_data.len() != self.pdol_len {
            return vec![0x67, 0x00];
        }
        // The PDOL starts with the terminal's TTQ (4 bytes) and the amount
        // (6 bytes of BCD). Byte 2's top bit: "online cryptogram required".
        let amount: u64 = hex::encode(&pdol_data[4..10]).parse().unwrap_or(u64::MAX);
        let online_required = pdol_data[1] & 0x80 != 0;
        let offline = self.always_offline || (!online_required && amount <= OFFLINE_FLOOR);
        // Cryptogram information data: 0x40 a TC (approved offline), 0x80 an ARQC.
        let cid = if offline { 0x40 } else { 0x80 };
        let common = vec![
            encode(Tag(0x9F26), &self.cryptogram(pdol_data)),
            encode(Tag(0x9F27), &[cid]),
            encode(Tag(0x9F10), &[0x07, 0x01, 0x01, 0x03, 0xA0, 0x00, 0x00]),
            encode(Tag(0x9F36), &[0x00, 0x2A]),
        ];
        let mut inner = match self.scheme {
            Scheme::Visa => vec![encode(Tag(0x82), &[0x20, 0x00]), encode(Tag(0x57), &self.track2)],
            _ => vec![
                encode(Tag(0x82), &[0x1C, 0x00]),
                encode(Tag(0x94), &[0x08, 0x01, 0x01, 0x00]),
            ],
        };
        inner.extend(common);
        let mut out = encode(Tag(0x77), &tlvs(&inner));
        out.extend(SW_OK);
        out
    }

    fn read_record(&self, record: u8, sfi: u8) -> Vec<u8> {
        if self.scheme == Scheme::Visa || sfi != 1 || record != 1 {
            return vec![0x6A, 0x83];
        }
        let pan_digits: String = hex::encode_upper(&self.track2)
            .split('D')
            .next()
            .unwrap_or_default()
            .to_string();
        let pan = hex::decode(if pan_digits.len() % 2 == 1 {
            format!("{pan_digits}F")
        } else {
            pan_digits
        })
        .unwrap_or_default();
        let expiry = hex::decode(format!("{}31", self.expiry)).unwrap_or_default();
        let body = tlvs(&[
            encode(Tag(0x57), &self.track2),
            encode(Tag(0x5A), &pan),
            encode(Tag(0x5F24), &expiry),
            encode(Tag(0x5F34), &[0x01]),
        ]);
        let mut out = encode(Tag(0x70), &body);
        if self.broken_record {
            // The template claims more than it holds: a damaged chip file.
            out[1] += 7;
        }
        out.extend(SW_OK);
        out
    }
}

impl ContactlessCard for EmvCard {
    fn uid(&self) -> Vec<u8> {
        vec![0x08, self.track2[0], self.track2[1], self.track2[2]]
    }

    fn apdu(&mut self, c: &[u8]) -> Vec<u8> {
        match c {
            [0x00, 0xA4, 0x04, 0x00, len, rest @ ..] if rest.len() >= *len as usize => {
                let name = &rest[..*len as usize];
                if name == b"2PAY.SYS.DDF01" {
                    let entry = tlvs(&[
                        encode(Tag(0x4F), self.aid()),
                        encode(Tag(0x50), b"PAYMENT"),
                        encode(Tag(0x87), &[0x01]),
                    ]);
                    let dir = encode(Tag(0xBF0C), &encode(Tag(0x61), &entry));
                    let mut out = encode(
                        Tag(0x6F),
                        &tlvs(&[encode(Tag(0x84), name), encode(Tag(0xA5), &dir)]),
                    );
                    out.extend(SW_OK);
                    out
                } else if name == self.aid() {
                    self.selected = true;
                    let pdol = self.pdol();
                    self.pdol_len = parse_dol(&pdol)
                        .map(|d| d.iter().map(|(_, l)| l).sum())
                        .unwrap_or(0);
                    let a5 = tlvs(&[encode(Tag(0x50), b"PAYMENT"), encode(Tag(0x9F38), &pdol)]);
                    let mut out = encode(
                        Tag(0x6F),
                        &tlvs(&[encode(Tag(0x84), name), encode(Tag(0xA5), &a5)]),
                    );
                    out.extend(SW_OK);
                    out
                } else {
                    vec![0x6A, 0x82]
                }
            }
            [0x80, 0xA8, 0x00, 0x00, len, rest @ ..] if self.selected && rest.len() > *len as usize => {
                self.gpo(&rest[..*len as usize])
            }
            [0x00, 0xB2, record, p2, ..] if self.selected && p2 & 7 == 4 => {
                self.read_record(*record, p2 >> 3)
            }
            _ => vec![0x6D, 0x00],
        }
    }
}
