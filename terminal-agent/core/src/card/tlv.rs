//! BER-TLV as EMV uses it (EMV Book 3, Annex B): one- to three-byte tags
//! (bit 6 of the first byte marks a constructed tag holding more TLVs),
//! lengths in short form or `81 xx` / `82 xx xx`. Written here rather than
//! taken from a crate because the card is the attacker's input: this parser
//! never allocates more than the input, never recurses deeper than
//! [`MAX_DEPTH`], and rejects anything that runs past its container.

use std::fmt;

pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV ends inside a tag")]
    TruncatedTag,
    #[error("TLV ends inside a length")]
    TruncatedLength,
    #[error("TLV value runs past the end of its container")]
    TruncatedValue,
    #[error("TLV length form not allowed")]
    BadLength,
    #[error("TLV nested too deep")]
    TooDeep,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// Constructed tags (first byte bit 6 set) hold more TLVs.
    pub fn is_constructed(self) -> bool {
        let first = if self.0 > 0xFFFF {
            self.0 >> 16
        } else if self.0 > 0xFF {
            self.0 >> 8
        } else {
            self.0
        };
        first & 0x20 != 0
    }

    pub fn to_bytes(self) -> Vec<u8> {
        let b = self.0.to_be_bytes();
        let skip = b.iter().take(3).take_while(|&&x| x == 0).count();
        b[skip..].to_vec()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

/// One TLV; `children` is filled for constructed tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    pub children: Vec<Tlv<'a>>,
}

/// Parses every TLV in `data`. `00` and `FF` bytes between TLVs are padding
/// (EMV allows it) and are skipped.
pub fn parse(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    parse_at(data, 0)
}

fn parse_at(mut data: &[u8], depth: usize) -> Result<Vec<Tlv<'_>>, TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    let mut out = Vec::new();
    while let Some(&first) = data.first() {
        if first == 0x00 || first == 0xFF {
            data = &data[1..];
            continue;
        }
        let (tag, rest) = read_tag(data)?;
        let (len, rest) = read_len(rest)?;
        if rest.len() < len {
            return Err(TlvError::TruncatedValue);
        }
        let value = &rest[..len];
        let children = if tag.is_constructed() {
            parse_at(value, depth + 1)?
        } else {
            Vec::new()
        };
        out.push(Tlv { tag, value, children });
        data = &rest[len..];
    }
    Ok(out)
}

fn read_tag(data: &[u8]) -> Result<(Tag, &[u8]), TlvError> {
    let mut tag = u32::from(data[0]);
    let mut i = 1;
    if data[0] & 0x1F == 0x1F {
        loop {
            let b = *data.get(i).ok_or(TlvError::TruncatedTag)?;
            tag = tag << 8 | u32::from(b);
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i >= 3 {
                return Err(TlvError::TruncatedTag);
            }
        }
    }
    Ok((Tag(tag), &data[i..]))
}

fn read_len(data: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let first = *data.first().ok_or(TlvError::TruncatedLength)?;
    match first {
        0x00..=0x7F => Ok((first as usize, &data[1..])),
        0x81 => {
            let b = *data.get(1).ok_or(TlvError::TruncatedLength)?;
            Ok((b as usize, &data[2..]))
        }
        0x82 => {
            let (hi, lo) = (
                *data.get(1).ok_or(TlvError::TruncatedLength)?,
                *data.get(2).ok_or(TlvError::TruncatedLength)?,
            );
            Ok(((hi as usize) << 8 | lo as usize, &data[3..]))
        }
        _ => Err(TlvError::BadLength),
    }
}

/// The first TLV with `tag`, searching depth-first through constructed ones.
pub fn find<'a, 'b>(tlvs: &'b [Tlv<'a>], tag: Tag) -> Option<&'b Tlv<'a>> {
    for t in tlvs {
        if t.tag == tag {
            return Some(t);
        }
        if let Some(found) = find(&t.children, tag) {
            return Some(found);
        }
    }
    None
}

/// Encodes one primitive TLV.
pub fn encode(tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_bytes();
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// A Data Object List (PDOL, CDOL): tags and lengths, no values.
pub fn parse_dol(data: &[u8]) -> Result<Vec<(Tag, usize)>, TlvError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (tag, r) = read_tag(rest)?;
        let (len, r) = read_len(r)?;
        out.push((tag, len));
        rest = r;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fci_parses_and_finds_deep_tags() {
        // 6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 { 4F A0000000031010, 87 01 } } } }
        let aid = [0xA0, 0, 0, 0, 0x03, 0x10, 0x10];
        let entry = [encode(Tag(0x4F), &aid), encode(Tag(0x87), &[1])].concat();
        let bf0c = encode(Tag(0xBF0C), &encode(Tag(0x61), &entry));
        let fci = encode(
            Tag(0x6F),
            &[encode(Tag(0x84), b"2PAY.SYS.DDF01"), encode(Tag(0xA5), &bf0c)].concat(),
        );
        let tlvs = parse(&fci).unwrap();
        assert_eq!(find(&tlvs, Tag(0x4F)).unwrap().value, &aid);
        assert_eq!(find(&tlvs, Tag(0x87)).unwrap().value, &[1]);
        assert!(Tag(0xBF0C).is_constructed() && Tag(0x6F).is_constructed() && !Tag(0x9F38).is_constructed());
    }

    #[test]
    fn long_lengths_and_padding() {
        let value = vec![0x41; 300];
        let mut data = vec![0x00, 0xFF];
        data.extend(encode(Tag(0x5F20), &value[..200]));
        data.extend(encode(Tag(0x9F4B), &value));
        let tlvs = parse(&data).unwrap();
        assert_eq!(tlvs.len(), 2);
        assert_eq!(tlvs[0].value.len(), 200);
        assert_eq!(tlvs[1].value.len(), 300);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = encode(
            Tag(0x70),
            &[
                encode(Tag(0x57), &[0x62, 0x22, 0xD2]),
                encode(Tag(0x9F10), &[1, 2]),
            ]
            .concat(),
        );
        for cut in 1..full.len() {
            assert!(parse(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse(&[0x9F]).is_err());
        assert!(parse(&[0x57, 0x83, 0, 0, 1]).is_err());
        // Nesting bombs stop at MAX_DEPTH.
        let mut bomb = encode(Tag(0x57), &[]);
        for _ in 0..20 {
            bomb = encode(Tag(0x70), &bomb);
        }
        assert_eq!(parse(&bomb), Err(TlvError::TooDeep));
    }

    #[test]
    fn dol_lists_tags_and_lengths() {
        let pdol = [0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04];
        assert_eq!(
            parse_dol(&pdol).unwrap(),
            vec![(Tag(0x9F66), 4), (Tag(0x9F02), 6), (Tag(0x9F37), 4)]
        );
    }
}
