//! ESC/POS, the command language of receipt printers, as bytes to send. Only
//! what a slip needs: text in GB18030 (Chinese printers' code page), centring,
//! bold, feed, cut, a QR code, and the status commands.

use encoding_rs::GB18030;

pub const ESC: u8 = 0x1B;
pub const GS: u8 = 0x1D;
pub const FS: u8 = 0x1C;
pub const DLE: u8 = 0x10;
pub const EOT: u8 = 0x04;
pub const ENQ: u8 = 0x05;
pub const LF: u8 = 0x0A;

/// `DLE EOT n`: a real-time status request, answered at once even while the
/// printer is stopped (n = 1 printer, 2 offline cause, 3 error cause, 4 paper).
pub fn status_request(n: u8) -> [u8; 3] {
    [DLE, EOT, n]
}

/// `DLE ENQ 2`: recover from an error and clear the receive and print buffers,
/// so the half-printed rest of a failed slip is dropped instead of printed
/// after the fix (the whole slip is printed again from the queue).
pub const RECOVER_AND_CLEAR: [u8; 3] = [DLE, ENQ, 2];

/// `GS r 1`: paper sensor status, answered only once everything sent before it
/// has been printed. Its answer is how the driver knows a slip is on paper.
pub const PRINTED_MARK: [u8; 3] = [GS, b'r', 1];

/// The cash drawer's connector pin on the printer's drawer port (RJ11/12):
/// most drawers are wired to pin 2, a second drawer to pin 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DrawerPin {
    #[default]
    #[serde(rename = "2")]
    Two,
    #[serde(rename = "5")]
    Five,
}

/// `ESC p m t1 t2`: a pulse on the drawer port's pin (m = 0 for pin 2,
/// 1 for pin 5), on for t1 × 2 ms and off for t2 × 2 ms: 50 ms on opens
/// a drawer's solenoid, 500 ms off lets it rest before another pulse.
pub fn drawer_kick(pin: DrawerPin) -> [u8; 5] {
    let m = match pin {
        DrawerPin::Two => 0,
        DrawerPin::Five => 1,
    };
    [ESC, b'p', m, 25, 250]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left = 0,
    Centre = 1,
}

/// Builds one print job.
#[derive(Debug, Default, Clone)]
pub struct Job {
    bytes: Vec<u8>,
}

impl Job {
    /// `ESC @` (reset) and `FS &` (two-byte Chinese characters on).
    pub fn new() -> Job {
        Job {
            bytes: vec![ESC, b'@', FS, b'&'],
        }
    }

    pub fn align(mut self, align: Align) -> Job {
        self.bytes.extend([ESC, b'a', align as u8]);
        self
    }

    pub fn bold(mut self, on: bool) -> Job {
        self.bytes.extend([ESC, b'E', on as u8]);
        self
    }

    /// One line of text in GB18030; characters outside it print as `?`.
    pub fn line(mut self, text: &str) -> Job {
        let (encoded, _, _) = GB18030.encode(text);
        self.bytes
            .extend(encoded.iter().map(|&b| if b < 0x20 { b'?' } else { b }));
        self.bytes.push(LF);
        self
    }

    /// `GS ( k`: a model 2 QR code of `data`, error correction M, `module` dots a side.
    pub fn qr(mut self, data: &str, module: u8) -> Job {
        let store_len = data.len() + 3;
        let (pl, ph) = ((store_len % 256) as u8, (store_len / 256) as u8);
        self.bytes.extend([GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
        self.bytes
            .extend([GS, b'(', b'k', 3, 0, 49, 67, module.clamp(1, 16)]);
        self.bytes.extend([GS, b'(', b'k', 3, 0, 49, 69, 49]);
        self.bytes.extend([GS, b'(', b'k', pl, ph, 49, 80, 48]);
        self.bytes.extend(data.bytes());
        self.bytes.extend([GS, b'(', b'k', 3, 0, 49, 81, 48]);
        self
    }

    /// `ESC d n`: print and feed `lines` lines.
    pub fn feed(mut self, lines: u8) -> Job {
        self.bytes.extend([ESC, b'd', lines]);
        self
    }

    /// `GS V 66 0`: feed to the cutter and cut, leaving a hinge.
    pub fn cut(mut self) -> Job {
        self.bytes.extend([GS, b'V', 66, 0]);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_sent_in_gb18030() {
        let bytes = Job::new().line("消费 SALE").into_bytes();
        // 消 = CF FB, 费 = B7 D1 in GB2312 (a subset of GB18030).
        assert_eq!(
            &bytes[4..],
            &[0xCF, 0xFB, 0xB7, 0xD1, b' ', b'S', b'A', b'L', b'E', LF]
        );
    }

    #[test]
    fn control_characters_in_text_cannot_become_commands() {
        let bytes = Job::new().line("a\u{1b}@\u{10}\u{4}b").into_bytes();
        assert_eq!(&bytes[4..], b"a?@??b\n");
    }

    #[test]
    fn qr_store_length_counts_the_three_header_bytes() {
        let bytes = Job::new().qr("http://x/r/abc", 4).into_bytes();
        let store = bytes.windows(3).position(|w| w == [49, 80, 48]).unwrap();
        assert_eq!(bytes[store - 2], 14 + 3);
        assert_eq!(bytes[store - 1], 0);
    }
}
