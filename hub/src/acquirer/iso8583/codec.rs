//! ISO 8583 messages as bytes, sans-IO, in two dialects ([`Dialect`]): one
//! engine, and per dialect a table of how each field is written.
//!
//! - `iso8583-1987`: a four-digit ASCII message type, a binary bitmap (8
//!   bytes, or 16 when a field above 64 is present: bit 1 then says a
//!   secondary bitmap follows), then each present field in ASCII (numbers
//!   and text) or binary (PIN block, chip data, keys, MAC), with ASCII `LL` /
//!   `LLL` length prefixes. It matches the common "default" 1987 layout (the
//!   `pyiso8583` package's `default` spec), which the tests check against.
//! - `cup-pos`: the China UnionPay POS terminal layout: the message type
//!   and numeric fields packed as BCD (two digits a byte), `LL` / `LLL`
//!   prefixes in BCD (counting digits for BCD fields, bytes for the others),
//!   text in ASCII, track 2 as BCD with `D` for `=`; on the wire a TPDU and
//!   a message header come before each message ([`Dialect::wrap`]).
//!
//! A [`Message`] holds values by meaning, whatever the dialect: numbers as
//! ASCII digits, text as ASCII, binary as bytes. On the wire each message is
//! preceded by a two-byte big-endian length ([`FrameReader`]). The logical
//! layout of every field is [`format()`]; a dialect's writing of it is
//! [`Dialect::encoding`].

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    Fixed(usize),
    /// Two ASCII digits of length, then up to this many.
    LlVar(usize),
    /// Three ASCII digits of length, then up to this many.
    LllVar(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Digits only.
    Numeric,
    /// Printable ASCII.
    Text,
    Binary,
}

/// How field `n` is laid out; `None` for fields this codec does not carry.
pub fn format(n: u8) -> Option<(Len, Data)> {
    use Data::*;
    use Len::*;
    Some(match n {
        2 => (LlVar(19), Numeric),
        3 => (Fixed(6), Numeric),
        4 => (Fixed(12), Numeric),
        // Transmission date and time, UTC: MMDDhhmmss.
        7 => (Fixed(10), Numeric),
        11 => (Fixed(6), Numeric),
        12 => (Fixed(6), Numeric),
        13 => (Fixed(4), Numeric),
        14 => (Fixed(4), Numeric),
        22 => (Fixed(3), Numeric),
        // Card sequence number (a chip card's 5F34).
        23 => (Fixed(3), Numeric),
        25 => (Fixed(2), Numeric),
        35 => (LlVar(37), Text),
        37 => (Fixed(12), Text),
        38 => (Fixed(6), Text),
        39 => (Fixed(2), Text),
        41 => (Fixed(8), Text),
        42 => (Fixed(15), Text),
        48 => (LllVar(999), Text),
        49 => (Fixed(3), Numeric),
        52 => (Fixed(8), Binary),
        54 => (LllVar(240), Text),
        55 => (LllVar(255), Binary),
        // PIN capture code (China UnionPay: the most digits a PIN may have).
        26 => (Fixed(2), Numeric),
        // Security control information (China UnionPay: how field 52 is made).
        53 => (Fixed(16), Numeric),
        // Reserved fields; in China UnionPay's layout 60 (transaction type,
        // batch, network management code) and 61 (the original's batch,
        // trace and date) are digits, 63 text.
        60 | 61 | 63 => (LllVar(999), Text),
        // The working keys a sign-in answer brings (see `super::keys`).
        62 => (LllVar(999), Binary),
        64 => (Fixed(8), Binary),
        // Original data elements: the original's type, trace, transmission
        // time (field 7), acquiring and forwarding institution ids.
        90 => (Fixed(42), Numeric),
        // The MAC of a message with a secondary bitmap.
        128 => (Fixed(8), Binary),
        _ => return None,
    })
}

/// How a dialect writes a field's value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// As ASCII characters.
    Ascii,
    /// As the bytes themselves.
    Binary,
    /// Packed BCD, two digits a byte; an odd count starts with a 0 nibble.
    BcdRight,
    /// Packed BCD, an odd count ending with a 0 nibble; `=` (track 2's
    /// separator) is the nibble `D`.
    BcdLeft,
}

impl Enc {
    fn is_bcd(self) -> bool {
        matches!(self, Enc::BcdRight | Enc::BcdLeft)
    }

    fn parse(name: &str) -> Option<Enc> {
        Some(match name {
            "ascii" => Enc::Ascii,
            "binary" => Enc::Binary,
            "bcd-right" => Enc::BcdRight,
            "bcd-left" => Enc::BcdLeft,
            _ => return None,
        })
    }
}

/// How a dialect's messages are written: a table a bank's engineer reads
/// and adjusts (`hub/dialects/*.toml`, described there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The dialect whose messages it writes.
    pub dialect: Dialect,
    /// The message type as two BCD bytes (or four ASCII characters).
    type_bcd: bool,
    /// `LL` / `LLL` prefixes in BCD (or ASCII digits).
    prefix_bcd: bool,
    /// Before each message: a TPDU (empty, or 5 bytes whose destination
    /// and source the host's answer swaps) and a message header.
    tpdu: Vec<u8>,
    header: Vec<u8>,
    /// How each field is written.
    fields: BTreeMap<u8, Enc>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    dialect: String,
    message_type: String,
    length_prefix: String,
    tpdu: String,
    header: String,
    fields: BTreeMap<String, String>,
}

impl Layout {
    /// A layout from its table (TOML), checked: every field the link
    /// carries has a writing its data allows.
    pub fn parse(text: &str) -> Result<Layout, String> {
        let file: LayoutFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |at| text[..at.start].lines().count().max(1));
            format!("line {line}: {}", e.message())
        })?;
        let packed = |what: &str, value: &str| match value {
            "ascii" => Ok(false),
            "bcd" => Ok(true),
            other => Err(format!("{what} is \"ascii\" or \"bcd\", not {other:?}")),
        };
        let bytes = |what: &str, value: &str| {
            hex::decode(value).map_err(|_| format!("{what} is hex digits, not {value:?}"))
        };
        let tpdu = bytes("tpdu", &file.tpdu)?;
        if !matches!(tpdu.len(), 0 | 5) {
            return Err(format!(
                "tpdu is 5 bytes (10 hex digits) or none, not {}",
                tpdu.len()
            ));
        }
        let mut fields = BTreeMap::new();
        for (key, value) in &file.fields {
            let n: u8 = key
                .parse()
                .ok()
                .filter(|n| format(*n).is_some())
                .ok_or_else(|| format!("fields: {key} is not a field the link carries"))?;
            let enc = Enc::parse(value)
                .ok_or_else(|| format!("field {n}: {value:?} is not ascii, binary, bcd-right or bcd-left"))?;
            let binary = matches!(format(n), Some((_, Data::Binary)));
            if binary != (enc == Enc::Binary) {
                return Err(format!(
                    "field {n}: binary data is written \"binary\", and only binary data is"
                ));
            }
            fields.insert(n, enc);
        }
        if let Some(n) = (1..=128).find(|&n| format(n).is_some() && !fields.contains_key(&n)) {
            return Err(format!("fields: field {n} has no writing"));
        }
        Ok(Layout {
            dialect: Dialect::parse(&file.dialect).map_err(|e| format!("dialect: {e}"))?,
            type_bcd: packed("message_type", &file.message_type)?,
            prefix_bcd: packed("length_prefix", &file.length_prefix)?,
            tpdu,
            header: bytes("header", &file.header)?,
            fields,
        })
    }

    /// The layout of `dialect` (which the setting `chosen_by` names) in the
    /// file at `path`, with the file named in its errors.
    pub fn load(path: &std::path::Path, dialect: Dialect, chosen_by: &str) -> Result<Layout, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let layout = Layout::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if layout.dialect != dialect {
            return Err(format!(
                "{} writes {}, but {chosen_by} is {}",
                path.display(),
                layout.dialect.name(),
                dialect.name()
            ));
        }
        Ok(layout)
    }
}

/// A message layout acquirers speak: which messages carry what
/// ([`super::messages`]), and how they are written on the wire: its
/// [`Layout`], a table read from `hub/dialects/NAME.toml` or from the file
/// the settings name ([`Dialect::adjust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// ISO 8583:1987 with ASCII fields.
    #[default]
    Iso1987,
    /// China UnionPay's POS terminal layout.
    CupPos,
}

/// The built-in tables, as shipped (hub/dialects/).
const BUILT_IN: [&str; 2] = [
    include_str!("../../../dialects/iso8583-1987.toml"),
    include_str!("../../../dialects/cup-pos.toml"),
];

/// The layout the acquirer's own specification asked for, when the
/// settings name one: it replaces its dialect's built-in table for the
/// whole process (one hub speaks to one acquirer).
static ADJUSTED: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();

impl Dialect {
    pub fn parse(name: &str) -> Result<Dialect, String> {
        match name {
            "iso8583-1987" => Ok(Dialect::Iso1987),
            "cup-pos" => Ok(Dialect::CupPos),
            other => Err(format!("{other:?} is not a dialect: use iso8583-1987 or cup-pos")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Iso1987 => "iso8583-1987",
            Dialect::CupPos => "cup-pos",
        }
    }

    /// How this dialect is written on the wire.
    pub fn layout(self) -> &'static Layout {
        static TABLES: std::sync::OnceLock<[Layout; 2]> = std::sync::OnceLock::new();
        if let Some(adjusted) = ADJUSTED.get().filter(|l| l.dialect == self) {
            return adjusted;
        }
        let tables = TABLES.get_or_init(|| {
            BUILT_IN.map(|text| Layout::parse(text).expect("the built-in layouts are checked by a test"))
        });
        &tables[self as usize]
    }

    /// Speaks `layout` instead of its dialect's built-in table from now on:
    /// once per process, before the link starts (setting the same layout
    /// again is no change).
    pub fn adjust(layout: Layout) -> Result<(), String> {
        let set = ADJUSTED.get_or_init(|| layout.clone());
        if *set != layout {
            return Err(format!(
                "this process speaks another {} layout already",
                set.dialect.name()
            ));
        }
        Ok(())
    }

    /// How field `n` is written: the table a bank's engineer compares with
    /// their specification (hub/dialects/, ACQUIRER.md).
    pub fn encoding(self, n: u8) -> Option<Enc> {
        self.layout().fields.get(&n).copied()
    }

    /// What goes on the wire for a message (before its two-byte length is
    /// added): the layout's TPDU and header, then the message. `answer`:
    /// the host's, whose TPDU swaps destination and source.
    pub fn wrap(self, message: &[u8], answer: bool) -> Vec<u8> {
        let l = self.layout();
        let tpdu = match &l.tpdu[..] {
            [id, d1, d2, s1, s2] if answer => vec![*id, *s1, *s2, *d1, *d2],
            t => t.to_vec(),
        };
        [&tpdu[..], &l.header, message].concat()
    }

    /// The message in a frame: after the TPDU (whose ID must be the
    /// layout's) and the header.
    pub fn unwrap(self, frame: &[u8]) -> Result<&[u8], CodecError> {
        let l = self.layout();
        let skip = l.tpdu.len() + l.header.len();
        let head = frame
            .get(..skip)
            .ok_or(CodecError::Truncated("the TPDU and header"))?;
        if let (Some(want), Some(got)) = (l.tpdu.first(), head.first()) {
            if want != got {
                return Err(CodecError::BadType(format!("TPDU ID {got:02X}, not {want:02X}")));
            }
        }
        Ok(&frame[skip..])
    }

    /// Message type and length prefixes in BCD.
    fn packed(self) -> (bool, bool) {
        let l = self.layout();
        (l.type_bcd, l.prefix_bcd)
    }

    /// `m` as bytes (without TPDU and header).
    pub fn encode(self, m: &Message) -> Result<Vec<u8>, CodecError> {
        let (type_bcd, prefix_bcd) = self.packed();
        let mut out = Vec::with_capacity(128);
        if type_bcd {
            out.extend(
                pack(m.mti.as_bytes(), Enc::BcdRight).ok_or_else(|| CodecError::BadType(m.mti.clone()))?,
            );
        } else {
            out.extend_from_slice(m.mti.as_bytes());
        }
        let mut bitmap = [0u8; 16];
        for &n in m.fields.keys() {
            bitmap[(n as usize - 1) / 8] |= 0x80 >> ((n - 1) % 8);
        }
        if m.has_secondary() {
            bitmap[0] |= 0x80;
            out.extend_from_slice(&bitmap);
        } else {
            out.extend_from_slice(&bitmap[..8]);
        }
        for (&n, value) in &m.fields {
            let (len, _) = format(n).ok_or(CodecError::UnknownField(n))?;
            let enc = self.encoding(n).ok_or(CodecError::UnknownField(n))?;
            let digits = match len {
                Len::Fixed(_) => 0,
                Len::LlVar(_) => 2,
                Len::LllVar(_) => 3,
            };
            if digits > 0 {
                if prefix_bcd {
                    // LL in one byte, LLL in two.
                    let width = digits + digits % 2;
                    let count = format!("{:0width$}", value.len());
                    out.extend(pack(count.as_bytes(), Enc::BcdRight).unwrap_or_default());
                } else {
                    out.extend_from_slice(format!("{:0digits$}", value.len()).as_bytes());
                }
            }
            if enc.is_bcd() {
                out.extend(pack(value, enc).ok_or_else(|| CodecError::BadField {
                    field: n,
                    problem: "must be digits to be packed as BCD".into(),
                })?);
            } else {
                out.extend_from_slice(value);
            }
        }
        Ok(out)
    }

    pub fn decode(self, bytes: &[u8]) -> Result<Message, CodecError> {
        let (type_bcd, prefix_bcd) = self.packed();
        let type_len = if type_bcd { 2 } else { 4 };
        let raw_type = bytes
            .get(..type_len)
            .ok_or(CodecError::Truncated("the message type"))?;
        let mti = if type_bcd {
            unpack(raw_type, 4, Enc::BcdRight)
        } else {
            Some(String::from_utf8_lossy(raw_type).into_owned())
        };
        let mti = mti
            .filter(|t| t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| CodecError::BadType(String::from_utf8_lossy(raw_type).into_owned()))?;
        let mut at = type_len;
        let mut bitmap = bytes
            .get(at..at + 8)
            .ok_or(CodecError::Truncated("the bitmap"))?
            .to_vec();
        at += 8;
        let last = if bitmap[0] & 0x80 != 0 {
            let secondary = bytes
                .get(at..at + 8)
                .ok_or(CodecError::Truncated("the secondary bitmap"))?;
            bitmap.extend_from_slice(secondary);
            at += 8;
            128
        } else {
            64
        };
        let mut message = Message::new(&mti);
        for n in 2..=last {
            if bitmap[(n as usize - 1) / 8] & (0x80 >> ((n - 1) % 8)) == 0 {
                continue;
            }
            let (len, _) = format(n).ok_or(CodecError::UnknownField(n))?;
            let enc = self.encoding(n).ok_or(CodecError::UnknownField(n))?;
            let count = match len {
                Len::Fixed(size) => size,
                Len::LlVar(_) | Len::LllVar(_) => {
                    let digits: usize = if matches!(len, Len::LlVar(_)) { 2 } else { 3 };
                    let size = if prefix_bcd { digits.div_ceil(2) } else { digits };
                    let raw = bytes
                        .get(at..at + size)
                        .ok_or(CodecError::Truncated("a field length"))?;
                    at += size;
                    let prefix = if prefix_bcd {
                        unpack(raw, size * 2, Enc::BcdRight)
                    } else {
                        Some(String::from_utf8_lossy(raw).into_owned())
                    };
                    prefix
                        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| CodecError::BadField {
                            field: n,
                            problem: "length prefix is not digits".into(),
                        })?
                }
            };
            let size = if enc.is_bcd() { count.div_ceil(2) } else { count };
            let raw = bytes.get(at..at + size).ok_or(CodecError::Truncated("a field"))?;
            at += size;
            let value = if enc.is_bcd() {
                unpack(raw, count, enc)
                    .ok_or_else(|| CodecError::BadField {
                        field: n,
                        problem: "is not BCD".into(),
                    })?
                    .into_bytes()
            } else {
                raw.to_vec()
            };
            message.set(n, value)?;
        }
        if at != bytes.len() {
            return Err(CodecError::TrailingBytes(bytes.len() - at));
        }
        Ok(message)
    }
}

/// ASCII `digits` (and `=`, left-aligned) packed two a byte.
fn pack(digits: &[u8], enc: Enc) -> Option<Vec<u8>> {
    let mut nibbles = Vec::with_capacity(digits.len() + 1);
    if enc == Enc::BcdRight && digits.len() % 2 == 1 {
        nibbles.push(0);
    }
    for &d in digits {
        nibbles.push(match d {
            b'0'..=b'9' => d - b'0',
            b'=' if enc == Enc::BcdLeft => 0xD,
            _ => return None,
        });
    }
    if nibbles.len() % 2 == 1 {
        nibbles.push(0);
    }
    Some(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// `count` digits out of packed BCD, its padding nibble dropped; `None`
/// when a nibble is not a digit (or `D` for `=`, left-aligned).
fn unpack(packed: &[u8], count: usize, enc: Enc) -> Option<String> {
    let nibbles: Vec<u8> = packed.iter().flat_map(|b| [b >> 4, b & 0xF]).collect();
    let skip = if enc == Enc::BcdRight {
        nibbles.len().checked_sub(count)?
    } else {
        0
    };
    nibbles
        .get(skip..skip + count)?
        .iter()
        .map(|&d| match d {
            0..=9 => Some(char::from(b'0' + d)),
            0xD if enc == Enc::BcdLeft => Some('='),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("message ends inside {0}")]
    Truncated(&'static str),
    #[error("message type {0:?} is not four digits")]
    BadType(String),
    #[error("field {0} is not carried by this link")]
    UnknownField(u8),
    #[error("field {field}: {problem}")]
    BadField { field: u8, problem: String },
    #[error("{0} bytes left over after the last field")]
    TrailingBytes(usize),
    #[error("frame of {0} bytes is larger than any message")]
    FrameTooLarge(usize),
}

/// One message: its type (`0200`, `0210`, …) and fields by number.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub mti: String,
    fields: BTreeMap<u8, Vec<u8>>,
}

impl fmt::Debug for Message {
    /// Card data never reaches a log: field 2 and 35 show masked, 52 and 55 as lengths.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(&format!("Message {}", self.mti));
        for (n, v) in &self.fields {
            let shown = match n {
                2 | 35 => {
                    let s = String::from_utf8_lossy(v);
                    format!("{}…({} chars)", s.chars().take(6).collect::<String>(), s.len())
                }
                52 | 55 | 62 | 64 | 128 => format!("<{} bytes>", v.len()),
                _ => String::from_utf8_lossy(v).into_owned(),
            };
            d.field(&n.to_string(), &shown);
        }
        d.finish()
    }
}

impl Message {
    pub fn new(mti: &str) -> Message {
        Message {
            mti: mti.to_string(),
            fields: BTreeMap::new(),
        }
    }

    /// Sets field `n`, checked against its layout.
    pub fn set(&mut self, n: u8, value: impl Into<Vec<u8>>) -> Result<&mut Message, CodecError> {
        let value = value.into();
        check(n, &value)?;
        self.fields.insert(n, value);
        Ok(self)
    }

    /// Sets a text or numeric field.
    pub fn set_str(&mut self, n: u8, value: &str) -> Result<&mut Message, CodecError> {
        self.set(n, value.as_bytes().to_vec())
    }

    pub fn get(&self, n: u8) -> Option<&[u8]> {
        self.fields.get(&n).map(Vec::as_slice)
    }

    /// A text or numeric field as a string (they are ASCII by construction).
    pub fn text(&self, n: u8) -> Option<&str> {
        self.get(n).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn remove(&mut self, n: u8) -> Option<Vec<u8>> {
        self.fields.remove(&n)
    }

    pub fn fields(&self) -> impl Iterator<Item = u8> + '_ {
        self.fields.keys().copied()
    }

    /// True when a field above 64 is present: the message then carries a
    /// secondary bitmap, and its MAC goes in field 128.
    pub fn has_secondary(&self) -> bool {
        self.fields.keys().any(|&n| n > 64)
    }

    /// As ISO 8583:1987 bytes (see [`Dialect::encode`] for the others).
    pub fn encode(&self) -> Vec<u8> {
        // Every field was checked when set, and 1987's ASCII takes any.
        Dialect::Iso1987.encode(self).unwrap_or_default()
    }

    /// From ISO 8583:1987 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
        Dialect::Iso1987.decode(bytes)
    }
}

fn check(n: u8, value: &[u8]) -> Result<(), CodecError> {
    let (len, data) = format(n).ok_or(CodecError::UnknownField(n))?;
    let bad = |problem: String| Err(CodecError::BadField { field: n, problem });
    match len {
        Len::Fixed(size) if value.len() != size => {
            return bad(format!("must be {size} long, is {}", value.len()))
        }
        Len::LlVar(max) | Len::LllVar(max) if value.len() > max => {
            return bad(format!("at most {max} long, is {}", value.len()))
        }
        _ => {}
    }
    match data {
        Data::Numeric if !value.iter().all(u8::is_ascii_digit) => bad("must be digits".into()),
        Data::Text if !value.iter().all(|b| (0x20..0x7F).contains(b)) => {
            bad("must be printable ASCII".into())
        }
        _ => Ok(()),
    }
}

/// The largest frame accepted: far above any real message, small enough that
/// a garbage length cannot make the reader hold megabytes.
pub const MAX_FRAME: usize = 8192;

/// Prefixes `message` with its two-byte big-endian length.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Cuts a byte stream into frames, however the reads split it.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's message bytes, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let Some(head) = self.buf.get(..2) else {
            return Ok(None);
        };
        let len = u16::from_be_bytes([head[0], head[1]]) as usize;
        if len > MAX_FRAME {
            return Err(CodecError::FrameTooLarge(len));
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let frame = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale() -> Message {
        let mut m = Message::new("0200");
        m.set_str(2, "6222021000000005").unwrap();
        m.set_str(3, "000000").unwrap();
        m.set_str(4, "000000001250").unwrap();
        m.set_str(11, "000042").unwrap();
        m.set_str(35, "6222021000000005=3012201").unwrap();
        m.set_str(41, "T1      ").unwrap();
        m.set(52, vec![0x1F, 0x2E, 0x3D, 0x4C, 0x5B, 0x6A, 0x79, 0x88])
            .unwrap();
        m.set(55, vec![0x9F, 0x26, 0x02, 0xAB, 0xCD]).unwrap();
        m.set(64, vec![0; 8]).unwrap();
        m
    }

    #[test]
    fn a_sale_round_trips_and_its_bitmap_names_its_fields() {
        let m = sale();
        let bytes = m.encode();
        assert_eq!(&bytes[..4], b"0200");
        // Fields 2, 3, 4 | 11 | … | 35 | 41 | 52 | 55 | 64.
        assert_eq!(bytes[4], 0b0111_0000);
        assert_eq!(bytes[5], 0b0010_0000);
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        assert_eq!(
            m.fields().collect::<Vec<_>>(),
            vec![2, 3, 4, 11, 35, 41, 52, 55, 64]
        );
    }

    #[test]
    fn a_field_above_64_brings_a_secondary_bitmap_and_round_trips() {
        let mut m = Message::new("0400");
        m.set_str(11, "000042").unwrap();
        m.set_str(90, &format!("0200000042{:032}", 1204171300u64))
            .unwrap();
        m.set(128, vec![7; 8]).unwrap();
        let bytes = m.encode();
        // Bit 1 (a secondary bitmap follows) and bit 11; then bits 90 and 128.
        assert_eq!(&bytes[4..12], &[0x80, 0x20, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[12..20], &[0, 0, 0, 0x40, 0, 0, 0, 0x01]);
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        for cut in 0..bytes.len() {
            assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(!sale().has_secondary() && m.has_secondary());
    }

    #[test]
    fn bad_values_are_refused_when_set() {
        let mut m = Message::new("0200");
        assert!(m.set_str(4, "12.50").is_err());
        assert!(m.set_str(4, "1250").is_err(), "fixed length");
        assert!(m.set_str(2, "12345678901234567890").is_err(), "too long");
        assert!(m.set_str(41, "T1\n     ").is_err());
        assert!(m.set_str(8, "00000001").is_err(), "not carried");
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let bytes = sale().encode();
        for cut in 0..bytes.len() {
            assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(b'9');
        assert_eq!(Message::decode(&extra), Err(CodecError::TrailingBytes(1)));
        let mut bad_len = bytes.clone();
        let at = bad_len.windows(2).position(|w| w == b"24").unwrap();
        bad_len[at] = b'X';
        assert!(Message::decode(&bad_len).is_err());
        assert!(Message::decode(b"02X0\0\0\0\0\0\0\0\0").is_err());
    }

    #[test]
    fn frames_come_out_whole_however_the_stream_is_cut() {
        let a = sale().encode();
        let b = Message::new("0800").encode();
        let stream = [frame(&a), frame(&b)].concat();
        for step in 1..stream.len() {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                r.push(chunk);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, vec![a.clone(), b.clone()], "step {step}");
        }
        let mut r = FrameReader::default();
        r.push(&[0xFF, 0xFF]);
        assert_eq!(r.next_frame(), Err(CodecError::FrameTooLarge(0xFFFF)));
    }

    #[test]
    fn china_unionpays_layout_packs_digits_as_bcd_as_worked_out_by_hand() {
        let mut m = Message::new("0800");
        m.set_str(11, "000001").unwrap();
        m.set_str(41, "10000042").unwrap();
        m.set_str(60, "00000000003").unwrap();
        let bytes = Dialect::CupPos.encode(&m).unwrap();
        let expected = [
            &[0x08, 0x00][..],
            // Fields 11, 41 and 60.
            &[0x00, 0x20, 0x00, 0x00, 0x00, 0x80, 0x00, 0x10],
            &[0x00, 0x00, 0x01],
            b"10000042",
            // LLL = 011 digits as BCD in two bytes, then 11 digits left-aligned.
            &[0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30],
        ]
        .concat();
        assert_eq!(hex::encode_upper(&bytes), hex::encode_upper(&expected));
        assert_eq!(Dialect::CupPos.decode(&bytes).unwrap(), m);
    }

    #[test]
    fn in_china_unionpays_layout_a_sale_round_trips_track_2_packs_its_separator_as_d() {
        let m = sale();
        let bytes = Dialect::CupPos.encode(&m).unwrap();
        assert_eq!(&bytes[..2], &[0x02, 0x00]);
        let track = [
            0x24, 0x62, 0x22, 0x02, 0x10, 0x00, 0x00, 0x00, 0x05, 0xD3, 0x01, 0x22, 0x01,
        ];
        assert!(
            bytes.windows(track.len()).any(|w| w == track),
            "{}",
            hex::encode_upper(&bytes)
        );
        // Amount n12: six bytes of BCD.
        let amount = [0x00, 0x00, 0x00, 0x00, 0x12, 0x50];
        assert!(bytes.windows(6).any(|w| w == amount));
        assert_eq!(Dialect::CupPos.decode(&bytes).unwrap(), m);
        assert!(bytes.len() < m.encode().len(), "BCD is shorter than ASCII");
        for cut in 0..bytes.len() {
            assert!(Dialect::CupPos.decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Not a digit: a nibble above 9 in a numeric field is refused.
        let mut bad = bytes.clone();
        let at = bad.windows(6).position(|w| w == amount).unwrap();
        bad[at + 5] = 0x5A;
        assert!(Dialect::CupPos.decode(&bad).is_err());
    }

    #[test]
    fn china_unionpays_frames_carry_the_tpdu_and_header_and_answers_swap_the_tpdu() {
        let body = Dialect::CupPos.encode(&sale()).unwrap();
        let sent = Dialect::CupPos.wrap(&body, false);
        assert_eq!(
            &sent[..11],
            &[0x60, 0x00, 0x03, 0x00, 0x00, 0x60, 0x31, 0x00, 0x31, 0x00, 0x00]
        );
        assert_eq!(Dialect::CupPos.unwrap(&sent).unwrap(), &body[..]);
        let answer = Dialect::CupPos.wrap(&body, true);
        assert_eq!(&answer[..5], &[0x60, 0x00, 0x00, 0x00, 0x03]);
        assert!(Dialect::CupPos.unwrap(&body[..5]).is_err());
        let mut other = sent.clone();
        other[0] = 0x61;
        assert!(Dialect::CupPos.unwrap(&other).is_err());
        assert_eq!(Dialect::Iso1987.wrap(&body, false), body);
    }

    #[test]
    fn the_built_in_layouts_are_the_shipped_tables_and_write_as_specified() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            assert_eq!(d.layout().dialect, d, "{} in hub/dialects/", d.name());
        }
        // The writing each table gives, against the rule ACQUIRER.md states:
        // binary as bytes; ISO 8583:1987 in ASCII; China UnionPay's digits
        // as BCD, left-aligned for 2, 22, 35, 48, 60 and 61, its currency
        // and text in ASCII.
        for n in (1..=128u8).filter(|&n| format(n).is_some()) {
            let (_, data) = format(n).unwrap();
            let (iso, cup) = match data {
                Data::Binary => (Enc::Binary, Enc::Binary),
                _ if matches!(n, 2 | 22 | 35 | 48 | 60 | 61) => (Enc::Ascii, Enc::BcdLeft),
                Data::Numeric if n != 49 => (Enc::Ascii, Enc::BcdRight),
                _ => (Enc::Ascii, Enc::Ascii),
            };
            assert_eq!(Dialect::Iso1987.encoding(n), Some(iso), "field {n}");
            assert_eq!(Dialect::CupPos.encoding(n), Some(cup), "field {n}");
        }
    }

    #[test]
    fn an_adjusted_layout_is_checked_line_by_line() {
        let shipped = include_str!("../../../dialects/cup-pos.toml");
        let adjusted = shipped.replace("tpdu = \"6000030000\"", "tpdu = \"6000120000\"");
        let layout = Layout::parse(&adjusted).unwrap();
        assert_eq!(layout.tpdu, [0x60, 0x00, 0x12, 0x00, 0x00]);
        assert_ne!(&layout, Dialect::CupPos.layout());
        for (from, to, said) in [
            ("tpdu = \"6000030000\"", "tpdu = \"600003\"", "tpdu is 5 bytes"),
            (
                "tpdu = \"6000030000\"",
                "tpdu = \"60zz030000\"",
                "tpdu is hex digits",
            ),
            ("52 = \"binary\"", "52 = \"ascii\"", "field 52: binary data"),
            ("4 = \"bcd-right\"", "4 = \"binary\"", "field 4: binary data"),
            (
                "4 = \"bcd-right\"",
                "4 = \"packed\"",
                "field 4: \"packed\" is not",
            ),
            (
                "4 = \"bcd-right\"",
                "5 = \"bcd-right\"",
                "5 is not a field the link carries",
            ),
            ("4 = \"bcd-right\"", "", "field 4 has no writing"),
            (
                "message_type = \"bcd\"",
                "message_type = \"ebcdic\"",
                "message_type is",
            ),
            ("dialect = \"cup-pos\"", "dialect = \"visa\"", "dialect: \"visa\""),
            ("dialect = \"cup-pos\"", "dialekt = \"cup-pos\"", "line "),
        ] {
            assert!(shipped.contains(from), "{from}");
            let e = Layout::parse(&shipped.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(said), "{to}: {e}");
        }
    }

    #[test]
    fn logs_never_show_card_data() {
        let shown = format!("{:?}", sale());
        assert!(!shown.contains("6222021000000005"), "{shown}");
        assert!(shown.contains("622202…"), "{shown}");
    }
}
