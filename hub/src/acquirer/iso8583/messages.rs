//! What each transaction looks like on the ISO 8583 link, both ways: the
//! hub's client builds requests and reads answers; the simulated host reads
//! requests and builds answers. Keeping both here keeps them in agreement.
//!
//! | message | fields |
//! |---|---|
//! | 0800 / 0810 sign-in | 11 trace, 41 terminal, 42 merchant · 39 |
//! | 0200 / 0210 sale (processing code 000000), balance (310000) | 2 PAN, 3, 4 amount, 7 transmission time (UTC), 11 trace, 12 / 13 local time and date, 14 expiry, 22 entry mode, 25 condition, 35 track 2, 41, 42, 49 currency, 52 PIN block, 55 chip data · 37 reference, 38 auth code, 39 response, 54 balance |
//! | 0400 / 0410 reversal, 0401 its repeat | 3 and 4 of the original, 7, 11 of the original, 39 `98` (no answer), 41, 42, 49, 90 original data (type, trace, field 7) · 39 |
//! | 0500 / 0510 settlement | 11 its own trace, 41, 42, 48 totals (sales count n6, amount n12, refunds count n6, amount n12), 60 batch · 39 `00` balanced, `95` out of balance |
//!
//! Every message carries a MAC in field 64, or 128 when it has a secondary
//! bitmap (a reversal, for its field 90; see [`super::mac`]).
//!
//! China UnionPay's layout ([`Dialect::CupPos`]) carries the same
//! transactions with its own fields: no 7, 12, 13 or 90; field 60 is the
//! transaction type code (22 sale, 01 balance, 23 void, 25 refund, 00
//! management), the batch number and the network management code (003
//! sign-in, 201 settlement); 61 names a void's or refund's original (batch,
//! trace, date); 26 and 53 say how a PIN block is made; 63 is the operator;
//! a reversal's repeat is another 0400; settlement's 48 is its own layout.

use chrono::{DateTime, FixedOffset, Utc};
use tallybox_core::card::{CardRead, EntryMode, Track2};
use tallybox_core::code::ResponseCode;
use tallybox_core::money::Amount;
use tallybox_core::protocol::TxnKind;

use super::codec::{CodecError, Dialect, Message};
use crate::acquirer::{AuthRequest, AuthResponse, BatchItem, BatchTotals, Reversal};

/// ISO 4217 numeric for CNY: the simulated host's balances when a request
/// names no currency.
pub const CNY: &str = "156";

fn trace(n: u32) -> String {
    format!("{:06}", n % 1_000_000)
}

/// Field 41 is eight characters: a terminal id of up to eight, space-padded.
pub fn terminal_field(terminal_id: &str) -> Result<String, CodecError> {
    if terminal_id.len() > 8 {
        return Err(CodecError::BadField {
            field: 41,
            problem: format!("terminal id {terminal_id} is longer than the 8 characters the acquirer takes"),
        });
    }
    Ok(format!("{terminal_id:<8}"))
}

/// Field 42 is fifteen characters, space-padded.
fn merchant_field(merchant_id: &str) -> String {
    format!("{merchant_id:<15}")
}

/// Field 7: MMDDhhmmss in UTC.
fn transmission_time(at: DateTime<Utc>) -> String {
    at.format("%m%d%H%M%S").to_string()
}

/// The message type and processing code (field 3) `kind` goes out with.
/// Void (撤销) and refund (退货) both take processing code 20; field 60 says
/// which (23 void, 25 refund), and a refund travels as an advice (0220).
fn type_and_code(kind: TxnKind) -> (&'static str, &'static str) {
    match kind {
        TxnKind::Sale => ("0200", "000000"),
        TxnKind::Balance => ("0200", "310000"),
        TxnKind::Void => ("0200", "200000"),
        TxnKind::Refund => ("0220", "200000"),
    }
}

fn entry_mode(mode: EntryMode) -> &'static str {
    // PAN entry (2 digits) then PIN entry capability (1: can take a PIN).
    match mode {
        EntryMode::Swipe => "021",
        EntryMode::Tap => "071",
        EntryMode::Manual => "011",
    }
}

/// China UnionPay's field 60.1, the transaction type code.
fn cup_type_code(kind: TxnKind) -> &'static str {
    match kind {
        TxnKind::Sale => "22",
        TxnKind::Balance => "01",
        TxnKind::Void => "23",
        TxnKind::Refund => "25",
    }
}

/// China UnionPay's field 60: type code, batch number, network management
/// code (`000` in a transaction).
fn cup_field60(type_code: &str, batch_no: u32, management: &str) -> String {
    format!("{type_code}{:06}{management}", batch_no % 1_000_000)
}

/// China UnionPay's network management code for an echo test.
const CUP_ECHO: &str = "301";

/// An echo test (0820): is the host there? Trace, terminal, merchant; in
/// China UnionPay's layout field 60 with code 301. No MAC.
pub fn echo(d: Dialect, trace_no: u32, terminal_id: &str, merchant_id: &str) -> Result<Message, CodecError> {
    let mut m = Message::new("0820");
    m.set_str(11, &trace(trace_no))?
        .set_str(41, &terminal_field(terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?;
    if d == Dialect::CupPos {
        m.set_str(60, &cup_field60("00", 0, CUP_ECHO))?;
    }
    Ok(m)
}

/// China UnionPay's field 63: the operator (one per terminal here).
const CUP_OPERATOR: &str = "001";

/// China UnionPay's network management code for a sign-in with
/// double-length working keys.
const CUP_SIGN_IN: &str = "003";
/// ... for a settlement, and for a batch upload's transactions.
const CUP_SETTLEMENT: &str = "201";
/// ... for the end of a batch upload.
const CUP_BATCH_END: &str = "202";

pub fn sign_in(
    d: Dialect,
    trace_no: u32,
    terminal_id: &str,
    merchant_id: &str,
) -> Result<Message, CodecError> {
    let mut m = Message::new("0800");
    m.set_str(11, &trace(trace_no))?
        .set_str(41, &terminal_field(terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?;
    if d == Dialect::CupPos {
        m.set_str(60, &cup_field60("00", 0, CUP_SIGN_IN))?
            .set_str(63, CUP_OPERATOR)?;
    }
    Ok(m)
}

/// The batch a message names in China UnionPay's field 60.2; in a sign-in
/// answer, the one the host holds open for the terminal.
pub fn batch_in_60(d: Dialect, m: &Message) -> Option<u32> {
    if d != Dialect::CupPos {
        return None;
    }
    m.text(60)?.get(2..8)?.parse().ok()
}

/// The host's sign-in answer names the batch it holds open for the
/// terminal (China UnionPay's field 60.2).
pub fn set_host_batch(answer: &mut Message, batch_no: u32) -> Result<(), CodecError> {
    answer.set_str(60, &cup_field60("00", batch_no, CUP_SIGN_IN))?;
    Ok(())
}

/// In China UnionPay's layout, puts the host's numbers in place of the
/// hub's batch numbers: field 60.2 (the message's own batch, `own`) and
/// field 61 (a void's or refund's original).
pub fn number_batches(
    d: Dialect,
    m: &mut Message,
    mut host: impl FnMut(u32, bool) -> u32,
) -> Result<(), CodecError> {
    if d != Dialect::CupPos {
        return Ok(());
    }
    for (field, at, own) in [(60u8, 2..8, true), (61, 0..6, false)] {
        let Some(f) = m.text(field) else { continue };
        let Some(batch) = f.get(at.clone()).and_then(|b| b.parse::<u32>().ok()) else {
            continue;
        };
        let mut f = f.to_string();
        f.replace_range(at, &format!("{:06}", host(batch, own) % 1_000_000));
        m.set_str(field, &f)?;
    }
    Ok(())
}

/// `currency`: the store's ISO 4217 numeric code (field 49); the amount in
/// field 4 is in its minor units.
pub fn auth_request(
    d: Dialect,
    r: &AuthRequest,
    merchant_id: &str,
    currency: &str,
    now: DateTime<FixedOffset>,
) -> Result<Message, CodecError> {
    let pan = r.card.pan.digits();
    let (mti, code) = type_and_code(r.kind);
    let undo = match r.kind {
        TxnKind::Void => Some("23"),
        TxnKind::Refund => Some("25"),
        TxnKind::Sale | TxnKind::Balance => None,
    };
    let mut m = Message::new(mti);
    m.set_str(2, pan)?
        .set_str(3, code)?
        .set_str(4, &format!("{:012}", r.amount.minor()))?
        .set_str(11, &trace(r.trace_no))?
        .set_str(14, &r.card.expiry.yymm())?
        .set_str(22, entry_mode(r.card.entry_mode))?
        .set_str(25, "00")?
        .set_str(41, &terminal_field(&r.terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?
        .set_str(49, currency)?;
    if let Some(sc) = &r.card.service_code {
        let rest = r.card.discretionary.digits();
        m.set_str(35, &format!("{pan}={}{sc}{rest}", r.card.expiry.yymm()))?;
    }
    if let Some(block) = &r.pin_block {
        let bytes = hex::decode(block).map_err(|_| CodecError::BadField {
            field: 52,
            problem: "PIN block is not hex".into(),
        })?;
        m.set(52, bytes)?;
    }
    match d {
        Dialect::Iso1987 => {
            m.set_str(7, &transmission_time(r.at))?
                .set_str(12, &now.format("%H%M%S").to_string())?
                .set_str(13, &now.format("%m%d").to_string())?;
        }
        Dialect::CupPos => {
            m.set_str(60, &cup_field60(cup_type_code(r.kind), r.batch_no, "000"))?;
            if r.pin_block.is_some() {
                // Up to 12 digits; format 0 block under a double-length key.
                m.set_str(26, "12")?.set_str(53, "2600000000000000")?;
            }
        }
    }
    if let (Some(kind), Some(original)) = (undo, &r.original) {
        match d {
            Dialect::Iso1987 => {
                m.set_str(60, &format!("{kind}{:06}", original.trace_no % 1_000_000))?;
            }
            Dialect::CupPos => {
                let date = original.at.format("%m%d");
                m.set_str(
                    61,
                    &format!(
                        "{:06}{:06}{date}",
                        original.batch_no % 1_000_000,
                        original.trace_no % 1_000_000
                    ),
                )?;
            }
        }
        if !original.reference_no.is_empty() {
            m.set_str(37, &format!("{:0>12}", original.reference_no))?;
        }
        if !original.auth_code.is_empty() {
            m.set_str(38, &format!("{:<6}", original.auth_code))?;
        }
    }
    if let Some(icc) = &r.card.icc_data {
        if let Ok(bytes) = hex::decode(icc) {
            if let Some(n) = card_sequence_number(&bytes) {
                m.set_str(23, &n)?;
            }
            m.set(55, bytes)?;
        }
    }
    Ok(m)
}

/// Field 23 of a chip sale: the card's sequence number (tag 5F34, two BCD
/// digits) as n3, when the chip data carries it.
fn card_sequence_number(icc: &[u8]) -> Option<String> {
    use tallybox_core::card::tlv;
    let tlvs = tlv::parse(icc).ok()?;
    let value = tlvs.iter().find(|t| t.tag.0 == 0x5F34)?.value;
    let digits = hex::encode(value.get(..1)?);
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| format!("0{digits}"))
}

/// Field 90's institution ids (acquiring, forwarding): a terminal has none
/// of its own, so zeros (eleven digits each).
const NO_INSTITUTION: &str = "0000000000000000000000";

/// A reversal names what it reverses: the original's processing code,
/// amount and trace; in ISO 8583:1987 also field 90 (its type, trace and
/// transmission time), in China UnionPay's layout field 60 (its type code
/// and batch), where a repeat is another 0400.
pub fn reversal(d: Dialect, r: &Reversal, merchant_id: &str, currency: &str) -> Result<Message, CodecError> {
    let repeat = r.repeat && d == Dialect::Iso1987;
    let mut m = Message::new(if repeat { "0401" } else { "0400" });
    let (original_type, code) = type_and_code(r.kind);
    m.set_str(3, code)?
        .set_str(4, &format!("{:012}", r.amount.minor()))?
        .set_str(11, &trace(r.trace_no))?
        .set_str(39, "98")?
        .set_str(41, &terminal_field(&r.terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?
        .set_str(49, currency)?;
    if d == Dialect::CupPos {
        m.set_str(25, "00")?
            .set_str(60, &cup_field60(cup_type_code(r.kind), r.batch_no, "000"))?;
        return Ok(m);
    }
    m.set_str(7, &transmission_time(Utc::now()))?.set_str(
        90,
        &format!(
            "{original_type}{}{}{NO_INSTITUTION}",
            trace(r.trace_no),
            transmission_time(r.original_at)
        ),
    )?;
    Ok(m)
}

/// What a reversal's field 90 names: the original's type, trace number and
/// transmission time (field 7).
pub fn read_original(m: &Message) -> Result<(String, u32, String), String> {
    let f = m.text(90).ok_or("a reversal without field 90 (original data)")?;
    let trace = f[4..10].parse().map_err(|_| "field 90's trace is not digits")?;
    Ok((f[..4].to_string(), trace, f[10..20].to_string()))
}

/// The most an amount in field 48 carries (12 digits).
const MAX_MINOR: u64 = 999_999_999_999;

/// The most a count in field 48 carries: 6 digits in ISO 8583:1987, 3 in
/// China UnionPay's layout.
fn max_count(d: Dialect) -> u32 {
    match d {
        Dialect::Iso1987 => 999_999,
        Dialect::CupPos => 999,
    }
}

/// The batch size at which the hub settles by itself, where field 48's
/// count is short (China UnionPay's three digits): a few below the most,
/// for the sales under way while the settlement starts.
pub fn batch_limit(d: Dialect) -> Option<u32> {
    (max_count(d) < 10_000).then_some(max_count(d) - 9)
}

/// The settlement's field 48, both layouts, net of voids. ISO 8583:1987:
/// sales count (n6) and amount (n12), refunds count (n6) and amount (n12).
/// China UnionPay: for domestic cards the debit (sales) amount (n12) and
/// count (n3), the credit (refunds) amount and count, and a result digit
/// (`0` from the terminal; the host answers `1` balanced, `2` not, `3`
/// error), then the same 31 digits for foreign cards (zeros here).
fn totals_field(d: Dialect, t: &BatchTotals) -> String {
    match d {
        Dialect::Iso1987 => format!(
            "{:06}{:012}{:06}{:012}",
            t.sales_count, t.sales_minor, t.refunds_count, t.refunds_minor
        ),
        Dialect::CupPos => format!(
            "{:012}{:03}{:012}{:03}0{:031}",
            t.sales_minor, t.sales_count, t.refunds_minor, t.refunds_count, 0
        ),
    }
}

/// A settlement. A figure too large for its digits in field 48 is refused,
/// never cut (a cut count settled OUT OF BALANCE).
pub fn settlement(
    d: Dialect,
    t: &BatchTotals,
    merchant_id: &str,
    currency: &str,
) -> Result<Message, CodecError> {
    let max = max_count(d);
    if t.sales_count.max(t.refunds_count) > max || t.sales_minor.max(t.refunds_minor) > MAX_MINOR {
        return Err(CodecError::BadField {
            field: 48,
            problem: format!(
                "batch {} of {} is larger than field 48 carries ({max} transactions, {MAX_MINOR} minor units): settle more often",
                t.batch_no, t.terminal_id
            ),
        });
    }
    let mut m = Message::new("0500");
    m.set_str(11, &trace(t.trace_no))?
        .set_str(41, &terminal_field(&t.terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?
        .set_str(48, &totals_field(d, t))?;
    match d {
        Dialect::Iso1987 => {
            m.set_str(60, &format!("00{:06}", t.batch_no % 1_000_000))?;
        }
        Dialect::CupPos => {
            m.set_str(49, currency)?
                .set_str(60, &cup_field60("00", t.batch_no, CUP_SETTLEMENT))?
                .set_str(63, CUP_OPERATOR)?;
        }
    }
    Ok(m)
}

pub fn read_settlement(d: Dialect, m: &Message) -> Result<BatchTotals, String> {
    let f = m.text(48).ok_or("a settlement without field 48")?;
    let n = |a: usize, b: usize| {
        f.get(a..b)
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or_else(|| format!("field 48 ({} digits) is not the {} totals", f.len(), d.name()))
    };
    let (sales_minor, sales_count, refunds_minor, refunds_count) = match d {
        Dialect::Iso1987 if f.len() == 36 => (n(6, 18)?, n(0, 6)?, n(24, 36)?, n(18, 24)?),
        Dialect::CupPos if f.len() == 62 => (n(0, 12)?, n(12, 15)?, n(15, 27)?, n(27, 30)?),
        _ => {
            return Err(format!(
                "field 48 has {} digits, not the {} totals",
                f.len(),
                d.name()
            ))
        }
    };
    Ok(BatchTotals {
        terminal_id: m.text(41).ok_or("field 41 missing")?.trim_end().to_string(),
        trace_no: m.text(11).and_then(|t| t.parse().ok()).unwrap_or(0),
        batch_no: m
            .text(60)
            .and_then(|b| b.get(2..8))
            .and_then(|b| b.parse().ok())
            .unwrap_or(0),
        sales_count: sales_count as u32,
        sales_minor,
        refunds_count: refunds_count as u32,
        refunds_minor,
    })
}

/// The host's answer to a settlement: ISO 8583:1987 says it in field 39
/// (`00` balanced, `95` not); China UnionPay's layout answers `00` and gives
/// the result digit in field 48, whose totals it sends back.
pub fn settlement_answer(d: Dialect, request: &Message, balanced: bool) -> Result<Message, CodecError> {
    match d {
        Dialect::Iso1987 => answer(
            request,
            if balanced {
                ResponseCode::APPROVED
            } else {
                ResponseCode::OUT_OF_BALANCE
            },
        ),
        Dialect::CupPos => {
            let mut a = answer(request, ResponseCode::APPROVED)?;
            let mut totals = request.text(48).unwrap_or_default().to_string();
            if totals.len() == 62 {
                totals.replace_range(30..31, if balanced { "1" } else { "2" });
                a.set_str(48, &totals)?;
            }
            Ok(a)
        }
    }
}

/// One transaction of a batch upload (China UnionPay's 0320 after a
/// settlement out of balance): its processing code, amount, trace,
/// reference and authorization code, under the batch's field 60. No card
/// number: the hub keeps none, so the host matches by trace and reference.
pub fn batch_upload(
    item: &BatchItem,
    terminal_id: &str,
    batch_no: u32,
    merchant_id: &str,
    currency: &str,
) -> Result<Message, CodecError> {
    let mut m = Message::new("0320");
    m.set_str(3, type_and_code(item.kind).1)?
        .set_str(4, &format!("{:012}", item.amount.minor()))?
        .set_str(11, &trace(item.trace_no))?
        .set_str(25, "00")?
        .set_str(41, &terminal_field(terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?
        .set_str(49, currency)?
        .set_str(60, &cup_field60("00", batch_no, CUP_SETTLEMENT))?;
    if !item.reference_no.is_empty() {
        m.set_str(37, &format!("{:0>12}", item.reference_no))?;
    }
    if !item.auth_code.is_empty() {
        m.set_str(38, &format!("{:<6}", item.auth_code))?;
    }
    Ok(m)
}

/// The end of a batch upload (0320, management code 202): the
/// settlement's trace, and in field 48 how many transactions went (n4).
pub fn batch_end(t: &BatchTotals, sent: usize, merchant_id: &str) -> Result<Message, CodecError> {
    let mut m = Message::new("0320");
    m.set_str(11, &trace(t.trace_no))?
        .set_str(41, &terminal_field(&t.terminal_id)?)?
        .set_str(42, &merchant_field(merchant_id))?
        .set_str(48, &format!("{:04}", sent % 10_000))?
        .set_str(60, &cup_field60("00", t.batch_no, CUP_BATCH_END))?;
    Ok(m)
}

/// For the host: `Some(count)` when a 0320 is a batch end, with the count
/// it names.
pub fn read_batch_end(m: &Message) -> Option<usize> {
    m.text(60)
        .filter(|f| f.get(8..11) == Some(CUP_BATCH_END))
        .and(m.text(48))
        .and_then(|n| n.parse().ok())
}

/// Whether a settlement's answer says the totals agree; why not an answer.
pub fn settled(d: Dialect, answer: &Message) -> Result<bool, String> {
    let code = answer.text(39).and_then(ResponseCode::parse);
    match (d, code) {
        (Dialect::Iso1987, Some(ResponseCode::APPROVED)) => Ok(true),
        (Dialect::Iso1987, Some(ResponseCode::OUT_OF_BALANCE)) => Ok(false),
        (Dialect::CupPos, Some(ResponseCode::APPROVED)) => {
            match answer.text(48).and_then(|f| f.get(30..31)) {
                Some("1") => Ok(true),
                Some("2") => Ok(false),
                other => Err(format!("settlement answered with result {other:?} in field 48")),
            }
        }
        (_, other) => Err(format!("settlement answered {other:?}")),
    }
}

/// The answer's type for a request's: a request (`0200`) or an advice
/// (`0220`) is answered `0210` / `0230`, and so is its repeat (`0201`,
/// `0221`, `0401`: the last digit 1 says "sent before").
pub fn answer_type(mti: &str) -> Option<String> {
    let digits: Vec<u8> = mti.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    let [version, class, function, origin] = digits[..] else {
        return None;
    };
    if version > 9 || class > 9 || !matches!(function, 0 | 2) || origin > 1 {
        return None;
    }
    Some(format!("{version}{class}{}0", function + 1))
}

/// The fields an answer must give back as the request sent them: an answer
/// that differs in any (another amount, another terminal) answers something
/// else and approves nothing.
const ECHOED: [(u8, &str); 6] = [
    (3, "processing code"),
    (4, "amount"),
    (11, "trace number"),
    (41, "terminal id"),
    (42, "merchant id"),
    (49, "currency"),
];

/// Why `answer` is not an answer to `request`, if it is not. A balance
/// inquiry's answer may leave the amount out.
pub fn answer_mismatch(request: &Message, answer: &Message) -> Option<String> {
    if answer_type(&request.mti).as_deref() != Some(answer.mti.as_str()) {
        return Some(format!("type {} does not answer {}", answer.mti, request.mti));
    }
    for (n, name) in ECHOED {
        let Some(sent) = request.get(n) else { continue };
        match answer.get(n) {
            Some(got) if got == sent => {}
            None if n == 4 && request.text(3) == Some("310000") => {}
            Some(got) => {
                return Some(format!(
                    "its {name} (field {n}) is {}, the request's {}",
                    String::from_utf8_lossy(got).trim_end(),
                    String::from_utf8_lossy(sent).trim_end()
                ))
            }
            None => return Some(format!("it has no {name} (field {n})")),
        }
    }
    None
}

/// The host's answer to `request`: the request's identifying fields, then `extra`.
pub fn answer(request: &Message, response_code: ResponseCode) -> Result<Message, CodecError> {
    let mti = answer_type(&request.mti).ok_or_else(|| CodecError::BadType(request.mti.clone()))?;
    let mut m = Message::new(&mti);
    for n in [3, 4, 11, 12, 13, 41, 42, 49] {
        if let Some(v) = request.get(n) {
            m.set(n, v.to_vec())?;
        }
    }
    m.set_str(39, response_code.as_str())?;
    Ok(m)
}

/// Field 54, a balance: account type, amount type `02` (available), currency,
/// `C` (credit) and twelve digits.
pub fn balance_field(balance: Amount, currency: &str) -> String {
    format!("1002{currency}C{:012}", balance.minor())
}

pub fn auth_response(m: &Message) -> Result<AuthResponse, String> {
    let code = m.text(39).ok_or("answer without a response code (39)")?;
    let code = ResponseCode::parse(code)
        .ok_or_else(|| format!("response code (39) '{code}' is not two letters or digits"))?;
    let balance = m
        .text(54)
        .and_then(|f| f.get(8..20))
        .and_then(|digits| digits.parse::<u64>().ok())
        .and_then(|minor| Amount::from_minor(minor).ok());
    Ok(AuthResponse {
        response_code: code,
        auth_code: m.text(38).unwrap_or_default().trim().to_string(),
        reference_no: m.text(37).unwrap_or_default().trim().to_string(),
        balance,
    })
}

/// The host's reading of a 0200: what the issuer decides on.
pub fn read_auth_request(d: Dialect, m: &Message) -> Result<AuthRequest, String> {
    let need = |n: u8| m.text(n).ok_or(format!("field {n} missing"));
    let undo = m.text(60).and_then(|f| f.get(..2));
    let kind = match (need(3)?, undo) {
        ("000000", _) => TxnKind::Sale,
        ("310000", _) => TxnKind::Balance,
        ("200000", Some("23")) => TxnKind::Void,
        ("200000", Some("25")) => TxnKind::Refund,
        (other, _) => return Err(format!("processing code {other} not supported")),
    };
    // The original's batch and trace: field 61 in China UnionPay's layout,
    // the trace after the type code in field 60 in ISO 8583:1987.
    let (original_field, batch_at, trace_at) = match d {
        Dialect::Iso1987 => (60, None, 2..8),
        Dialect::CupPos => (61, Some(0..6), 6..12),
    };
    let digits = |f: &str, at: std::ops::Range<usize>| f.get(at).and_then(|t| t.parse::<u32>().ok());
    let original = match (kind, m.text(original_field)) {
        (TxnKind::Void | TxnKind::Refund, Some(f)) => Some(crate::acquirer::OriginalRef {
            trace_no: digits(f, trace_at)
                .ok_or(format!("field {original_field} without the original trace"))?,
            batch_no: batch_at.and_then(|at| digits(f, at)).unwrap_or(0),
            reference_no: m.text(37).unwrap_or_default().to_string(),
            auth_code: m.text(38).unwrap_or_default().trim().to_string(),
            at: Utc::now(),
        }),
        (TxnKind::Void | TxnKind::Refund, None) => {
            return Err(format!(
                "a void or refund without field {original_field} (its original)"
            ))
        }
        _ => None,
    };
    let minor: u64 = need(4)?.parse().map_err(|_| "bad amount")?;
    let amount = Amount::from_minor(minor).map_err(|e| e.to_string())?;
    let entry = match need(22)?.get(..2) {
        Some("07") => EntryMode::Tap,
        Some("01") => EntryMode::Manual,
        _ => EntryMode::Swipe,
    };
    let track = match m.text(35) {
        Some(t) => t.to_string(),
        None => format!("{}={}000", need(2)?, need(14)?),
    };
    let track = Track2::parse(&track).map_err(|e| e.to_string())?;
    let mut card = CardRead::from_track2(&track, entry);
    card.icc_data = m.get(55).map(hex::encode_upper);
    Ok(AuthRequest {
        kind,
        terminal_id: need(41)?.trim_end().to_string(),
        trace_no: need(11)?.parse().map_err(|_| "bad trace number")?,
        batch_no: batch_in_60(d, m).unwrap_or(0),
        amount,
        card,
        pin_block: m.get(52).map(hex::encode_upper),
        pin_key_check: None,
        original,
        at: m
            .text(7)
            .and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(
                    &format!("{}{t}", Utc::now().format("%Y")),
                    "%Y%m%d%H%M%S",
                )
                .ok()
            })
            .map(|t| t.and_utc())
            .unwrap_or_else(Utc::now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_core::card::test_cards;

    /// A sale of `minor` with `card` on T1, trace 42 in batch 1, no PIN.
    fn sale_with(card: CardRead, minor: u64) -> AuthRequest {
        AuthRequest {
            kind: TxnKind::Sale,
            terminal_id: "T1".into(),
            trace_no: 42,
            batch_no: 1,
            amount: Amount::from_minor(minor).unwrap(),
            card,
            pin_block: None,
            pin_key_check: None,
            original: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn a_sale_reads_back_as_the_same_request_on_the_host() {
        let mut card = test_cards::by_name("pin").unwrap().read(EntryMode::Tap);
        card.icc_data = Some("9F2602ABCD".into());
        let request = AuthRequest {
            pin_block: Some("1F2E3D4C5B6A7988".into()),
            ..sale_with(card, 1250)
        };
        let m = auth_request(
            Dialect::Iso1987,
            &request,
            "898000000000001",
            "344",
            tallybox_platform::clock::now(),
        )
        .unwrap();
        assert_eq!(m.text(49), Some("344"), "the store's currency, not always CNY");
        let track = m.text(35).unwrap();
        assert!(
            track.ends_with(&format!("=3012220{}", test_cards::DISCRETIONARY)),
            "track 2 goes whole, its discretionary data too"
        );
        let back = read_auth_request(Dialect::Iso1987, &Message::decode(&m.encode()).unwrap()).unwrap();
        assert_eq!(back.card, request.card);
        assert_eq!(back.pin_block, request.pin_block);
        assert_eq!(
            (back.trace_no, back.amount, back.kind),
            (42, request.amount, TxnKind::Sale)
        );
        assert_eq!(back.terminal_id, "T1");
    }

    #[test]
    fn answers_carry_the_request_identity_and_a_balance() {
        let mut request = Message::new("0200");
        request
            .set_str(3, "310000")
            .unwrap()
            .set_str(11, "000007")
            .unwrap();
        let mut a = answer(&request, ResponseCode::APPROVED).unwrap();
        a.set_str(54, &balance_field(Amount::from_minor(10_000).unwrap(), CNY))
            .unwrap();
        assert_eq!(a.mti, "0210");
        assert_eq!(a.text(11), Some("000007"));
        let r = auth_response(&a).unwrap();
        assert_eq!(r.balance, Some(Amount::from_minor(10_000).unwrap()));
        assert_eq!(answer_type("0400").as_deref(), Some("0410"));
        assert_eq!(answer_type("0401").as_deref(), Some("0410"), "a repeat");
        assert_eq!(answer_type("0221").as_deref(), Some("0230"));
        assert_eq!(answer_type("0210"), None);
        assert_eq!(answer_type("02x0"), None);
    }

    #[test]
    fn an_answer_must_give_back_what_the_request_sent() {
        let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
        let request = sale_with(card, 1250);
        let sent = auth_request(
            Dialect::Iso1987,
            &request,
            "898000000000001",
            CNY,
            tallybox_platform::clock::now(),
        )
        .unwrap();
        let good = answer(&sent, ResponseCode::APPROVED).unwrap();
        assert_eq!(answer_mismatch(&sent, &good), None);
        for (n, other) in [
            (3, "310000"),
            (4, "000000000999"),
            (11, "000043"),
            (41, "T2      "),
            (49, "344"),
        ] {
            let mut bad = good.clone();
            bad.set_str(n, other).unwrap();
            let why = answer_mismatch(&sent, &bad).unwrap_or_else(|| panic!("field {n} changed, accepted"));
            assert!(why.contains(&format!("field {n}")), "{why}");
        }
        let mut merchant_gone = good.clone();
        merchant_gone.remove(42);
        assert!(answer_mismatch(&sent, &merchant_gone)
            .unwrap()
            .contains("no merchant id"));
        let mut wrong_type = good.clone();
        wrong_type.mti = "0410".into();
        assert!(answer_mismatch(&sent, &wrong_type).is_some());
    }

    #[test]
    fn a_reversal_names_its_original_and_a_repeat_says_so() {
        use crate::acquirer::iso8583::mac::TEST_MAC_KEY;
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-04T09:30:15Z")
            .unwrap()
            .with_timezone(&Utc);
        let void = Reversal {
            terminal_id: "T1".into(),
            trace_no: 42,
            batch_no: 1,
            amount: Amount::from_minor(1250).unwrap(),
            kind: TxnKind::Void,
            original_at: at,
            repeat: false,
        };
        let mut first = reversal(Dialect::Iso1987, &void, "898000000000001", CNY).unwrap();
        assert_eq!(first.mti, "0400");
        assert_eq!(first.text(3), Some("200000"), "a void's own processing code");
        assert_eq!(
            first.text(90),
            Some("02000000421204093015".to_string() + NO_INSTITUTION).as_deref()
        );
        assert_eq!(
            read_original(&first).unwrap(),
            ("0200".into(), 42, "1204093015".into())
        );
        // The MAC goes in field 128 behind the secondary bitmap, and verifies.
        let bytes = TEST_MAC_KEY.seal(&mut first).unwrap();
        let back = Message::decode(&bytes).unwrap();
        assert!(back.get(128).is_some() && back.get(64).is_none());
        assert!(TEST_MAC_KEY.verify(&bytes, &back));
        let refund = Reversal {
            kind: TxnKind::Refund,
            repeat: true,
            ..void
        };
        let again = reversal(Dialect::Iso1987, &refund, "898000000000001", CNY).unwrap();
        assert_eq!(again.mti, "0401");
        assert!(
            again.text(90).unwrap().starts_with("0220000042"),
            "a refund went as an advice"
        );
        assert_eq!(answer_type(&again.mti).as_deref(), Some("0410"));
    }

    #[test]
    fn settlement_counts_of_a_long_day_go_whole_and_a_figure_too_large_is_refused() {
        for (sales, refunds) in [(1_005, 3), (100_000, 1_005), (999_999, 0)] {
            let t = BatchTotals {
                terminal_id: "T1".into(),
                batch_no: 7,
                trace_no: 31,
                sales_count: sales,
                sales_minor: u64::from(sales) * 1_250,
                refunds_count: refunds,
                refunds_minor: u64::from(refunds) * 99,
            };
            let m = settlement(Dialect::Iso1987, &t, "898000000000001", CNY).unwrap();
            let back = read_settlement(Dialect::Iso1987, &Message::decode(&m.encode()).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        let too_many = BatchTotals {
            terminal_id: "T1".into(),
            sales_count: 1_000_000,
            ..Default::default()
        };
        let e = settlement(Dialect::Iso1987, &too_many, "898000000000001", CNY)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field 48") && e.contains("settle more often"), "{e}");
    }

    #[test]
    fn in_china_unionpays_layout_a_void_names_its_original_in_61_and_a_settlement_answers_in_48() {
        let d = Dialect::CupPos;
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-04T09:30:15+08:00").unwrap();
        let card = test_cards::by_name("pin").unwrap().read(EntryMode::Swipe);
        let void = AuthRequest {
            kind: TxnKind::Void,
            terminal_id: "10000042".into(),
            trace_no: 43,
            batch_no: 7,
            amount: Amount::from_minor(1250).unwrap(),
            card,
            pin_block: Some("1F2E3D4C5B6A7988".into()),
            pin_key_check: None,
            original: Some(crate::acquirer::OriginalRef {
                trace_no: 42,
                batch_no: 7,
                reference_no: "000000000042".into(),
                auth_code: "123456".into(),
                at: at.with_timezone(&Utc),
            }),
            at: at.with_timezone(&Utc),
        };
        let m = auth_request(d, &void, "898000000000001", CNY, at).unwrap();
        assert_eq!(m.text(60), Some("23000007000"), "void, batch 7");
        assert_eq!(
            m.text(61),
            Some("0000070000421204"),
            "the sale's batch, trace and date"
        );
        assert_eq!((m.text(26), m.text(53)), (Some("12"), Some("2600000000000000")));
        assert!(m.get(7).is_none() && m.get(12).is_none() && m.get(90).is_none());
        let back = read_auth_request(d, &d.decode(&d.encode(&m).unwrap()).unwrap()).unwrap();
        let original = back.original.unwrap();
        assert_eq!((back.kind, back.batch_no), (TxnKind::Void, 7));
        assert_eq!((original.trace_no, original.batch_no), (42, 7));

        let reversal = reversal(
            d,
            &Reversal {
                terminal_id: "10000042".into(),
                trace_no: 42,
                batch_no: 7,
                amount: void.amount,
                kind: TxnKind::Sale,
                original_at: void.at,
                repeat: true,
            },
            "898000000000001",
            CNY,
        )
        .unwrap();
        assert_eq!(reversal.mti, "0400", "China UnionPay repeats a reversal as 0400");
        assert_eq!(reversal.text(60), Some("22000007000"));

        let totals = BatchTotals {
            terminal_id: "10000042".into(),
            batch_no: 7,
            trace_no: 57,
            sales_count: 2,
            sales_minor: 2050,
            refunds_count: 1,
            refunds_minor: 300,
        };
        let m = settlement(d, &totals, "898000000000001", CNY).unwrap();
        assert_eq!(
            m.text(48).unwrap(),
            format!("{:012}{:03}{:012}{:03}0{:031}", 2050, 2, 300, 1, 0)
        );
        assert_eq!(m.text(60), Some("00000007201"));
        assert_eq!(read_settlement(d, &m).unwrap(), totals);
        for balanced in [true, false] {
            let a = settlement_answer(d, &m, balanced).unwrap();
            assert_eq!(a.text(39), Some("00"));
            assert_eq!(settled(d, &a), Ok(balanced));
            let a = settlement_answer(Dialect::Iso1987, &m, balanced).unwrap();
            assert_eq!(settled(Dialect::Iso1987, &a), Ok(balanced));
        }
        // Three digits of count: a thousand sales cannot be settled in one batch.
        let big = BatchTotals {
            sales_count: 1000,
            ..totals
        };
        let e = settlement(d, &big, "898000000000001", CNY)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("999 transactions") && e.contains("settle more often"),
            "{e}"
        );
    }

    #[test]
    fn a_chip_sale_carries_the_cards_sequence_number_in_field_23() {
        let mut card = test_cards::by_name("approved").unwrap().read(EntryMode::Tap);
        // 9F26 (cryptogram) and 5F34 = 01.
        card.icc_data = Some("9F2602ABCD5F340101".into());
        let sale = sale_with(card.clone(), 100);
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let m = auth_request(d, &sale, "898000000000001", CNY, tallybox_platform::clock::now()).unwrap();
            assert_eq!(m.text(23), Some("001"), "{}", d.name());
            assert_eq!(d.decode(&d.encode(&m).unwrap()).unwrap(), m);
        }
        card.icc_data = Some("9F2602ABCD".into());
        let m = auth_request(
            Dialect::Iso1987,
            &AuthRequest { card, ..sale },
            "898000000000001",
            CNY,
            tallybox_platform::clock::now(),
        )
        .unwrap();
        assert_eq!(m.get(23), None, "no sequence number on the chip: none sent");
    }

    #[test]
    fn a_terminal_id_longer_than_field_41_is_refused_not_cut() {
        assert!(terminal_field("CHECKOUT-12").is_err());
        assert_eq!(terminal_field("T1").unwrap(), "T1      ");
    }

    /// The samples `hub/ACQUIRER.md` shows, built by the codec: its key, a
    /// sale of CNY 12.50 on a swiped card, its answer, its reversal and a
    /// settlement. The key is the document's, not a product key.
    fn samples(d: Dialect) -> Vec<(&'static str, Message)> {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-04T09:30:15+08:00").unwrap();
        let utc = at.with_timezone(&Utc);
        let merchant = "898000000000001";
        let sale = AuthRequest {
            terminal_id: "10000042".into(),
            batch_no: 3,
            at: utc,
            ..sale_with(
                test_cards::by_name("approved").unwrap().read(EntryMode::Swipe),
                1250,
            )
        };
        let request = auth_request(d, &sale, merchant, CNY, at).unwrap();
        let mut approved = answer(&request, ResponseCode::APPROVED).unwrap();
        approved
            .set_str(37, "000000000042")
            .unwrap()
            .set_str(38, "123456")
            .unwrap();
        let mut reversal = reversal(
            d,
            &Reversal {
                terminal_id: "10000042".into(),
                trace_no: 42,
                batch_no: 3,
                amount: sale.amount,
                kind: TxnKind::Sale,
                original_at: utc,
                repeat: false,
            },
            merchant,
            CNY,
        )
        .unwrap();
        // Field 7 of a reversal is when it is sent: fixed here.
        if d == Dialect::Iso1987 {
            reversal.set_str(7, "1204013100").unwrap();
        }
        let settlement = settlement(
            d,
            &BatchTotals {
                terminal_id: "10000042".into(),
                batch_no: 3,
                trace_no: 57,
                sales_count: 2,
                sales_minor: 2050,
                refunds_count: 1,
                refunds_minor: 300,
            },
            merchant,
            CNY,
        )
        .unwrap();
        let sign_in = sign_in(d, 1, "10000042", merchant).unwrap();
        let mut signed_in = answer(&sign_in, ResponseCode::APPROVED).unwrap();
        signed_in
            .set(62, sample_keys().field62(&sample_master_key()))
            .unwrap();
        if d == Dialect::CupPos {
            set_host_batch(&mut signed_in, 3).unwrap();
        }
        vec![
            ("sign-in", sign_in),
            ("sign-in-answer", signed_in),
            ("sale", request),
            ("sale-answer", approved),
            ("reversal", reversal),
            ("settlement", settlement),
        ]
    }

    /// The document's terminal master key, and the working keys its
    /// sign-in sample brings: the MAC key the other samples are sealed with.
    fn sample_master_key() -> crate::acquirer::iso8583::keys::MasterKey {
        crate::acquirer::iso8583::keys::MasterKey::from_bytes(
            hex::decode("00112233445566778899AABBCCDDEEFF")
                .unwrap()
                .try_into()
                .unwrap(),
        )
    }

    fn sample_keys() -> crate::acquirer::iso8583::keys::WorkingKeys {
        use crate::acquirer::iso8583::mac::MacKey;
        crate::acquirer::iso8583::keys::WorkingKeys {
            pin: hex::decode("89ABCDEF01234567FEDCBA9876543210")
                .unwrap()
                .try_into()
                .unwrap(),
            mac: MacKey::parse("0123456789ABCDEFFEDCBA9876543210").unwrap(),
        }
    }

    /// The hex of each `<!-- sample: NAME -->` block in the document.
    fn documented_samples(doc: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut lines = doc.lines();
        while let Some(line) = lines.next() {
            let Some(name) = line
                .strip_prefix("<!-- sample: ")
                .and_then(|l| l.strip_suffix(" -->"))
            else {
                continue;
            };
            let hex: String = lines
                .by_ref()
                .skip_while(|l| l.starts_with("```"))
                .take_while(|l| !l.starts_with("```"))
                .flat_map(|l| l.split_whitespace())
                .collect();
            out.push((name.to_string(), hex));
        }
        out
    }

    #[test]
    fn the_samples_in_acquirer_md_are_what_the_codec_builds_byte_for_byte() {
        let key = sample_keys().mac.clone();
        let doc = include_str!("../../../ACQUIRER.md");
        let documented = documented_samples(doc);
        // Sign-ins travel without a MAC: there are no working keys yet.
        // China UnionPay's samples (named `cup-…`) are whole frames: TPDU,
        // header and message.
        let mut built: Vec<(String, String)> = Vec::new();
        for (d, prefix) in [(Dialect::Iso1987, ""), (Dialect::CupPos, "cup-")] {
            for (name, mut m) in samples(d) {
                let bytes = if name.starts_with("sign-in") {
                    d.encode(&m).unwrap()
                } else {
                    key.seal_in(d, &mut m).unwrap()
                };
                let frame = d.wrap(&bytes, name.ends_with("answer"));
                built.push((format!("{prefix}{name}"), hex::encode_upper(frame)));
            }
        }
        for (name, hex) in &built {
            let shown = documented.iter().find(|(n, _)| n == name).map(|(_, h)| h);
            assert_eq!(
                shown,
                Some(hex),
                "sample {name}: ACQUIRER.md shows another message than the codec builds"
            );
        }
        assert_eq!(
            documented.len(),
            built.len(),
            "a sample in ACQUIRER.md that no test builds"
        );
        assert!(doc.contains(&format!("check value {}", key.check_value())));
        assert!(doc.contains(&format!("check value {}", sample_master_key().check_value())));
        let pin_check = tallybox_core::card::pin_block::check_value(&sample_keys().pin);
        assert!(doc.contains(&format!("check value {pin_check}")));
    }
}
