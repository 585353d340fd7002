//! ISO 8583:1987 messages as bytes, sans-IO: a four-digit ASCII message type,
//! a binary bitmap (8 bytes, or 16 when a field above 64 is present: bit 1
//! then says a secondary bitmap follows), then each present field in ASCII (numbers and
//! text) or binary (PIN block, chip data, MAC), with ASCII `LL` / `LLL` length
//! prefixes for the variable ones. On the wire each message is preceded by a
//! two-byte big-endian length ([`FrameReader`]). The layout of every field is
//! the table [`format()`]; it matches the common "default" 1987 layout (e.g. the
//! `pyiso8583` package's `default` spec), which the tests check against.

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

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(self.mti.as_bytes());
        let mut bitmap = [0u8; 16];
        for &n in self.fields.keys() {
            bitmap[(n as usize - 1) / 8] |= 0x80 >> ((n - 1) % 8);
        }
        if self.has_secondary() {
            bitmap[0] |= 0x80;
            out.extend_from_slice(&bitmap);
        } else {
            out.extend_from_slice(&bitmap[..8]);
        }
        for (&n, value) in &self.fields {
            // Checked when set: every field here has a layout.
            if let Some((len, _)) = format(n) {
                match len {
                    Len::Fixed(_) => {}
                    Len::LlVar(_) => out.extend_from_slice(format!("{:02}", value.len()).as_bytes()),
                    Len::LllVar(_) => out.extend_from_slice(format!("{:03}", value.len()).as_bytes()),
                }
            }
            out.extend_from_slice(value);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
        let mti = bytes.get(..4).ok_or(CodecError::Truncated("the message type"))?;
        if !mti.iter().all(u8::is_ascii_digit) {
            return Err(CodecError::BadType(String::from_utf8_lossy(mti).into_owned()));
        }
        let mut bitmap = bytes
            .get(4..12)
            .ok_or(CodecError::Truncated("the bitmap"))?
            .to_vec();
        let mut at = 12;
        let last = if bitmap[0] & 0x80 != 0 {
            let secondary = bytes
                .get(12..20)
                .ok_or(CodecError::Truncated("the secondary bitmap"))?;
            bitmap.extend_from_slice(secondary);
            at = 20;
            128
        } else {
            64
        };
        let mut message = Message::new(std::str::from_utf8(mti).unwrap_or_default());
        for n in 2..=last {
            if bitmap[(n as usize - 1) / 8] & (0x80 >> ((n - 1) % 8)) == 0 {
                continue;
            }
            let (len, _) = format(n).ok_or(CodecError::UnknownField(n))?;
            let size = match len {
                Len::Fixed(size) => size,
                Len::LlVar(_) | Len::LllVar(_) => {
                    let digits = if matches!(len, Len::LlVar(_)) { 2 } else { 3 };
                    let prefix = bytes
                        .get(at..at + digits)
                        .ok_or(CodecError::Truncated("a field length"))?;
                    at += digits;
                    std::str::from_utf8(prefix)
                        .ok()
                        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| CodecError::BadField {
                            field: n,
                            problem: "length prefix is not digits".into(),
                        })?
                }
            };
            let value = bytes.get(at..at + size).ok_or(CodecError::Truncated("a field"))?;
            at += size;
            message.set(n, value.to_vec())?;
        }
        if at != bytes.len() {
            return Err(CodecError::TrailingBytes(bytes.len() - at));
        }
        Ok(message)
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
    fn logs_never_show_card_data() {
        let shown = format!("{:?}", sale());
        assert!(!shown.contains("6222021000000005"), "{shown}");
        assert!(shown.contains("622202…"), "{shown}");
    }
}
