//! The PN532 at the byte level on the model I2C bus: it checks each frame's
//! checksums, ACKs it, answers the commands a payment reader uses, and passes
//! APDUs to whatever card is held in its field. Reads start with the ready
//! byte and restart the pending frame, as on the chip.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::emv_card::ContactlessCard;
use super::i2c::I2cDevice;
use crate::devices::contactless::pn532::{cmd, frame, unframe, ACK};

#[derive(Default)]
pub struct Pn532Chip {
    card: Option<Box<dyn ContactlessCard>>,
    activated: bool,
    out: VecDeque<Vec<u8>>,
    /// Frames with a bad checksum or an unknown command.
    pub bad_frames: u32,
}

impl Pn532Chip {
    fn answer(&mut self, command: u8, params: &[u8]) -> Option<Vec<u8>> {
        Some(match command {
            cmd::GET_FIRMWARE_VERSION => vec![0x32, 0x01, 0x06, 0x07],
            cmd::SAM_CONFIGURATION | cmd::RF_CONFIGURATION => vec![],
            cmd::IN_LIST_PASSIVE_TARGET => match &self.card {
                Some(card) => {
                    self.activated = true;
                    let uid = card.uid();
                    let mut r = vec![1, 1, 0x00, 0x04, 0x20, uid.len() as u8];
                    r.extend(uid);
                    r.extend([0x05, 0x78, 0x80, 0x70, 0x02]); // ATS
                    r
                }
                None => vec![0],
            },
            cmd::IN_DATA_EXCHANGE => match (&mut self.card, params.split_first()) {
                (Some(card), Some((1, apdu))) if self.activated => {
                    let mut r = vec![0x00];
                    r.extend(card.apdu(apdu));
                    r
                }
                // 0x01: time-out, the card does not answer (it left the field).
                _ => vec![0x01],
            },
            cmd::IN_RELEASE => {
                self.activated = false;
                vec![0x00]
            }
            _ => return None,
        })
    }
}

impl I2cDevice for Pn532Chip {
    fn write(&mut self, bytes: &[u8]) {
        let Some((0xD4, body)) = unframe(bytes) else {
            self.bad_frames += 1;
            return;
        };
        let Some((&command, params)) = body.split_first() else {
            self.bad_frames += 1;
            return;
        };
        self.out.clear();
        match self.answer(command, params) {
            Some(data) => {
                self.out.push_back(ACK.to_vec());
                let mut body = vec![command + 1];
                body.extend(data);
                self.out.push_back(frame(0xD5, &body));
            }
            None => self.bad_frames += 1,
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        let Some(pending) = self.out.front() else {
            return; // not ready
        };
        buf[0] = 0x01;
        let n = pending.len().min(buf.len() - 1);
        buf[1..1 + n].copy_from_slice(&pending[..n]);
        if buf.len() > pending.len() {
            self.out.pop_front();
        }
    }
}

/// The chip shared between the bus and whoever holds cards to it.
#[derive(Clone, Default)]
pub struct SharedPn532(Arc<Mutex<Pn532Chip>>);

impl SharedPn532 {
    pub fn lock(&self) -> MutexGuard<'_, Pn532Chip> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hold(&self, card: Box<dyn ContactlessCard>) {
        let mut chip = self.lock();
        chip.card = Some(card);
        chip.activated = false;
    }

    pub fn take_away(&self) {
        self.lock().card = None;
    }
}

impl I2cDevice for SharedPn532 {
    fn write(&mut self, bytes: &[u8]) {
        self.lock().write(bytes)
    }

    fn read(&mut self, buf: &mut [u8]) {
        self.lock().read(buf)
    }
}
