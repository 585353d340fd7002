//! Reading an EMV contactless card (EMV Book B/C): SELECT the PPSE, pick the
//! best application the terminal accepts, SELECT it, GET PROCESSING OPTIONS
//! with the data its PDOL asks for, then READ RECORD over the AFL until the
//! track 2 equivalent data (tag 57) is found. Only what a sale needs comes
//! out: PAN, expiry and service code as a [`CardRead`], plus the chip data
//! for the authorization (field 55) without any card number in it.

use super::tlv::{self, Tag, Tlv};
use tallybox_core::card::{CardError, CardRead, EntryMode, Track2};
use tallybox_core::money::Amount;

/// The applications this terminal accepts, best first when the card gives no priority.
pub const AIDS: &[(&str, &[u8])] = &[
    (
        "UnionPay Debit",
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01],
    ),
    (
        "UnionPay Credit",
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x02],
    ),
    (
        "UnionPay Quasi-credit",
        &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x03],
    ),
    ("Visa", &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]),
    ("Mastercard", &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]),
];

const PPSE: &[u8] = b"2PAY.SYS.DDF01";

/// Chip data worth passing to the acquirer: cryptogram and what it covers.
/// Card numbers (5A, 57) are never among them.
const ICC_TAGS: &[u32] = &[
    0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x95, 0x9A, 0x9C, 0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9F37, 0x9F66,
    0x5F34,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    #[error("card taken away too soon: tap again and hold it still")]
    CardGone,
    #[error("card has no payment application this terminal accepts")]
    NoApplication,
    #[error("card answered {0:04X} to {1}")]
    Refused(u16, &'static str),
    #[error("card data is damaged ({0}): tap again or swipe")]
    Damaged(&'static str),
    #[error("card did not ask its bank (cryptogram type {0:02X}): swipe it or use another card")]
    NotOnline(u8),
    #[error("card: {0}")]
    Card(#[from] CardError),
    #[error("reader: {0}")]
    Reader(String),
}

/// Whatever carries APDUs to the card (the PN532, or a test double).
pub trait CardLink {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TapError>;
}

/// What the terminal puts into the card's PDOL.
#[derive(Debug, Clone)]
pub struct Terminal {
    pub amount: Amount,
    /// ISO 4217 numeric (156 for CNY) and ISO 3166 numeric country (156 for China).
    pub currency_code: u16,
    pub country_code: u16,
    /// Local date YYMMDD.
    pub date: [u8; 3],
    pub unpredictable_number: [u8; 4],
}

/// A tap's result: the card, with the chip data for field 55 in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    pub card: CardRead,
    pub application: &'static str,
}

fn select(aid: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    apdu
}

/// Sends `apdu` and splits off SW1 SW2; anything but 9000 is refused.
fn send(link: &mut dyn CardLink, apdu: &[u8], what: &'static str) -> Result<Vec<u8>, TapError> {
    let mut answer = link.exchange(apdu)?;
    if answer.len() < 2 {
        return Err(TapError::Damaged("short answer"));
    }
    let sw = u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]]);
    answer.truncate(answer.len() - 2);
    if sw != 0x9000 {
        return Err(TapError::Refused(sw, what));
    }
    Ok(answer)
}

fn parse(data: &[u8]) -> Result<Vec<Tlv<'_>>, TapError> {
    tlv::parse(data).map_err(|_| TapError::Damaged("bad TLV"))
}

fn bcd(n: u64, bytes: usize) -> Vec<u8> {
    let digits = format!("{n:0width$}", width = bytes * 2);
    digits
        .as_bytes()
        .chunks(2)
        .map(|p| (p[0] - b'0') << 4 | (p[1] - b'0'))
        .collect()
}

impl Terminal {
    /// A CNY transaction of `amount` in China, today, with a fresh
    /// unpredictable number.
    pub fn for_amount(amount: Amount) -> Terminal {
        use chrono::Datelike;
        let d = tallybox_platform::clock::now();
        let b = |n: u32| (((n / 10) << 4) | (n % 10)) as u8;
        let random = uuid::Uuid::new_v4();
        let r = random.as_bytes();
        Terminal {
            amount,
            currency_code: 156,
            country_code: 156,
            date: [b(d.year() as u32 % 100), b(d.month()), b(d.day())],
            unpredictable_number: [r[0], r[1], r[2], r[3]],
        }
    }

    /// The value the terminal gives for `tag`, `len` bytes long (zeros when unknown).
    fn value(&self, tag: Tag, len: usize) -> Vec<u8> {
        let v = match tag.0 {
            // TTQ: contactless EMV (no contact chip here), online PIN,
            // signature; an online cryptogram required: the card never
            // approves offline, so every sale goes to its bank, and there is
            // no offline approval to upload later.
            0x9F66 => vec![0x26, 0x80, 0x40, 0x00],
            0x9F02 => bcd(self.amount.minor(), 6),
            0x9F03 => bcd(0, 6),
            0x9F1A => bcd(self.country_code as u64, 2),
            0x5F2A => bcd(self.currency_code as u64, 2),
            0x9A => self.date.to_vec(),
            0x9C => vec![0x00],
            0x9F37 => self.unpredictable_number.to_vec(),
            _ => vec![],
        };
        let mut v = v;
        v.resize(len, 0);
        v
    }
}

/// Reads the card on `link` for a transaction of `terminal.amount`.
pub fn read(link: &mut dyn CardLink, terminal: &Terminal) -> Result<Tap, TapError> {
    let fci = send(link, &select(PPSE), "SELECT PPSE")?;
    let (application, aid) = choose(&parse(&fci)?)?;
    let fci = send(link, &select(aid), "SELECT AID")?;
    let fci = parse(&fci)?;
    let pdol = match tlv::find(&fci, Tag(0x9F38)) {
        Some(t) => tlv::parse_dol(t.value).map_err(|_| TapError::Damaged("bad PDOL"))?,
        None => Vec::new(),
    };
    let pdol_data: Vec<u8> = pdol
        .iter()
        .flat_map(|&(tag, len)| terminal.value(tag, len))
        .collect();
    let mut gpo = vec![
        0x80,
        0xA8,
        0x00,
        0x00,
        pdol_data.len() as u8 + 2,
        0x83,
        pdol_data.len() as u8,
    ];
    gpo.extend_from_slice(&pdol_data);
    gpo.push(0x00);
    let answer = send(link, &gpo, "GET PROCESSING OPTIONS")?;
    let mut found: Vec<(Tag, Vec<u8>)> = Vec::new();
    collect(&parse(&answer)?, &mut found);
    for &(tag, len) in &pdol {
        found.push((tag, terminal.value(tag, len)));
    }
    if !found.iter().any(|(t, _)| t.0 == 0x57) {
        for (sfi, record) in afl(&found)? {
            let apdu = [0x00, 0xB2, record, sfi << 3 | 4, 0x00];
            let data = send(link, &apdu, "READ RECORD")?;
            collect(&parse(&data)?, &mut found);
            if found.iter().any(|(t, _)| t.0 == 0x57) {
                break;
            }
        }
    }
    let track = found
        .iter()
        .find(|(t, _)| t.0 == 0x57)
        .map(|(_, v)| track2_text(v))
        .ok_or(TapError::Damaged("no track 2 data"))?;
    let track = Track2::parse(&track)?;
    // An ARQC (cryptogram type 10xxxxxx) is what goes to the bank; a card
    // that approved or declined by itself did not follow the terminal.
    match found
        .iter()
        .find(|(t, _)| t.0 == 0x9F27)
        .map(|(_, v)| v.as_slice())
    {
        Some([cid]) if cid & 0xC0 == 0x80 => {}
        Some([cid]) => return Err(TapError::NotOnline(*cid)),
        _ => return Err(TapError::Damaged("no cryptogram type")),
    }
    let icc_data: Vec<u8> = ICC_TAGS
        .iter()
        .filter_map(|&t| found.iter().find(|(tag, _)| tag.0 == t))
        .flat_map(|(tag, v)| tlv::encode(*tag, v))
        .collect();
    let mut card = CardRead::from_track2(&track, EntryMode::Tap);
    card.icc_data = Some(hex::encode_upper(icc_data));
    Ok(Tap { card, application })
}

/// The application to use: the card's own priority (tag 87, lower first)
/// among those this terminal accepts.
fn choose(ppse: &[Tlv<'_>]) -> Result<(&'static str, &'static [u8]), TapError> {
    let dir = tlv::find(ppse, Tag(0xBF0C)).ok_or(TapError::NoApplication)?;
    dir.children
        .iter()
        .filter(|e| e.tag == Tag(0x61))
        .filter_map(|entry| {
            let aid = tlv::find(&entry.children, Tag(0x4F))?.value;
            let priority = tlv::find(&entry.children, Tag(0x87))
                .and_then(|p| p.value.first())
                .map_or(15, |p| p & 0x0F);
            let (rank, &(name, known)) = AIDS.iter().enumerate().find(|(_, (_, a))| *a == aid)?;
            Some((priority, rank, name, known))
        })
        .min()
        .map(|(_, _, name, aid)| (name, aid))
        .ok_or(TapError::NoApplication)
}

/// Every primitive TLV, flattened (templates 77, 70 and 80 opened).
fn collect(tlvs: &[Tlv<'_>], out: &mut Vec<(Tag, Vec<u8>)>) {
    for t in tlvs {
        if t.tag == Tag(0x80) && t.value.len() >= 2 {
            // Format 1 GPO answer: AIP (2 bytes) then the AFL.
            out.push((Tag(0x82), t.value[..2].to_vec()));
            out.push((Tag(0x94), t.value[2..].to_vec()));
        } else if t.tag.is_constructed() {
            collect(&t.children, out);
        } else {
            out.push((t.tag, t.value.to_vec()));
        }
    }
}

/// The (SFI, record) pairs the Application File Locator lists.
fn afl(found: &[(Tag, Vec<u8>)]) -> Result<Vec<(u8, u8)>, TapError> {
    let Some((_, afl)) = found.iter().find(|(t, _)| t.0 == 0x94) else {
        return Ok(Vec::new());
    };
    if afl.len() % 4 != 0 {
        return Err(TapError::Damaged("bad AFL"));
    }
    let mut records = Vec::new();
    for entry in afl.chunks(4) {
        let (sfi, first, last) = (entry[0] >> 3, entry[1], entry[2]);
        if sfi == 0 || first == 0 || last < first {
            return Err(TapError::Damaged("bad AFL"));
        }
        records.extend((first..=last).map(|r| (sfi, r)));
    }
    Ok(records)
}

/// Tag 57 is track 2 in packed BCD: `D` separates PAN and expiry, `F` pads.
fn track2_text(value: &[u8]) -> String {
    let hex = hex::encode_upper(value);
    hex.trim_end_matches('F').replace('D', "=")
}

#[cfg(test)]
mod tests;
