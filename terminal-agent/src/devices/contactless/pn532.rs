//! The NXP PN532 NFC controller over I2C (address 0x24): normal information
//! frames `00 00 FF LEN LCS D4 CMD … DCS 00`, the ACK frame, and the ready
//! bit the chip puts in front of every read. Only what a payment terminal
//! needs: firmware check, SAM configuration, finding one ISO 14443-A card,
//! and exchanging APDUs with it.

use std::time::{Duration, Instant};

use embedded_hal::i2c::I2c;

pub const ADDRESS: u8 = 0x24;

const HOST_TO_PN532: u8 = 0xD4;
const PN532_TO_HOST: u8 = 0xD5;
pub const ACK: [u8; 6] = [0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00];

pub mod cmd {
    pub const GET_FIRMWARE_VERSION: u8 = 0x02;
    pub const SAM_CONFIGURATION: u8 = 0x14;
    pub const RF_CONFIGURATION: u8 = 0x32;
    pub const IN_DATA_EXCHANGE: u8 = 0x40;
    pub const IN_LIST_PASSIVE_TARGET: u8 = 0x4A;
    pub const IN_RELEASE: u8 = 0x52;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pn532Error {
    #[error(
        "the contactless reader does not answer on I2C: check its wiring and that its switches select I2C"
    )]
    NoAnswer,
    #[error("the contactless reader sent a damaged frame")]
    BadFrame,
    #[error("the card left the reader's field")]
    CardGone,
    #[error("the contactless reader reported error {0:#04x}")]
    Status(u8),
}

/// Builds the frame carrying `data` (TFI, command and parameters).
pub fn frame(tfi: u8, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u8 + 1;
    let mut f = vec![0x00, 0x00, 0xFF, len, len.wrapping_neg(), tfi];
    f.extend_from_slice(data);
    let sum = data.iter().fold(tfi, |s, b| s.wrapping_add(*b));
    f.extend([sum.wrapping_neg(), 0x00]);
    f
}

/// The TFI and body of one frame at the start of `bytes`, checksums checked.
pub fn unframe(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let start = bytes.windows(3).position(|w| w == [0x00, 0x00, 0xFF])?;
    let b = &bytes[start + 3..];
    let (len, lcs) = (*b.first()?, *b.get(1)?);
    if len.wrapping_add(lcs) != 0 || len == 0 {
        return None;
    }
    let body = b.get(2..2 + len as usize)?;
    let dcs = *b.get(2 + len as usize)?;
    if body.iter().fold(dcs, |s, x| s.wrapping_add(*x)) != 0 {
        return None;
    }
    Some((body[0], &body[1..]))
}

pub struct Pn532<I2C> {
    i2c: I2C,
    address: u8,
    /// How long the chip may take to answer one command.
    pub timeout: Duration,
}

/// One card found in the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uid: Vec<u8>,
    /// The card speaks ISO 14443-4 (APDUs): bit 6 of SAK.
    pub iso_dep: bool,
}

impl<I2C: I2c> Pn532<I2C> {
    pub fn new(i2c: I2C, address: u8) -> Pn532<I2C> {
        Pn532 {
            i2c,
            address,
            timeout: Duration::from_millis(500),
        }
    }

    /// Checks the chip is there and sets it up to read cards.
    pub fn begin(&mut self) -> Result<(u8, u8), Pn532Error> {
        let fw = self.command(cmd::GET_FIRMWARE_VERSION, &[])?;
        let [ic, ver, ..] = fw[..] else {
            return Err(Pn532Error::BadFrame);
        };
        // Normal mode, no IRQ; then try each passive activation a few times only,
        // so "no card" is answered quickly instead of waiting for one forever.
        self.command(cmd::SAM_CONFIGURATION, &[0x01, 0x14, 0x00])?;
        self.command(cmd::RF_CONFIGURATION, &[0x05, 0xFF, 0x01, 0x02])?;
        Ok((ic, ver))
    }

    /// The card in the field, if any.
    pub fn find_card(&mut self) -> Result<Option<Target>, Pn532Error> {
        let r = self.command(cmd::IN_LIST_PASSIVE_TARGET, &[0x01, 0x00])?;
        match r[..] {
            [0, ..] => Ok(None),
            [1, _tg, _, _, sak, uid_len, ref rest @ ..] if rest.len() >= uid_len as usize => {
                Ok(Some(Target {
                    uid: rest[..uid_len as usize].to_vec(),
                    iso_dep: sak & 0x20 != 0,
                }))
            }
            _ => Err(Pn532Error::BadFrame),
        }
    }

    /// Sends one APDU to the card found last and returns its answer (with SW1 SW2).
    pub fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Pn532Error> {
        let mut data = vec![0x01];
        data.extend_from_slice(apdu);
        let r = self.command(cmd::IN_DATA_EXCHANGE, &data)?;
        match r.split_first() {
            Some((0x00, answer)) => Ok(answer.to_vec()),
            Some((0x01 | 0x0A | 0x29, _)) => Err(Pn532Error::CardGone),
            Some((status, _)) => Err(Pn532Error::Status(*status & 0x3F)),
            None => Err(Pn532Error::BadFrame),
        }
    }

    pub fn release(&mut self) {
        let _ = self.command(cmd::IN_RELEASE, &[0x00]);
    }

    /// One command: frame out, wait for ready, ACK in, wait for ready, answer in.
    fn command(&mut self, command: u8, params: &[u8]) -> Result<Vec<u8>, Pn532Error> {
        let mut data = vec![command];
        data.extend_from_slice(params);
        self.i2c
            .write(self.address, &frame(HOST_TO_PN532, &data))
            .map_err(|_| Pn532Error::NoAnswer)?;
        let mut ack = [0u8; 7];
        self.read_ready(&mut ack)?;
        if ack[1..] != ACK {
            return Err(Pn532Error::BadFrame);
        }
        // Each read starts the frame again: the header first for its length.
        let mut head = [0u8; 6];
        self.read_ready(&mut head)?;
        let len = head[4] as usize;
        let mut full = vec![0u8; 1 + 5 + len + 2];
        self.read_ready(&mut full)?;
        let (tfi, body) = unframe(&full[1..]).ok_or(Pn532Error::BadFrame)?;
        match body.split_first() {
            Some((&code, rest)) if tfi == PN532_TO_HOST && code == command + 1 => Ok(rest.to_vec()),
            _ => Err(Pn532Error::BadFrame),
        }
    }

    /// Reads into `buf` once the chip sets its ready byte.
    fn read_ready(&mut self, buf: &mut [u8]) -> Result<(), Pn532Error> {
        let deadline = Instant::now() + self.timeout;
        loop {
            self.i2c
                .read(self.address, buf)
                .map_err(|_| Pn532Error::NoAnswer)?;
            if buf[0] & 0x01 == 1 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Pn532Error::NoAnswer);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
