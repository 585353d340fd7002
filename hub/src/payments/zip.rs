//! Reads the files of a zip archive (PKWARE's APPNOTE): Alipay sends its
//! bills as one. Only what such an archive uses: stored or deflated
//! entries, found through the central directory, each checked against its
//! CRC-32; no encryption, no ZIP64, no multi-disk archives. A file larger
//! than [`MAX_FILE`] is refused rather than unpacked.

use std::io::Read;

/// The largest file unpacked (a day's bill of a shop is a few hundred KiB).
pub const MAX_FILE: u64 = 64 << 20;

/// One file of the archive: its name's bytes as stored (Alipay's are GBK)
/// and its content.
#[derive(Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "the zip archive is cut short".to_string())
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "the zip archive is cut short".to_string())
}

/// Every file of the archive `zip`, in the central directory's order.
pub fn entries(zip: &[u8]) -> Result<Vec<Entry>, String> {
    // The end of the central directory: 22 bytes, then up to 64 KiB of comment.
    let from = zip.len().saturating_sub(22 + 0xFFFF);
    let end = (from..zip.len().saturating_sub(21))
        .rev()
        .find(|&at| zip[at..].starts_with(&[0x50, 0x4b, 0x05, 0x06]))
        .ok_or("not a zip archive (no end of central directory)")?;
    let count = u16_at(zip, end + 10)?;
    let mut at = u32_at(zip, end + 16)? as usize;
    let mut files = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if u32_at(zip, at)? != 0x0201_4b50 {
            return Err("the zip archive's directory is damaged".into());
        }
        let flags = u16_at(zip, at + 8)?;
        let method = u16_at(zip, at + 10)?;
        let crc = u32_at(zip, at + 16)?;
        let packed = u32_at(zip, at + 20)? as usize;
        let size = u64::from(u32_at(zip, at + 24)?);
        let name_len = usize::from(u16_at(zip, at + 28)?);
        let skip = name_len + usize::from(u16_at(zip, at + 30)?) + usize::from(u16_at(zip, at + 32)?);
        let local = u32_at(zip, at + 42)? as usize;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or("the zip archive is cut short")?
            .to_vec();
        at += 46 + skip;
        if flags & 1 != 0 {
            return Err("the zip archive is encrypted".into());
        }
        if size > MAX_FILE {
            return Err(format!(
                "a file of the zip archive is {size} bytes, more than a bill"
            ));
        }
        if u32_at(zip, local)? != 0x0403_4b50 {
            return Err("the zip archive's file header is damaged".into());
        }
        let start =
            local + 30 + usize::from(u16_at(zip, local + 26)?) + usize::from(u16_at(zip, local + 28)?);
        let packed = zip
            .get(start..start + packed)
            .ok_or("the zip archive is cut short")?;
        let mut data = Vec::with_capacity(size as usize);
        match method {
            0 => data.extend_from_slice(packed),
            8 => {
                flate2::read::DeflateDecoder::new(packed)
                    .take(MAX_FILE + 1)
                    .read_to_end(&mut data)
                    .map_err(|e| format!("a file of the zip archive does not unpack: {e}"))?;
            }
            other => {
                return Err(format!(
                    "the zip archive packs with method {other}, not stored or deflate"
                ))
            }
        }
        let mut sum = flate2::Crc::new();
        sum.update(&data);
        if data.len() as u64 != size || sum.sum() != crc {
            return Err("a file of the zip archive is damaged (its size or CRC does not match)".into());
        }
        files.push(Entry { name, data });
    }
    Ok(files)
}

/// An archive of `files` (name, content), each deflated: what
/// `tallybox-provider-sim` sends as Alipay's bill.
pub fn write(files: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let mut packed = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        packed.write_all(data).expect("writing to memory");
        let packed = packed.finish().expect("writing to memory");
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        // CRC-32, packed and unpacked sizes, the name's length.
        let mut sizes = Vec::new();
        for v in [crc.sum(), packed.len() as u32, data.len() as u32] {
            sizes.extend(v.to_le_bytes());
        }
        sizes.extend((name.len() as u16).to_le_bytes());
        // Version 2.0, no flags, deflate, no time.
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
        out.extend(&sizes);
        out.extend([0, 0]);
        out.extend(name);
        out.extend(&packed);
        directory.extend(0x0201_4b50u32.to_le_bytes());
        directory.extend([20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
        directory.extend(&sizes);
        directory.extend([0; 12]);
        directory.extend(offset.to_le_bytes());
        directory.extend(name);
    }
    let (at, size, count) = (out.len() as u32, directory.len() as u32, files.len() as u16);
    out.extend(directory);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend([0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive as Python's zipfile writes it (one deflated file `a.txt`
    /// holding "hello zip\n", one stored `b.txt` holding "plain").
    const TWO_FILES: &str = "UEsDBBQAAAAIAAAAIVBIyRFIDAAAAAoAAAAFAAAAYS50eHTLSM3JyVeoyizgAgBQSwMEFAAAAAAAAAAhUM9iIBkFAAAABQAAAAUAAABiLnR4dHBsYWluUEsBAhQDFAAAAAgAAAAhUEjJEUgMAAAACgAAAAUAAAAAAAAAAAAAAIABAAAAAGEudHh0UEsBAhQDFAAAAAAAAAAhUM9iIBkFAAAABQAAAAUAAAAAAAAAAAAAAIABLwAAAGIudHh0UEsFBgAAAAACAAIAZgAAAFcAAAAAAA==";

    #[test]
    fn an_archive_from_another_zip_writer_reads_back_stored_and_deflated() {
        let zip = data_encoding::BASE64.decode(TWO_FILES.as_bytes()).unwrap();
        let files = entries(&zip).unwrap();
        let read: Vec<(&[u8], &[u8])> = files.iter().map(|f| (&f.name[..], &f.data[..])).collect();
        assert_eq!(
            read,
            vec![
                (&b"a.txt"[..], &b"hello zip\n"[..]),
                (&b"b.txt"[..], &b"plain"[..])
            ]
        );
    }

    #[test]
    fn what_it_writes_reads_back() {
        let files = vec![
            (b"x.csv".to_vec(), b"a,b\r\n".repeat(100)),
            (b"y".to_vec(), vec![]),
        ];
        let read: Vec<_> = entries(&write(&files))
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.data))
            .collect();
        assert_eq!(read, files);
    }

    #[test]
    fn a_damaged_or_cut_archive_is_refused_with_a_reason() {
        let zip = data_encoding::BASE64.decode(TWO_FILES.as_bytes()).unwrap();
        assert!(entries(b"not a zip").unwrap_err().contains("not a zip"));
        let mut flipped = zip.clone();
        flipped[40] ^= 0x55; // inside a.txt's packed bytes
        assert!(entries(&flipped).is_err());
        let mut stored = zip.clone();
        let at = stored.windows(5).position(|w| w == b"plain").unwrap();
        stored[at] = b'P';
        assert!(entries(&stored).unwrap_err().contains("CRC"));
        assert!(entries(&zip[..zip.len() - 30]).is_err());
    }
}
